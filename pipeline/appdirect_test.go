package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/extract"
	"github.com/marketsync/marketsync/internal/simcheck"
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
	skipUnderRace(t) // one sync at a time, nothing concurrent of its own: .ci/run runs it without -race
	t.Parallel()     // the long tests overlap their waits when run without -race
	for _, server := range []string{extract.LeadDateSeconds, extract.LeadDateMilliseconds} {
		sent := extract.LeadDateSeconds
		if server == sent {
			sent = extract.LeadDateMilliseconds
		}
		t.Run("server "+server+", sent "+sent, func(t *testing.T) {
			sim := startSim(t, apisim.Config{Seed: 5, Scale: 400, Profile: "fast", LeadFromDateUnit: server})
			cfg := testConfig(sim, 50, t.TempDir())
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

// resellerConfig reads AppDirect through the AppReseller family with the demo user.
func resellerConfig(sim *apisim.Server, dir, context string) Config {
	cfg := testConfig(sim, 50, dir)
	cfg.HighLevel = nil
	cfg.AppDirect.API, cfg.AppDirect.ResellerContext = extract.APIReseller, context
	cfg.AppDirect.RatePerSecond, cfg.AppDirect.CompaniesRate = -1, -1
	return cfg
}

func assertReseller(t *testing.T, cfg Config, sim *apisim.Server, streams []string, incremental bool) {
	t.Helper()
	ctx := context.Background()
	db, err := load.Open(ctx, cfg.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	diff, err := simcheck.CompareRows(ctx, db.DB(), sim, streams, simcheck.RowOptions{Family: "reseller", UndetectedDeletes: incremental})
	if err != nil {
		t.Fatal(err)
	}
	if diff != "" {
		t.Fatalf("warehouse differs from what the AppReseller endpoints serve:\n%s", diff)
	}
}

// A reseller partner's sync through the AppReseller family: companies, users, opportunities and
// leads land in the usual tables equal to the source row by row, after a full and after an
// incremental run; invoices and events, which the family lacks, are skipped (not failed); only
// the user's token is used.
func TestRun_ResellerFamilyFullThenIncrementalEqualsSource(t *testing.T) {
	sim := startSim(t, apisim.Config{Seed: 6, Scale: 350, Profile: "fast"})
	cfg := resellerConfig(sim, t.TempDir(), "RESELLER")
	ctx := context.Background()
	synced := []string{"companies", "users", "leads", "opportunities"}
	for run := 1; run <= 2; run++ {
		sum, err := Run(ctx, cfg)
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		status := map[string]string{}
		for _, s := range sum.Streams {
			status[s.Stream] = s.Status
			if (s.Stream == "invoices" || s.Stream == "events") && !strings.Contains(s.Note, "AppReseller") {
				t.Errorf("%s skipped without saying why: %q", s.Stream, s.Note)
			}
		}
		for _, s := range synced {
			if status[s] != "succeeded" {
				t.Fatalf("run %d: %s %s, want succeeded (%+v)", run, s, status[s], sum.Streams)
			}
		}
		for _, s := range []string{"invoices", "events"} {
			if status[s] != "skipped" {
				t.Fatalf("run %d: %s %q, want skipped", run, s, status[s])
			}
		}
		assertReseller(t, cfg, sim, synced, run == 2)
		sim.Advance(6 * time.Hour)
	}
	st := sim.Snapshot()
	for _, ep := range []string{"appdirect.companies", "appdirect.users", "appdirect.opportunities", "appdirect.invoices", "appdirect.events"} {
		if n, _ := simcheck.Requests(st, ep); n != 0 {
			t.Errorf("%d requests to the marketplace endpoint %s", n, ep)
		}
	}
	for _, ep := range []string{"appdirect.reseller.companies", "appdirect.reseller.users", "appdirect.reseller.opportunities"} {
		if n, _ := simcheck.Requests(st, ep); n == 0 {
			t.Errorf("no request to %s", ep)
		}
	}
}

// A Reseller Manager cannot list AppReseller opportunities (the endpoint's roles exclude it):
// that stream is skipped, the others equal the source.
func TestRun_ResellerManagerSkipsOpportunities(t *testing.T) {
	sim := startSim(t, apisim.Config{Seed: 6, Scale: 300, Profile: "fast"})
	cfg := resellerConfig(sim, t.TempDir(), "RESELLER_MANAGER")
	sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sum.Streams {
		if s.Stream == "opportunities" && (s.Status != "skipped" || !strings.Contains(s.Note, "reseller_context: RESELLER")) {
			t.Fatalf("opportunities %s %q, want skipped naming reseller_context", s.Status, s.Note)
		}
	}
	assertReseller(t, cfg, sim, []string{"companies", "users", "leads"}, false)
}

// A warehouse filled through one AppDirect family refuses a sync through the other, even from
// the same marketplace, naming both; the same family and account syncs again.
func TestRun_AppDirectFamiliesAreNotMixed(t *testing.T) {
	sim := startSim(t, apisim.Config{Seed: 6, Scale: 100, Profile: "fast"})
	dir := t.TempDir()
	market := testConfig(sim, 50, dir)
	market.HighLevel, market.Streams = nil, []string{"companies"}
	market.AppDirect.RatePerSecond, market.AppDirect.CompaniesRate = -1, -1
	ctx := context.Background()
	if _, err := Run(ctx, market); err != nil {
		t.Fatal(err)
	}
	reseller := resellerConfig(sim, dir, "RESELLER")
	reseller.Streams = []string{"companies"}
	_, err := Run(ctx, reseller)
	if !errors.Is(err, load.ErrSourceMismatch) || !strings.Contains(err.Error(), "AppReseller API (context RESELLER") {
		t.Fatalf("reseller sync into a marketplace warehouse: %v, want ErrSourceMismatch naming the family", err)
	}
	other := resellerConfig(sim, t.TempDir(), "RESELLER")
	other.Streams = []string{"companies"}
	if _, err := Run(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(ctx, other); err != nil {
		t.Fatalf("the same reseller again: %v", err)
	}
	other.AppDirect.ResellerContext = "RESELLER_MANAGER"
	if _, err := Run(ctx, other); !errors.Is(err, load.ErrSourceMismatch) {
		t.Fatalf("another reseller context: %v, want ErrSourceMismatch (a different view)", err)
	}
	if _, err := Run(ctx, market); err != nil {
		t.Fatalf("the marketplace warehouse still syncs: %v", err)
	}
}

// Through the AppReseller family under every fault (5xx, resets, truncated and invalid bodies,
// 429s, revoked user tokens, rows changing while listed), a final full scan with the faults that
// do not move the source still on ends equal to the source row by row.
func TestRun_ResellerFamilyUnderChaosEndsEqualToSource(t *testing.T) {
	f := apisim.ChaosFaults()
	f.Throttle = 0.01
	sim := startSim(t, apisim.Config{Seed: 12, Scale: 600, Profile: "chaos", Speed: 50, Faults: f})
	cfg := resellerConfig(sim, t.TempDir(), "RESELLER")
	cfg.AppDirect.RatePerSecond, cfg.AppDirect.CompaniesRate, cfg.AppDirect.PageSize = 4*50, 5*50, 50
	cfg.Retry.MaxAttempts = 15
	ctx := context.Background()
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatalf("run under chaos: %v", err)
	}
	sim.Advance(3 * time.Hour)
	f.PageDrift = 0
	sim.SetFaults(f)
	cfg.FullRefresh = true
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if st := sim.Snapshot(); st.Faults["token_revoked"] == 0 || st.Faults["reset"] == 0 {
		t.Errorf("faults %v: the run should have met revoked tokens and resets", st.Faults)
	}
	assertReseller(t, cfg, sim, []string{"companies", "users", "leads", "opportunities"}, false)
}
