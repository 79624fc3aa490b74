package pipeline

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/lake"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
)

// With a lake destination, every table's cursor lands in the lake with the data, equal to
// DuckDB's, across a full and an incremental run.
func TestRun_LakeGetsTheSameCommitsAndCursors(t *testing.T) {
	sim := startSim(t, apisim.Config{Seed: 14, Scale: 120, Profile: "fast"})
	dir := t.TempDir()
	lw, err := lake.Open(context.Background(), lake.Options{Catalog: "sql", URI: filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "lake")})
	if err != nil {
		t.Fatal(err)
	}
	defer lw.Close()
	cfg := testConfig(sim, 1, dir)
	cfg.ParquetDir, cfg.Lake, cfg.Streams = "", lw, []string{"users", "invoices", "charges"}
	for run := 0; run < 2; run++ {
		if _, err := Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		sim.Advance(3600e9)
	}
	db, err := load.Open(context.Background(), cfg.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cursors, err := db.Cursors(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range cursors {
		stream, partition, _ := cut(key)
		tb, _ := schemas.Lookup(stream)
		got, ok, err := lw.Cursor(context.Background(), tb, stream, partition)
		if err != nil || !ok || got.Value != want.Value {
			t.Errorf("%s/%s: lake cursor %+v (found %v, %v), DuckDB %+v", stream, partition, got, ok, err, want)
		}
	}
	if len(cursors) < 4 {
		t.Fatalf("only %d cursors", len(cursors))
	}
}

func cut(key string) (stream, partition string, ok bool) {
	for i := 0; i < len(key); i++ {
		if key[i] == 0 {
			return key[:i], key[i+1:], true
		}
	}
	return key, "", false
}
