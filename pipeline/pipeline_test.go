package pipeline

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/extract"
	"github.com/marketsync/marketsync/internal/simcheck"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
)

func startSim(t *testing.T, cfg apisim.Config) *apisim.Server {
	t.Helper()
	sim, err := apisim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

func testConfig(sim *apisim.Server, speed float64, dir string) Config {
	ad, hl := simcheck.Sources(sim, speed)
	return Config{AppDirect: ad, HighLevel: hl, Warehouse: filepath.Join(dir, "w.duckdb"), ParquetDir: filepath.Join(dir, "parquet"),
		Retry: extract.RetryPolicy{InitialInterval: 5 * time.Millisecond, MaxInterval: 200 * time.Millisecond}, BatchRows: 300}
}

func assertTruth(t *testing.T, cfg Config, sim *apisim.Server) {
	t.Helper()
	ctx := context.Background()
	db, err := load.Open(ctx, cfg.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	diff, err := simcheck.Compare(ctx, db.DB(), sim.Truth(0), schemas.Streams)
	if err != nil {
		t.Fatal(err)
	}
	if diff != "" {
		t.Fatalf("warehouse differs from source truth:\n%s", diff)
	}
}

func TestRun_FullThenIncrementalEqualsTruth(t *testing.T) {
	sim := startSim(t, apisim.Config{Seed: 1, Scale: 1200, Profile: "realistic", Speed: 50})
	cfg := testConfig(sim, 50, t.TempDir())
	sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("full run: %v", err)
	}
	var inserted int64
	for _, s := range sum.Streams {
		if !s.FullScan {
			t.Errorf("%s/%s: first run should be a full scan", s.Stream, s.Partition)
		}
		inserted += s.Inserted
	}
	assertTruth(t, cfg, sim)
	if want := int64(5*1200 + sim.Truth(0).Streams["charges"].Live + 2); inserted < want {
		t.Errorf("inserted %d rows, want at least %d", inserted, want)
	}

	sim.Advance(6 * time.Hour)
	before := sim.Snapshot().Total
	sum2, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("incremental run: %v", err)
	}
	reqs := sim.Snapshot().Total - before
	for _, s := range sum2.Streams {
		if s.FullScan && s.Stream != "companies" && s.Stream != "locations" {
			t.Errorf("%s: second run should be incremental", s.Stream)
		}
	}
	// Deletions are only visible to full scans; compare everything a full scan would show.
	cfg.FullRefresh = true
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatalf("full refresh: %v", err)
	}
	assertTruth(t, cfg, sim)
	t.Logf("incremental run made %d requests", reqs)
}
