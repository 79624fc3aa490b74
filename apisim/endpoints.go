package apisim

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

type apiHandler func(http.ResponseWriter, *http.Request, token)

func adError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"status": status, "code": code, "message": msg})
}

func hlError(w http.ResponseWriter, status int, msg string) {
	body := map[string]any{"statusCode": status, "message": msg}
	switch status {
	case 401:
		body["error"] = "Unauthorized"
	case 422:
		body["message"] = []string{msg}
		body["error"] = "Unprocessable Entity"
	}
	writeJSON(w, status, body)
}

// clientCredentials reads client id and secret from HTTP Basic auth, the form body or the query
// (the Checkout guide's variant).
func clientCredentials(r *http.Request) (id, secret string) {
	if u, p, ok := r.BasicAuth(); ok {
		return u, p
	}
	return r.FormValue("client_id"), r.FormValue("client_secret")
}

func (s *Server) adToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		adError(w, 400, "BAD_REQUEST", "malformed form body")
		return
	}
	id, secret := clientCredentials(r)
	if id != DemoClientID || secret != DemoClientSecret {
		writeJSON(w, 401, map[string]any{"error": "invalid_client", "error_description": "Bad client credentials"})
		return
	}
	grant := r.FormValue("grant_type")
	var kind string
	var roles []string
	switch grant {
	case "client_credentials":
		kind = "appdirect"
	case "password":
		if r.FormValue("username") != DemoLeadUser || r.FormValue("password") != DemoLeadPassword {
			writeJSON(w, 400, map[string]any{"error": "invalid_grant", "error_description": "Bad credentials"})
			return
		}
		kind, roles = "appdirect-user", DemoLeadUserRoles
	default:
		writeJSON(w, 400, map[string]any{"error": "unsupported_grant_type", "error_description": "Unsupported grant type: " + grant})
		return
	}
	scopes, code, why := grantScopes(grant, r.FormValue("scope"), roles)
	if code != "" {
		writeJSON(w, 400, map[string]any{"error": code, "error_description": why})
		return
	}
	tok := s.issue(token{kind: kind, client: id, scopes: scopes})
	writeJSON(w, 200, map[string]any{"access_token": tok, "token_type": "bearer",
		"expires_in": int(s.cfg.TokenTTL.Seconds()), "scope": strings.Join(scopes, " ")})
}

// contextRole is the role a user-level context needs ("" for the contexts without one).
func contextRole(ctx string) string {
	switch ctx {
	case "RESELLER", "RESELLER_MANAGER", "REFERRAL", "DEVELOPER":
		return "ROLE_" + ctx
	}
	return ""
}

func (s *Server) adAuth(h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, why := s.lookup(r)
		if why != "" || (t.kind != "appdirect" && t.kind != "appdirect-user") {
			adError(w, 401, "UNAUTHORIZED", "HTTP 401 Unauthorized")
			return
		}
		if need, ok := EndpointRoles[r.URL.Path]; ok && !t.allows(need) {
			forbidden(w, need)
			return
		}
		if s.cfg.limited() {
			key, leak := t.client, s.cfg.ADLeak
			if r.URL.Path == "/api/account/v2/companies" {
				key, leak = t.client+" companies", s.cfg.ADCompaniesLeak
			}
			s.limMu.Lock()
			b := s.adBuckets[key]
			if b == nil {
				b = &leakyBucket{capacity: s.cfg.ADBucket, leak: leak * s.cfg.Speed}
				s.adBuckets[key] = b
			}
			s.limMu.Unlock()
			if ok, wait := b.take(time.Now()); !ok {
				s.stats.throttled.Add(1)
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Round(wait.Seconds()))))
				adError(w, 429, "TOO_MANY_REQUESTS", "Too many requests")
				return
			}
		}
		h(w, r, t)
	}
}

// qint parses an optional integer query parameter within [lo, hi].
func qint(q url.Values, name string, def, lo, hi int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("parameter '%s' must be an integer between %d and %d, got %q", name, lo, hi, v)
	}
	return n, nil
}

func qms(q url.Values, name string) (int64, bool, error) {
	v := q.Get(name)
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("parameter '%s' must be a Unix timestamp, got %q", name, v)
	}
	return n, true, nil
}

