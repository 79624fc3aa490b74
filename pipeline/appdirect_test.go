package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/extract"
	"github.com/marketsync/marketsync/load"
)

func leadsCursor(t *testing.T, cfg Config) string {
	t.Helper()
	ctx := context.Background()
	db, err := load.Open(ctx, cfg.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	all, err := db.Cursors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return all["leads\x00"].Encode()
}

// A full then an incremental leads sync with lead_from_date_unit the opposite of what the
// server reads: milliseconds read as seconds fail the stream naming the fix with its cursor
// kept, and after the fix the warehouse equals the source row by row; seconds read as
// milliseconds succeed (noting it). No lead is lost either way.
func TestRun_LeadDateUnitMisreadLosesNoLead(t *testing.T) {
	for _, server := range []string{extract.LeadDateSeconds, extract.LeadDateMilliseconds} {
		sent := extract.LeadDateSeconds
		if server == sent {
			sent = extract.LeadDateMilliseconds
		}
		t.Run("server "+server+", sent "+sent, func(t *testing.T) {
			sim := startSim(t, apisim.Config{Seed: 5, Scale: 400, Profile: "fast", LeadFromDateUnit: server})
			cfg := testConfig(sim, 1, t.TempDir())
			cfg.Streams, cfg.HighLevel = []string{"leads"}, nil
			cfg.AppDirect.RatePerSecond, cfg.AppDirect.LeadFromDateUnit = -1, sent
			ctx := context.Background()
			if _, err := Run(ctx, cfg); err != nil {
				t.Fatalf("full run: %v", err)
			}
			before := leadsCursor(t, cfg)
			sim.Advance(24 * time.Hour)
			sum, err := Run(ctx, cfg)
			if sent == extract.LeadDateMilliseconds {
				failed := sum.Failed()
				if !errors.Is(err, ErrStreamsFailed) || len(failed) != 1 || !strings.Contains(failed[0].Error, "lead_from_date_unit: seconds") {
					t.Fatalf("incremental: err %v, failed %+v: want leads failed naming lead_from_date_unit: seconds", err, failed)
				}
				if after := leadsCursor(t, cfg); after != before {
					t.Fatalf("leads cursor moved after the unit check failed: %s -> %s", before, after)
				}
				cfg.AppDirect.LeadFromDateUnit = server
				if sum, err = Run(ctx, cfg); err != nil {
					t.Fatalf("incremental after the fix: %v", err)
				}
			} else if err != nil || !strings.Contains(sum.Streams[0].Note, "lead_from_date_unit: milliseconds") {
				t.Fatalf("incremental: err %v, note %q", err, sum.Streams[0].Note)
			}
			if sum.Streams[0].FullScan || sum.Streams[0].Inserted == 0 {
				t.Fatalf("last run %+v: want an incremental run that inserted the new leads", sum.Streams[0])
			}
			assertRows(t, cfg, sim, []string{"leads"}, true)
		})
	}
}
