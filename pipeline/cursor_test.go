package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/extract"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/state"
)

// A stream that fails on page 2 keeps the checkpoint of page 1 (a committed, contiguous prefix
// of a listing sorted by the cursor column) and no full-scan mark; the resumed run completes
// the load without claiming a verified scan; the run after it verifies with a full scan.
func TestRun_FailureOnPage2KeepsCheckpointAndNoFullScanMark(t *testing.T) {
	var broken atomic.Bool
	broken.Store(true)
	serverClock := time.UnixMilli(1700000000000 + 60_000).UTC() // a minute after the last row changed
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/oauth2/token":
			fmt.Fprint(w, `{"access_token":"t","token_type":"bearer","expires_in":3600}`)
		case "/api/account/v2/users":
			w.Header().Set("Date", serverClock.Format(http.TimeFormat))
			page, _ := strconv.Atoi(r.URL.Query().Get("page"))
			size, _ := strconv.Atoi(r.URL.Query().Get("size"))
			if page == 1 && broken.Load() {
				w.WriteHeader(http.StatusForbidden)
				fmt.Fprint(w, `{"status":403,"code":"FORBIDDEN","message":"no"}`)
				return
			}
			const total = 10 // a fixed dataset, whatever page size is asked
			fmt.Fprint(w, `{"links":[],"content":[`)
			for i := page * size; i < min((page+1)*size, total); i++ {
				if i > page*size {
					fmt.Fprint(w, ",")
				}
				fmt.Fprintf(w, `{"uuid":"u%03d","lastModified":%d}`, i, 1700000000000+int64(i)*1000)
			}
			fmt.Fprintf(w, `],"page":{"size":%d,"totalElements":%d,"totalPages":%d,"number":%d}}`, size, total, (total+size-1)/size, page)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	cfg := Config{AppDirect: &extract.AppDirectConfig{BaseURL: srv.URL, ClientID: "x", ClientSecret: "y", PageSize: 5}, Streams: []string{"users"},
		Warehouse: filepath.Join(t.TempDir(), "w.duckdb"), BatchRows: 5}
	cursor := func() state.Cursor {
		db, err := load.Open(context.Background(), cfg.Warehouse)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		c, _, err := db.Cursor(context.Background(), "users", "")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrStreamsFailed) {
		t.Fatalf("run 1: %v, want the stream to fail on page 2", err)
	}
	c := cursor()
	if c.Value != (1700000000000+4000)*1000 || !c.LastFullScan.IsZero() || c.Loaded {
		t.Fatalf("after the failure: cursor %+v; want page 1's last lastModified, no full-scan mark", c)
	}
	broken.Store(false)
	sum, err := Run(context.Background(), cfg)
	if err != nil || sum.Streams[0].FullScan {
		t.Fatalf("run 2: %v (full %v), want an incremental resume", err, sum.Streams[0].FullScan)
	}
	// Users carry no documented timestamp, so a whole listing moves the cursor to the server's
	// clock at its start (CursorFromServerClock), not to the last row's time.
	if c := cursor(); c.Value != serverClock.UnixMicro() || !c.LastFullScan.IsZero() || !c.Loaded {
		t.Fatalf("after the resume: cursor %+v; want the server's clock, loaded, and still no full-scan mark", c)
	}
	sum, err = Run(context.Background(), cfg)
	if err != nil || !sum.Streams[0].FullScan {
		t.Fatalf("run 3: %v (full %v), want the verifying full scan", err, sum.Streams[0].FullScan)
	}
	if c := cursor(); c.LastFullScan.IsZero() || c.Loaded || c.KeyDigest == "" {
		t.Fatalf("after the verifying scan: cursor %+v; want a full-scan mark and a key digest", c)
	}
}

// Users bodies carry no modification time (the documents show none, §7.3). The cursor must
// still move, to the server's clock when the listing began, so later runs are incremental
// windows rather than full scans, and every change is caught: whole rows equal the source.
func TestRun_UsersWithoutTimestampsMoveTheCursorByTheServerClock(t *testing.T) {
	skipUnderRace(t) // one sync at a time, nothing concurrent of its own: .ci/run runs it without -race
	t.Parallel()     // the long tests overlap their waits when run without -race
	sim := startSim(t, apisim.Config{Seed: 6, Scale: 600, Profile: "fast", Hostile: apisim.Hostile{UsersWithoutTimestamps: 1}})
	cfg := testConfig(sim, 50, t.TempDir())
	cfg.Streams = []string{"users"}
	ctx := context.Background()
	cursor := func() state.Cursor {
		db, err := load.Open(ctx, cfg.Warehouse)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		c, _, err := db.Cursor(ctx, "users", "")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	started := sim.Now().Truncate(time.Second)
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if c := cursor(); c.Value != started.UnixMicro() {
		t.Fatalf("after the full scan: cursor %v, want the server's clock at the listing's start %v", c.Time(), started)
	}
	assertRows(t, cfg, sim, cfg.Streams, false)
	for i := 0; i < 2; i++ {
		sim.Advance(5 * time.Hour)
		at := sim.Now().Truncate(time.Second)
		before := sim.Snapshot().Requests["appdirect.users"]["200"]
		sum, err := Run(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if s := sum.Streams[0]; s.FullScan {
			t.Fatalf("run %d: a full scan; want an incremental window from the moved cursor", i+2)
		}
		if pages := sim.Snapshot().Requests["appdirect.users"]["200"] - before; pages > 3 {
			t.Errorf("run %d: %d pages of users for a 5-hour window, want a small window", i+2, pages)
		}
		if c := cursor(); c.Value != at.UnixMicro() {
			t.Fatalf("run %d: cursor %v, want %v", i+2, c.Time(), at)
		}
		assertRows(t, cfg, sim, cfg.Streams, true)
	}
}

// A first run that reached nothing (a mistyped base_url) leaves no data, so its source claim
// protects nothing: the corrected config syncs, instead of being refused as another source.
func TestRun_AClaimNoDataBacksDoesNotRefuseTheCorrectedSource(t *testing.T) {
	sim := startSim(t, apisim.Config{Seed: 8, Scale: 100, Profile: "fast"})
	cfg := testConfig(sim, 50, t.TempDir())
	cfg.Streams = []string{"users"}
	cfg.Retry.MaxAttempts = 1
	good := *cfg.AppDirect
	bad := good
	bad.BaseURL = "http://127.0.0.1:1" // nothing listens
	cfg.AppDirect = &bad
	if _, err := Run(context.Background(), cfg); err == nil {
		t.Fatal("a run against a closed port succeeded")
	}
	cfg.AppDirect = &good
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatalf("the corrected source: %v, want it to take over the claim nothing backs", err)
	}
	assertRows(t, cfg, sim, cfg.Streams, false)
	// Once data is in, another source is refused as before.
	cfg.AppDirect = &bad
	if _, err := Run(context.Background(), cfg); !errors.Is(err, load.ErrSourceMismatch) {
		t.Fatalf("another source over data: %v, want ErrSourceMismatch", err)
	}
}