// page lists positions [off, off+n) of the listing in the requested order.
func page(v listing, off, n int, desc bool) []int {
	if !desc {
		return v.rows(off, n)
	}
	total := v.len()
	lo := max(0, total-off-n)
	hi := total - off
	if hi <= lo {
		return nil
	}
	rows := v.rows(lo, hi-lo)
	for a, b := 0, len(rows)-1; a < b; a, b = a+1, b-1 {
		rows[a], rows[b] = rows[b], rows[a]
	}
	return rows
}

type renderFn func(b []byte, t *table, i int) []byte

func renderRows(b []byte, t *table, rows []int, f renderFn) []byte {
	b = append(b, '[')
	for k, i := range rows {
		if k > 0 {
			b = append(b, ',')
		}
		b = f(b, t, i)
	}
	return append(b, ']')
}

func pageMeta(b []byte, size, total, number int) []byte {
	pages := 0
	if size > 0 {
		pages = (total + size - 1) / size
	}
	return fmt.Appendf(b, `{"size":%d,"totalElements":%d,"totalPages":%d,"number":%d}`, size, total, pages, number)
}

// cached serves a replayed page; store remembers one. Only used in replay mode.
func (s *Server) cached(w http.ResponseWriter, key string) bool {
	if !s.cfg.Replay {
		return false
	}
	s.mu.RLock()
	b, ok := s.cache[key]
	s.mu.RUnlock()
	if ok {
		writeBody(w, 200, b)
	}
	return ok
}

func (s *Server) store(key string, b []byte) {
	if !s.cfg.Replay {
		return
	}
	s.mu.Lock()
	if s.cache == nil {
		s.cache = map[string][]byte{}
	}
	s.cache[key] = b
	s.mu.Unlock()
}

func sortDesc(q url.Values, def string) (bool, error) {
	o := q.Get("sortOrder")
	if o == "" {
		o = def
	}
	switch o {
	case "ASC":
		return false, nil
	case "DESC":
		return true, nil
	}
	return false, fmt.Errorf("parameter 'sortOrder' must be ASC or DESC, got %q", o)
}

// statusFilter is a list's status filter: which rows a status value keeps, per stream.
type statusFilter func(t *table, i int) bool

// filtered returns the listing of t over [from, to), keeping the rows keep accepts (nil: all).
// Filtered listings are computed once per change of the data. The caller holds s.mu (read).
func (s *Server) filtered(name string, t *table, from, to int64, status string, keep statusFilter) listing {
	v := t.window(from, to)
	if keep == nil {
		return v
	}
	key := fmt.Sprintf("%s|%s|%d|%d|%d", name, status, from, to, s.mutations)
	s.filterMu.Lock()
	l, ok := s.filterCache[key]
	s.filterMu.Unlock()
	if ok {
		return l
	}
	l = v.filter(func(i int) bool { return keep(t, i) })
	s.filterMu.Lock()
	if s.filterCache == nil || len(s.filterCache) > 64 {
		s.filterCache = map[string]indexList{}
	}
	s.filterCache[key] = l
	s.filterMu.Unlock()
	return l
}

// statusOf returns the status filter of a stream's status parameter value, or an error.
func (s *Server) statusOf(stream, v string) (statusFilter, error) {
	if v == "" {
		return nil, nil
	}
	g := s.gen
	var set []string
	var get func(t *table, i int) string
	switch stream {
	case "invoices":
		if !slices.Contains(invoiceStatuses, v) {
			return nil, fmt.Errorf("parameter 'status' must be one of %v, got %q", invoiceStatuses, v)
		}
		set, get = []string{v}, func(t *table, i int) string { return invoiceStatus(t, g.seed, g.start, i) }
	case "opportunities":
		if !slices.Contains(oppStatuses, v) {
			return nil, fmt.Errorf("parameter 'status' must be one of %v, got %q", oppStatuses, v)
		}
		set, get = []string{v}, func(t *table, i int) string { return oppStatus(t, g.seed, g.start, i) }
	case "leads":
		switch v {
		case "PENDING_FOR_MANAGERS":
			set = []string{"SUBMITTED", "PENDING_CONVERSION_APPROVAL"}
		case "ACCEPTED_FOR_MANAGERS":
			set = []string{"ASSIGNED", "CONVERSION_APPROVED", "CONVERTED", "DELETED", "DISQUALIFIED", "LEGACY"}
		case "CONVERTED", "DISQUALIFIED", "DELETED", "PENDING_CONVERSION_APPROVAL", "CONVERSION_APPROVED",
			"PENDING_SUBMISSION", "SUBMITTED", "ASSIGNED", "LEGACY":
			set = []string{v}
		default:
			return nil, fmt.Errorf("parameter 'status' is not a lead status: %q", v)
		}
		get = func(t *table, i int) string { return g.leadStatus(t, i) }
	default:
		return nil, fmt.Errorf("parameter 'status' is not supported on %s", stream)
	}
	return func(t *table, i int) bool { return slices.Contains(set, get(t, i)) }, nil
}

