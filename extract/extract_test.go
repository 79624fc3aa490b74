package extract_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/extract"
	"github.com/marketsync/marketsync/internal/jsonscan"
	"github.com/marketsync/marketsync/internal/simcheck"
)

var fastRetry = extract.RetryPolicy{InitialInterval: 2 * time.Millisecond, MaxInterval: 50 * time.Millisecond, MaxAttempts: 12}

func sim(t *testing.T, cfg apisim.Config) *apisim.Server { return simcheck.Start(t, cfg) }

func client(t *testing.T, log *slog.Logger) *extract.Client {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := extract.NewClient(log, fastRetry, 5*time.Second)
	t.Cleanup(c.CloseIdle)
	return c
}

// collector records every record id it is given, to check for loss and duplication.
type collector struct {
	mu    sync.Mutex
	ids   map[string]int
	pages []int
}

func newCollector() *collector { return &collector{ids: map[string]int{}} }

func (c *collector) emit(key ...string) extract.Emit {
	return func(_ context.Context, p extract.Page) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.pages = append(c.pages, p.Number)
		for _, r := range p.Records {
			v := jsonscan.Get(r, key...)
			c.ids[string(v)]++
		}
		return nil
	}
}

func (c *collector) dups() int {
	n := 0
	for _, k := range c.ids {
		if k > 1 {
			n++
		}
	}
	return n
}

func TestPagination_EveryStyleGetsEveryRowOnce(t *testing.T) {
	s := sim(t, apisim.Config{Seed: 1, Scale: 1100, Profile: "fast", Locations: 2})
	ad, hl := simcheck.Sources(s, 1)
	ad.RatePerSecond, ad.CompaniesRate = -1, -1
	c := client(t, nil)
	a := extract.NewAppDirect(c, *ad, &extract.Counters{})
	ctx := context.Background()
	type run struct {
		name      string
		key       []string
		list      func(*extract.Counters, extract.Emit) (extract.Outcome, error)
		requests  int64
		wantPages []int
	}
	// The first listing also counts the token request it waited on (6 = 1 + 5 pages).
	runs := []run{
		{"companies (zero-based page/size)", []string{"uuid"}, func(st *extract.Counters, e extract.Emit) (extract.Outcome, error) { return a.Companies(ctx, st, e) }, 6, []int{0, 1, 2, 3, 4}},
		{"users (zero-based page/size)", []string{"uuid"}, func(st *extract.Counters, e extract.Emit) (extract.Outcome, error) {
			return a.Users(ctx, time.Time{}, st, e)
		}, 5, []int{0, 1, 2, 3, 4}},
		{"opportunities (one-based number/size)", []string{"id"}, func(st *extract.Counters, e extract.Emit) (extract.Outcome, error) {
			return a.Opportunities(ctx, time.Time{}, st, e)
		}, 5, []int{0, 1, 2, 3, 4}},
		// start/count, no total: page 0 alone (its size is not known yet), then 4 ahead (each
		// starting one row early to see shifts; the 4th is short), then one probe that holds only
		// the overlap row: the end.
		{"invoices (start/count until an empty page)", []string{"invoiceId"}, func(st *extract.Counters, e extract.Emit) (extract.Outcome, error) {
			return a.Invoices(ctx, time.Time{}, st, e)
		}, 6, []int{0, 1, 2, 3, 4}},
	}
	for _, r := range runs {
		col := newCollector()
		var st extract.Counters
		out, err := r.list(&st, col.emit(r.key...))
		if err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		if len(col.ids) != 1100 || col.dups() != 0 || !out.Complete {
			t.Errorf("%s: %d distinct rows, %d duplicated, complete=%v; want 1100, 0, true", r.name, len(col.ids), col.dups(), out.Complete)
		}
		if got := st.Requests.Load(); got != r.requests {
			t.Errorf("%s: %d requests, want %d", r.name, got, r.requests)
		}
		if strings.Trim(strings.Join(strings.Fields(sprint(col.pages)), ","), "[]") != strings.Trim(strings.Join(strings.Fields(sprint(r.wantPages)), ","), "[]") {
			t.Errorf("%s: pages emitted in order %v, want %v", r.name, col.pages, r.wantPages)
		}
	}
	// skip/limit with pagination.total, per location with a location token.
	h := extract.NewHighLevel(c, *hl, &extract.Counters{})
	var st extract.Counters
	ids, _, err := h.Locations(ctx, &st, func(context.Context, extract.Page) error { return nil })
	if err != nil || len(ids) != 2 {
		t.Fatalf("locations: %v %v", ids, err)
	}
	col := newCollector()
	st = extract.Counters{}
	if _, err := h.Charges(ctx, ids[0], time.Time{}, &st, col.emit("chargeId")); err != nil {
		t.Fatal(err)
	}
	// 6 pages and the location token they waited on.
	if len(col.ids) != 550 || st.Requests.Load() != 7 {
		t.Errorf("charges: %d rows in %d requests, want 550 in 7 (6 pages, 1 location token)", len(col.ids), st.Requests.Load())
	}
}

