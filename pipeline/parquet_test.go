package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
)

// A run rewrites only the Parquet partitions whose rows it changed, and the Parquet output
// still equals the warehouse row for row.
func TestRun_ParquetRewritesOnlyChangedPartitions(t *testing.T) {
	skipUnderRace(t) // one sync at a time, nothing concurrent of its own: .ci/run runs it without -race
	t.Parallel()     // the long tests overlap their waits when run without -race
	sim := startSim(t, apisim.Config{Seed: 8, Scale: 400, Profile: "fast"})
	cfg := testConfig(sim, 50, t.TempDir())
	first, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if first.ParquetPartitions == 0 {
		t.Fatal("the first run wrote no parquet")
	}
	again, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if again.ParquetPartitions != 0 {
		t.Fatalf("a run that changed nothing rewrote %d partitions", again.ParquetPartitions)
	}
	before := mtimes(t, cfg.ParquetDir)
	sim.Advance(2 * time.Hour)
	changed, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	after := mtimes(t, cfg.ParquetDir)
	var kept []string
	for f, m := range before {
		if after[f].Equal(m) {
			kept = append(kept, f)
		}
	}
	// Locations did not change, nor did invoices created years ago (they change within 30 days).
	if changed.ParquetPartitions == 0 || !slices.Contains(kept, "locations") || !slices.ContainsFunc(kept, func(f string) bool { return strings.HasPrefix(f, "invoices/year=2024") }) {
		t.Fatalf("after a few changes: %d partitions rewritten; untouched: %v", changed.ParquetPartitions, kept)
	}
	db, err := load.Open(context.Background(), cfg.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	assertParquetEqualsDuckDB(t, db, cfg.ParquetDir)
}

// assertParquetEqualsDuckDB compares every table's Parquet files with its DuckDB rows, every
// column but the run id (Parquet keeps the run that last wrote the content), both ways.
func assertParquetEqualsDuckDB(t *testing.T, db *load.DuckDB, dir string) {
	t.Helper()
	for _, tb := range schemas.Tables {
		var cols []string
		for _, c := range append(tb.AllColumns(), schemas.Column{Name: schemas.ColStaleSince}) {
			if c.Name != schemas.ColRunID { // Parquet keeps the run that last wrote the content
				cols = append(cols, load.Quote(c.Name))
			}
		}
		sel := strings.Join(cols, ", ")
		pq := fmt.Sprintf("read_parquet('%s/%s/*/*.parquet', hive_partitioning = true)", dir, tb.Name)
		q := fmt.Sprintf(`SELECT count(*) FROM ((SELECT %[1]s FROM %[2]s EXCEPT SELECT %[1]s FROM %[3]s) UNION ALL (SELECT %[1]s FROM %[3]s EXCEPT SELECT %[1]s FROM %[2]s))`,
			sel, tb.Name, pq)
		var diff int
		if err := db.Conn().QueryRowContext(context.Background(), q).Scan(&diff); err != nil {
			t.Fatalf("%s: %v", tb.Name, err)
		}
		if diff != 0 {
			t.Errorf("%s: %d rows differ between DuckDB and Parquet", tb.Name, diff)
		}
	}
}

// mtimes maps "<table>/<partition>" (or just "<table>" when it has no changed file under it)
// to the newest modification time of its files.
func mtimes(t *testing.T, dir string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*", "data.parquet"))
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, filepath.Dir(f))
		out[rel] = fi.ModTime()
		table := strings.SplitN(rel, string(filepath.Separator), 2)[0]
		if fi.ModTime().After(out[table]) {
			out[table] = fi.ModTime()
		}
	}
	return out
}

// A stream run ends when its table's Parquet files are written, and the run when the last
// are: with a slow Parquet phase (a hook sleeps after each table), every stream's ended_at, in
// the summary and in _sync_runs, is at or after its files' modification time, and the run's
// duration is its wall time.
func TestRun_EndedAtCoversTheParquetPhase(t *testing.T) {
	sim := startSim(t, apisim.Config{Seed: 8, Scale: 60, Profile: "fast"})
	cfg := testConfig(sim, 50, t.TempDir())
	const pause = 300 * time.Millisecond
	cfg.parquetWritten = func(string) { time.Sleep(pause) }
	start := time.Now()
	sum, err := Run(context.Background(), cfg)
	wall := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	// Closing the warehouse follows the run's end; before the fix the run missed a pause per
	// table (8 tables: 2.4 s), so two pauses is tolerance enough for a loaded machine.
	if d := sum.Ended.Sub(sum.Started); d > wall || wall-d > 2*pause {
		t.Errorf("the run took %s of wall time, its summary says %s", wall, d)
	}
	files := mtimes(t, cfg.ParquetDir)
	db, err := load.Open(context.Background(), cfg.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range sum.Streams {
		written, ok := files[s.Stream]
		if !ok {
			t.Fatalf("%s: no Parquet files", s.Stream)
		}
		if s.Ended.Before(written) {
			t.Errorf("%s/%s ended at %s, before its Parquet files were written (%s)", s.Stream, s.Partition, s.Ended.Format(time.RFC3339Nano), written.Format(time.RFC3339Nano))
		}
		if s.Ended.After(sum.Ended) {
			t.Errorf("%s/%s ended at %s, after the run (%s)", s.Stream, s.Partition, s.Ended, sum.Ended)
		}
		var ended int64
		if err := db.Conn().QueryRowContext(context.Background(), `SELECT epoch_us(ended_at) FROM _sync_runs WHERE run_id = ? AND stream = ? AND partition = ?`,
			sum.RunID, s.Stream, s.Partition).Scan(&ended); err != nil {
			t.Fatal(err)
		}
		if ended != s.Ended.UnixMicro() {
			t.Errorf("%s/%s: _sync_runs ended_at %s, the summary %s", s.Stream, s.Partition, time.UnixMicro(ended).UTC(), s.Ended)
		}
	}
	// The hook pauses after every table, the first one's included: the pauses are in the run.
	if last := files[sum.Streams[0].Stream]; sum.Ended.Sub(last) < pause {
		t.Errorf("the run ended %s after %s's files: the hook's pause is not in the run", sum.Ended.Sub(last), sum.Streams[0].Stream)
	}
}

// A run that commits and then fails (or is killed) before its Parquet export leaves rows older
// than the next run's start; the next run, though it changes nothing itself, exports them: the
// files always catch up with what committed. Before, the export took only rows changed since
// its own run's start, and the files lagged the warehouse for good (SIGKILL test: leads 1000 in
// Parquet, 1004 in DuckDB).
func TestRun_ParquetCatchesUpAfterARunThatCommittedButDidNotExport(t *testing.T) {
	sim := startSim(t, apisim.Config{Seed: 9, Scale: 200, Profile: "fast"})
	dir := t.TempDir()
	cfg := testConfig(sim, 50, dir)
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	sim.Advance(6 * time.Hour)
	// The export cannot create its folder (a file is in the way): rows commit, files do not.
	good := cfg.ParquetDir
	blocked := filepath.Join(dir, "blocked")
	if err := os.WriteFile(blocked, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.ParquetDir = filepath.Join(blocked, "parquet")
	if _, err := Run(context.Background(), cfg); err == nil {
		t.Fatal("a run whose Parquet folder cannot be made succeeded")
	}
	cfg.ParquetDir = good
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	db, err := load.Open(context.Background(), cfg.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	assertParquetEqualsDuckDB(t, db, good)
}
