package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/internal/simcheck"
	"github.com/marketsync/marketsync/lake/shard"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/state"
)

func TestPlan_EveryDecision(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	cur := time.Date(2026, 5, 31, 0, 0, 0, 0, time.UTC)
	scanned := state.Cursor{Value: cur.UnixMicro(), LastFullScan: now.Add(-24 * time.Hour)}
	cases := []struct {
		name      string
		in        planInput
		mode      Mode
		since     time.Time
		reasonHas string
	}{
		{"full refresh wins over everything", planInput{HasCursor: true, Found: true, Cursor: scanned, FullRefresh: true, Lookback: time.Hour, Now: now},
			Full, time.Time{}, "--full-refresh"},
		{"a stream without a cursor column is a snapshot", planInput{Found: true, Cursor: scanned, Now: now},
			Full, time.Time{}, "no cursor column"},
		{"no cursor row: first sync", planInput{HasCursor: true, Now: now}, Full, time.Time{}, "first sync"},
		{"a cursor row without a value: first sync", planInput{HasCursor: true, Found: true, Cursor: state.Cursor{LastFullScan: now}, Now: now},
			Full, time.Time{}, "first sync"},
		{"checkpoint without a full scan: resume from it minus the lookback",
			planInput{HasCursor: true, Found: true, Cursor: state.Cursor{Value: cur.UnixMicro()}, FullScanEvery: time.Hour, Lookback: 10 * time.Minute, Now: now},
			Resume, cur.Add(-10 * time.Minute), "resuming"},
		{"a resumed first load that completed: a full scan verifies it",
			planInput{HasCursor: true, Found: true, Cursor: state.Cursor{Value: cur.UnixMicro(), Loaded: true}, Lookback: time.Hour, Now: now},
			Full, time.Time{}, "verifies"},
		{"rows left a swept status: full",
			planInput{HasCursor: true, Found: true, Cursor: state.Cursor{Value: cur.UnixMicro(), LastFullScan: now, Rescan: true}, Now: now},
			Full, time.Time{}, "swept status"},
		{"recent full scan: incremental from the cursor minus the lookback",
			planInput{HasCursor: true, Found: true, Cursor: scanned, FullScanEvery: 7 * 24 * time.Hour, Lookback: 24 * time.Hour, Now: now},
			Incremental, cur.Add(-24 * time.Hour), "lookback"},
		{"full scan older than full_scan_every: full",
			planInput{HasCursor: true, Found: true, Cursor: scanned, FullScanEvery: 12 * time.Hour, Lookback: time.Hour, Now: now},
			Full, time.Time{}, "last full scan 24h0m0s ago"},
		{"full_scan_every 0 never forces a full scan",
			planInput{HasCursor: true, Found: true, Cursor: state.Cursor{Value: cur.UnixMicro(), LastFullScan: now.AddDate(-1, 0, 0)}, Now: now},
			Incremental, cur, "lookback"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := plan(c.in)
			if p.Mode != c.mode || !p.Since.Equal(c.since) || !strings.Contains(p.Reason, c.reasonHas) {
				t.Fatalf("plan %+v, want mode %s since %s reason containing %q", p, c.mode, c.since, c.reasonHas)
			}
		})
	}
}

// A stream whose source is not configured is skipped, says why, and does not fail the run.
func TestRun_StreamsOfAnUnconfiguredSourceAreSkipped(t *testing.T) {
	sim := startSim(t, apisim.Config{Seed: 4, Scale: 50, Profile: "fast"})
	cfg := testConfig(sim, 50, t.TempDir())
	cfg.HighLevel, cfg.ParquetDir = nil, ""
	sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("run: %v, want success with charges skipped", err)
	}
	var skipped []string
	for _, s := range sum.Streams {
		if s.Status == "skipped" {
			skipped = append(skipped, s.Stream)
			if !strings.Contains(s.Note, "sources.highlevel") {
				t.Errorf("skip note %q should name the missing config section", s.Note)
			}
		}
	}
	if strings.Join(skipped, ",") != "charges" {
		t.Fatalf("skipped %v, want charges only", skipped)
	}
}

// A warehouse holding a source's data from one server refuses the same source from another: a
// full scan would otherwise soft-delete what the other lists, or mix the two.
func TestRun_RefusesDataOfAnotherSourceIdentity(t *testing.T) {
	sim := startSim(t, apisim.Config{Seed: 4, Scale: 30, Profile: "fast"})
	cfg := testConfig(sim, 50, t.TempDir())
	cfg.Streams, cfg.ParquetDir = []string{"users"}, ""
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	other := startSim(t, apisim.Config{Seed: 5, Scale: 30, Profile: "fast"})
	ad, _ := simcheck.Sources(other, 50)
	cfg.AppDirect = ad
	_, err := Run(context.Background(), cfg)
	if !errors.Is(err, load.ErrSourceMismatch) || !strings.Contains(err.Error(), sim.URL()) || !strings.Contains(err.Error(), other.URL()) {
		t.Fatalf("err %v, want a refusal naming both servers", err)
	}
	cfg.SourceIdentity = map[string]string{"appdirect": "renamed"}
	if _, err := Run(context.Background(), cfg); !errors.Is(err, load.ErrSourceMismatch) {
		t.Fatalf("err %v, want a refusal", err)
	}
}

// N shards cover every stream and every HighLevel location exactly once.
func TestRun_ShardsCoverTheWorkExactlyOnce(t *testing.T) {
	sim := startSim(t, apisim.Config{Seed: 4, Scale: 40, Locations: 5, Profile: "fast"})
	seen := map[string]int{}
	for i := range 3 {
		cfg := testConfig(sim, 50, t.TempDir())
		cfg.ParquetDir, cfg.Shard = "", &shard.Spec{Index: i, Of: 3}
		sum, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sum.Streams { // every shard lists the locations, one writes them
			seen[s.Stream+"/"+s.Partition]++
		}
	}
	installed := 0
	for _, r := range must(sim.Rows("locations")) {
		if r.Values["isInstalled"] == true {
			installed++
		}
	}
	if len(seen) != 7+installed {
		t.Fatalf("%d units synced (%v), want 6 AppDirect streams, locations and %d location partitions", len(seen), seen, installed)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s synced by %d shards", k, n)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// skipUnderRace skips a long end-to-end test under the race detector; .ci/run runs it without.
func skipUnderRace(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("long end-to-end test: .ci/run runs it without -race")
	}
}