func sprint(v any) string {
	return strings.ReplaceAll(strings.TrimSpace(strings.ReplaceAll(fmtV(v), " ", ",")), ",,", ",")
}

func fmtV(v any) string {
	return strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(toString(v), "[", ""), "]", ""))
}

func toString(v any) string {
	switch x := v.(type) {
	case []int:
		parts := make([]string, len(x))
		for i, n := range x {
			parts[i] = itoa(n)
		}
		return strings.Join(parts, " ")
	}
	return ""
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	s := ""
	for n > 0 {
		s = string(rune('0'+n%10)) + s
		n /= 10
	}
	return s
}

func TestTokens_RefreshedOnExpiryAndRevocation(t *testing.T) {
	// No data changes while the clock moves: this test is about tokens.
	s := sim(t, apisim.Config{Seed: 1, Scale: 500, Profile: "fast", TokenTTL: time.Hour, Faults: apisim.Faults{RevokeAfter: 3},
		InsertRate: 1e-12, UpdateRate: 1e-12, DeleteRate: 1e-12})
	ad, _ := simcheck.Sources(s, 1)
	ad.PageSize, ad.RatePerSecond, ad.CompaniesRate, ad.Concurrency = 50, -1, -1, 1
	var auth extract.Counters
	a := extract.NewAppDirect(client(t, nil), *ad, &auth)
	col := newCollector()
	var st extract.Counters
	emit := col.emit("uuid")
	n := 0
	// Expire the token halfway: the simulator's clock moves, the client's cached token dies.
	_, err := a.Users(context.Background(), time.Time{}, &st, func(ctx context.Context, p extract.Page) error {
		if n++; n == 5 {
			s.Advance(2 * time.Hour)
		}
		return emit(ctx, p)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(col.ids) != 500 || col.dups() != 0 {
		t.Fatalf("%d rows, %d dups", len(col.ids), col.dups())
	}
	stats := s.Snapshot()
	// Token requests count in the counters of the stream that waited on them.
	tokens := int64(stats.Requests["appdirect.token"]["200"])
	if stats.Revokes < 3 || tokens < int64(stats.Revokes) || st.Requests.Load() != int64(stats.Total) {
		t.Fatalf("revocations %d, token requests %d, stream counted %d of the %d requests: every revocation should cost one new token, counted",
			stats.Revokes, tokens, st.Requests.Load(), stats.Total)
	}
	if u401 := stats.Requests["appdirect.users"]["401"]; u401 == 0 {
		t.Fatal("no 401 was served; the test did not exercise refresh")
	}
}

func TestRateLimit_429sNeitherLoseNorDuplicateRows(t *testing.T) {
	// The client believes it may send 40/s; the server allows 4*8=32/s: it must get 429s and
	// recover from them with every row exactly once.
	s := sim(t, apisim.Config{Seed: 1, Scale: 3000, Profile: "realistic", Speed: 8})
	ad, _ := simcheck.Sources(s, 8)
	ad.RatePerSecond, ad.Burst, ad.PageSize = 60, 40, 50
	a := extract.NewAppDirect(client(t, nil), *ad, &extract.Counters{})
	col := newCollector()
	var st extract.Counters
	if _, err := a.Users(context.Background(), time.Time{}, &st, col.emit("uuid")); err != nil {
		t.Fatal(err)
	}
	if len(col.ids) != 3000 || col.dups() != 0 {
		t.Fatalf("%d rows, %d duplicated", len(col.ids), col.dups())
	}
	if st.Throttled.Load() == 0 || st.Retries.Load() < st.Throttled.Load() {
		t.Fatalf("429s %d, retries %d: want 429s, each retried", st.Throttled.Load(), st.Retries.Load())
	}
}

func TestRateLimit_DocumentedRateCausesAlmostNo429s(t *testing.T) {
	s := sim(t, apisim.Config{Seed: 1, Scale: 3000, Profile: "realistic", Speed: 10})
	ad, _ := simcheck.Sources(s, 10)
	ad.PageSize = 50
	a := extract.NewAppDirect(client(t, nil), *ad, &extract.Counters{})
	var st extract.Counters
	out, err := a.Users(context.Background(), time.Time{}, &st, newCollector().emit("uuid"))
	if err != nil {
		t.Fatal(err)
	}
	// 3000 rows at 50 a page: every page after the first starts a few rows early to see rows
	// shifted across its boundary, so 73 pages, not 60.
	// One more request: the token the first page waited on.
	if st.Requests.Load() != int64(out.Pages)+1 || out.Pages != 73 || st.Throttled.Load() > 0 {
		t.Fatalf("%d requests for %d pages, %d answered 429; want 73 pages, 74 requests (a token) and no 429", st.Requests.Load(), out.Pages, st.Throttled.Load())
	}
}

func TestFaults_RecoversFromEachKind(t *testing.T) {
	kinds := map[string]apisim.Faults{
		"5xx":                            {ServerError: 0.3},
		"connection resets":              {Reset: 0.2},
		"truncated bodies":               {Truncated: 0.2},
		"invalid JSON":                   {InvalidJSON: 0.2},
		"429 Retry-After 0 or HTTP-date": {Throttle: 0.3},
		"slow responses":                 {Slow: 0.3, SlowDelay: 20 * time.Millisecond},
	}
	for name, f := range kinds {
		t.Run(name, func(t *testing.T) {
			s := sim(t, apisim.Config{Seed: 7, Scale: 800, Profile: "fast", Faults: f})
			ad, _ := simcheck.Sources(s, 1)
			ad.PageSize, ad.RatePerSecond, ad.CompaniesRate = 40, -1, -1
			a := extract.NewAppDirect(client(t, nil), *ad, &extract.Counters{})
			col := newCollector()
			var st extract.Counters
			start := time.Now()
			if _, err := a.Companies(context.Background(), &st, col.emit("uuid")); err != nil {
				t.Fatal(err)
			}
			if len(col.ids) != 800 || col.dups() != 0 {
				t.Fatalf("%d rows, %d dup", len(col.ids), col.dups())
			}
			faults := 0
			for _, n := range s.Snapshot().Faults {
				faults += n
			}
			if faults == 0 {
				t.Fatal("no fault was injected")
			}
			if name != "slow responses" && st.Retries.Load() == 0 {
				t.Fatal("faults were served but nothing was retried")
			}
			if time.Since(start) > 20*time.Second {
				t.Fatalf("took %s", time.Since(start))
			}
		})
	}
}

func TestRetryAfterZero_IsNotAStorm(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(429)
	}))
	defer srv.Close()
	c := extract.NewClient(slog.New(slog.DiscardHandler), extract.RetryPolicy{InitialInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond, MaxAttempts: 5}, time.Second)
	defer c.CloseIdle()
	start := time.Now()
	err := c.Do(context.Background(), extract.Request{Stream: "s", URL: srv.URL + "/x?access_token=SECRET"})
	var he *extract.HTTPError
	if !errors.As(err, &he) || he.Status != 429 {
		t.Fatalf("err %v, want the final 429", err)
	}
	if calls.Load() != 5 {
		t.Fatalf("%d calls, want exactly MaxAttempts=5", calls.Load())
	}
	if el := time.Since(start); el < 40*time.Millisecond {
		t.Fatalf("5 attempts in %s: Retry-After: 0 must still back off", el)
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("error leaks the query string: %v", err)
	}
}

