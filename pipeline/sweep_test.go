package pipeline

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/internal/simcheck"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
)

// Records keep changing after the lookback window (an invoice paid months after creation). An
// incremental run re-lists the non-terminal statuses: changes of rows still in them land at
// once; rows that left them are marked stale and the next run's full scan re-reads them. After
// that run every value equals the source.
func TestRun_LateUpdatesAreCaughtBySweeps(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // the long tests overlap their waits when run without -race
	sim := startSim(t, apisim.Config{Seed: 12, Scale: 800, Profile: "fast", Hostile: apisim.Hostile{LateUpdates: true}})
	cfg := testConfig(sim, 50, t.TempDir())
	cfg.Streams, cfg.ParquetDir = []string{"invoices", "leads", "opportunities"}, ""
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	sim.Advance(48 * time.Hour)
	sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var noted bool
	for _, s := range sum.Streams {
		if s.FullScan {
			t.Fatalf("%s: the second run should be incremental", s.Stream)
		}
		noted = noted || strings.Contains(s.Note, "left a status")
	}
	if !noted {
		t.Fatal("no stream reported rows that left a swept status after 48 hours of late updates")
	}
	// Every row the source has in a swept status is equal or marked stale; none is silently
	// old. (Rows that changed in a terminal status only a full scan sees.)
	swept := map[string]bool{}
	for _, name := range cfg.Streams {
		tb, _ := schemas.Lookup(name)
		for _, st := range tb.Sweeps {
			swept[name+"/"+st] = true
		}
	}
	db, err := load.Open(context.Background(), cfg.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	diff, err := simcheck.CompareRows(context.Background(), db.DB(), sim, cfg.Streams, simcheck.RowOptions{UndetectedDeletes: true, SkipStale: true,
		Only: func(table string, r apisim.Row) bool { return swept[table+"/"+fmt.Sprint(r.Values["status"])] }})
	db.Close()
	if err != nil || diff != "" {
		t.Fatalf("after the incremental run, rows not marked stale differ (%v):\n%s", err, diff)
	}
	sum, err = Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sum.Streams {
		if s.Stream == "invoices" && !s.FullScan {
			t.Fatal("the run after rows left a swept status should re-read invoices with a full scan")
		}
	}
	// The periodic full scan is what sees changes in terminal statuses (README): one now.
	cfg.FullRefresh = true
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	assertRows(t, cfg, sim, cfg.Streams, false)
}
