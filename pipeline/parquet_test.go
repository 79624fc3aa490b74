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
	sim := startSim(t, apisim.Config{Seed: 8, Scale: 400, Profile: "fast"})
	cfg := testConfig(sim, 1, t.TempDir())
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
	for _, tb := range schemas.Tables {
		var cols []string
		for _, c := range append(tb.AllColumns(), schemas.Column{Name: schemas.ColStaleSince}) {
			if c.Name != schemas.ColRunID { // Parquet keeps the run that last wrote the content
				cols = append(cols, load.Quote(c.Name))
			}
		}
		sel := strings.Join(cols, ", ")
		pq := fmt.Sprintf("read_parquet('%s/%s/*/*.parquet', hive_partitioning = true)", cfg.ParquetDir, tb.Name)
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
