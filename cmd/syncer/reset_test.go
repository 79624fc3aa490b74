package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/internal/simcheck"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
)

var namedReset = regexp.MustCompile("`(syncer reset [^`]+)`")

// runNamedReset runs the `syncer reset …` command an error message names, as a user would
// paste it: first without --yes (it must refuse and change nothing), then as written.
func runNamedReset(t *testing.T, msg string) string {
	t.Helper()
	m := namedReset.FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("the message names no syncer reset command:\n%s", msg)
	}
	args := strings.Fields(m[1])[1:]
	var dry []string
	for _, a := range args {
		if a != "--yes" {
			dry = append(dry, a)
		}
	}
	code, out, errOut := syncer(t, dry...)
	if code != exitUsage || !strings.Contains(out, "would delete") || !strings.Contains(errOut, "nothing was deleted") {
		t.Fatalf("reset without --yes: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = syncer(t, args...)
	if code != exitOK || !strings.Contains(out, "deleted from") {
		t.Fatalf("%s: exit %d\n%s\n%s", m[1], code, out, errOut)
	}
	return out
}

func compareWarehouse(t *testing.T, path string, s *apisim.Server, streams ...string) {
	t.Helper()
	if len(streams) == 0 {
		streams = schemas.Streams
	}
	db, err := load.OpenReadOnly(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	diff, err := simcheck.CompareRows(context.Background(), db, s, streams, simcheck.RowOptions{})
	if err != nil || diff != "" {
		t.Fatalf("warehouse differs from the source (%v):\n%s", err, diff)
	}
}

func queryInt(t *testing.T, path, q string) int64 {
	t.Helper()
	db, err := load.OpenReadOnly(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRowContext(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// A column whose type changed stops the sync with exit 2 and names a reset; that reset, run
// as written, is enough: the next sync succeeds and the warehouse equals the source.
func TestReset_FixesATypeChangeWithTheToolAlone(t *testing.T) {
	skipUnderRace(t) // sync, reset and read flows in one goroutine each; the in-process simulator is slow under -race
	t.Parallel()
	s := startSim(t, apisim.Config{Seed: 3, Scale: 60, Profile: "fast"})
	setSecrets(t)
	dir := t.TempDir()
	p := writeConfig(t, dir, s, nil)
	wh := filepath.Join(dir, "w.duckdb")
	if code, _, errOut := syncer(t, "sync", "--config", p, "--progress", "never"); code != exitOK {
		t.Fatalf("first sync: exit %d: %s", code, errOut)
	}
	// An older build declared users.email differently.
	d, err := load.Open(context.Background(), wh)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Conn().ExecContext(context.Background(), "ALTER TABLE users ALTER COLUMN email TYPE BIGINT USING 0"); err != nil {
		t.Fatal(err)
	}
	d.Close()
	code, _, errOut := syncer(t, "sync", "--config", p, "--progress", "never")
	if code != exitUsage || !strings.Contains(errOut, "users.email") {
		t.Fatalf("sync over a changed type: exit %d, want %d naming users.email:\n%s", code, exitUsage, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "parquet", "users")); err != nil {
		t.Fatalf("users had Parquet files before the reset: %v", err)
	}
	out := runNamedReset(t, errOut)
	if !regexp.MustCompile(`users\s+60\s+0\s+1\s+\d+`).MatchString(out) {
		t.Errorf("reset report lacks users' 60 rows and 1 cursor:\n%s", out)
	}
	// Only users went: its rows, cursor and Parquet folder; every other stream kept its own.
	if n := queryInt(t, wh, "SELECT count(*) FROM users"); n != 0 {
		t.Fatalf("users has %d rows after the reset", n)
	}
	if n := queryInt(t, wh, "SELECT count(*) FROM _sync_state WHERE stream = 'users'"); n != 0 {
		t.Fatalf("users kept %d cursors", n)
	}
	if n := queryInt(t, wh, "SELECT count(*) FROM companies"); n != 60 {
		t.Fatalf("companies has %d rows after a users reset, want 60", n)
	}
	if n := queryInt(t, wh, "SELECT count(*) FROM _sources"); n != 2 {
		t.Fatalf("%d source claims after a users reset, want both kept (other AppDirect streams remain)", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "parquet", "users")); !os.IsNotExist(err) {
		t.Fatalf("users' Parquet folder survived the reset: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "parquet", "companies")); err != nil {
		t.Fatalf("companies' Parquet folder went with a users reset: %v", err)
	}
	// status works between the reset and the next sync (the table exists, empty).
	if code, _, errOut := syncer(t, "status", "--warehouse", wh); code != exitOK {
		t.Fatalf("status after reset: exit %d: %s", code, errOut)
	}
	if code, _, errOut := syncer(t, "sync", "--config", p, "--progress", "never"); code != exitOK {
		t.Fatalf("sync after the reset: exit %d: %s", code, errOut)
	}
	compareWarehouse(t, wh, s)
}

// A warehouse holding another source's data refuses with exit 2 and names a reset of every
// stream of the sources that differ; after it, a sync from the new source ends equal to it.
func TestReset_FixesASourceIdentityRefusalWithTheToolAlone(t *testing.T) {
	skipUnderRace(t) // sync, reset and read flows in one goroutine each; the in-process simulator is slow under -race
	t.Parallel()
	a := startSim(t, apisim.Config{Seed: 3, Scale: 40, Profile: "fast"})
	b := startSim(t, apisim.Config{Seed: 4, Scale: 50, Profile: "fast"})
	setSecrets(t)
	dir := t.TempDir()
	wh := filepath.Join(dir, "w.duckdb")
	if code, _, errOut := syncer(t, "sync", "--config", writeConfig(t, dir, a, nil), "--progress", "never"); code != exitOK {
		t.Fatalf("first sync: exit %d: %s", code, errOut)
	}
	pb := writeConfig(t, dir, b, nil)
	code, _, errOut := syncer(t, "sync", "--config", pb, "--progress", "never")
	if code != exitUsage || !strings.Contains(errOut, a.URL()) || !strings.Contains(errOut, b.URL()) {
		t.Fatalf("sync from another source: exit %d, want %d naming both servers:\n%s", code, exitUsage, errOut)
	}
	out := runNamedReset(t, errOut)
	if !strings.Contains(out, "source claims released") || !strings.Contains(out, "appdirect") || !strings.Contains(out, "highlevel") {
		t.Errorf("reset report does not say both claims went:\n%s", out)
	}
	if n := queryInt(t, wh, "SELECT count(*) FROM _sources"); n != 0 {
		t.Fatalf("%d source claims left after resetting every stream", n)
	}
	if code, _, errOut := syncer(t, "sync", "--config", pb, "--progress", "never"); code != exitOK {
		t.Fatalf("sync after the reset: exit %d: %s", code, errOut)
	}
	compareWarehouse(t, wh, b)
}

// A reset's mistakes exit 2 and change nothing.
func TestReset_RefusesMistakes(t *testing.T) {
	dir := t.TempDir()
	wh := filepath.Join(dir, "w.duckdb")
	cases := []struct {
		args []string
		msg  string
	}{
		{[]string{"reset", "--warehouse", wh, "--streams", "nope", "--yes"}, `unknown stream "nope"`},
		{[]string{"reset", "--warehouse", wh, "--streams", "", "--yes"}, "--streams is empty"},
		{[]string{"reset", "--warehouse", wh, "extra"}, "unexpected arguments"},
	}
	for _, c := range cases {
		if code, _, errOut := syncer(t, c.args...); code != exitUsage || !strings.Contains(errOut, c.msg) {
			t.Errorf("syncer %v: exit %d %q, want %d with %q", c.args, code, errOut, exitUsage, c.msg)
		}
	}
	if code, _, errOut := syncer(t, "reset", "--warehouse", wh, "--yes"); code != exitFailed || !strings.Contains(errOut, "does not exist") {
		t.Errorf("reset of a missing warehouse: exit %d %q", code, errOut)
	}
}

// A reset removes the Parquet files of the streams it clears and nothing else in their folders:
// a --parquet-dir that names the wrong folder must never cost a user's other files.
func TestReset_RemovesOnlyParquetFiles(t *testing.T) {
	dir := t.TempDir()
	pq := filepath.Join(dir, "pq", "users")
	if err := os.MkdirAll(filepath.Join(pq, "year=2026"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"year=2026/part-0.parquet": "x", "notes.txt": "keep", "year=2026/keep.csv": "keep"} {
		if err := os.WriteFile(filepath.Join(pq, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	empty := filepath.Join(dir, "pq", "users", "year=2025")
	if err := os.MkdirAll(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := removeParquet(pq); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(pq, "year=2026", "part-0.parquet")); !os.IsNotExist(err) {
		t.Errorf("the Parquet file is still there (%v)", err)
	}
	for _, keep := range []string{"notes.txt", "year=2026/keep.csv"} {
		if _, err := os.Stat(filepath.Join(pq, keep)); err != nil {
			t.Errorf("%s was removed: %v", keep, err)
		}
	}
	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Errorf("an emptied partition folder stays (%v)", err)
	}
	if err := removeParquet(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("a missing folder: %v", err)
	}
}
