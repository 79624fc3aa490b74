package main

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
)

// runBin runs the syncer binary (another process: the warehouse lock is per process).
func runBin(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errb.String()
	}
	t.Fatal(err)
	return 0, "", ""
}

// The type round trip, through the control socket: another process's query finds the
// warehouse held by this one, which runs it and streams back output byte-identical to a local
// read's, in every format, every value reading back as stored.
func TestHolder_QueryRoundTripsEveryTypeThroughTheSocket(t *testing.T) {
	t.Parallel()
	wh := typesWarehouse(t)
	local := roundTripTypes(t, wh, func(args ...string) (int, string, string) { return syncer(t, args...) }, func() *sql.DB {
		db, err := sql.Open("duckdb", wh+"?access_mode=read_only")
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
	h, err := startHolder(t.Context(), wh, "sync", slog.New(slog.DiscardHandler))
	if err != nil || h == nil || h.srv == nil {
		t.Fatalf("holder: %v %v", h, err)
	}
	defer h.close()
	h.syncing([]string{"companies"})
	if fi, err := os.Stat(wh + ".sock"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v %v, want mode 0600", fi, err)
	}
	var notes []string
	remote := roundTripTypes(t, wh, func(args ...string) (int, string, string) {
		code, out, errOut := runBin(t, args...)
		notes = append(notes, errOut)
		return code, out, errOut
	}, func() *sql.DB {
		c, err := duckdb.NewConnector(wh, nil) // this process's instance: the holder's
		if err != nil {
			t.Fatal(err)
		}
		return sql.OpenDB(c)
	})
	for f, out := range local {
		if remote[f] != out {
			t.Errorf("--format %s through the socket differs from the local output:\n%s\nlocal:\n%s", f, remote[f], out)
		}
	}
	if strings.Join(notes, "") != "" {
		t.Errorf("query printed on stderr through the socket: %q", notes)
	}
}

// Nothing but one read runs through the socket: writes, commands and side-effect functions
// are refused with exit code 2 and leave the data as it was; so are ones that pass the first
// keyword (a WITH ... INSERT) and reach DuckDB's own statement type.
func TestHolder_RefusesWrites(t *testing.T) {
	t.Parallel()
	wh := typesWarehouse(t)
	h, err := startHolder(t.Context(), wh, "sync", slog.New(slog.DiscardHandler))
	if err != nil || h == nil || h.srv == nil {
		t.Fatalf("holder: %v %v", h, err)
	}
	defer h.close()
	outside := filepath.Join(t.TempDir(), "stolen.csv")
	var wg sync.WaitGroup
	slots := make(chan struct{}, 4)
	for _, q := range []string{
		"DELETE FROM t", "INSERT INTO t (id) VALUES (9)", "WITH x AS (SELECT 9 AS id) INSERT INTO t (id) SELECT id FROM x",
		"UPDATE t SET i = 0", "DROP TABLE t", "CREATE TABLE u (a INT)", "COPY t TO '" + outside + "'",
		"SELECT 1; DELETE FROM t", "FORCE CHECKPOINT", "SELECT * FROM checkpoint()", "ATTACH ':memory:' AS m", "SET threads = 1",
		"PRAGMA version", "CALL checkpoint()",
		// EXPLAIN ANALYZE runs what it wraps, which DuckDB types as an EXPLAIN.
		"EXPLAIN ANALYZE SET memory_limit = '2MB'", "EXPLAIN ANALYZE COPY (SELECT 1) TO '" + outside + "'", "EXPLAIN ANALYZE CHECKPOINT",
	} {
		// Four readers at a time (each a process start: 13-18 s one after the other); the
		// holder answers them concurrently, as it does for several readers.
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			code, out, errOut := runBin(t, "query", q, "--warehouse", wh)
			if code != exitUsage || !strings.Contains(errOut, "only a read") || out != "" {
				t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 saying only a read may run", q, code, out, errOut)
			}
		}()
	}
	wg.Wait()
	var n int
	if err := h.db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 3 {
		t.Fatalf("t has %d rows (%v) after the refused writes, want 3", n, err)
	}
	if _, err := os.Stat(outside); err == nil {
		t.Fatal("COPY wrote a file through the socket")
	}
	var limit string
	if err := h.db.QueryRow("SELECT current_setting('memory_limit')").Scan(&limit); err != nil || strings.HasPrefix(limit, "1.9") {
		t.Fatalf("memory_limit %s (%v) after the refused statements", limit, err)
	}
	// A read still answers.
	if code, out, errOut := runBin(t, "query", "SELECT count(*) AS n FROM t", "--warehouse", wh, "--format", "csv"); code != 0 || out != "n\r\n3\r\n" {
		t.Fatalf("a read through the socket: exit %d %q %s", code, out, errOut)
	}
}

// Ctrl-C of the reader stops its query in the holder: the holder's request ends (cancelled)
// within seconds, not when the query would have finished.
func TestHolder_ReaderInterruptStopsTheQueryInTheHolder(t *testing.T) {
	wh := typesWarehouse(t)
	var logs lockedBuffer
	h, err := startHolder(t.Context(), wh, "sync", slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil || h == nil || h.srv == nil {
		t.Fatalf("holder: %v %v", h, err)
	}
	defer h.close()
	cmd := exec.Command(binary(t), "query", "SELECT count(*) FROM range(2000000000) a, range(1000) b WHERE a.range * b.range % 7 = 3", "--warehouse", wh)
	var errb lockedBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(logs.String(), `msg="control socket: request" cmd=query`); {
		if time.Now().After(deadline) {
			t.Fatalf("the query never reached the holder: %s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	sent := time.Now()
	_ = cmd.Process.Signal(syscall.SIGINT)
	_ = cmd.Wait()
	if took := time.Since(sent); took > 3*time.Second {
		t.Fatalf("the reader took %s to exit after SIGINT", took)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), "request ended"); {
		if time.Now().After(deadline) {
			t.Fatalf("the holder's query still runs 5 s after the reader's SIGINT:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if l := logs.String(); !strings.Contains(l, "request ended") || !strings.Contains(l, "interrupt") && !strings.Contains(l, "context canceled") {
		t.Fatalf("the holder's request did not end cancelled:\n%s", l)
	}
}

// An export through the holder waits for the process's own Parquet writes (a sync's Parquet
// phase) and only then takes its snapshot: what the sync committed before writing its Parquet
// is in the export, never overwritten by an older snapshot that waited.
func TestHolder_ExportWaitsForTheSyncsParquetAndSnapshotsAfter(t *testing.T) {
	ctx := t.Context()
	wh := filepath.Join(t.TempDir(), "w.duckdb")
	d, err := load.Open(ctx, wh)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Migrate(ctx, schemas.Tables); err != nil {
		t.Fatal(err)
	}
	d.Close()
	h, err := startHolder(ctx, wh, "sync", slog.New(slog.DiscardHandler))
	if err != nil || h == nil || h.srv == nil {
		t.Fatalf("holder: %v %v", h, err)
	}
	defer h.close()
	unlock, err := load.LockParquet(ctx) // the sync is writing its Parquet
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "export")
	cmd := exec.Command(binary(t), "export", "--warehouse", wh, "--parquet-dir", out)
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the export is waiting
	if cmd.ProcessState != nil || stdout.String() != "" {
		t.Fatalf("the export did not wait for the Parquet writes: %s %s", stdout.String(), stderr.String())
	}
	tb, _ := schemas.Lookup("companies")
	if _, err := h.db.Exec(fmt.Sprintf("INSERT INTO companies (%s) VALUES ('c-after')", tb.PrimaryKey)); err != nil {
		t.Fatal(err)
	}
	unlock()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("export: %v %s", err, stderr.String())
	}
	var n int
	if err := h.db.QueryRow(fmt.Sprintf("SELECT count(*) FROM read_parquet('%s/companies/*/*.parquet') WHERE %s = 'c-after'", out, tb.PrimaryKey)).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the row committed while the export waited: %d in the export (%v), want 1", n, err)
	}
}

// A serve without a Parquet directory may write no files: export through it says so.
func TestHolder_ServeWithoutParquetDirRefusesExportClearly(t *testing.T) {
	wh := typesWarehouse(t)
	h, err := startHolder(t.Context(), wh, "serve", slog.New(slog.DiscardHandler), func(h *holder) { h.restricted = true })
	if err != nil || h == nil || h.srv == nil {
		t.Fatalf("holder: %v %v", h, err)
	}
	defer h.close()
	code, out, errOut := runBin(t, "export", "--warehouse", wh, "--parquet-dir", filepath.Join(t.TempDir(), "x"))
	if code != exitFailed || out != "" || !strings.Contains(errOut, "without a Parquet directory") || !strings.Contains(errOut, "stop it to export") {
		t.Fatalf("export through a serve without Parquet: exit %d %q %s", code, out, errOut)
	}
}

// A read through the holder sees committed data only: rows the sync's writer has inserted but
// not committed (a batch in flight, with its cursor) are not in it; once committed, they are.
func TestHolder_ReadsNeverSeeABatchInFlight(t *testing.T) {
	ctx := t.Context()
	wh := filepath.Join(t.TempDir(), "w.duckdb")
	d, err := load.Open(ctx, wh) // the sync's writer
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Migrate(ctx, schemas.Tables); err != nil {
		t.Fatal(err)
	}
	h, err := startHolder(ctx, wh, "sync", slog.New(slog.DiscardHandler))
	if err != nil || h == nil || h.srv == nil {
		t.Fatalf("holder: %v %v", h, err)
	}
	defer h.close()
	tb, _ := schemas.Lookup("companies")
	w := d.Conn()
	for _, q := range []string{"BEGIN TRANSACTION", fmt.Sprintf("INSERT INTO companies (%s) SELECT 'c-' || range FROM range(500)", tb.PrimaryKey),
		`INSERT INTO _sync_state (tenant, stream, partition, cursor, updated_at) VALUES ('default', 'companies', '', '{"value_us": 1}', now())`} {
		if _, err := w.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	const q = "SELECT (SELECT count(*) FROM companies) AS n, (SELECT count(*) FROM _sync_state) AS cursors"
	if code, out, errOut := runBin(t, "query", q, "--warehouse", wh, "--format", "csv"); code != 0 || out != "n,cursors\r\n0,0\r\n" {
		t.Fatalf("a read while a batch is in flight: exit %d %q %s, want none of it", code, out, errOut)
	}
	if _, err := w.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runBin(t, "query", q, "--warehouse", wh, "--format", "csv"); code != 0 || out != "n,cursors\r\n500,1\r\n" {
		t.Fatalf("a read after the commit: exit %d %q %s, want the whole batch", code, out, errOut)
	}
}

// A holder without a control socket (a duckdb shell, a BI tool, a syncer older than this one):
// the reader says so and what to do.
func TestHolder_NoSocketSaysWhatToDo(t *testing.T) {
	t.Parallel()
	wh := typesWarehouse(t)
	d, err := load.Open(t.Context(), wh) // holds the file, answers nothing
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// Each read waits holderExitWait for the holder to let go before it answers: the four run
	// at once (28 s one after the other, 8 s together).
	reads := [][]string{{"status"}, {"runs"}, {"query", "SELECT 1"}, {"export", "--parquet-dir", filepath.Join(t.TempDir(), "x")}}
	var wg sync.WaitGroup
	for _, args := range reads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, out, errOut := runBin(t, append(args, "--warehouse", wh)...)
			if code != exitFailed || out != "" || !strings.Contains(errOut, "locked") || !strings.Contains(errOut, "no control socket at "+wh+".sock") ||
				!strings.Contains(errOut, "stop it and run it with this version") {
				t.Errorf("%v with a holder without a socket: exit %d %q %s", args, code, out, errOut)
			}
		}()
	}
	wg.Wait()
}
