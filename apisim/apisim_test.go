package apisim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testSim starts a simulator on loopback and returns it with a client.
func testSim(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, method, u string, hdr map[string]string, form url.Values) resp {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

func adToken(t *testing.T, s *Server, grant url.Values) string {
	t.Helper()
	req, _ := http.NewRequest("POST", s.URL()+"/oauth2/token", strings.NewReader(grant.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(DemoClientID, DemoClientSecret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		Scope       string `json:"scope"`
		TokenType   string `json:"token_type"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tr); err != nil || res.StatusCode != 200 {
		t.Fatalf("token: status %d, %v", res.StatusCode, err)
	}
	if tr.TokenType != "bearer" || tr.ExpiresIn <= 0 || (s.cfg.TokenTTL == 43199*time.Second && tr.ExpiresIn != 43199) {
		t.Fatalf("token response %+v: want bearer, expires_in 43199 (the documented 12 h)", tr)
	}
	return tr.AccessToken
}

func partnerToken(t *testing.T, s *Server) string {
	return adToken(t, s, url.Values{"grant_type": {"client_credentials"}, "scope": {"ROLE_PARTNER_READ"}})
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

type p1 struct {
	Links   []any             `json:"links"`
	Content []json.RawMessage `json:"content"`
	Page    struct {
		Size, TotalElements, TotalPages, Number int
	} `json:"page"`
}

func TestCompanies_PageShapeAndZeroBasedPaging(t *testing.T) {
	s := testSim(t, Config{Seed: 3, Scale: 120, Profile: "fast"})
	tok := partnerToken(t, s)
	seen := map[string]bool{}
	for page := 0; page < 3; page++ {
		r := do(t, "GET", s.URL()+"/api/account/v2/companies?page="+strconv.Itoa(page)+"&size=50&sortField=NAME&sortOrder=ASC", bearer(tok), nil)
		if r.status != 200 {
			t.Fatalf("page %d: status %d %s", page, r.status, r.body)
		}
		var p p1
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		if p.Page.TotalElements != 120 || p.Page.TotalPages != 3 || p.Page.Number != page || p.Links == nil {
			t.Fatalf("page meta %+v", p.Page)
		}
		want := []int{50, 50, 20}[page]
		if len(p.Content) != want {
			t.Fatalf("page %d has %d rows, want %d", page, len(p.Content), want)
		}
		for _, c := range p.Content {
			var m map[string]any
			_ = json.Unmarshal(c, &m)
			// Field names and JSON types of the documented company v2 body.
			if _, ok := m["uuid"].(string); !ok {
				t.Fatalf("uuid not a string: %s", c)
			}
			if _, ok := m["creationDate"].(float64); !ok {
				t.Fatalf("creationDate not epoch ms number: %s", c)
			}
			if _, ok := m["enabled"].(bool); !ok {
				t.Fatalf("enabled not bool: %s", c)
			}
			if _, ok := m["customAttributes"].([]any); !ok {
				t.Fatalf("customAttributes not array: %s", c)
			}
			seen[m["uuid"].(string)] = true
		}
	}
	if len(seen) != 120 {
		t.Fatalf("saw %d distinct companies, want 120", len(seen))
	}
}

func TestAuth_ErrorsAsDocumented(t *testing.T) {
	s := testSim(t, Config{Seed: 1, Scale: 10, Profile: "fast", TokenTTL: time.Hour})
	users := s.URL() + "/api/account/v2/users"
	if r := do(t, "GET", users, nil, nil); r.status != 401 || !strings.Contains(string(r.body), `"code":"UNAUTHORIZED"`) {
		t.Fatalf("missing token: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", users, bearer("nope"), nil); r.status != 401 {
		t.Fatalf("invalid token: %d", r.status)
	}
	tok := partnerToken(t, s)
	if r := do(t, "GET", users, bearer(tok), nil); r.status != 200 {
		t.Fatalf("valid token: %d", r.status)
	}
	s.Advance(2 * time.Hour) // past the token's lifetime
	if r := do(t, "GET", users, bearer(tok), nil); r.status != 401 {
		t.Fatalf("expired token: %d", r.status)
	}
	// Wrong client secret.
	req, _ := http.NewRequest("POST", s.URL()+"/oauth2/token", strings.NewReader("grant_type=client_credentials&scope=ROLE_PARTNER_READ"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(DemoClientID, "wrong")
	res, _ := http.DefaultClient.Do(req)
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Fatalf("bad secret: %d", res.StatusCode)
	}
	// Leads need a user-level token, context and companyId.
	tok = partnerToken(t, s)
	leads := s.URL() + "/api/lead/v2/leads"
	utok := adToken(t, s, url.Values{"grant_type": {"password"}, "username": {DemoLeadUser}, "password": {DemoLeadPassword}, "scope": {"ROLE_RESELLER_MANAGER"}})
	if r := do(t, "GET", leads+"?companyId=x", bearer(utok), nil); r.status != 400 || !strings.Contains(string(r.body), "context") {
		t.Fatalf("missing context: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", leads+"?context=RESELLER_MANAGER&companyId=x", bearer(tok), nil); r.status != 403 {
		t.Fatalf("partner token on leads: %d", r.status)
	}
	if r := do(t, "GET", leads+"?context=RESELLER_MANAGER&companyId=x", bearer(utok), nil); r.status != 200 {
		t.Fatalf("user token on leads: %d %s", r.status, r.body)
	}
	// Opportunities need Accept-Language.
	opp := s.URL() + "/api/assistedSales/v1/opportunities"
	if r := do(t, "GET", opp, bearer(tok), nil); r.status != 400 {
		t.Fatalf("no Accept-Language: %d", r.status)
	}
	if r := do(t, "GET", opp+"?number=0", map[string]string{"Authorization": "Bearer " + tok, "Accept-Language": "en-US"}, nil); r.status != 400 {
		t.Fatalf("number=0 (one-based): %d", r.status)
	}
}

func TestInvoices_StartCountAnd204(t *testing.T) {
	s := testSim(t, Config{Seed: 1, Scale: 30, Profile: "fast"})
	tok := partnerToken(t, s)
	u := s.URL() + "/api/billing/v1/invoices?sortField=DATE&sortOrder=ASC&count=20"
	r := do(t, "GET", u+"&start=0", bearer(tok), nil)
	var arr []map[string]any
	if err := json.Unmarshal(r.body, &arr); err != nil || len(arr) != 20 {
		t.Fatalf("first page: %d rows, %v", len(arr), err)
	}
	if _, ok := arr[0]["company"].(map[string]any)["-id"]; !ok {
		t.Fatalf("company link should use -id: %v", arr[0]["company"])
	}
	r = do(t, "GET", u+"&start=20", bearer(tok), nil)
	_ = json.Unmarshal(r.body, &arr)
	if len(arr) != 10 {
		t.Fatalf("short page: %d rows", len(arr))
	}
	if r := do(t, "GET", u+"&start=30", bearer(tok), nil); r.status != 204 || len(r.body) != 0 {
		t.Fatalf("past the end: %d %q, want 204 with no body", r.status, r.body)
	}
	// fromDate filters on creation date, inclusive.
	created := int64(arr[0]["creationDate"].(float64))
	r = do(t, "GET", u+"&start=0&fromDate="+strconv.FormatInt(created, 10), bearer(tok), nil)
	_ = json.Unmarshal(r.body, &arr)
	if len(arr) != 10 {
		t.Fatalf("fromDate: %d rows, want 10", len(arr))
	}
}

func TestOpportunities_CreatedOnFilterAndOneBasedPages(t *testing.T) {
	s := testSim(t, Config{Seed: 1, Scale: 25, Profile: "fast"})
	tok := partnerToken(t, s)
	h := map[string]string{"Authorization": "Bearer " + partnerToken(t, s), "Accept-Language": "en-US"}
	_ = tok
	u := s.URL() + "/api/assistedSales/v1/opportunities?size=10&sort=%2BcreatedOn"
	var body struct {
		Page    struct{ Number, Size, TotalElements, TotalPages int }
		Content []struct {
			ID        string `json:"id"`
			CreatedOn any    `json:"createdOn"`
		}
	}
	_ = json.Unmarshal(do(t, "GET", u+"&number=3", h, nil).body, &body)
	if body.Page.Number != 3 || body.Page.TotalPages != 3 || len(body.Content) != 5 {
		t.Fatalf("page 3: %+v with %d rows", body.Page, len(body.Content))
	}
	var ts int64
	switch v := body.Content[0].CreatedOn.(type) {
	case float64:
		ts = int64(v)
	case string:
		ts, _ = strconv.ParseInt(v, 10, 64)
	}
	q := url.Values{"createdOn": {"gte(" + strconv.FormatInt(ts, 10) + ")"}}
	_ = json.Unmarshal(do(t, "GET", u+"&number=1&"+q.Encode(), h, nil).body, &body)
	if body.Page.TotalElements != 5 {
		t.Fatalf("createdOn=gte: %d rows, want 5", body.Page.TotalElements)
	}
	if r := do(t, "GET", u+"&createdOn=after(1)", h, nil); r.status != 400 {
		t.Fatalf("bad createdOn syntax: %d", r.status)
	}
}

func TestRateLimit_AppDirectLeakyBucket(t *testing.T) {
	s := testSim(t, Config{Seed: 1, Scale: 10, Profile: "realistic"}) // 20 burst, 4/s
	tok := partnerToken(t, s)
	ok, limited := 0, 0
	var retryAfter string
	for i := 0; i < 30; i++ {
		r := do(t, "GET", s.URL()+"/api/account/v2/users?size=1", bearer(tok), nil)
		switch r.status {
		case 200:
			ok++
		case 429:
			limited++
			retryAfter = r.header.Get("Retry-After")
		}
	}
	if ok < 20 || ok > 22 || limited != 30-ok {
		t.Fatalf("30 instant requests: %d ok, %d limited; want about 20 ok (the bucket) and the rest 429", ok, limited)
	}
	if retryAfter == "" {
		t.Fatal("429 without Retry-After")
	}
	if st := s.Snapshot(); st.Throttled != limited || st.Requests["appdirect.users"]["429"] != limited {
		t.Fatalf("stats %+v disagree with %d 429s", st, limited)
	}
}

func hlAgency(t *testing.T, s *Server) string {
	t.Helper()
	r := do(t, "POST", s.URL()+"/oauth/token", nil, url.Values{"client_id": {DemoHLClientID}, "client_secret": {DemoHLClientSecret}, "grant_type": {"client_credentials"}, "user_type": {"Company"}})
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(r.body, &tr); err != nil || r.status != 200 {
		t.Fatalf("agency token: %d %s", r.status, r.body)
	}
	return tr.AccessToken
}

func hlLocation(t *testing.T, s *Server, agency, loc string) string {
	t.Helper()
	r := do(t, "POST", s.URL()+"/oauth/locationToken", map[string]string{"Authorization": "Bearer " + agency, "Version": HLVersion},
		url.Values{"companyId": {DemoHLCompanyID}, "locationId": {loc}})
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(r.body, &tr); err != nil || r.status != 200 {
		t.Fatalf("location token: %d %s", r.status, r.body)
	}
	return tr.AccessToken
}

func TestHighLevel_TokensChargesAndRateLimitHeaders(t *testing.T) {
	s := testSim(t, Config{Seed: 1, Scale: 300, Locations: 3, Profile: "realistic", HLBurst: 5})
	agency := hlAgency(t, s)
	hv := func(tok string) map[string]string {
		return map[string]string{"Authorization": "Bearer " + tok, "Version": HLVersion}
	}
	locURL := s.URL() + "/oauth/installedLocations?companyId=" + DemoHLCompanyID + "&appId=" + DemoHLAppID + "&isInstalled=true"
	if r := do(t, "GET", locURL, map[string]string{"Authorization": "Bearer " + agency}, nil); r.status != 400 {
		t.Fatalf("missing Version header: %d", r.status)
	}
	if r := do(t, "GET", s.URL()+"/oauth/installedLocations?appId=x", hv(agency), nil); r.status != 422 {
		t.Fatalf("missing companyId: %d", r.status)
	}
	r := do(t, "GET", locURL, hv(agency), nil)
	var locs struct {
		Locations []struct {
			ID string `json:"_id"`
		} `json:"locations"`
		Total int `json:"total"`
	}
	if err := json.Unmarshal(r.body, &locs); err != nil || len(locs.Locations) != 3 {
		t.Fatalf("locations: %d %s", r.status, r.body)
	}
	for _, h := range []string{"X-RateLimit-Limit-Daily", "X-RateLimit-Daily-Remaining", "X-RateLimit-Interval-Milliseconds", "X-RateLimit-Max", "X-RateLimit-Remaining"} {
		if r.header.Get(h) == "" {
			t.Fatalf("missing header %s", h)
		}
	}
	// Charges need a location token: the agency token is refused.
	charges := s.URL() + "/marketplace/billing/charges?skip=0&limit=100"
	if r := do(t, "GET", charges, hv(agency), nil); r.status != 401 {
		t.Fatalf("agency token on charges: %d", r.status)
	}
	loc := hlLocation(t, s, agency, locs.Locations[0].ID)
	r = do(t, "GET", charges, hv(loc), nil)
	var page struct {
		Charges    []map[string]any `json:"charges"`
		Pagination struct{ Total, Skip, Limit int }
	}
	if err := json.Unmarshal(r.body, &page); err != nil || page.Pagination.Total != 100 || len(page.Charges) != 100 {
		t.Fatalf("charges: %d, total %d, %d rows", r.status, page.Pagination.Total, len(page.Charges))
	}
	if page.Charges[0]["entityId"] != locs.Locations[0].ID {
		t.Fatalf("charge belongs to %v, want %s", page.Charges[0]["entityId"], locs.Locations[0].ID)
	}
	if r := do(t, "GET", charges+"&startDate=yesterday", hv(loc), nil); r.status != 422 {
		t.Fatalf("bad startDate: %d", r.status)
	}
	// Budget is per location: exhaust location 0 (burst 5), location 1 still answers.
	for i := 0; i < 6; i++ {
		r = do(t, "GET", charges, hv(loc), nil)
	}
	if r.status != 429 || r.header.Get("X-RateLimit-Remaining") != "0" || r.header.Get("Retry-After") == "" {
		t.Fatalf("over the burst: %d remaining=%s", r.status, r.header.Get("X-RateLimit-Remaining"))
	}
	loc1 := hlLocation(t, s, agency, locs.Locations[1].ID)
	if r := do(t, "GET", charges, hv(loc1), nil); r.status != 200 {
		t.Fatalf("another location's budget: %d", r.status)
	}
}

func TestClock_AdvanceInsertsUpdatesDeletesAndTruthFollows(t *testing.T) {
	s := testSim(t, Config{Seed: 5, Scale: 1000, Profile: "fast"})
	before := s.Truth(0)
	start := s.Now()
	s.Advance(24 * time.Hour) // 0.2%/h inserts, 0.4%/h updates, 0.05%/h deletes of 1000 rows
	after := s.Truth(start.UnixMilli())
	for _, name := range []string{"companies", "users", "invoices", "leads", "opportunities", "events"} {
		b, a := before.Streams[name], after.Streams[name]
		if a.Live != b.Live+48-12 {
			t.Errorf("%s: live %d -> %d, want +48 inserted -12 deleted", name, b.Live, a.Live)
		}
		if len(a.DeletedSince) != 12 {
			t.Errorf("%s: %d deleted ids reported, want 12", name, len(a.DeletedSince))
		}
		if a.VersionChecksum == b.VersionChecksum || a.MaxUpdatedMs <= b.MaxUpdatedMs {
			t.Errorf("%s: versions or max updated did not move", name)
		}
	}
	// Updated users move past the lastModified filter; deleted rows vanish from lists.
	tok := partnerToken(t, s)
	r := do(t, "GET", s.URL()+"/api/account/v2/users?size=250&lastModified="+strconv.FormatInt(start.UnixMilli(), 10), bearer(tok), nil)
	var p p1
	_ = json.Unmarshal(r.body, &p)
	if p.Page.TotalElements < 48 || p.Page.TotalElements > 48+96 {
		t.Fatalf("users changed since the advance: %d, want the inserts plus the surviving updates", p.Page.TotalElements)
	}
	r = do(t, "GET", s.URL()+"/api/account/v2/users?size=1", bearer(tok), nil)
	_ = json.Unmarshal(r.body, &p)
	if p.Page.TotalElements != after.Streams["users"].Live {
		t.Fatalf("users list total %d != truth live %d", p.Page.TotalElements, after.Streams["users"].Live)
	}
}

func TestDeterministic_SameSeedSameData(t *testing.T) {
	a := testSim(t, Config{Seed: 9, Scale: 50, Profile: "fast"})
	b := testSim(t, Config{Seed: 9, Scale: 50, Profile: "fast"})
	c := testSim(t, Config{Seed: 10, Scale: 50, Profile: "fast"})
	ta, tb, tc := a.Truth(0), b.Truth(0), c.Truth(0)
	for _, s := range Streams {
		if ta.Streams[s].VersionChecksum != tb.Streams[s].VersionChecksum {
			t.Errorf("%s differs between two simulators with the same seed", s)
		}
		if s != "invoices" && ta.Streams[s].IDChecksum == tc.Streams[s].IDChecksum { // invoice ids are sequential numbers
			t.Errorf("%s identical across different seeds", s)
		}
	}
}

func TestFaults_ChaosServesEveryFaultKind(t *testing.T) {
	s := testSim(t, Config{Seed: 2, Scale: 50, Profile: "chaos", Faults: Faults{ServerError: 0.1, Reset: 0.05, Truncated: 0.05,
		InvalidJSON: 0.05, Throttle: 0.1, PageDrift: 0.05, RevokeAfter: 25, Slow: 0.02, SlowDelay: time.Millisecond}})
	tok := ""
	dates := 0
	for i := 0; i < 300; i++ {
		if tok == "" {
			req, _ := http.NewRequest("POST", s.URL()+"/oauth2/token", strings.NewReader("grant_type=client_credentials&scope=ROLE_PARTNER_READ"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(DemoClientID, DemoClientSecret)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				continue
			}
			var tr struct {
				AccessToken string `json:"access_token"`
			}
			_ = json.NewDecoder(res.Body).Decode(&tr)
			res.Body.Close()
			tok = tr.AccessToken
			continue
		}
		req, _ := http.NewRequest("GET", s.URL()+"/api/account/v2/companies?size=5", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			continue // reset
		}
		_, _ = io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == 401 {
			tok = ""
		}
		if ra := res.Header.Get("Retry-After"); ra != "" && strings.Contains(ra, "GMT") {
			dates++
		}
	}
	st := s.Snapshot()
	for _, kind := range []string{"reset", "truncated", "invalid_json", "throttle", "page_drift", "token_revoked", "slow"} {
		if st.Faults[kind] == 0 {
			t.Errorf("fault %s never served: %v", kind, st.Faults)
		}
	}
	if st.Faults["http_500"]+st.Faults["http_502"]+st.Faults["http_503"]+st.Faults["http_504"] == 0 || dates == 0 {
		t.Errorf("no 5xx or no HTTP-date Retry-After: %v, %d dates", st.Faults, dates)
	}
}

func TestScale_TenMillionRowsFirstPageFast(t *testing.T) {
	s := testSim(t, Config{Seed: 1, Scale: 10_000_000, Profile: "fast"})
	tok := partnerToken(t, s)
	r := do(t, "GET", s.URL()+"/api/account/v2/users?size=250&page=39999", bearer(tok), nil)
	var p p1
	if err := json.Unmarshal(r.body, &p); err != nil || len(p.Content) != 250 || p.Page.TotalElements != 10_000_000 {
		t.Fatalf("last page of 10M: %d rows, total %d, %v", len(p.Content), p.Page.TotalElements, err)
	}
}