// pagedP1 serves the zero-based page/size endpoints (companies, users, leads): page pg of the
// size served (Hostile.PageCap may serve fewer rows than asked), optionally status-filtered.
func (s *Server) pagedP1(w http.ResponseWriter, r *http.Request, name string, from, to int64, defOrder string, f renderFn) {
	q := r.URL.Query()
	pg, err := qint(q, "page", 0, 0, math.MaxInt32)
	if err == nil {
		var size int
		size, err = qint(q, "size", 50, 1, 250)
		if err == nil {
			var desc bool
			var keep statusFilter
			if desc, err = sortDesc(q, defOrder); err == nil {
				keep, err = s.statusOf(name, q.Get("status"))
			}
			if err == nil {
				key := r.URL.String()
				if s.cached(w, key) {
					return
				}
				t := s.tables[name]
				served := s.pageCap(name, size)
				off := pg * served
				if s.crossPage(off) {
					off--
				}
				s.midList(t, func() listing { return t.window(from, to) }, off, served)
				echo := served
				if s.cfg.Hostile.CapHidden {
					echo = size
				}
				s.mu.RLock()
				v := s.filtered(name, t, from, to, q.Get("status"), keep)
				b := make([]byte, 0, 64+served*600)
				b = append(b, `{"links":[],"content":`...)
				b = renderRows(b, t, page(v, off, served, desc), f)
				b = append(b, `,"page":`...)
				b = pageMeta(b, echo, v.len(), pg)
				b = append(b, '}')
				s.mu.RUnlock()
				s.store(key, b)
				writeBody(w, 200, b)
				return
			}
		}
	}
	adError(w, 400, "VALIDATION_ERROR", err.Error())
}

func (s *Server) companies(w http.ResponseWriter, r *http.Request, _ token) {
	if sf := r.URL.Query().Get("sortField"); sf != "" && sf != "NAME" {
		adError(w, 400, "VALIDATION_ERROR", "parameter 'sortField' must be NAME")
		return
	}
	s.pagedP1(w, r, "companies", 0, 0, "DESC", s.gen.company)
}

func (s *Server) users(w http.ResponseWriter, r *http.Request, _ token) {
	from, _, err := qms(r.URL.Query(), "lastModified")
	if err != nil {
		adError(w, 400, "VALIDATION_ERROR", err.Error())
		return
	}
	s.pagedP1(w, r, "users", from, 0, "ASC", s.gen.user)
}

func (s *Server) leads(w http.ResponseWriter, r *http.Request, t token) {
	q := r.URL.Query()
	for _, p := range []string{"context", "companyId"} {
		if q.Get(p) == "" {
			adError(w, 400, "VALIDATION_ERROR", fmt.Sprintf("Required parameter '%s' is missing", p))
			return
		}
	}
	switch q.Get("context") {
	case "RESELLER", "REFERRAL", "DEVELOPER", "RESELLER_MANAGER", "PARTNER", "ANONYMOUS":
	default:
		adError(w, 400, "VALIDATION_ERROR", "parameter 'context' is not a supported lead context")
		return
	}
	if role := contextRole(q.Get("context")); role != "" && !t.has(role) {
		forbidden(w, []string{role}) // [INFERRED] a context is only usable with its role
		return
	}
	from, _, err1 := qms(q, "fromDate")
	to, hasTo, err2 := qms(q, "toDate")
	if err1 != nil || err2 != nil {
		adError(w, 400, "VALIDATION_ERROR", fmt.Sprint(firstErr(err1, err2)))
		return
	}
	end := int64(0)
	if hasTo {
		end = to + 1 // inclusive upper bound
	}
	if s.cfg.LeadFromDateUnit == "seconds" {
		from *= 1000
		if hasTo {
			end = (to + 1) * 1000 // through the last millisecond of that second
		}
	}
	s.pagedP1(w, r, "leads", from, end, "DESC", s.gen.lead)
}

