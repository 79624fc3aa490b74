// Package apisim is a faithful, deterministic stand-in for the AppDirect and HighLevel APIs that
// marketsync reads: same paths, parameters, auth, pagination, bodies, rate limits and errors as
// docs/source-apis.md, plus a simulated clock that inserts, updates and deletes rows,
// injectable faults, and /_sim endpoints that tell tests the exact source truth: /_sim/truth
// (ids, versions and a content digest per stream) and /_sim/rows (every live row with its exact
// bytes and canonical values, see Rows) and /_sim/requests (every API request answered, in order,
// with its status, see Requests). Config.Values "varied" serves every value form the
// documents allow, and adversarial ones where they are silent. The "hostile" profile adds, on top
// of chaos's faults, what the documents leave open and a client must not assume away (page caps
// below the size asked, bare-array and total-less charges, changes while a listing is paged,
// pages starting a row early, late updates, users without timestamps, back-dated arrivals), each
// its own knob (Config.Hostile, Faults.MidList*, Faults.CrossPageDuplicate); Rows still
// describes exactly what is served. Bare-array charges do not match HighLevel's OpenAPI spec,
// which is why the spec test runs on the other profiles.
package apisim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type location struct {
	id, name, address string
	installed         bool
	installedAt       int64
	charges           *table
	chargeShape       int // chargesWrapped, chargesBare or chargesNoTotal
}

// How a location's charges list is answered.
const (
	chargesWrapped = iota // {"charges": [...], "count": N, "pagination": {...}} as the spec has it
	chargesBare           // [...]: no count, no pagination
	chargesNoTotal        // {"charges": [...]}: neither count nor pagination.total
)

// spread reports whether item k is one of a share p of items, spread evenly from item 0
// (deterministic: 0.34 picks items 0, 3, 6, ...; 1 picks all).
func spread(k int, p float64) bool {
	return p > 0 && math.Ceil(float64(k+1)*p-1e-9) > math.Ceil(float64(k)*p-1e-9)
}

type token struct {
	kind     string // appdirect | appdirect-user | hl-company | hl-location
	client   string
	location int      // hl-location: index into locations
	scopes   []string // AppDirect: the scopes granted
	expires  int64
}

// Server is one simulator instance. It is safe for concurrent use.
type Server struct {
	cfg Config

	mu        sync.RWMutex // guards everything below that has no lock of its own
	now       int64        // simulated clock, epoch ms
	tables    map[string]*table
	locations []*location
	gen       *gen
	carry     map[string]float64
	cache     map[string][]byte
	changeRng *mrand.Rand // picks rows to update/delete; guarded by mu
	mutations uint64      // counts changes to the data (Advance, page drift); guarded by mu
	oracle    oracleState // caches of the whole-row oracle, valid for one mutation count

	filterMu    sync.Mutex
	filterCache map[string]indexList // status-filtered listings, keyed with the mutation count

	tokMu   sync.Mutex
	tokens  map[string]token
	codes   map[string]authCode // HighLevel authorization codes not yet used
	refresh map[string]bool     // HighLevel refresh tokens not yet used
	pits    map[string]bool     // HighLevel Private Integration Tokens
	issued  []string            // every token, code and refresh token ever issued, for tests that search outputs for leaks
	revokes int

	limMu     sync.Mutex
	adBuckets map[string]*leakyBucket
	hlWindows map[string]*fixedWindow

	faultMu sync.Mutex
	rng     *mrand.Rand // fault dice; guarded by faultMu

	stats    stats
	apiCalls atomic.Int64

	httpSrv *http.Server
	ln      net.Listener
	baseURL string
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

// New builds a simulator; it does not listen until Start.
func New(cfg Config) (*Server, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	start := cfg.Start.UnixMilli()
	s := &Server{
		cfg: cfg, now: start, tables: map[string]*table{}, carry: map[string]float64{},
		tokens: map[string]token{}, codes: map[string]authCode{}, refresh: map[string]bool{}, pits: map[string]bool{}, adBuckets: map[string]*leakyBucket{}, hlWindows: map[string]*fixedWindow{},
		rng:       mrand.New(mrand.NewPCG(uint64(cfg.Seed), 7)),
		changeRng: mrand.New(mrand.NewPCG(uint64(cfg.Seed), 8)),
		stats:     newStats(),
	}
	seed := seedHash(cfg.Seed)
	for _, name := range []string{"companies", "users", "invoices", "leads", "opportunities", "events"} {
		s.tables[name] = newTable(name, cfg.Scale, start-history, history, name == "users")
	}
	s.tables["events"].appendOnly = true
	if !cfg.Hostile.LateUpdates {
		for _, name := range []string{"invoices", "leads", "opportunities"} {
			s.tables[name].mutableWindow = int64(30 * 24 * time.Hour / time.Millisecond)
		}
	}
	perLoc := max(1, cfg.Scale/cfg.Locations)
	others := 0 // locations not answered as bare arrays so far
	for k := 0; k < cfg.Locations; k++ {
		loc := &location{
			id:          hlID(seed, "locations", k),
			name:        fmt.Sprintf("%s Office %d", pick(cities, rnd(seed, "locations", k, 1)), k),
			address:     fmt.Sprintf("%d Main St, Austin, TX 78701", 100+k),
			installed:   k%7 != 6, // some locations of the company do not have the app
			installedAt: start - history + int64(k)*86400000,
		}
		loc.charges = newTable("charges/"+loc.id, perLoc, start-history, history, true)
		switch {
		case spread(k, cfg.Hostile.BareArrayCharges):
			loc.chargeShape = chargesBare
		case spread(others, cfg.Hostile.NoTotals):
			loc.chargeShape = chargesNoTotal
			others++
		default:
			others++
		}
		s.locations = append(s.locations, loc)
	}
	s.gen = &gen{seed: seed, start: start, varied: cfg.varied(), companies: s.tables["companies"], users: s.tables["users"],
		usersNoTime: cfg.Hostile.UsersWithoutTimestamps}
	s.gen.companyID = func(i int) string { return uuidOf(seed, "companies", i) }
	return s, nil
}

// Start listens on addr ("127.0.0.1:0" for any free port) and serves until Close.
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("starting simulator on %s: %w", addr, err)
	}
	s.ln = ln
	s.baseURL = "http://" + ln.Addr().String()
	s.gen.baseURL = s.baseURL
	if s.cfg.LinkBase != "" {
		s.gen.baseURL = strings.TrimRight(s.cfg.LinkBase, "/")
	}
	s.httpSrv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.httpSrv.Serve(ln) // returns http.ErrServerClosed on Close
	}()
	if s.cfg.Background > 0 {
		s.wg.Add(1)
		go s.background(ctx)
	}
	return nil
}

