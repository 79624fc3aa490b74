package apisim

import (
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestHostile_ProfileAndValidation(t *testing.T) {
	s, err := New(Config{Profile: "hostile"})
	if err != nil {
		t.Fatal(err)
	}
	want := HostileFaults()
	want.SlowDelay = s.cfg.Faults.SlowDelay
	if s.cfg.Faults != want || s.cfg.Hostile.PageCap["invoices"] != 100 || !s.cfg.Hostile.LateUpdates || !s.cfg.limited() || !s.cfg.varied() {
		t.Fatalf("hostile profile: faults %+v, hostile %+v", s.cfg.Faults, s.cfg.Hostile)
	}
	if f := HostileFaults(); f.MidListUpdate == 0 || f.MidListInsert == 0 || f.MidListDelete == 0 || f.CrossPageDuplicate == 0 ||
		f.ServerError != ChaosFaults().ServerError || f.PageDrift != ChaosFaults().PageDrift {
		t.Fatalf("hostile faults %+v should be chaos's plus changes while paging", f)
	}
	// Knobs set explicitly are kept; any profile takes them.
	s, _ = New(Config{Profile: "hostile", Hostile: Hostile{NoTotals: 1}})
	if s.cfg.Hostile.PageCap != nil || s.cfg.Hostile.NoTotals != 1 {
		t.Fatalf("explicit hostile knobs replaced: %+v", s.cfg.Hostile)
	}
	for _, bad := range []Hostile{{PageCap: map[string]int{"payments": 5}}, {PageCap: map[string]int{"users": -1}},
		{BareArrayCharges: 1.5}, {UsersWithoutTimestamps: -0.1}, {LateArrivals: 2}} {
		if _, err := New(Config{Profile: "fast", Hostile: bad}); err == nil {
			t.Fatalf("%+v accepted", bad)
		}
	}
	if !slices.Contains(Profiles, "hostile") {
		t.Fatal("hostile is not listed in Profiles")
	}
}

// getJSON fetches u and decodes its body (a bare array or an object).
func getJSON(t *testing.T, u string, hdr map[string]string) (int, any) {
	t.Helper()
	r := do(t, "GET", u, hdr, nil)
	var v any
	if len(r.body) > 0 {
		if err := json.Unmarshal(r.body, &v); err != nil {
			t.Fatalf("%s: %v: %.200s", u, err, r.body)
		}
	}
	return r.status, v
}

func TestHostile_PageCapsPerEndpoint(t *testing.T) {
	for _, hidden := range []bool{false, true} {
		caps := map[string]int{"companies": 30, "users": 20, "leads": 25, "opportunities": 15, "events": 35, "invoices": 40, "charges": 10, "locations": 2}
		s := testSim(t, Config{Seed: 3, Scale: 400, Locations: 5, Profile: "fast", Hostile: Hostile{PageCap: caps, CapHidden: hidden}})
		partner := partnerToken(t, s)
		user := adToken(t, s, url.Values{"grant_type": {"password"}, "username": {DemoLeadUser}, "password": {DemoLeadPassword}, "scope": {"ROLE_RESELLER_MANAGER"}})
		hdr := func(tok string) map[string]string {
			return map[string]string{"Authorization": "Bearer " + tok, "Accept-Language": "en-US", "Version": HLVersion}
		}
		for stream, u := range map[string]string{
			"companies":     "/api/account/v2/companies?size=250&page=1",
			"users":         "/api/account/v2/users?size=250&page=1",
			"leads":         "/api/lead/v2/leads?context=RESELLER_MANAGER&companyId=x&size=250&page=1",
			"opportunities": "/api/assistedSales/v1/opportunities?size=250&number=2",
			"events":        "/api/channel/v1/events?size=250&page=1",
		} {
			tok := partner
			if stream == "leads" {
				tok = user
			}
			_, v := getJSON(t, s.URL()+u, hdr(tok))
			body := v.(map[string]any)
			meta := body["page"].(map[string]any)
			n := len(body["content"].([]any))
			wantSize, wantPages := caps[stream], (400+caps[stream]-1)/caps[stream]
			if hidden {
				wantSize, wantPages = 250, 2
			}
			if n != caps[stream] || meta["totalElements"] != 400.0 || meta["size"] != float64(wantSize) || meta["totalPages"] != float64(wantPages) {
				t.Fatalf("hidden=%v %s: %d rows, page %v; want %d rows, size %d, totalPages %d, totalElements 400", hidden, stream, n, meta, caps[stream], wantSize, wantPages)
			}
		}
		_, v := getJSON(t, s.URL()+"/api/billing/v1/invoices?count=250&start=0", hdr(partner))
		if n := len(v.([]any)); n != 40 {
			t.Fatalf("invoices: %d rows, want the cap 40", n)
		}
		agency := hlAgency(t, s)
		_, v = getJSON(t, s.URL()+"/oauth/installedLocations?companyId="+DemoHLCompanyID+"&appId="+DemoHLAppID+"&limit=100", hdr(agency))
		if n := len(v.(map[string]any)["locations"].([]any)); n != 2 {
			t.Fatalf("locations: %d, want the cap 2", n)
		}
		_, v = getJSON(t, s.URL()+"/marketplace/billing/charges?limit=100", hdr(hlLocation(t, s, agency, s.locations[0].id)))
		if n := len(v.(map[string]any)["charges"].([]any)); n != 10 {
			t.Fatalf("charges: %d, want the cap 10", n)
		}
	}
}

func TestHostile_BareArrayAndTotalLessChargesPerLocation(t *testing.T) {
	s := testSim(t, Config{Seed: 3, Scale: 600, Locations: 6, Profile: "fast", Hostile: Hostile{BareArrayCharges: 0.34, NoTotals: 0.5}})
	agency := hlAgency(t, s)
	shapes := map[int]int{}
	for k, loc := range s.locations {
		shapes[loc.chargeShape]++
		if !loc.installed {
			continue
		}
		_, v := getJSON(t, s.URL()+"/marketplace/billing/charges?limit=100&skip=0", map[string]string{
			"Authorization": "Bearer " + hlLocation(t, s, agency, loc.id), "Version": HLVersion})
		switch loc.chargeShape {
		case chargesBare:
			if _, ok := v.([]any); !ok {
				t.Fatalf("location %d: %T, want a bare array", k, v)
			}
		case chargesNoTotal:
			o := v.(map[string]any)
			if _, ok := o["charges"].([]any); !ok || o["count"] != nil || o["pagination"] != nil {
				t.Fatalf("location %d: %v, want charges without count or pagination", k, o)
			}
		default:
			o := v.(map[string]any)
			if o["pagination"].(map[string]any)["total"] != float64(loc.charges.live()) {
				t.Fatalf("location %d: %v, want pagination.total", k, o["pagination"])
			}
		}
	}
	// 0.34 of 6 spread from location 0: 0, 2, 5; half of the other three (the 1st and 3rd).
	if shapes[chargesBare] != 3 || shapes[chargesNoTotal] != 2 || shapes[chargesWrapped] != 1 || s.locations[0].chargeShape != chargesBare ||
		s.locations[1].chargeShape != chargesNoTotal || s.locations[3].chargeShape != chargesWrapped {
		t.Fatalf("shapes %v: want locations 0, 2, 5 bare, 1 and 4 without totals, 3 as the spec has it", shapes)
	}
	for _, p := range []float64{0, 0.1, 0.5, 1} {
		n := 0
		for k := range 100 {
			if spread(k, p) {
				n++
			}
		}
		if n != int(p*100) {
			t.Fatalf("spread %g picks %d of 100", p, n)
		}
	}
}

func TestHostile_UsersWithoutTimestamps(t *testing.T) {
	s := testSim(t, Config{Seed: 4, Scale: 1000, Profile: "fast", Hostile: Hostile{UsersWithoutTimestamps: 0.5}})
	since := s.Now().Add(time.Minute)
	s.Advance(3 * time.Hour)
	rows := rowsOf(t, s, "users")
	hidden, changedHidden := 0, 0
	for _, r := range rows {
		_, inValues := r.Values["lastModified"]
		inRecord := strings.Contains(string(r.Record), `"lastModified"`)
		if inValues != inRecord {
			t.Fatalf("user %s: lastModified in the record %v, in Values %v", r.Key, inRecord, inValues)
		}
		if !inRecord {
			hidden++
		}
	}
	if hidden < 400 || hidden > 600 {
		t.Fatalf("%d of 1000 users without lastModified, want about half", hidden)
	}
	// The filter still works on the internal modification time.
	tok := partnerToken(t, s)
	_, v := getJSON(t, s.URL()+"/api/account/v2/users?size=250&lastModified="+strconv.FormatInt(since.UnixMilli(), 10), bearer(tok))
	content := v.(map[string]any)["content"].([]any)
	tb := s.tables["users"]
	want := 0
	for i := 0; i < tb.count; i++ {
		if !tb.isDeleted(i) && tb.modified(i) >= since.UnixMilli() {
			want++
			if s.gen.userHidesTime(i) {
				changedHidden++
			}
		}
	}
	if len(content) != want || want == 0 || changedHidden == 0 {
		t.Fatalf("lastModified filter: %d users, want %d (%d of them without lastModified)", len(content), want, changedHidden)
	}
	if st := s.Truth(0).Streams["users"]; st.Live != len(rows) {
		t.Fatalf("truth %d users, rows %d", st.Live, len(rows))
	}
	all := testSim(t, Config{Seed: 4, Scale: 50, Profile: "fast", Hostile: Hostile{UsersWithoutTimestamps: 1}})
	for _, r := range rowsOf(t, all, "users") {
		if _, ok := r.Values["lastModified"]; ok {
			t.Fatalf("UsersWithoutTimestamps 1: user %s has lastModified", r.Key)
		}
	}
}

func TestHostile_LateUpdatesReachOldRows(t *testing.T) {
	oldest := func(late bool) (int64, int) {
		s := testSim(t, Config{Seed: 9, Scale: 3000, Profile: "fast", Hostile: Hostile{LateUpdates: late}})
		s.Advance(24 * time.Hour)
		var maxAge int64
		paidLate := 0
		t0 := s.tables["invoices"]
		for name, tb := range map[string]*table{"invoices": t0, "leads": s.tables["leads"], "opportunities": s.tables["opportunities"]} {
			for i := range tb.version {
				age := (s.now - tb.created(i)) / dayMs
				maxAge = max(maxAge, age)
				if name == "invoices" && age >= 45 && invoiceStatus(tb, s.gen.seed, s.gen.start, i) == "PAID" {
					paidLate++
				}
			}
		}
		return maxAge, paidLate
	}
	if age, _ := oldest(false); age > 31 {
		t.Fatalf("without LateUpdates an update reached a row %d days old", age)
	}
	age, paidLate := oldest(true)
	if age < 45 || paidLate == 0 {
		t.Fatalf("with LateUpdates the oldest updated row is %d days old, %d invoices paid 45+ days after creation", age, paidLate)
	}
}

func TestHostile_LateArrivalsAreBackdatedInsideTheListing(t *testing.T) {
	s := testSim(t, Config{Seed: 5, Scale: 500, Locations: 1, Profile: "fast", Hostile: Hostile{LateArrivals: 1}})
	s.Advance(12 * time.Hour)
	now := s.now
	for _, tb := range []*table{s.tables["users"], s.locations[0].charges} {
		late := 0
		for i := tb.base; i < tb.count; i++ {
			if d := now - tb.modified(i); d >= int64(time.Hour/time.Millisecond) && d <= int64(7*time.Hour/time.Millisecond) {
				late++
			}
		}
		if late == 0 || tb.count == tb.base {
			t.Fatalf("%s: %d inserts, %d back-dated 1-6 h", tb.name, tb.count-tb.base, late)
		}
		if !slices.IsSortedFunc(tb.tail, func(a, b tailEntry) int { return int(a.mod - b.mod) }) {
			t.Fatalf("%s: the tail is not ordered by modification time", tb.name)
		}
	}
	// Served in modification order: charges' updatedAt never decreases along the listing.
	rows := rowsOf(t, s, "charges")
	byKey := map[string]int64{}
	for _, r := range rows {
		byKey[r.Key] = r.Values["updatedAt"].(int64)
	}
	agency := hlAgency(t, s)
	_, v := getJSON(t, s.URL()+"/marketplace/billing/charges?limit=100&startDate="+url.QueryEscape(isoMillis(now-13*3600*1000)),
		map[string]string{"Authorization": "Bearer " + hlLocation(t, s, agency, s.locations[0].id), "Version": HLVersion})
	var prev int64
	list := v.(map[string]any)["charges"].([]any)
	for _, c := range list {
		at := byKey[c.(map[string]any)["chargeId"].(string)]
		if at < prev {
			t.Fatal("a back-dated charge is listed after a later one")
		}
		prev = at
	}
	if len(list) == 0 {
		t.Fatal("no charge changed in the last 13 hours")
	}
}

// pageIDs fetches one P1 page of companies and returns the uuids on it.
func pageIDs(t *testing.T, s *Server, tok string, page, size int) []string {
	t.Helper()
	_, v := getJSON(t, s.URL()+"/api/account/v2/companies?sortOrder=ASC&size="+strconv.Itoa(size)+"&page="+strconv.Itoa(page), bearer(tok))
	var ids []string
	for _, c := range v.(map[string]any)["content"].([]any) {
		ids = append(ids, c.(map[string]any)["uuid"].(string))
	}
	return ids
}

func TestHostile_CrossPageDuplicates(t *testing.T) {
	s := testSim(t, Config{Seed: 2, Scale: 300, Profile: "fast", Faults: Faults{CrossPageDuplicate: 1}})
	tok := partnerToken(t, s)
	p0, p1 := pageIDs(t, s, tok, 0, 100), pageIDs(t, s, tok, 1, 100)
	if len(p0) != 100 || len(p1) != 100 || p1[0] != p0[99] {
		t.Fatalf("page 1 should start with the row that ended page 0")
	}
	if s.Snapshot().Faults["cross_page_duplicate"] != 1 {
		t.Fatalf("faults %v: want one cross-page duplicate (page 0 has none)", s.Snapshot().Faults)
	}
}

func TestHostile_ChangesWhilePaging(t *testing.T) {
	t.Run("deletes", func(t *testing.T) {
		s := testSim(t, Config{Seed: 2, Scale: 300, Profile: "fast", Faults: Faults{MidListDelete: 1}})
		tok := partnerToken(t, s)
		for k := 1; k <= 3; k++ {
			pageIDs(t, s, tok, 0, 50)
			if n := len(rowsOf(t, s, "companies")); n != 300-k {
				t.Fatalf("after %d page requests %d companies, want %d", k, n, 300-k)
			}
		}
	})
	t.Run("inserts", func(t *testing.T) {
		s := testSim(t, Config{Seed: 2, Scale: 300, Profile: "fast", Faults: Faults{MidListInsert: 1}})
		r := do(t, "GET", s.URL()+"/api/billing/v1/invoices?count=50&start=0", bearer(partnerToken(t, s)), nil)
		if r.status != 200 || s.tables["invoices"].live() != 301 {
			t.Fatalf("invoices: %d live after one page, want 301", s.tables["invoices"].live())
		}
	})
	t.Run("updates on a later page are read with their new values", func(t *testing.T) {
		s := testSim(t, Config{Seed: 2, Scale: 300, Profile: "fast", Faults: Faults{MidListUpdate: 1}})
		tok := partnerToken(t, s)
		before := rowsOf(t, s, "companies")
		pageIDs(t, s, tok, 0, 50)
		after := rowsOf(t, s, "companies")
		changed := -1
		for k := range before {
			if string(before[k].Record) != string(after[k].Record) {
				if changed >= 0 {
					t.Fatal("more than one row changed")
				}
				changed = k
			}
		}
		if changed < 0 || s.tables["companies"].version == nil || len(s.tables["companies"].version) != 1 {
			t.Fatalf("no single row changed")
		}
	})
	t.Run("an update behind the reader moves a user to the end", func(t *testing.T) {
		s := testSim(t, Config{Seed: 2, Scale: 300, Profile: "fast", Faults: Faults{MidListUpdate: 1}})
		tok := partnerToken(t, s)
		// Page 5 of 50 has no later page: the update falls on an earlier one.
		_, v := getJSON(t, s.URL()+"/api/account/v2/users?sortField=DATE&sortOrder=ASC&size=50&page=5", bearer(tok))
		if n := len(v.(map[string]any)["content"].([]any)); n != 50 {
			t.Fatalf("page 5: %d users", n)
		}
		tb := s.tables["users"]
		if len(tb.tail) != 1 || tb.tail[0].idx >= 250 {
			t.Fatalf("tail %v: want one user from pages 0-4 moved to the end", tb.tail)
		}
	})
}

func TestHostile_StatusFilters(t *testing.T) {
	s := testSim(t, Config{Seed: 7, Scale: 800, Profile: "fast"})
	s.Advance(24 * time.Hour)
	partner := partnerToken(t, s)
	user := adToken(t, s, url.Values{"grant_type": {"password"}, "username": {DemoLeadUser}, "password": {DemoLeadPassword}, "scope": {"ROLE_RESELLER_MANAGER"}})
	h := func(tok string) map[string]string {
		return map[string]string{"Authorization": "Bearer " + tok, "Accept-Language": "en-US"}
	}
	count := func(stream string, in ...string) int {
		n := 0
		for _, r := range rowsOf(t, s, stream) {
			if slices.Contains(in, r.Values["status"].(string)) {
				n++
			}
		}
		return n
	}
	for _, c := range []struct {
		status string
		in     []string
	}{{"SUBMITTED", []string{"SUBMITTED"}}, {"PENDING_FOR_MANAGERS", []string{"SUBMITTED", "PENDING_CONVERSION_APPROVAL"}},
		{"ACCEPTED_FOR_MANAGERS", []string{"ASSIGNED", "CONVERSION_APPROVED", "CONVERTED", "DELETED", "DISQUALIFIED", "LEGACY"}}} {
		_, v := getJSON(t, s.URL()+"/api/lead/v2/leads?context=RESELLER_MANAGER&companyId=x&size=10&status="+c.status, h(user))
		if got := v.(map[string]any)["page"].(map[string]any)["totalElements"]; got != float64(count("leads", c.in...)) || got == 0.0 {
			t.Fatalf("leads status=%s: totalElements %v, want %d", c.status, got, count("leads", c.in...))
		}
	}
	_, v := getJSON(t, s.URL()+"/api/assistedSales/v1/opportunities?size=10&status=PENDING_REVIEW", h(partner))
	if got := v.(map[string]any)["page"].(map[string]any)["totalElements"]; got != float64(count("opportunities", "PENDING_REVIEW")) {
		t.Fatalf("opportunities PENDING_REVIEW: %v", got)
	}
	n := 0
	for start := 0; ; {
		st, v := getJSON(t, s.URL()+"/api/billing/v1/invoices?count=100&status=UNPAID&start="+strconv.Itoa(start), h(partner))
		if st == 204 {
			break
		}
		for _, inv := range v.([]any) {
			if inv.(map[string]any)["status"] != "UNPAID" {
				t.Fatalf("status=UNPAID served %v", inv.(map[string]any)["status"])
			}
		}
		n += len(v.([]any))
		start += len(v.([]any))
	}
	if n != count("invoices", "UNPAID") || n == 0 {
		t.Fatalf("UNPAID invoices: %d served, %d in the source", n, count("invoices", "UNPAID"))
	}
	for _, u := range []string{"/api/billing/v1/invoices?status=OPEN", "/api/assistedSales/v1/opportunities?status=UNPAID"} {
		if r := do(t, "GET", s.URL()+u, h(partner), nil); r.status != 400 {
			t.Fatalf("%s: %d, want 400", u, r.status)
		}
	}
}