// events serves GET /api/channel/v1/events (§2.9): fromDate and toDate bound creationDate
// (epoch ms, both inclusive), zero-based page/size, sortOrder ASC by default.
func (s *Server) events(w http.ResponseWriter, r *http.Request, _ token) {
	q := r.URL.Query()
	from, _, err1 := qms(q, "fromDate")
	to, hasTo, err2 := qms(q, "toDate")
	if err := firstErr(err1, err2); err != nil {
		adError(w, 400, "VALIDATION_ERROR", err.Error())
		return
	}
	end := int64(0)
	if hasTo {
		end = to + 1 // inclusive upper bound
	}
	s.pagedP1(w, r, "events", from, end, "ASC", s.gen.event)
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func (s *Server) invoices(w http.ResponseWriter, r *http.Request, _ token) {
	q := r.URL.Query()
	start, err := qint(q, "start", 0, 0, math.MaxInt32)
	count, err2 := qint(q, "count", 250, 1, 250)
	from, _, err3 := qms(q, "fromDate")
	to, hasTo, err4 := qms(q, "toDate")
	desc, err5 := sortDesc(q, "ASC")
	keep, err6 := s.statusOf("invoices", q.Get("status"))
	if err := firstErr(err, err2, err3, err4, err5, err6); err != nil {
		adError(w, 400, "VALIDATION_ERROR", err.Error())
		return
	}
	key := r.URL.String()
	if s.cached(w, key) {
		return
	}
	end := int64(0)
	if hasTo {
		end = to + 1
	}
	t := s.tables["invoices"]
	count = s.pageCap("invoices", count)
	if s.crossPage(start) {
		start--
	}
	s.midList(t, func() listing { return t.window(from, end) }, start, count)
	s.mu.RLock()
	rows := page(s.filtered("invoices", t, from, end, q.Get("status"), keep), start, count, desc)
	var b []byte
	if len(rows) > 0 {
		b = renderRows(make([]byte, 0, len(rows)*700), t, rows, s.gen.invoice)
	}
	s.mu.RUnlock()
	if len(rows) == 0 {
		w.WriteHeader(http.StatusNoContent) // documented: nothing matches
		return
	}
	s.store(key, b)
	writeBody(w, 200, b)
}

// createdOnBounds parses the repeated createdOn=gte(ms) / lte(ms) parameters.
func createdOnBounds(vals []string) (from, to int64, err error) {
	for _, v := range vals {
		var op string
		switch {
		case strings.HasPrefix(v, "gte(") && strings.HasSuffix(v, ")"):
			op = "gte"
		case strings.HasPrefix(v, "lte(") && strings.HasSuffix(v, ")"):
			op = "lte"
		default:
			return 0, 0, fmt.Errorf("parameter 'createdOn' must be gte([timestamp]) or lte([timestamp]), got %q", v)
		}
		n, perr := strconv.ParseInt(v[4:len(v)-1], 10, 64)
		if perr != nil {
			return 0, 0, fmt.Errorf("parameter 'createdOn' has a bad timestamp in %q", v)
		}
		if op == "gte" {
			from = n
		} else {
			to = n + 1
		}
	}
	return from, to, nil
}

func (s *Server) opportunities(w http.ResponseWriter, r *http.Request, _ token) {
	if r.Header.Get("Accept-Language") == "" {
		adError(w, 400, "BAD_REQUEST", "Required: Accept-Language header with Locale format. For example: en-US")
		return
	}
	s.opportunityPage(w, r, s.gen.opportunity)
}

// opportunityPage serves a page of the P2 opportunities listing (assistedSales, appReseller),
// each row rendered by render.
func (s *Server) opportunityPage(w http.ResponseWriter, r *http.Request, render renderFn) {
	q := r.URL.Query()
	number, err := qint(q, "number", 1, 1, math.MaxInt32)
	size, err2 := qint(q, "size", 10, 1, 250)
	from, to, err3 := createdOnBounds(q["createdOn"])
	desc := false
	var err4 error
	switch q.Get("sort") {
	case "", "+createdOn":
	case "-createdOn":
		desc = true
	default:
		err4 = fmt.Errorf("parameter 'sort' must be +createdOn or -createdOn, got %q", q.Get("sort"))
	}
	keep, err5 := s.statusOf("opportunities", q.Get("status"))
	if err := firstErr(err, err2, err3, err4, err5); err != nil {
		adError(w, 400, "VALIDATION_ERROR", err.Error())
		return
	}
	key := r.URL.String()
	if s.cached(w, key) {
		return
	}
	t := s.tables["opportunities"]
	served := s.pageCap("opportunities", size)
	off := (number - 1) * served
	if s.crossPage(off) {
		off--
	}
	s.midList(t, func() listing { return t.window(from, to) }, off, served)
	echo := served
	if s.cfg.Hostile.CapHidden {
		echo = size
	}
	s.mu.RLock()
	v := s.filtered("opportunities", t, from, to, q.Get("status"), keep)
	b := make([]byte, 0, 64+served*900)
	b = append(b, `{"page":`...)
	b = pageMeta(b, echo, v.len(), number)
	b = append(b, `,"content":`...)
	b = renderRows(b, t, page(v, off, served, desc), render)
	b = append(b, '}')
	s.mu.RUnlock()
	s.store(key, b)
	writeBody(w, 200, b)
}

// ---- HighLevel ----

func (s *Server) hlToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		hlError(w, 400, "malformed form body")
		return
	}
	for _, f := range []string{"client_id", "client_secret", "grant_type"} {
		if r.PostFormValue(f) == "" {
			hlError(w, 422, f+" should not be empty")
			return
		}
	}
	if r.PostFormValue("client_id") != DemoHLClientID || r.PostFormValue("client_secret") != DemoHLClientSecret {
		hlError(w, 401, "Invalid client credentials")
		return
	}
	if gt := r.PostFormValue("grant_type"); gt != "client_credentials" {
		s.hlGrant(w, r, gt) // authorization_code and refresh_token: see oauth.go
		return
	}
	s.writeAgencyToken(w, false)
}