// URL is the base URL of both simulated APIs (AppDirect and HighLevel share the listener).
func (s *Server) URL() string { return s.baseURL }

// Close stops the listener and background clock and waits for them.
func (s *Server) Close() error {
	if s.stop != nil {
		s.stop()
	}
	var err error
	if s.httpSrv != nil {
		// A hard close: Shutdown would wait seconds on pooled client connections that never
		// carried a request.
		err = s.httpSrv.Close()
	}
	s.wg.Wait()
	return err
}

func (s *Server) background(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Advance(time.Duration(s.cfg.Background * float64(100*time.Millisecond)))
		}
	}
}

// SetFaults replaces the injected fault rates (tests: e.g. stop page drift before a final,
// comparable sync). Requests already being served keep the old rates.
func (s *Server) SetFaults(f Faults) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.cfg.Faults = f
}

func (s *Server) faults() Faults {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.cfg.Faults
}

// ReplayBodies returns the cached (replay mode) response bodies whose URL path is path.
func (s *Server) ReplayBodies(path string) [][]byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out [][]byte
	for k, b := range s.cache {
		if strings.HasPrefix(k, path+"?") {
			out = append(out, b)
		}
	}
	return out
}

// Now returns the simulated clock.
func (s *Server) Now() time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return time.UnixMilli(s.now).UTC()
}

// Advance moves the simulated clock and applies the inserts, updates and deletes that the
// configured rates produce over that time, in every stream.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now += d.Milliseconds()
	s.mutations++
	hours := d.Hours()
	for _, name := range []string{"companies", "users", "invoices", "leads", "opportunities", "events"} {
		s.changeLocked(name, s.tables[name], hours)
	}
	for _, loc := range s.locations {
		if loc.installed {
			s.changeLocked(loc.charges.name, loc.charges, hours)
		}
	}
	s.cache = nil
}

