package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	"github.com/apache/iceberg-go/table"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/config"
	"github.com/marketsync/marketsync/schemas"
)

// lakeShape counts each lake table's snapshots and live data files, read by iceberg-go.
func lakeShape(t *testing.T, dir string) (snapshots, files map[string]int) {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("sqlite", dir+"/lake/catalog.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cat, err := sqlcat.NewCatalog("marketsync", db, sqlcat.SQLite, iceberg.Properties{"warehouse": "file://" + dir + "/lake/warehouse"})
	if err != nil {
		t.Fatal(err)
	}
	snapshots, files = map[string]int{}, map[string]int{}
	for _, tb := range schemas.Tables {
		tbl, err := cat.LoadTable(ctx, table.Identifier{"marketsync", tb.Name})
		if err != nil {
			t.Fatalf("%s: %v", tb.Name, err)
		}
		snapshots[tb.Name] = len(tbl.Metadata().Snapshots())
		tasks, err := tbl.Scan().PlanFiles(ctx)
		if err != nil {
			t.Fatal(err)
		}
		files[tb.Name] = len(tasks)
	}
	return snapshots, files
}

// syncer lake compact leaves fewer files with the same rows; syncer lake expire-snapshots
// leaves one snapshot per table with the same rows, and the next sync still resumes from every
// cursor (none was lost with the snapshots that committed it).
func TestLakeMaintenanceCommands(t *testing.T) {
	skipUnderRace(t) // compaction and three independent iceberg-go scans, no concurrency: 95 s under -race
	t.Parallel()
	// Scale 60 in batches of 15 (was 200 in 40s: 98 s under -race): every table still gets
	// several data files and snapshots per run for compaction and expiry to reduce.
	s := startSim(t, apisim.Config{Seed: 23, Scale: 60, Profile: "fast"})
	setSecrets(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, s, func(c string) string {
		return c + "batch_rows: 15\nlake:\n  catalog: sql\n  uri: " + dir + "/lake/catalog.db\n  warehouse: " + dir + "/lake/warehouse\n  upsert: equality-deletes\n"
	})
	// The syncs that set the lake up run in a syncer process (not instrumented by -race: they
	// are not what this test is about); the maintenance commands run in this one.
	for run := range 2 {
		if run > 0 {
			s.Advance(2 * time.Hour)
		}
		if code, _, errOut := runBin(t, "sync", "--config", cfg, "--progress", "never"); code != exitOK {
			t.Fatalf("sync: exit %d\n%s", code, errOut)
		}
	}
	snaps0, files0 := lakeShape(t, dir)
	t.Logf("before: snapshots %v, data files %v", snaps0, files0)
	for name, n := range snaps0 {
		if n < 2 || files0[name] < 2 {
			t.Fatalf("%s: %d snapshots and %d data files before maintenance: too few for it to reduce (make the source larger)", name, n, files0[name])
		}
	}
	code, out, errOut := syncer(t, "lake", "compact", "--config", cfg)
	if code != exitOK || !strings.Contains(out, "data files") {
		t.Fatalf("compact: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("compact:\n%s", out)
	_, files1 := lakeShape(t, dir)
	before, after := 0, 0
	for name, n := range files1 {
		before, after = before+files0[name], after+n
		if n > files0[name] {
			t.Errorf("%s: %d data files after compaction, %d before", name, n, files0[name])
		}
	}
	if after >= before {
		t.Errorf("%d data files after compaction, %d before", after, before)
	}
	assertLakeEqual(t, dir, s, true, "after compaction")
	code, out, errOut = syncer(t, "lake", "expire-snapshots", "--config", cfg, "--older-than", "0s", "--retain-last", "1")
	if code != exitOK {
		t.Fatalf("expire-snapshots: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("expire-snapshots:\n%s", out)
	snaps2, _ := lakeShape(t, dir)
	for name, n := range snaps2 {
		if n != 1 {
			t.Errorf("%s: %d snapshots after expiry (%d before), want 1", name, n, snaps0[name])
		}
	}
	assertLakeEqual(t, dir, s, true, "after expiry")
	// Cursors survived: the next sync resumes every cursor stream (a lost lake cursor means a
	// full scan), and ends equal to the source.
	s.Advance(2 * time.Hour)
	if code, _, errOut := runBin(t, "sync", "--config", cfg, "--progress", "never", "--summary-json", dir+"/summary.json"); code != exitOK {
		t.Fatalf("sync after maintenance: exit %d\n%s", code, errOut)
	}
	var rep runReport
	if b, err := os.ReadFile(dir + "/summary.json"); err != nil || json.Unmarshal(b, &rep) != nil {
		t.Fatalf("summary: %v", err)
	}
	for _, st := range rep.Streams {
		if tb, _ := schemas.Lookup(st.Stream); tb.Cursor != "" && st.FullScan {
			t.Errorf("%s/%s: a full scan after maintenance: its lake cursor was lost", st.Stream, st.Partition)
		}
	}
	assertLakeEqual(t, dir, s, true, "after a sync following maintenance")
}

func TestLakeCommandsRefuseBadInput(t *testing.T) {
	setSecrets(t)
	noLake := writeConfig(t, t.TempDir(), startSim(t, apisim.Config{Seed: 1, Scale: 10, Profile: "fast"}), nil)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"lake"}, "want a subcommand"},
		{[]string{"lake", "vacuum"}, `unknown lake subcommand "vacuum"`},
		{[]string{"lake", "compact"}, "--config is required"},
		{[]string{"lake", "compact", "--config", noLake}, "has no lake: section"},
		{[]string{"lake", "compact", "--config", noLake, "--target-file-size", "-1"}, "--target-file-size -1"},
		{[]string{"lake", "expire-snapshots", "--config", noLake, "--retain-last", "0"}, "--retain-last 0: want at least 1"},
		{[]string{"lake", "expire-snapshots", "--config", noLake, "--older-than", "a week"}, `--older-than "a week": want an age`},
		{[]string{"lake", "expire-snapshots", "--config", noLake, "--older-than", "7d", "--table", "nope"}, "--table"},
		{[]string{"lake", "remove-orphans", "--config", noLake, "--older-than", "soon"}, `--older-than "soon": want an age`},
		{[]string{"lake", "remove-orphans", "--config", noLake, "--older-than", "1h"}, "--older-than 1h is under 24h"},
		{[]string{"lake", "remove-orphans", "--config", noLake, "--no-writer-running", "--older-than", "0"}, "has no lake: section"},
	} {
		code, _, errOut := syncer(t, tc.args...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d %q, want exit 2 saying %q", tc.args, code, errOut, tc.want)
		}
	}
}

// syncer check shows the lake section without its secrets (a Postgres DSN's password, a REST
// token, S3 keys), and a catalog it cannot reach fails the check with the reason.
func TestLakeCheckMasksSecrets(t *testing.T) {
	const pw, tok, s3secret = "pg-pass-never-shown", "tok-never-shown", "s3-never-shown"
	var out strings.Builder
	err := checkLake(context.Background(), &config.Lake{Catalog: "sql", URI: "postgres://lake:" + pw + "@127.0.0.1:1/lake?sslmode=disable",
		Warehouse: "s3://b/p", Namespace: "marketsync", Upsert: "copy-on-write", S3Endpoint: "http://127.0.0.1:1",
		S3AccessKeyID: "AKID", S3SecretAccessKey: s3secret}, &out)
	if err == nil || !strings.Contains(out.String(), "FAIL lake catalog") || !strings.Contains(out.String(), "postgres://lake:xxxxx@127.0.0.1:1/lake") ||
		!strings.Contains(out.String(), "s3_secret_access_key ****** (set)") {
		t.Fatalf("postgres: %v\n%s", err, out.String())
	}
	t.Log(out.String())
	out.Reset()
	err = checkLake(context.Background(), &config.Lake{Catalog: "rest", URI: "http://127.0.0.1:1", Warehouse: "analytics", Namespace: "marketsync",
		Upsert: "copy-on-write", Token: tok}, &out)
	if err == nil || !strings.Contains(out.String(), "token ****** (set)") || !strings.Contains(out.String(), "FAIL lake catalog") {
		t.Fatalf("rest: %v\n%s", err, out.String())
	}
	t.Log(out.String())
	for uri, want := range map[string]string{
		"postgres://lake@127.0.0.1/lake?sslmode=disable&password=" + pw: "postgres://lake@127.0.0.1/lake?password=xxxxx&sslmode=disable",
		"postgres://lake:%zz" + pw + "@127.0.0.1/lake":                  "(a URL that does not parse)",
		"./data/lake/catalog.db":                                        "./data/lake/catalog.db",
	} {
		if got := redactURI(uri); got != want {
			t.Errorf("redactURI(%q) = %q, want %q", uri, got, want)
		}
	}
	for _, secret := range []string{pw, tok, s3secret} {
		if strings.Contains(out.String()+fmt.Sprint(err), secret) {
			t.Fatalf("check shows a secret: %s", out.String())
		}
	}
}

// syncer lake remove-orphans: a killed writer's files (an unreferenced Parquet file and
// manifest under a table's location) older than the threshold are listed by --dry-run and
// removed without it; a newer one stays; the lake still equals the source.
func TestLakeRemoveOrphansCommand(t *testing.T) {
	t.Parallel()
	s := startSim(t, apisim.Config{Seed: 29, Scale: 30, Profile: "fast"}) // the orphans are planted: any size shows them
	setSecrets(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, s, func(c string) string {
		return c + "lake:\n  catalog: sql\n  uri: " + dir + "/lake/catalog.db\n  warehouse: " + dir + "/lake/warehouse\n"
	})
	if code, _, errOut := runBin(t, "sync", "--config", cfg, "--progress", "never"); code != exitOK {
		t.Fatalf("sync: exit %d\n%s", code, errOut)
	}
	table := dir + "/lake/warehouse/marketsync.db/charges"
	old := []string{table + "/data/location_id=killed/00000-0-killed.parquet", table + "/metadata/killed-m0.avro"}
	fresh := table + "/data/00000-0-in-flight.parquet"
	aged := time.Now().Add(-4 * 24 * time.Hour)
	for _, p := range append(old, fresh) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("PAR1 written by a writer killed before its commit"), 0o644); err != nil {
			t.Fatal(err)
		}
		if p != fresh {
			if err := os.Chtimes(p, aged, aged); err != nil {
				t.Fatal(err)
			}
		}
	}
	code, out, errOut := syncer(t, "lake", "remove-orphans", "--config", cfg, "--dry-run")
	if code != exitOK || !strings.Contains(out, "charges        would remove 2 unreferenced files older than 3d") ||
		!strings.Contains(out, old[0]) || !strings.Contains(out, old[1]) || strings.Contains(out, fresh) {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("dry run:\n%s", out)
	for _, p := range append(old, fresh) {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("the dry run removed %s", p)
		}
	}
	code, out, errOut = syncer(t, "lake", "remove-orphans", "--config", cfg)
	if code != exitOK || !strings.Contains(out, "charges        removed 2 unreferenced files older than 3d") || !strings.Contains(out, "invoices       no unreferenced file older than 3d") {
		t.Fatalf("remove-orphans: exit %d\n%s%s", code, out, errOut)
	}
	for _, p := range old {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s is still there (%v)", p, err)
		}
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatalf("the newer file was removed: %v", err)
	}
	assertLakeEqual(t, dir, s, false, "after remove-orphans")
}