func (s *Server) hlAuth(kind string, h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Version") != HLVersion {
			hlError(w, 400, "Version header is missing or not "+HLVersion)
			return
		}
		t, why := s.lookup(r)
		switch {
		case why != "":
			hlError(w, 401, "Invalid JWT")
			return
		case t.kind != kind:
			hlError(w, 401, "The token is not authorized for this scope.")
			return
		}
		if s.cfg.limited() {
			key := DemoHLAppID + " company " + DemoHLCompanyID
			if t.kind == "hl-location" {
				key = DemoHLAppID + " location " + s.locations[t.location].id
			}
			s.limMu.Lock()
			win := s.hlWindows[key]
			if win == nil {
				win = &fixedWindow{max: s.cfg.HLBurst, daily: s.cfg.HLDaily,
					interval: time.Duration(float64(s.cfg.HLInterval) / s.cfg.Speed),
					day:      time.Duration(float64(24*time.Hour) / s.cfg.Speed)}
				s.hlWindows[key] = win
			}
			s.limMu.Unlock()
			ok, wait, remaining, daily := win.take(time.Now())
			hd := w.Header()
			hd.Set("X-RateLimit-Limit-Daily", strconv.Itoa(s.cfg.HLDaily))
			hd.Set("X-RateLimit-Daily-Remaining", strconv.Itoa(daily))
			hd.Set("X-RateLimit-Interval-Milliseconds", strconv.FormatInt(win.interval.Milliseconds(), 10))
			hd.Set("X-RateLimit-Max", strconv.Itoa(s.cfg.HLBurst))
			hd.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
			if !ok {
				s.stats.throttled.Add(1)
				hd.Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
				writeJSON(w, 429, map[string]any{"statusCode": 429, "message": "Too many requests", "error": "Too Many Requests"})
				return
			}
		}
		h(w, r, t)
	}
}

func (s *Server) hlLocationToken(w http.ResponseWriter, r *http.Request, _ token) {
	if err := r.ParseForm(); err != nil {
		hlError(w, 400, "malformed form body")
		return
	}
	cid, lid := r.PostFormValue("companyId"), r.PostFormValue("locationId")
	if cid == "" || lid == "" {
		hlError(w, 422, "companyId and locationId should not be empty")
		return
	}
	if cid != DemoHLCompanyID {
		hlError(w, 400, "companyId does not match the agency token")
		return
	}
	for k, loc := range s.locations {
		if loc.id == lid && loc.installed {
			tok := s.issue(token{kind: "hl-location", client: DemoHLClientID, location: k})
			writeJSON(w, 200, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(s.cfg.TokenTTL.Seconds()),
				"scope": "charges.readonly", "locationId": lid, "userId": "u1C08ntBrFjLS0elLIYU", "appId": DemoHLAppID})
			return
		}
	}
	hlError(w, 400, "The app is not installed on location "+lid)
}