func (s *Server) changeLocked(key string, t *table, hours float64) {
	for _, kind := range []struct {
		name string
		rate float64
	}{{"insert", s.cfg.InsertRate}, {"update", s.cfg.UpdateRate}, {"delete", s.cfg.DeleteRate}} {
		want := s.carry[key+kind.name] + kind.rate*float64(t.base)*hours
		n := int(want)
		s.carry[key+kind.name] = want - float64(n)
		for ; n > 0; n-- {
			switch kind.name {
			case "insert":
				s.insertLocked(t)
			case "update":
				if i, ok := s.pickLive(t, true); ok {
					t.update(i, s.now)
				}
			case "delete":
				if i, ok := s.pickLive(t, false); ok {
					t.remove(i, s.now)
				}
			}
		}
	}
}

// insertLocked inserts a row into t now; in a modification-ordered table a share
// Hostile.LateArrivals of inserts is back-dated 1 to 6 hours (never before Config.Start).
func (s *Server) insertLocked(t *table) int {
	if p := s.cfg.Hostile.LateArrivals; p > 0 && t.byModified && s.changeRng.Float64() < p {
		late := int64(time.Hour/time.Millisecond) + int64(s.changeRng.Uint64()%uint64(5*time.Hour/time.Millisecond))
		return t.insertLate(max(s.now-late, s.cfg.Start.UnixMilli()))
	}
	return t.insert(s.now)
}

// midList applies the changes the faults roll for one list page request to the listing's
// table t, listing v, whose page covers positions [off, off+n): see Faults.MidListUpdate,
// MidListInsert, MidListDelete. The caller holds no lock.
func (s *Server) midList(t *table, v func() listing, off, n int) {
	f := s.faults()
	upd, ins, del := s.roll(f.MidListUpdate), s.roll(f.MidListInsert), s.roll(f.MidListDelete)
	if !upd && !ins && !del {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pick := func(lo, hi int) (int, bool) {
		l := v()
		hi = min(hi, l.len())
		if hi <= lo {
			return 0, false
		}
		rows := l.rows(lo+int(s.changeRng.Uint64()%uint64(hi-lo)), 1)
		if len(rows) == 0 {
			return 0, false
		}
		return rows[0], true
	}
	if upd {
		later := s.changeRng.Uint64()%2 == 0
		i, ok := pick(off+n, math.MaxInt)
		if !later || !ok {
			if j, ok2 := pick(0, off); ok2 {
				i, ok = j, true
			}
		}
		if !ok {
			i, ok = pick(0, math.MaxInt)
		}
		if ok {
			t.update(i, s.now)
			s.stats.fault("mid_list_update")
		}
	}
	if ins {
		s.insertLocked(t)
		s.stats.fault("mid_list_insert")
	}
	if del {
		if i, ok := pick(0, math.MaxInt); ok {
			t.remove(i, s.now)
			s.stats.fault("mid_list_delete")
		}
	}
	s.mutations++
	s.cache = nil
}

// crossPage reports whether a page at off > 0 starts one row early (Faults.CrossPageDuplicate).
func (s *Server) crossPage(off int) bool {
	if off <= 0 || !s.roll(s.faults().CrossPageDuplicate) {
		return false
	}
	s.stats.fault("cross_page_duplicate")
	return true
}

// pageCap is the number of rows a page of stream serves when asked for n.
func (s *Server) pageCap(stream string, n int) int {
	if c := s.cfg.Hostile.PageCap[stream]; c > 0 && c < n {
		return c
	}
	return n
}

// pickLive picks a random live row; updates of creation-ordered streams favour young rows
// (invoices get paid, opportunities close), which the client's re-read window relies on.
func (s *Server) pickLive(t *table, forUpdate bool) (int, bool) {
	if t.live() == 0 {
		return 0, false
	}
	lo := 0
	if forUpdate && t.mutableWindow > 0 {
		lo = t.firstCreatedAtOrAfter(s.now-t.mutableWindow, t.count)
		if lo >= t.count {
			lo = 0
		}
	}
	for tries := 0; tries < 64; tries++ {
		i := lo + int(s.changeRng.Uint64()%uint64(t.count-lo))
		if !t.isDeleted(i) {
			return i, true
		}
	}
	return 0, false
}

// ---- HTTP ----

// Handler returns the simulator's routes (also usable with httptest.NewServer).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	api := func(pattern, name string, h http.HandlerFunc) {
		mux.Handle(pattern, s.instrument(name, h))
	}
	api("POST /oauth2/token", "appdirect.token", s.adToken)
	api("GET /api/account/v2/companies", "appdirect.companies", s.adAuth(s.companies))
	api("GET /api/account/v2/users", "appdirect.users", s.adAuth(s.users))
	api("GET /api/billing/v1/invoices", "appdirect.invoices", s.adAuth(s.invoices))
	api("GET /api/lead/v2/leads", "appdirect.leads", s.adAuth(s.leads))
	api("GET /api/assistedSales/v1/opportunities", "appdirect.opportunities", s.adAuth(s.opportunities))
	api("GET /api/channel/v1/events", "appdirect.events", s.adAuth(s.events))
	api("GET /api/appReseller/v1/companies", "appdirect.reseller.companies", s.adAuth(s.resellerCompanies))
	api("GET /api/appReseller/v1/users", "appdirect.reseller.users", s.adAuth(s.resellerUsers))
	api("GET /api/appReseller/v1/opportunities", "appdirect.reseller.opportunities", s.adAuth(s.resellerOpportunities))
	api("POST /oauth/token", "highlevel.token", s.hlToken)
	api("GET /v2/oauth/chooselocation", "highlevel.authorize", s.chooseLocation)
	api("POST /oauth/locationToken", "highlevel.locationToken", s.hlAuth("hl-company", s.hlLocationToken))
	api("GET /oauth/installedLocations", "highlevel.installedLocations", s.hlAuth("hl-company", s.installedLocations))
	api("GET /marketplace/billing/charges", "highlevel.charges", s.hlAuth("hl-location", s.charges))
	mux.HandleFunc("POST /_sim/advance", s.handleAdvance)
	mux.HandleFunc("GET /_sim/stats", s.handleStats)
	mux.HandleFunc("GET /_sim/requests", s.handleRequests)
	mux.HandleFunc("GET /_sim/truth", s.handleTruth)
	mux.HandleFunc("GET /_sim/rows", s.handleRows)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 404, map[string]any{"status": 404, "code": "NOT_FOUND", "message": "No route for " + r.URL.Path})
	})
	return mux
}

