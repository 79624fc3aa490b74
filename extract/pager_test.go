package extract_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/extract"
	"github.com/marketsync/marketsync/internal/simcheck"
)

// stub serves a list endpoint over a dataset the test controls, the way a server the documents
// leave open may: capping pages, echoing page numbers and sizes as it likes, leaving totals
// out, ignoring the paging parameter, changing between requests. Token endpoints go to a real
// simulator, so the extractors' auth works unchanged.
type stub struct {
	mu   sync.Mutex
	keys []string       // the dataset, in listing order
	ver  map[string]int // a row's version, served as "v"

	cap         int                    // most rows served per page (0: as asked)
	echoAsked   bool                   // P1: page.size and totalPages by the size asked, not served
	noTotal     bool                   // P1: no totalElements; charges: no count or pagination.total
	bare        bool                   // charges: a bare array
	echoNumber  func(k int) int        // P1: the page number echoed for page k (nil: k)
	totalPages  func(n, size int) int  // P1: totalPages (nil: by the echoed size)
	ignorePage  bool                   // serve the first page whatever is asked
	earlyPage   int                    // P1: this page (> 0) starts one row early (0: none)
	beforeServe func(s *stub, off int) // called (locked) before a page at offset off is served
	conc        int                    // the extractors' pages in flight (0: their default)

	requests atomic.Int64
}

func newStub(n int, prefix string) *stub {
	st := &stub{ver: map[string]int{}}
	for i := range n {
		st.keys = append(st.keys, fmt.Sprintf("%s%05d", prefix, i))
	}
	return st
}

func (st *stub) slice(off, n int) []string {
	if off < 0 {
		off = 0
	}
	if off >= len(st.keys) || n <= 0 {
		return nil
	}
	return st.keys[off:min(len(st.keys), off+n)]
}

func (st *stub) served(asked int) int {
	if st.cap > 0 && st.cap < asked {
		return st.cap
	}
	return asked
}

func (st *stub) records(keys []string, member string) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf(`{%q:%q,"name":"row %s","v":%d}`, member, k, k, st.ver[k])
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func qi(r *http.Request, name string) int {
	n, _ := strconv.Atoi(r.URL.Query().Get(name))
	return n
}