func TestPermanentErrors_FailAtOnceNamingStreamPathStatus(t *testing.T) {
	s := sim(t, apisim.Config{Seed: 1, Scale: 10, Profile: "fast"})
	ad, _ := simcheck.Sources(s, 1)
	ad.ClientSecret = "wrong-secret-value"
	var st extract.Counters
	a := extract.NewAppDirect(client(t, nil), *ad, &extract.Counters{})
	_, err := a.Users(context.Background(), time.Time{}, &st, newCollector().emit("uuid"))
	var he *extract.HTTPError
	if !errors.As(err, &he) || he.Status != 401 || !strings.Contains(err.Error(), "/oauth2/token") {
		t.Fatalf("bad secret: %v", err)
	}
	if strings.Contains(err.Error(), "wrong-secret-value") || st.Requests.Load() != 1 {
		t.Fatalf("bad secret: %d token requests (want 1, no retry), error %q must not contain the secret", st.Requests.Load(), err)
	}
	ad.ClientSecret = apisim.DemoClientSecret
	ad.BaseURL = s.URL() + "/wrong"
	a = extract.NewAppDirect(client(t, nil), *ad, &extract.Counters{})
	_, err = a.Companies(context.Background(), &extract.Counters{}, newCollector().emit("uuid"))
	if !errors.As(err, &he) || he.Status != 404 || !strings.Contains(err.Error(), "base_url") {
		t.Fatalf("wrong base URL: %v", err)
	}
}