// statusRecorder remembers the status for the stats, and calls decided with it before the
// header can reach the client: a client that has its answer finds it in the stats.
type statusRecorder struct {
	http.ResponseWriter
	status  int
	decided func(code int)
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
		r.decided(code)
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
		r.decided(200)
	}
	return r.ResponseWriter.Write(b)
}

func (s *Server) instrument(name string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		loc := s.locationOf(r)
		at := -1 // the request's entry in the log
		rec := &statusRecorder{ResponseWriter: w, decided: func(code int) { at = s.stats.add(name, code, loc) }}
		defer func() {
			if v := recover(); v != nil {
				if rec.status == 0 {
					s.stats.add(name, 0, loc)
				} else {
					s.stats.dropped(name, at, rec.status) // the header went, the body was cut
				}
				panic(v) // http.ErrAbortHandler: the connection is dropped on purpose
			}
			if rec.status == 0 { // nothing written: net/http answers 200 with an empty body
				s.stats.add(name, 200, loc)
			}
		}()
		n := s.apiCalls.Add(1)
		if ra := s.faults().RevokeAfter; ra > 0 && n%int64(ra) == 0 {
			s.tokMu.Lock()
			s.tokens = map[string]token{}
			s.revokes++
			s.tokMu.Unlock()
			s.stats.fault("token_revoked")
		}
		// The Date header tells the server's clock (RFC 9110 §6.6.1): the simulated one here.
		w.Header().Set("Date", s.Now().Format(http.TimeFormat))
		if s.injectFault(rec, r, name) {
			return
		}
		h.ServeHTTP(rec, r)
	})
}

func (s *Server) roll(p float64) bool {
	if p <= 0 {
		return false
	}
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.rng.Float64() < p
}