func (s *Server) installedLocations(w http.ResponseWriter, r *http.Request, _ token) {
	q := r.URL.Query()
	if q.Get("companyId") == "" || q.Get("appId") == "" {
		hlError(w, 422, "companyId and appId are required")
		return
	}
	skip, err := qint(q, "skip", 0, 0, math.MaxInt32)
	limit, err2 := qint(q, "limit", 20, 1, 500)
	if err := firstErr(err, err2); err != nil {
		hlError(w, 422, err.Error())
		return
	}
	if q.Get("companyId") != DemoHLCompanyID || q.Get("appId") != DemoHLAppID {
		writeJSON(w, 200, map[string]any{"locations": []any{}, "total": 0, "count": 0, "installToFutureLocations": false})
		return
	}
	onlyInstalled := q.Get("isInstalled") == "true"
	var match []int
	for k, loc := range s.locations {
		if onlyInstalled && !loc.installed {
			continue
		}
		match = append(match, k)
	}
	limit = s.pageCap("locations", limit)
	if s.crossPage(skip) {
		skip--
	}
	if skip < len(match) {
		match = match[skip:min(len(match), skip+limit)]
	} else {
		match = nil
	}
	b := []byte(`{"locations":[`)
	s.mu.RLock()
	for n, k := range match {
		if n > 0 {
			b = append(b, ',')
		}
		b = s.gen.location(b, s.locations[k], k)
	}
	s.mu.RUnlock()
	b = fmt.Appendf(b, `],"total":%d,"count":%d,"installToFutureLocations":true}`, len(s.locations), len(s.locations))
	writeBody(w, 200, b)
}

func parseHLDate(v string) (int64, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, fmt.Errorf("%q is not an ISO-8601 date", v)
}

func (s *Server) charges(w http.ResponseWriter, r *http.Request, t token) {
	q := r.URL.Query()
	skip, err := qint(q, "skip", 0, 0, math.MaxInt32)
	limit, err2 := qint(q, "limit", 10, 1, 100)
	if err := firstErr(err, err2); err != nil {
		hlError(w, 422, err.Error())
		return
	}
	var from, to int64
	if v := q.Get("startDate"); v != "" {
		ms, err := parseHLDate(v)
		if err != nil {
			hlError(w, 422, "startDate: "+err.Error())
			return
		}
		from = ms + 1 // "AFTER": strictly later
	}
	if v := q.Get("endDate"); v != "" {
		ms, err := parseHLDate(v)
		if err != nil {
			hlError(w, 422, "endDate: "+err.Error())
			return
		}
		to = ms // "BEFORE": strictly earlier
	}
	key := r.URL.String() + "|" + strconv.Itoa(t.location)
	if s.cached(w, key) {
		return
	}
	loc := s.locations[t.location]
	served := s.pageCap("charges", limit)
	if s.crossPage(skip) {
		skip--
	}
	s.midList(loc.charges, func() listing { return loc.charges.window(from, to) }, skip, served)
	s.mu.RLock()
	v := loc.charges.window(from, to)
	rows := v.rows(skip, served)
	b := make([]byte, 0, 64+served*600)
	if loc.chargeShape != chargesBare {
		b = append(b, `{"charges":`...)
	}
	b = append(b, '[')
	for k, i := range rows {
		if k > 0 {
			b = append(b, ',')
		}
		b = s.gen.charge(b, loc.charges, i, loc.id, DemoHLAppID)
	}
	b = append(b, ']')
	switch loc.chargeShape {
	case chargesWrapped:
		b = fmt.Appendf(b, `,"count":%d,"pagination":{"total":%d,"skip":%d,"limit":%d}}`, v.len(), v.len(), skip, limit)
	case chargesNoTotal:
		b = append(b, '}')
	}
	s.mu.RUnlock()
	s.store(key, b)
	writeBody(w, 200, b)
}