// handler serves the stubbed list paths and sends everything else to sim.
func (st *stub) handler(sim http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/account/v2/companies", "/api/account/v2/users":
			st.requests.Add(1)
			st.mu.Lock()
			defer st.mu.Unlock()
			k, size := qi(r, "page"), qi(r, "size")
			if st.ignorePage {
				k = 0
			}
			eff := st.served(size)
			off := k * eff
			if st.earlyPage > 0 && k == st.earlyPage {
				off--
			}
			if st.beforeServe != nil {
				st.beforeServe(st, off)
			}
			echo := eff
			if st.echoAsked {
				echo = size
			}
			number := k
			if st.echoNumber != nil {
				number = st.echoNumber(qi(r, "page"))
			}
			pages := (len(st.keys) + echo - 1) / echo
			if st.totalPages != nil {
				pages = st.totalPages(len(st.keys), echo)
			}
			meta := fmt.Sprintf(`"size":%d,"totalElements":%d,"totalPages":%d,"number":%d`, echo, len(st.keys), pages, number)
			if st.noTotal {
				meta = fmt.Sprintf(`"size":%d,"number":%d`, echo, number)
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"links":[],"content":%s,"page":{%s}}`, st.records(st.slice(off, eff), "uuid"), meta)
		case "/api/billing/v1/invoices":
			st.requests.Add(1)
			st.mu.Lock()
			defer st.mu.Unlock()
			off := qi(r, "start")
			if st.ignorePage {
				off = 0
			}
			if st.beforeServe != nil {
				st.beforeServe(st, off)
			}
			keys := st.slice(off, st.served(qi(r, "count")))
			if len(keys) == 0 {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			parts := make([]string, len(keys))
			for i, k := range keys {
				n, _ := strconv.Atoi(k)
				parts[i] = fmt.Sprintf(`{"invoiceId":%d,"status":"PAID"}`, n)
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, "["+strings.Join(parts, ",")+"]")
		case "/marketplace/billing/charges", "/oauth/installedLocations":
			st.requests.Add(1)
			st.mu.Lock()
			defer st.mu.Unlock()
			off := qi(r, "skip")
			if st.ignorePage {
				off = 0
			}
			if st.beforeServe != nil {
				st.beforeServe(st, off)
			}
			member, wrap := "chargeId", "charges"
			if r.URL.Path == "/oauth/installedLocations" {
				member, wrap = "_id", "locations"
			}
			recs := st.records(st.slice(off, st.served(qi(r, "limit"))), member)
			w.Header().Set("Content-Type", "application/json")
			switch {
			case st.bare:
				fmt.Fprint(w, recs)
			case st.noTotal:
				fmt.Fprintf(w, `{%q:%s}`, wrap, recs)
			case wrap == "locations":
				fmt.Fprintf(w, `{"locations":%s,"total":%d}`, recs, len(st.keys))
			default:
				fmt.Fprintf(w, `{"charges":%s,"count":%d,"pagination":{"total":%d,"skip":%d,"limit":%d}}`, recs, len(st.keys), len(st.keys), off, qi(r, "limit"))
			}
		default:
			sim.ServeHTTP(w, r)
		}
	})
}

// stubbed starts a simulator (for tokens) behind st and returns extractors pointed at it and a
// location id the simulator mints tokens for.
func stubbed(t *testing.T, st *stub) (*extract.AppDirect, *extract.HighLevel, string) {
	t.Helper()
	s := sim(t, apisim.Config{Seed: 1, Scale: 10, Profile: "fast", Locations: 1})
	srv := httptest.NewServer(st.handler(s.Handler()))
	t.Cleanup(srv.Close)
	ad, hl := simcheck.Sources(s, 1)
	ad.BaseURL, hl.BaseURL = srv.URL, srv.URL
	ad.RatePerSecond, ad.CompaniesRate = -1, -1
	ad.Concurrency, hl.Concurrency = st.conc, st.conc
	c := client(t, nil)
	locs, err := s.Rows("locations")
	if err != nil || len(locs) == 0 {
		t.Fatalf("simulator locations: %v", err)
	}
	return extract.NewAppDirect(c, *ad, &extract.Counters{}), extract.NewHighLevel(c, *hl, &extract.Counters{}), locs[0].Key
}

// check asserts a listing got every key the stub holds now, once each and no other key (with
// a false argument: only that none is missing).
func (c *collector) check(t *testing.T, what string, st *stub, exact ...bool) {
	t.Helper()
	st.mu.Lock()
	defer st.mu.Unlock()
	missing := 0
	for _, k := range st.keys {
		if c.ids[strconv.Quote(k)] == 0 {
			missing++
		}
	}
	if missing > 0 || (len(exact) == 0 && (c.dups() > 0 || len(c.ids) != len(st.keys))) {
		t.Fatalf("%s: %d distinct records, %d missing, %d listed twice; want all %d once", what, len(c.ids), missing, c.dups(), len(st.keys))
	}
}

func TestPager_ChargesCappedBelowLimit_AllRowsCappedComplete(t *testing.T) {
	st := newStub(250, "c")
	st.cap = 40 // the client asks 100
	_, h, loc := stubbed(t, st)
	col := newCollector()
	out, err := h.Charges(context.Background(), loc, time.Time{}, &extract.Counters{}, col.emit("chargeId"))
	if err != nil {
		t.Fatal(err)
	}
	col.check(t, "capped charges", st)
	if !out.Complete || !out.Capped || out.Total != 250 || !out.TotalAgrees() || out.Drift || !strings.Contains(out.Why, "capped pages at 40") {
		t.Fatalf("outcome %+v: want complete, capped at 40, total 250 agreeing with the keys", out)
	}
}

func TestPager_InvoicesCapped_AllRows(t *testing.T) {
	st := newStub(1000, "")
	st.cap = 100 // the client asks 250; invoices give no total
	a, _, _ := stubbed(t, st)
	col := newCollector()
	out, err := a.Invoices(context.Background(), time.Time{}, &extract.Counters{}, col.emit("invoiceId"))
	if err != nil {
		t.Fatal(err)
	}
	if len(col.ids) != 1000 || col.dups() != 0 {
		t.Fatalf("capped invoices: %d distinct, %d twice; want 1000 once", len(col.ids), col.dups())
	}
	if !out.Complete || !out.Capped || out.Total != -1 || out.Rows != 1000 || out.Duplicates != 0 || !strings.Contains(out.Why, "total unknown") {
		t.Fatalf("outcome %+v: want complete, capped, total unknown, 1000 rows", out)
	}
	// 1000 rows at 100 per page, overlapping by one row: 11 pages, then the page holding only
	// the overlap row ends it; never more than 4 past the planned pages.
	if n := st.requests.Load(); n < 12 || n > 16 {
		t.Fatalf("%d requests for 1000 rows served 100 at a time", n)
	}
}

func TestPager_ChargesBareArray_TotalUnknownAllRows(t *testing.T) {
	st := newStub(250, "c")
	st.bare = true
	_, h, loc := stubbed(t, st)
	col := newCollector()
	out, err := h.Charges(context.Background(), loc, time.Time{}, &extract.Counters{}, col.emit("chargeId"))
	if err != nil {
		t.Fatal(err)
	}
	col.check(t, "bare-array charges", st)
	if out.Total != -1 || out.TotalAgrees() || !strings.Contains(out.Why, "total unknown: bare array") || out.Rows != 250 {
		t.Fatalf("outcome %+v: want total -1, Why naming the bare array, 250 rows", out)
	}
}

func TestPager_ChargesWithoutTotal_TotalUnknownAllRows(t *testing.T) {
	st := newStub(230, "c")
	st.noTotal = true
	st.cap = 60
	_, h, loc := stubbed(t, st)
	col := newCollector()
	out, err := h.Charges(context.Background(), loc, time.Time{}, &extract.Counters{}, col.emit("chargeId"))
	if err != nil {
		t.Fatal(err)
	}
	col.check(t, "charges without pagination.total", st)
	if out.Total != -1 || !strings.Contains(out.Why, "no pagination.total") || !out.Capped {
		t.Fatalf("outcome %+v: want total -1, Why naming the missing pagination.total, capped", out)
	}
}

func TestPager_P1CappedAndHidden_AllRows(t *testing.T) {
	st := newStub(1000, "u")
	st.cap, st.echoAsked = 100, true // page.size 250 and totalPages 4, but 100 rows a page
	a, _, _ := stubbed(t, st)
	col := newCollector()
	out, err := a.Users(context.Background(), time.Time{}, &extract.Counters{}, col.emit("uuid"))
	if err != nil {
		t.Fatal(err)
	}
	col.check(t, "capped users", st)
	// 100 rows a page; each page after the first overlaps the previous one: 11 pages.
	if !out.Complete || !out.Capped || !out.TotalAgrees() || out.Unchecked != 0 || out.Pages != 11 || st.requests.Load() != 11 {
		t.Fatalf("outcome %+v in %d requests: want complete, capped, total agreeing, 11 pages in 11 requests", out, st.requests.Load())
	}
}

func TestPager_WrongEchoedPageNumber_Fails(t *testing.T) {
	st := newStub(600, "u")
	st.echoNumber = func(int) int { return 0 } // content follows the page asked, the echo does not
	a, _, _ := stubbed(t, st)
	out, err := a.Companies(context.Background(), &extract.Counters{}, newCollector().emit("uuid"))
	if !errors.Is(err, extract.ErrPagination) || !strings.Contains(err.Error(), "answered as page 0") || out.Complete {
		t.Fatalf("err %v, outcome %+v: want ErrPagination naming the echoed page, not complete", err, out)
	}
}

func TestPager_AbsurdTotalPages_BoundedByRows(t *testing.T) {
	st := newStub(3, "u")
	st.totalPages = func(int, int) int { return 1_000_000_000 }
	a, _, _ := stubbed(t, st)
	col := newCollector()
	done := make(chan struct{})
	var out extract.Outcome
	var err error
	go func() {
		defer close(done)
		out, err = a.Companies(context.Background(), &extract.Counters{}, col.emit("uuid"))
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a claim of 10^9 pages for 3 rows is still being paged after 10 s")
	}
	if err != nil {
		t.Fatal(err)
	}
	col.check(t, "3 rows claiming 10^9 pages", st)
	if st.requests.Load() != 1 || !out.Complete || !out.TotalAgrees() || !strings.Contains(out.Why, "totalPages 1000000000 ignored") {
		t.Fatalf("%d requests, outcome %+v: want 1 request, complete, Why saying totalPages was ignored", st.requests.Load(), out)
	}
}

func TestPager_RepeatedPage_EndsWithAnErrorInEveryPaginator(t *testing.T) {
	cases := []struct {
		name string
		list func(a *extract.AppDirect, h *extract.HighLevel, loc string) (extract.Outcome, error)
	}{
		{"page-number (companies)", func(a *extract.AppDirect, _ *extract.HighLevel, _ string) (extract.Outcome, error) {
			return a.Companies(context.Background(), &extract.Counters{}, func(context.Context, extract.Page) error { return nil })
		}},
		{"page-number without totals (companies)", func(a *extract.AppDirect, _ *extract.HighLevel, _ string) (extract.Outcome, error) {
			return a.Companies(context.Background(), &extract.Counters{}, func(context.Context, extract.Page) error { return nil })
		}},
		{"start/count (invoices)", func(a *extract.AppDirect, _ *extract.HighLevel, _ string) (extract.Outcome, error) {
			return a.Invoices(context.Background(), time.Time{}, &extract.Counters{}, func(context.Context, extract.Page) error { return nil })
		}},
		{"skip/limit with total (charges)", func(_ *extract.AppDirect, h *extract.HighLevel, loc string) (extract.Outcome, error) {
			return h.Charges(context.Background(), loc, time.Time{}, &extract.Counters{}, func(context.Context, extract.Page) error { return nil })
		}},
		{"skip/limit, total a bound (installed locations)", func(_ *extract.AppDirect, h *extract.HighLevel, _ string) (extract.Outcome, error) {
			_, out, err := h.Locations(context.Background(), &extract.Counters{}, func(context.Context, extract.Page) error { return nil })
			return out, err
		}},
	}
	for k, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := newStub(1200, "r")
			st.ignorePage = true // every page is the first: a server that ignores page/start/skip
			st.noTotal = k == 1
			st.echoNumber = func(k int) int { return k } // and echoes the number asked
			a, h, loc := stubbed(t, st)
			done := make(chan struct{})
			var err error
			var out extract.Outcome
			go func() { defer close(done); out, err = c.list(a, h, loc) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("still paging the same page after 20 s")
			}
			if !errors.Is(err, extract.ErrPagination) || !strings.Contains(err.Error(), "repeats the previous page") || out.Complete {
				t.Fatalf("err %v, outcome %+v: want ErrPagination (a repeated page), not complete", err, out)
			}
			if n := st.requests.Load(); n > 10 {
				t.Fatalf("%d requests before the repeat was noticed", n)
			}
		})
	}
}

func TestPager_DuplicatesAcrossPages_CountedAsDrift(t *testing.T) {
	for _, style := range []string{"page-number", "offset"} {
		t.Run(style, func(t *testing.T) {
			st := newStub(700, "u")
			// Page 1 starts one row early, repeating the row that ended page 0 (a page-number
			// listing of aligned pages would then never see the row that ends page 1).
			st.earlyPage = 1
			if style == "offset" {
				st.beforeServe = func(s *stub, off int) {
					if off > 0 && off < 200 { // the second page: the listing shifts right by one
						s.keys = append([]string{"u00000a"}, s.keys...)
					}
				}
			}
			a, h, loc := stubbed(t, st)
			col := newCollector()
			var out extract.Outcome
			var err error
			if style == "offset" {
				out, err = h.Charges(context.Background(), loc, time.Time{}, &extract.Counters{}, col.emit("chargeId"))
			} else {
				out, err = a.Companies(context.Background(), &extract.Counters{}, col.emit("uuid"))
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.Complete || !out.Drift || out.Duplicates < 1 || out.Duplicates != col.dups() || out.Rows-out.Distinct() != out.Duplicates ||
				!strings.Contains(out.Why, "listed again") {
				t.Fatalf("outcome %+v (%d keys emitted twice): want duplicates counted, drift, not complete", out, col.dups())
			}
		})
	}
}

func TestPager_OffsetRowsShiftedWithTotalsUnchanged_Drift(t *testing.T) {
	// Before the third page, one row already listed is deleted and one is added at the end: the
	// total stays 300, every row after the deletion moves back by one, so the row that should
	// open the third page was on the second. Only the overlap row can show it.
	st := newStub(300, "c")
	st.conc = 1 // one page at a time, so the change falls between the second and third page
	served := 0
	st.beforeServe = func(s *stub, off int) {
		if served++; served == 3 {
			s.keys = append(append(append([]string(nil), s.keys[:10]...), s.keys[11:]...), "c99999")
		}
	}
	_, h, loc := stubbed(t, st)
	col := newCollector()
	out, err := h.Charges(context.Background(), loc, time.Time{}, &extract.Counters{}, col.emit("chargeId"))
	if err != nil {
		t.Fatal(err)
	}
	if !out.Drift || out.Complete || !strings.Contains(out.Why, "rows shifted") {
		t.Fatalf("outcome %+v: want drift (rows shifted), not complete", out)
	}
	// Nothing live was lost: the row pushed back is re-read as the overlap row.
	col.check(t, "charges after a shift", st, false)
}

func TestPager_LocationsCappedAt5_AllInstalledLocations(t *testing.T) {
	s := sim(t, apisim.Config{Seed: 3, Scale: 50, Profile: "fast", Locations: 14, Hostile: apisim.Hostile{PageCap: map[string]int{"locations": 5}}})
	_, hl := simcheck.Sources(s, 1)
	h := extract.NewHighLevel(client(t, nil), *hl, &extract.Counters{})
	ids, out, err := h.Locations(context.Background(), &extract.Counters{}, func(context.Context, extract.Page) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := s.Rows("locations")
	installed := 0
	for _, r := range rows {
		if r.Values["isInstalled"] == true {
			installed++
		}
	}
	if len(ids) != installed || installed != 12 || !out.Complete || out.Total != -1 || !strings.Contains(out.Why, "counts every location") {
		t.Fatalf("%d of %d installed locations, outcome %+v: want all, complete, total unknown (it counts uninstalled ones too)", len(ids), installed, out)
	}
}

func TestPager_PageNumberRowsShiftedWithTotalsUnchanged_Drift(t *testing.T) {
	// Before the third page, a row already listed is deleted and a row is added at the end: the
	// total stays 700, and the row that should open the third page moved onto the second, which
	// was already read. Aligned pages cannot see it; distinct keys would equal the total.
	st := newStub(700, "u")
	st.conc = 1
	served := 0
	st.beforeServe = func(s *stub, off int) {
		if served++; served == 3 {
			s.keys = append(append(append([]string(nil), s.keys[:10]...), s.keys[11:]...), "u99999")
		}
	}
	a, _, _ := stubbed(t, st)
	col := newCollector()
	out, err := a.Companies(context.Background(), &extract.Counters{}, col.emit("uuid"))
	if err != nil {
		t.Fatal(err)
	}
	if !out.Drift || out.Complete || !strings.Contains(out.Why, "rows shifted") || out.Unchecked != 0 {
		t.Fatalf("outcome %+v: want drift (rows shifted), not complete", out)
	}
	col.check(t, "companies after a shift", st, false) // the overlap re-read the row pushed back
}

func TestPager_RowChangedInTheOverlap_NewerVersionEmittedNotCounted(t *testing.T) {
	for _, style := range []string{"page-number", "offset"} {
		t.Run(style, func(t *testing.T) {
			st := newStub(500, "r")
			st.conc = 1
			served := 0
			st.beforeServe = func(s *stub, off int) {
				if served++; served == 2 {
					s.ver[s.keys[99]]++  // the row ending the first page of charges (100 a page)
					s.ver[s.keys[249]]++ // and of companies (250 a page)
				}
			}
			a, h, loc := stubbed(t, st)
			var got []string
			emit := func(_ context.Context, p extract.Page) error {
				for _, r := range p.Records {
					got = append(got, string(r))
				}
				return nil
			}
			var out extract.Outcome
			var err error
			key := st.keys[249]
			if style == "offset" {
				key = st.keys[99]
				out, err = h.Charges(context.Background(), loc, time.Time{}, &extract.Counters{}, emit)
			} else {
				out, err = a.Companies(context.Background(), &extract.Counters{}, emit)
			}
			if err != nil {
				t.Fatal(err)
			}
			if !out.Complete || out.Drift || out.Duplicates != 0 || out.Rows != 500 || !out.TotalAgrees() {
				t.Fatalf("outcome %+v: want complete, no drift, 500 rows, no duplicates", out)
			}
			if last := got[len(got)-1]; !strings.Contains(strings.Join(got, "\n"), `"`+key+`","name":"row `+key+`","v":1`) {
				t.Fatalf("the newer version of %s was not emitted (last record %s)", key, last)
			}
		})
	}
}

func TestPager_P1WithoutTotals_UntilAnEmptyPage(t *testing.T) {
	st := newStub(600, "u")
	st.noTotal = true
	a, _, _ := stubbed(t, st)
	col := newCollector()
	out, err := a.Companies(context.Background(), &extract.Counters{}, col.emit("uuid"))
	if err != nil {
		t.Fatal(err)
	}
	col.check(t, "companies without totalElements", st)
	// Pages of 250 until the empty 4th: two boundaries no overlap could check.
	if out.Total != -1 || !out.Complete || out.TotalAgrees() || out.Unchecked != 2 || !strings.Contains(out.Why, "no totalElements") || st.requests.Load() != 4 {
		t.Fatalf("outcome %+v in %d requests: want total unknown, complete, 2 unchecked boundaries, 4 requests", out, st.requests.Load())
	}
}

func TestPager_TotalGrowsWhilePaging_ReadsOnToTheNewEnd(t *testing.T) {
	for _, style := range []string{"page-number", "offset"} {
		t.Run(style, func(t *testing.T) {
			st := newStub(520, "r")
			st.conc = 1
			served := 0
			st.beforeServe = func(s *stub, off int) {
				if served++; served == 2 { // 300 rows are added at the end after the first page
					for i := range 300 {
						s.keys = append(s.keys, fmt.Sprintf("s%05d", i))
					}
				}
			}
			a, h, loc := stubbed(t, st)
			col := newCollector()
			var out extract.Outcome
			var err error
			if style == "offset" {
				out, err = h.Charges(context.Background(), loc, time.Time{}, &extract.Counters{}, col.emit("chargeId"))
			} else {
				out, err = a.Companies(context.Background(), &extract.Counters{}, col.emit("uuid"))
			}
			if err != nil {
				t.Fatal(err)
			}
			col.check(t, "a listing that grew", st)
			if out.Complete || !out.Drift || out.Total != 820 || !strings.Contains(out.Why, "totals moved") {
				t.Fatalf("outcome %+v: want every row, total 820, drift (totals moved), not complete", out)
			}
		})
	}
}