// injectFault answers the request with a fault instead of the real handler; true if it did.
// Faults that corrupt a body are applied by faultyWriter after the handler ran.
func (s *Server) injectFault(w *statusRecorder, r *http.Request, name string) bool {
	f := s.faults()
	if s.roll(f.Slow) {
		s.stats.fault("slow")
		select {
		case <-time.After(f.SlowDelay):
		case <-r.Context().Done():
		}
	}
	if s.roll(f.Reset) {
		s.stats.fault("reset")
		panic(http.ErrAbortHandler)
	}
	if s.roll(f.ServerError) {
		codes := []int{500, 502, 503, 504}
		s.faultMu.Lock()
		code := codes[s.rng.IntN(len(codes))]
		s.faultMu.Unlock()
		s.stats.fault(fmt.Sprintf("http_%d", code))
		writeJSON(w, code, map[string]any{"status": code, "code": "INTERNAL_SERVER_ERROR", "message": http.StatusText(code)})
		return true
	}
	if s.roll(f.Throttle) {
		s.stats.fault("throttle")
		s.stats.throttled.Add(1)
		if s.roll(0.5) {
			w.Header().Set("Retry-After", time.Now().Add(time.Second).UTC().Format(http.TimeFormat))
		} else {
			w.Header().Set("Retry-After", "0")
		}
		writeJSON(w, 429, map[string]any{"status": 429, "code": "TOO_MANY_REQUESTS", "message": "Too many requests"})
		return true
	}
	if strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/marketplace/billing/charges" {
		if s.roll(f.PageDrift) {
			s.stats.fault("page_drift")
			s.drift(name)
		}
		if s.roll(f.Truncated) {
			s.stats.fault("truncated")
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "4096")
			w.WriteHeader(200)
			_, _ = w.Write([]byte(`{"content":[{"uuid":"6b4bd452-895d-4098`))
			panic(http.ErrAbortHandler)
		}
		if s.roll(f.InvalidJSON) {
			s.stats.fault("invalid_json")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(200)
			_, _ = w.Write([]byte("<html><body>502 Bad Gateway</body></html>"))
			return true
		}
	}
	return false
}

// drift inserts one row and deletes another in the stream being paged, as concurrent users do.
func (s *Server) drift(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stream := strings.TrimPrefix(strings.TrimPrefix(name, "appdirect."), "highlevel.")
	t := s.tables[stream]
	if stream == "charges" {
		t = s.locations[0].charges
	}
	if t == nil {
		return
	}
	t.insert(s.now)
	if i, ok := s.pickLive(t, false); ok {
		t.remove(i, s.now)
	}
	s.mutations++
	s.cache = nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func writeBody(w http.ResponseWriter, code int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func newToken() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Server) issue(t token) string {
	s.mu.RLock()
	t.expires = s.now + s.cfg.TokenTTL.Milliseconds()
	s.mu.RUnlock()
	tok := newToken()
	s.tokMu.Lock()
	s.tokens[tok] = t
	s.issued = append(s.issued, tok)
	s.tokMu.Unlock()
	return tok
}

// IssuedTokens returns every secret the simulator has issued: access tokens, HighLevel
// authorization codes, refresh tokens and Private Integration Tokens.
func (s *Server) IssuedTokens() []string {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	return append([]string(nil), s.issued...)
}

// lookup returns the bearer token's grant, or why it is unusable.
func (s *Server) lookup(r *http.Request) (token, string) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return token{}, "missing"
	}
	raw, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return token{}, "invalid"
	}
	s.tokMu.Lock()
	t, found := s.tokens[raw]
	if !found && s.pits[raw] {
		t, found = token{kind: "hl-company", client: DemoHLClientID, expires: math.MaxInt64}, true
	}
	s.tokMu.Unlock()
	if !found {
		return token{}, "invalid"
	}
	s.mu.RLock()
	expired := s.now >= t.expires
	s.mu.RUnlock()
	if expired {
		return token{}, "expired"
	}
	return t, ""
}

// ---- introspection ----

type stats struct {
	mu        sync.Mutex
	first     map[string]time.Time
	last      map[string]time.Time
	requests  map[string]map[int]int
	faults    map[string]int
	throttled atomic.Int64
	log       []Request
	overflow  int // requests past maxRequestLog, not in log
}

// maxRequestLog bounds the request log (a long benchmark must not grow it without end; the
// tests that read it send a few thousand requests).
const maxRequestLog = 1 << 18 // 64 bytes an entry: at most 16 MB

// Request is one entry of the request log: an API request as the simulator answered it, in
// the order answered.
type Request struct {
	Endpoint string `json:"endpoint"` // e.g. appdirect.users, highlevel.charges
	Status   int    `json:"status"`   // 0: the connection was dropped without an answer
	// Location is the HighLevel location the request was for: the location of the token a
	// charges request carries, the locationId a location token is asked for; "" otherwise.
	Location string    `json:"location,omitempty"`
	At       time.Time `json:"at"`
}

func newStats() stats {
	return stats{requests: map[string]map[int]int{}, faults: map[string]int{}, first: map[string]time.Time{}, last: map[string]time.Time{}}
}

// add counts a request and logs it; it returns its index in the log (-1 past maxRequestLog).
func (st *stats) add(endpoint string, status int, location string) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	now := time.Now()
	at := -1
	if len(st.log) < maxRequestLog {
		at = len(st.log)
		st.log = append(st.log, Request{Endpoint: endpoint, Status: status, Location: location, At: now})
	} else {
		st.overflow++
	}
	if _, ok := st.first[endpoint]; !ok {
		st.first[endpoint] = now
	}
	st.last[endpoint] = now
	m := st.requests[endpoint]
	if m == nil {
		m = map[int]int{}
		st.requests[endpoint] = m
	}
	m[status]++
	return at
}