func TestParallelPages_SeveralInFlight(t *testing.T) {
	s, err := apisim.New(apisim.Config{Seed: 1, Scale: 2500, Profile: "fast", Faults: apisim.Faults{Slow: 1, SlowDelay: 30 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	var inflight, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		s.Handler().ServeHTTP(w, r)
	}))
	defer srv.Close()
	ad := &extract.AppDirectConfig{BaseURL: srv.URL, ClientID: apisim.DemoClientID, ClientSecret: apisim.DemoClientSecret, Concurrency: 4}
	a := extract.NewAppDirect(client(t, nil), *ad, &extract.Counters{})
	col := newCollector()
	start := time.Now()
	if _, err := a.Companies(context.Background(), &extract.Counters{}, col.emit("uuid")); err != nil {
		t.Fatal(err)
	}
	if peak.Load() < 3 || len(col.ids) != 2500 {
		t.Fatalf("peak %d requests in flight, %d rows: want pages fetched in parallel", peak.Load(), len(col.ids))
	}
	t.Logf("10 pages of 30 ms in %s with %d in flight", time.Since(start), peak.Load())
}

func TestIncremental_FetchesOnlyTheChangedWindow(t *testing.T) {
	s := sim(t, apisim.Config{Seed: 1, Scale: 5000, Profile: "fast"})
	ad, _ := simcheck.Sources(s, 1)
	ad.RatePerSecond = -1
	a := extract.NewAppDirect(client(t, nil), *ad, &extract.Counters{})
	since := s.Now()
	s.Advance(time.Hour) // 10 inserts + 20 updates of 5000 users
	col := newCollector()
	var st extract.Counters
	out, err := a.Users(context.Background(), since, &st, col.emit("uuid"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Requests.Load() != 2 || len(col.ids) < 25 || len(col.ids) > 30 || out.Complete {
		t.Fatalf("incremental: %d requests, %d rows, complete=%v; want 2 requests (a token, a page), the ~30 changed rows, not complete", st.Requests.Load(), len(col.ids), out.Complete)
	}
}

func TestDailyBudget_StopsBeforeExhaustion(t *testing.T) {
	s := sim(t, apisim.Config{Seed: 1, Scale: 3000, Locations: 1, Profile: "realistic", HLDaily: 1010})
	_, hl := simcheck.Sources(s, 1)
	hl.PageSize = 10
	h := extract.NewHighLevel(client(t, nil), *hl, &extract.Counters{})
	ids, _, err := h.Locations(context.Background(), &extract.Counters{}, func(context.Context, extract.Page) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.Charges(context.Background(), ids[0], time.Time{}, &extract.Counters{}, func(context.Context, extract.Page) error { return nil })
	if !errors.Is(err, extract.ErrDailyBudget) || !strings.Contains(err.Error(), "resumes") {
		t.Fatalf("err %v, want ErrDailyBudget with what happens next", err)
	}
}

func TestCancel_LeavesNoGoroutines(t *testing.T) {
	s := sim(t, apisim.Config{Seed: 1, Scale: 20000, Profile: "fast", Faults: apisim.Faults{Slow: 0.5, SlowDelay: 50 * time.Millisecond}})
	ignore := goleak.IgnoreCurrent()
	ad, _ := simcheck.Sources(s, 1)
	ad.RatePerSecond, ad.CompaniesRate = -1, -1
	c := extract.NewClient(slog.New(slog.DiscardHandler), fastRetry, time.Second)
	a := extract.NewAppDirect(c, *ad, &extract.Counters{})
	ctx, cancel := context.WithCancel(context.Background())
	pages := 0
	_, err := a.Companies(ctx, &extract.Counters{}, func(context.Context, extract.Page) error {
		if pages++; pages == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	c.CloseIdle()
	goleak.VerifyNone(t, ignore)
	_ = io.Discard
}

func TestTLS_VerificationAlwaysOn(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served.Add(1) }))
	defer srv.Close()
	c := extract.NewClient(slog.New(slog.DiscardHandler), extract.RetryPolicy{MaxAttempts: 1}, time.Second)
	defer c.CloseIdle()
	err := c.Do(context.Background(), extract.Request{Stream: "s", URL: srv.URL + "/x"})
	if err == nil || !strings.Contains(err.Error(), "certificate") || served.Load() != 0 {
		t.Fatalf("a self-signed certificate must be refused before any request is served: err %v, served %d", err, served.Load())
	}
}
