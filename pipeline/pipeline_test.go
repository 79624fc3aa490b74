package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/extract"
	"github.com/marketsync/marketsync/internal/simcheck"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
)

func startSim(t *testing.T, cfg apisim.Config) *apisim.Server { return simcheck.Start(t, cfg) }

func testConfig(sim *apisim.Server, speed float64, dir string) Config {
	ad, hl := simcheck.Sources(sim, speed)
	return Config{AppDirect: ad, HighLevel: hl, Warehouse: filepath.Join(dir, "w.duckdb"), ParquetDir: filepath.Join(dir, "parquet"),
		Retry: extract.RetryPolicy{InitialInterval: 5 * time.Millisecond, MaxInterval: 200 * time.Millisecond}, BatchRows: 300}
}

// assertTruth checks the warehouse against the source after a run that ended with full scans:
// the id and version checksums, and every value of every row (the whole-row oracle).
func assertTruth(t *testing.T, cfg Config, sim *apisim.Server) {
	t.Helper()
	assertRows(t, cfg, sim, schemas.Streams, false)
}

// assertRows compares every column of every row of the streams' tables with the source. After
// an incremental run, rows deleted at the source may still be live (only verified full scans
// mark deletions); every other value must already be equal.
func assertRows(t *testing.T, cfg Config, sim *apisim.Server, streams []string, incremental bool) {
	t.Helper()
	ctx := context.Background()
	db, err := load.Open(ctx, cfg.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if !incremental {
		diff, err := simcheck.Compare(ctx, db.DB(), sim.Truth(0), streams)
		if err != nil {
			t.Fatal(err)
		}
		if diff != "" {
			t.Fatalf("warehouse differs from source truth:\n%s", diff)
		}
	}
	diff, err := simcheck.CompareRows(ctx, db.DB(), sim, streams, simcheck.RowOptions{UndetectedDeletes: incremental})
	if err != nil {
		t.Fatal(err)
	}
	if diff != "" {
		t.Fatalf("warehouse values differ from the source:\n%s", diff)
	}
}

func TestRun_FullThenIncrementalEqualsTruth(t *testing.T) {
	skipUnderRace(t) // 80 s under -race even at Scale 300: .ci/run runs it without; the other Run tests keep the pipeline under -race
	t.Parallel()     // the long tests overlap their waits when run without -race
	// The realistic profile's rate limits, sped up: at Scale 300 every list still spans pages
	// (checked below), at a quarter of the requests of Scale 1200 (105 s under -race at Speed 50).
	const scale = 300
	sim := startSim(t, apisim.Config{Seed: 1, Scale: scale, Profile: "realistic", Speed: 200})
	cfg := testConfig(sim, 200, t.TempDir())
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
	if want := int64(5*scale + sim.Truth(0).Streams["charges"].Live + 2); inserted < want {
		t.Errorf("inserted %d rows, want at least %d", inserted, want)
	}
	for _, ep := range []string{"appdirect.users", "appdirect.leads", "appdirect.invoices"} {
		if pages := sim.Snapshot().Requests[ep]["200"]; pages < 2 {
			t.Errorf("%s: the full run read %d pages, want the listing to span several", ep, pages)
		}
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
	assertRows(t, cfg, sim, schemas.Streams, true)
	// Each row counts once per run, even when a full scan repeats itself to prove deletions or
	// a sweep re-reads rows of the window.
	db, err := load.Open(context.Background(), cfg.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sum2.Streams {
		var rows int64
		q := "SELECT count(*) FROM " + s.Stream
		if tb, _ := schemas.Lookup(s.Stream); tb.Partition != "" {
			q += " WHERE " + tb.Partition + " = '" + s.Partition + "'"
		}
		if err := db.DB().QueryRowContext(context.Background(), q).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if n := s.Inserted + s.Updated + s.Unchanged; n > rows {
			t.Errorf("%s/%s: %d inserted + %d updated + %d unchanged = %d row outcomes for %d rows in the table",
				s.Stream, s.Partition, s.Inserted, s.Updated, s.Unchanged, n, rows)
		}
	}
	db.Close()
	// Deletions are only visible to full scans; compare everything a full scan would show.
	cfg.FullRefresh = true
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatalf("full refresh: %v", err)
	}
	assertTruth(t, cfg, sim)
	t.Logf("incremental run made %d requests", reqs)
}

func TestRun_ChaosEndsEqualToTruth(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // the long tests overlap their waits when run without -race
	f := apisim.ChaosFaults()
	f.Throttle = 0.01                                                         // an HTTP-date Retry-After costs a real second each
	f.Reset, f.Truncated, f.InvalidJSON, f.PageDrift = 0.06, 0.06, 0.06, 0.08 // each kind surely happens in ~150 requests (checked below)
	sim := startSim(t, apisim.Config{Seed: 11, Scale: 700, Profile: "chaos", Speed: 50, Faults: f})
	cfg := testConfig(sim, 50, t.TempDir())
	cfg.Retry.MaxAttempts = 15
	for run := 1; run <= 2; run++ {
		if _, err := Run(context.Background(), cfg); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		// Page drift moves the source while it is listed, so this run's rows may lag it by the
		// drift's changes; the values of every row it did load must still be exact.
		assertValuesOfLoadedRows(t, cfg, sim)
		sim.Advance(3 * time.Hour)
		cfg.FullRefresh = run == 1
	}
	// Compare with a final full scan (deletions are only visible to full scans). Page drift
	// changes the source itself, so it stops first: a source still moving when the sync ends
	// cannot be equalled. Every other fault stays on.
	f.PageDrift = 0
	sim.SetFaults(f)
	cfg.FullRefresh = true
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	st := sim.Snapshot()
	for _, kind := range []string{"reset", "truncated", "invalid_json", "page_drift", "token_revoked"} {
		if st.Faults[kind] == 0 {
			t.Errorf("fault %s never happened: %v", kind, st.Faults)
		}
	}
	assertTruth(t, cfg, sim)
}

func TestRun_PermanentFailureKeepsCursorAndOtherStreams(t *testing.T) {
	sim := startSim(t, apisim.Config{Seed: 3, Scale: 600, Profile: "fast"})
	dir := t.TempDir()
	cfg := testConfig(sim, 50, dir)
	cfg.AppDirect.RatePerSecond, cfg.AppDirect.CompaniesRate = -1, -1
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cursors := func() map[string]string {
		db, err := load.Open(ctx, cfg.Warehouse)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		all, err := db.Cursors(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for k, c := range all {
			out[k] = c.Encode()
		}
		return out
	}
	before := cursors()
	sim.Advance(2 * time.Hour)
	// The lead user's password is wrong now; the other streams must still commit.
	cfg.AppDirect.LeadPassword = "wrong-password-123"
	sum, err := Run(ctx, cfg)
	if !errors.Is(err, ErrStreamsFailed) {
		t.Fatalf("err %v, want ErrStreamsFailed", err)
	}
	failed := sum.Failed()
	if len(failed) != 1 || failed[0].Stream != "leads" || !strings.Contains(failed[0].Error, "oauth2/token") || strings.Contains(failed[0].Error, "wrong-password-123") {
		t.Fatalf("failed %+v: want only leads, naming the token call, without the password", failed)
	}
	after := cursors()
	if after["leads\x00"] != before["leads\x00"] {
		t.Fatalf("leads cursor moved after a failure: %s -> %s", before["leads\x00"], after["leads\x00"])
	}
	if after["users\x00"] == before["users\x00"] {
		t.Fatal("users cursor did not move: the other streams should have committed")
	}
}

func TestRun_QuarantinesRecordsThatDoNotFit(t *testing.T) {
	// A server that sends one bad timestamp among good users.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/oauth2/token":
			fmt.Fprint(w, `{"access_token":"t","token_type":"bearer","expires_in":3600}`)
		case "/api/account/v2/users":
			fmt.Fprint(w, `{"links":[],"content":[{"uuid":"a","lastModified":1700000000000},{"uuid":"b","lastModified":"next tuesday"},{"uuid":"c","lastModified":1700000000001}],"page":{"size":250,"totalElements":3,"totalPages":1,"number":0}}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	cfg := Config{AppDirect: &extract.AppDirectConfig{BaseURL: srv.URL, ClientID: "x", ClientSecret: "y"}, Streams: []string{"users"},
		Warehouse: filepath.Join(dir, "w.duckdb"), RejectPolicy: RejectQuarantine}
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	db, err := load.Open(context.Background(), cfg.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	var users, rejected int
	var field, id string
	_ = db.Conn().QueryRowContext(context.Background(), "SELECT count(*) FROM users").Scan(&users)
	_ = db.Conn().QueryRowContext(context.Background(), "SELECT count(*), any_value(field), any_value(record_id) FROM _rejected").Scan(&rejected, &field, &id)
	db.Close()
	if users != 2 || rejected != 1 || field != "last_modified" || id != "b" {
		t.Fatalf("users %d, rejected %d (%s of %s); want 2 loaded and b quarantined for last_modified", users, rejected, field, id)
	}
	// With the fail policy the stream fails and nothing of its cursor moves.
	cfg.RejectPolicy, cfg.Warehouse = RejectFail, filepath.Join(dir, "w2.duckdb")
	_, err = Run(context.Background(), cfg)
	if !errors.Is(err, ErrStreamsFailed) || !strings.Contains(err.Error(), "record b, field last_modified") {
		t.Fatalf("fail policy: %v", err)
	}
}

func TestRun_LeavesNoGoroutines(t *testing.T) {
	sim := startSim(t, apisim.Config{Seed: 2, Scale: 800, Profile: "fast"})
	ignore := goleak.IgnoreCurrent()
	cfg := testConfig(sim, 50, t.TempDir())
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cfg.FullRefresh = true
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	_, _ = Run(ctx, cfg) // cancelled mid-run
	goleak.VerifyNone(t, ignore)
}

func TestRun_CheckpointsMidStreamAndResumes(t *testing.T) {
	// 1500 users: 6 pages of 250, a checkpoint per page (half of Scale 3000's, 16 s under -race).
	const users, pageRows = 1500, 250
	sim := startSim(t, apisim.Config{Seed: 8, Scale: users, Profile: "fast"})
	cfg := testConfig(sim, 50, t.TempDir())
	cfg.AppDirect.RatePerSecond = -1
	cfg.Streams, cfg.BatchRows = []string{"users"}, pageRows
	// Cancel once a third of the users are in: checkpoints must have moved the cursor.
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Progress = func(e Event) {
		if e.Rows >= users/3 {
			cancel()
		}
	}
	_, _ = Run(ctx, cfg)
	db, err := load.Open(context.Background(), cfg.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	c, found, _ := db.Cursor(context.Background(), "users", "")
	var rows, maxMod int64
	_ = db.Conn().QueryRowContext(context.Background(), "SELECT count(*), max(epoch_us(last_modified)) FROM users").Scan(&rows, &maxMod)
	db.Close()
	if !found || c.Value == 0 || !c.LastFullScan.IsZero() || c.Value > maxMod {
		t.Fatalf("after interruption: cursor %+v (found %v), %d rows, max %d: want a checkpoint within the data and no full-scan mark", c, found, rows, maxMod)
	}
	if rows >= users {
		t.Fatalf("the interrupted run loaded all %d users: it ended before the cancel, no checkpoint was crossed mid-stream", rows)
	}
	// The next run resumes from the checkpoint: it reads fewer than all pages and ends complete.
	cfg.Progress = nil
	before := sim.Snapshot().Requests["appdirect.users"]["200"]
	sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	pages := sim.Snapshot().Requests["appdirect.users"]["200"] - before
	if sum.Streams[0].FullScan || pages >= users/pageRows {
		t.Fatalf("resume: full=%v with %d pages of %d; want an incremental resume", sum.Streams[0].FullScan, pages, pageRows)
	}
	assertTruthStreams(t, cfg, sim, []string{"users"})
}

func assertTruthStreams(t *testing.T, cfg Config, sim *apisim.Server, streams []string) {
	t.Helper()
	assertRows(t, cfg, sim, streams, false)
}

// assertValuesOfLoadedRows checks, for a source that changed while it was listed, that every
// column of every row present on both sides is equal (membership is checked by later runs).
func assertValuesOfLoadedRows(t *testing.T, cfg Config, sim *apisim.Server) {
	t.Helper()
	ctx := context.Background()
	db, err := load.Open(ctx, cfg.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	diff, err := simcheck.CompareRows(ctx, db.DB(), sim, schemas.Streams, simcheck.RowOptions{UndetectedDeletes: true, IgnoreMembership: true})
	if err != nil {
		t.Fatal(err)
	}
	if diff != "" {
		t.Fatalf("warehouse values differ from the source:\n%s", diff)
	}
}