// dropped turns the request logged at index at, answered with status, into a dropped one
// (status 0): its connection was cut after the header.
func (st *stats) dropped(endpoint string, at, status int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.requests[endpoint][status]--; st.requests[endpoint][status] == 0 {
		delete(st.requests[endpoint], status)
	}
	st.requests[endpoint][0]++
	if at >= 0 {
		st.log[at].Status = 0
	}
}

func (st *stats) fault(kind string) {
	st.mu.Lock()
	st.faults[kind]++
	st.mu.Unlock()
}

// Stats is the body of GET /_sim/stats.
type Stats struct {
	Requests  map[string]map[string]int `json:"requests"` // endpoint -> status ("0" = dropped) -> count
	Total     int                       `json:"total"`
	Throttled int                       `json:"throttled"` // 429s served (rate limit and injected)
	Faults    map[string]int            `json:"faults"`
	Revokes   int                       `json:"revokes"`
	// Window is, per endpoint, the time from its first to its last answered request.
	Window map[string]time.Duration `json:"window_ns"`
}

// Snapshot returns the request statistics so far.
func (s *Server) Snapshot() Stats {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	out := Stats{Requests: map[string]map[string]int{}, Faults: map[string]int{}, Throttled: int(s.stats.throttled.Load()), Window: map[string]time.Duration{}}
	for ep, f := range s.stats.first {
		out.Window[ep] = s.stats.last[ep].Sub(f)
	}
	for ep, m := range s.stats.requests {
		out.Requests[ep] = map[string]int{}
		for code, n := range m {
			out.Requests[ep][strconv.Itoa(code)] = n
			out.Total += n
		}
	}
	for k, v := range s.stats.faults {
		out.Faults[k] = v
	}
	s.tokMu.Lock()
	out.Revokes = s.revokes
	s.tokMu.Unlock()
	return out
}

func (s *Server) handleStats(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, s.Snapshot()) }

// Requests returns the request log: every API request answered so far (or dropped), in order.
// It is exact up to maxRequestLog requests; dropped says how many later ones it lacks.
func (s *Server) Requests() (log []Request, dropped int) {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	return slices.Clone(s.stats.log), s.stats.overflow
}

// handleRequests serves GET /_sim/requests: {"requests": [...], "not_logged": n} (requests past
// maxRequestLog).
func (s *Server) handleRequests(w http.ResponseWriter, _ *http.Request) {
	log, dropped := s.Requests()
	if log == nil {
		log = []Request{}
	}
	writeJSON(w, 200, map[string]any{"requests": log, "not_logged": dropped})
}

// locationOf names the HighLevel location a request is for, for the request log: the location
// of a location token, or the locationId a location token is asked for.
func (s *Server) locationOf(r *http.Request) string {
	if r.URL.Path == "/oauth/locationToken" {
		return r.PostFormValue("locationId") // parsed once; the handler reads the same values
	}
	if t, why := s.lookup(r); why == "" && t.kind == "hl-location" {
		if t.location >= 0 && t.location < len(s.locations) {
			return s.locations[t.location].id
		}
	}
	return ""
}

func (s *Server) handleAdvance(w http.ResponseWriter, r *http.Request) {
	sec, err := strconv.ParseFloat(r.URL.Query().Get("seconds"), 64)
	if err != nil || sec < 0 {
		writeJSON(w, 400, map[string]any{"status": 400, "code": "BAD_REQUEST", "message": "seconds: want a non-negative number"})
		return
	}
	s.Advance(time.Duration(sec * float64(time.Second)))
	writeJSON(w, 200, map[string]any{"now": s.Now().Format(time.RFC3339Nano)})
}

func (s *Server) handleTruth(w http.ResponseWriter, r *http.Request) {
	var since int64
	if v := r.URL.Query().Get("deletedSince"); v != "" {
		var err error
		if since, err = strconv.ParseInt(v, 10, 64); err != nil {
			writeJSON(w, 400, map[string]any{"status": 400, "code": "BAD_REQUEST", "message": "deletedSince: want epoch milliseconds"})
			return
		}
	}
	writeJSON(w, 200, s.Truth(since))
}

var errStop = errors.New("stop")
