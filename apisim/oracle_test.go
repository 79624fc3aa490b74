package apisim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// servedRecords pages through every list endpoint as a client would and returns, per stream,
// the raw bytes of every record served.
func servedRecords(t *testing.T, s *Server) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	partner := partnerToken(t, s)
	user := adToken(t, s, url.Values{"grant_type": {"password"}, "username": {DemoLeadUser}, "password": {DemoLeadPassword}, "scope": {"ROLE_RESELLER_MANAGER"}})
	h := func(tok string) map[string]string {
		return map[string]string{"Authorization": "Bearer " + tok, "Accept-Language": "en-US", "Version": HLVersion}
	}
	content := func(stream string, body []byte, key string) int {
		var recs []json.RawMessage
		if bytes.HasPrefix(body, []byte("[")) { // a bare array (Hostile.BareArrayCharges)
			if err := json.Unmarshal(body, &recs); err != nil {
				t.Fatalf("%s: %v: %.200s", stream, err, body)
			}
		} else {
			var page map[string]json.RawMessage
			if err := json.Unmarshal(body, &page); err != nil {
				t.Fatalf("%s: %v: %.200s", stream, err, body)
			}
			if err := json.Unmarshal(page[key], &recs); err != nil {
				t.Fatalf("%s: %v", stream, err)
			}
		}
		for _, r := range recs {
			out[stream] = append(out[stream], string(r))
		}
		return len(recs)
	}
	for stream, path := range map[string]string{
		"companies": "/api/account/v2/companies?sortField=NAME&sortOrder=ASC&size=250&page=",
		"users":     "/api/account/v2/users?sortField=DATE&sortOrder=ASC&size=250&page=",
		"leads":     "/api/lead/v2/leads?context=RESELLER_MANAGER&companyId=x&sortOrder=ASC&size=250&page=",
		"events":    "/api/channel/v1/events?sortOrder=ASC&size=250&page=",
	} {
		tok := partner
		if stream == "leads" {
			tok = user
		}
		for pg := 0; ; pg++ {
			r := do(t, "GET", s.URL()+path+strconv.Itoa(pg), h(tok), nil)
			if r.status != 200 || content(stream, r.body, "content") == 0 {
				break
			}
		}
	}
	for n := 1; ; n++ {
		r := do(t, "GET", s.URL()+"/api/assistedSales/v1/opportunities?sort=%2BcreatedOn&size=250&number="+strconv.Itoa(n), h(partner), nil)
		if r.status != 200 || content("opportunities", r.body, "content") == 0 {
			break
		}
	}
	// Offsets advance by the rows received (a page may be capped below the size asked).
	for start := 0; ; {
		r := do(t, "GET", s.URL()+"/api/billing/v1/invoices?sortField=DATE&sortOrder=ASC&count=250&start="+strconv.Itoa(start), h(partner), nil)
		if r.status == 204 {
			break
		}
		var recs []json.RawMessage
		if err := json.Unmarshal(r.body, &recs); err != nil {
			t.Fatalf("invoices: %d %v", r.status, err)
		}
		for _, rec := range recs {
			out["invoices"] = append(out["invoices"], string(rec))
		}
		start += len(recs)
	}
	agency := hlAgency(t, s)
	var locIDs []string
	for skip := 0; ; {
		r := do(t, "GET", s.URL()+"/oauth/installedLocations?companyId="+DemoHLCompanyID+"&appId="+DemoHLAppID+"&limit=2&skip="+strconv.Itoa(skip), h(agency), nil)
		n := content("locations", r.body, "locations")
		if n == 0 {
			break
		}
		skip += n
	}
	for _, rec := range out["locations"] {
		var l struct {
			ID        string `json:"_id"`
			Installed bool   `json:"isInstalled"`
		}
		_ = json.Unmarshal([]byte(rec), &l)
		if l.Installed {
			locIDs = append(locIDs, l.ID)
		}
	}
	for _, id := range locIDs {
		tok := hlLocation(t, s, agency, id)
		for skip := 0; ; {
			r := do(t, "GET", s.URL()+"/marketplace/billing/charges?limit=100&skip="+strconv.Itoa(skip), h(tok), nil)
			n := content("charges", r.body, "charges")
			if n == 0 {
				break
			}
			skip += n
		}
	}
	return out
}

func rowsOf(t *testing.T, s *Server, stream string) []Row {
	t.Helper()
	rows, err := s.Rows(stream)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestRows_EqualServedPages(t *testing.T) {
	skipUnderRace(t) // data shapes and equality, no concurrency: ten times slower under -race
	t.Parallel()
	for _, values := range append(ValueForms, "hostile plain", "hostile varied") {
		t.Run(values, func(t *testing.T) {
			cfg := Config{Seed: 6, Scale: 700, Locations: 7, Profile: "fast", Values: values}
			if v, ok := strings.CutPrefix(values, "hostile "); ok {
				// Every hostile behaviour that shapes what is served, none that moves the source
				// while it is paged: a full paging of every endpoint serves exactly Rows.
				cfg.Values, cfg.Hostile = v, HostileDefaults()
			}
			s := testSim(t, cfg)
			check := func(when string) {
				served := servedRecords(t, s)
				for _, stream := range OracleStreams {
					rows := rowsOf(t, s, stream)
					var recs []string
					for k, r := range rows {
						recs = append(recs, string(r.Record))
						if k > 0 {
							prev := rows[k-1].Key
							if stream == "invoices" {
								a, _ := strconv.Atoi(prev)
								b, _ := strconv.Atoi(r.Key)
								if a >= b {
									t.Fatalf("%s: invoices not in numeric key order: %s then %s", when, prev, r.Key)
								}
							} else if prev >= r.Key {
								t.Fatalf("%s: %s not in key order: %s then %s", when, stream, prev, r.Key)
							}
						}
					}
					got := served[stream]
					sort.Strings(recs)
					sort.Strings(got)
					if len(recs) == 0 || !slices.Equal(recs, got) {
						t.Fatalf("%s: %s: Rows has %d records, the list pages served %d, or they differ", when, stream, len(recs), len(got))
					}
				}
			}
			check("at start")
			s.Advance(36 * time.Hour) // inserts, updates (users and charges move to the tail), deletes
			check("after changes")
		})
	}
}

// leaves flattens an encoding/json decoding the way Values is defined.
func leaves(prefix string, m map[string]any, out map[string]any) {
	for k, v := range m {
		switch v := v.(type) {
		case map[string]any:
			leaves(prefix+k+".", v, out)
		case []any:
		default:
			out[prefix+k] = v
		}
	}
}

var isoRe = regexp.MustCompile(`^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|([+-])(\d\d):?(\d\d))$`)

// servedMicros is a test-only reading of every timestamp form the simulator serves: epoch
// seconds (below 1e11) or milliseconds as a number or numeric string, or ISO-8601 with Z or an
// offset with or without colon.
func servedMicros(v any) (int64, error) {
	var text string
	switch v := v.(type) {
	case json.Number:
		text = v.String()
	case string:
		text = v
	default:
		return 0, fmt.Errorf("timestamp of type %T", v)
	}
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		if n < 100_000_000_000 {
			return n * 1_000_000, nil
		}
		return n * 1000, nil
	}
	m := isoRe.FindStringSubmatch(text)
	if m == nil {
		return 0, fmt.Errorf("timestamp %q in no served form", text)
	}
	num := func(s string) int { n, _ := strconv.Atoi(s); return n }
	at := time.Date(num(m[1]), time.Month(num(m[2])), num(m[3]), num(m[4]), num(m[5]), num(m[6]), 0, time.UTC).UnixMicro()
	if m[7] != "" {
		frac := (m[7] + "000000")[:6]
		at += int64(num(frac))
	}
	if m[8] != "Z" {
		off := int64(num(m[10])*3600+num(m[11])*60) * 1_000_000
		if m[9] == "+" {
			off = -off
		}
		at += off
	}
	return at, nil
}

var canonicalDecimal = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?$`)

// sameNumber reports whether canonical text c is the decimal value of served text.
func sameNumber(c, served string) bool {
	a, ok1 := new(big.Rat).SetString(c)
	b, ok2 := new(big.Rat).SetString(served)
	return ok1 && ok2 && a.Cmp(b) == 0 && canonicalDecimal.MatchString(c) && c != "-0"
}

func TestRows_ValuesAgreeWithIndependentDecoding(t *testing.T) {
	skipUnderRace(t) // data shapes and equality, no concurrency: ten times slower under -race
	t.Parallel()
	for _, values := range ValueForms {
		t.Run(values, func(t *testing.T) {
			s, err := New(Config{Seed: 8, Scale: 1500, Locations: 7, Values: values, Profile: "fast"})
			if err != nil {
				t.Fatal(err)
			}
			s.Advance(48 * time.Hour)
			for _, stream := range OracleStreams {
				for _, r := range rowsOf(t, s, stream) {
					d := json.NewDecoder(bytes.NewReader(r.Record))
					d.UseNumber()
					var m map[string]any
					if err := d.Decode(&m); err != nil {
						t.Fatalf("%s %s: %v", stream, r.Key, err)
					}
					want := map[string]any{}
					leaves("", m, want)
					if len(want) != len(r.Values) {
						t.Fatalf("%s %s: %d leaves decoded, %d values: %v vs %v", stream, r.Key, len(want), len(r.Values), want, r.Values)
					}
					for path, w := range want {
						got, ok := r.Values[path]
						if !ok {
							t.Fatalf("%s %s: leaf %s missing from Values", stream, r.Key, path)
						}
						fail := func(why string) {
							t.Fatalf("%s %s: %s: served %#v, value %#v: %s", stream, r.Key, path, w, got, why)
						}
						switch {
						case w == nil:
							if got != nil {
								fail("null")
							}
						case slices.Contains(TimestampPaths[stream], path):
							us, err := servedMicros(w)
							if err != nil {
								fail(err.Error())
							}
							if g, ok := got.(int64); !ok || g != us {
								fail(fmt.Sprintf("the served text means %d µs", us))
							}
						case slices.Contains(MoneyPaths[stream], path):
							text := fmt.Sprint(w)
							if g, ok := got.(string); !ok || !sameNumber(g, text) {
								fail("money is the served decimal, normalised")
							}
						default:
							switch w := w.(type) {
							case json.Number:
								if g, ok := got.(string); !ok || !sameNumber(g, w.String()) {
									fail("numbers are their decimal text, normalised")
								}
							case string, bool:
								if got != w {
									fail("strings and booleans as decoded")
								}
							}
						}
					}
					if r.Key == "" || fmt.Sprint(r.Values[map[string]string{"companies": "uuid", "users": "uuid", "invoices": "invoiceId",
						"leads": "id", "opportunities": "id", "events": "uuid", "charges": "chargeId", "locations": "_id"}[stream]]) != r.Key {
						t.Fatalf("%s: key %q is not the record's id: %v", stream, r.Key, r.Values)
					}
				}
			}
		})
	}
}

func TestContentDigest(t *testing.T) {
	skipUnderRace(t) // data shapes and equality, no concurrency: ten times slower under -race
	t.Parallel()
	cfg := Config{Seed: 4, Scale: 400, Profile: "fast", Values: "varied"}
	a, _ := New(cfg)
	b, _ := New(cfg)
	ta, tb := a.Truth(0), b.Truth(0)
	for _, stream := range OracleStreams {
		rows := rowsOf(t, a, stream)
		d := ContentDigest(rows)
		if ta.Streams[stream].ContentDigest != d || tb.Streams[stream].ContentDigest != d || d == 0 {
			t.Fatalf("%s: truth digests %x, %x; digest of Rows %x", stream, ta.Streams[stream].ContentDigest, tb.Streams[stream].ContentDigest, d)
		}
		if ta.Streams[stream].Live != len(rows) {
			t.Fatalf("%s: truth live %d, %d rows", stream, ta.Streams[stream].Live, len(rows))
		}
		// Order-independent; any one value, the key or one byte of the record changes it.
		rev := slices.Clone(rows)
		slices.Reverse(rev)
		if ContentDigest(rev) != d {
			t.Fatalf("%s: digest depends on row order", stream)
		}
		r := rows[len(rows)/2]
		for path, v := range r.Values {
			changed := Row{Key: r.Key, Record: r.Record, Values: map[string]any{}}
			for p, w := range r.Values {
				changed.Values[p] = w
			}
			switch v := v.(type) {
			case bool:
				changed.Values[path] = !v
			case string:
				changed.Values[path] = v + "x"
			case int64:
				changed.Values[path] = v + 1
			case nil:
				changed.Values[path] = ""
			}
			if RowHash(changed) == RowHash(r) {
				t.Fatalf("%s: changing %s leaves the row hash", stream, path)
			}
		}
		if RowHash(Row{Key: r.Key + "x", Record: r.Record, Values: r.Values}) == RowHash(r) {
			t.Fatalf("%s: the key is not hashed", stream)
		}
		// A row whose record spells its key unescaped (varied records may escape any letter).
		for _, r := range rows[len(rows)/2:] {
			if stream == "invoices" || !bytes.Contains(r.Record, []byte(`"`+r.Key+`"`)) {
				continue
			}
			rec := bytes.Replace(r.Record, []byte(`"`+r.Key+`"`), []byte(`"`+r.Key+`Z"`), 1)
			if RowHash(Row{Key: r.Key, Record: rec, Values: r.Values}) == RowHash(r) {
				t.Fatalf("%s: the record is not hashed", stream)
			}
			break
		}
	}
	// One changed row changes its stream's digest, and no other.
	before := a.Truth(0)
	a.mu.Lock()
	a.tables["companies"].update(7, a.now)
	a.mutations++
	a.mu.Unlock()
	after := a.Truth(0)
	for _, stream := range OracleStreams {
		if moved := after.Streams[stream].ContentDigest != before.Streams[stream].ContentDigest; moved != (stream == "companies") {
			t.Fatalf("%s: content digest moved=%v after one company's update", stream, moved)
		}
	}
	// The value forms are part of the content: plain and varied data differ.
	c, _ := New(Config{Seed: 4, Scale: 400, Profile: "fast", Values: "plain"})
	if c.Truth(0).Streams["invoices"].ContentDigest == ta.Streams["invoices"].ContentDigest {
		t.Fatal("plain and varied invoices have one digest")
	}
}

func TestRowsEndpoint_PagesAndDigest(t *testing.T) {
	t.Parallel()
	s := testSim(t, Config{Seed: 2, Scale: 230, Profile: "fast"})
	truth := s.Truth(0)
	for _, stream := range OracleStreams {
		want := rowsOf(t, s, stream)
		var got []Row
		var digest string
		for off := 0; off <= len(want); off += 100 {
			r := do(t, "GET", s.URL()+"/_sim/rows?stream="+stream+"&limit=100&offset="+strconv.Itoa(off), nil, nil)
			var body struct {
				Stream string `json:"stream"`
				Digest string `json:"digest"`
				Total  int    `json:"total"`
				Rows   []Row  `json:"rows"`
			}
			if err := json.Unmarshal(r.body, &body); err != nil || r.status != 200 || body.Stream != stream || body.Total != len(want) {
				t.Fatalf("%s offset %d: %d %v %.200s", stream, off, r.status, err, r.body)
			}
			digest = body.Digest
			got = append(got, body.Rows...)
		}
		if wantHex := fmt.Sprintf("%016x", truth.Streams[stream].ContentDigest); digest != wantHex {
			t.Fatalf("%s: digest %s, truth %s", stream, digest, wantHex)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d rows over HTTP, %d from Rows", stream, len(got), len(want))
		}
		for k := range want {
			if got[k].Key != want[k].Key || !bytes.Equal(got[k].Record, want[k].Record) {
				t.Fatalf("%s row %d: %s %s over HTTP, %s %s from Rows", stream, k, got[k].Key, got[k].Record, want[k].Key, want[k].Record)
			}
			// Decoded from JSON, timestamps are float64: RowHash reads them as the same integers.
			if RowHash(got[k]) != RowHash(want[k]) {
				t.Fatalf("%s row %d: hash differs after the HTTP round trip: %v vs %v", stream, k, got[k].Values, want[k].Values)
			}
		}
	}
	if r := do(t, "GET", s.URL()+"/_sim/rows?stream=nope", nil, nil); r.status != 400 {
		t.Fatalf("unknown stream: %d", r.status)
	}
	if _, err := s.Rows("nope"); err == nil {
		t.Fatal("Rows of an unknown stream: no error")
	}
}

func TestNormalizeDecimal(t *testing.T) {
	for in, want := range map[string]string{
		"42.5100000000": "42.51", "0.30000000000000004": "0.30000000000000004", "10": "10", "10.": "10",
		"-0": "0", "-0.0": "0", "0.0000000000": "0", "1E3": "1000", "1.5e-3": "0.0015", "-12.50": "-12.5",
		"007.10": "7.1", "+3": "3", "123456789012345678901234567890.5": "123456789012345678901234567890.5", ".5": "0.5",
	} {
		if got, err := NormalizeDecimal(in); err != nil || got != want {
			t.Errorf("NormalizeDecimal(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-", "abc", "1e", "1.2.3", "USD350.00", "1e9999"} {
		if got, err := NormalizeDecimal(in); err == nil {
			t.Errorf("NormalizeDecimal(%q) = %q, want an error", in, got)
		}
	}
}

// TestVaried_ServesEveryForm checks that varied data holds each adversarial form the documents
// allow, and plain data none of the structural ones.
func TestVaried_ServesEveryForm(t *testing.T) {
	skipUnderRace(t) // data shapes and equality, no concurrency: ten times slower under -race
	t.Parallel()
	s, _ := New(Config{Seed: 3, Scale: 3000, Locations: 7, Values: "varied", Profile: "fast"})
	all := map[string][]Row{}
	var raw strings.Builder
	for _, stream := range OracleStreams {
		all[stream] = rowsOf(t, s, stream)
		for _, r := range all[stream] {
			raw.Write(r.Record)
			raw.WriteByte('\n')
		}
	}
	text := raw.String()
	for what, re := range map[string]string{
		"escaped member names":         `[{,]"\\u00[0-9a-fA-F]{2}[A-Za-z]+":`,
		"\\u00e9-style escapes":        `\\u00[eE]9`,
		"escaped quotes":               `\\"`,
		"escaped backslashes":          `\\\\`,
		"escaped newlines":             `\\n`,
		"surrogate pairs":              `\\u[dD]83[dD]\\u[dD][eE]00`,
		"escaped slashes":              `\\/`,
		"raw UTF-8":                    `Zürich|Müller`,
		"raw astral UTF-8":             `😀`,
		"numeric-string timestamps":    `"(creationDate|lastModified|createdOn|dueDate|purchaseEffectiveDate)":"1[0-9]{12}"`,
		"10-digit epoch seconds":       `"createdOn":1[0-9]{9}[,}]`,
		"ISO -06:00":                   `"(creationDate|dueDate)":"[0-9T:.-]+-06:00"`,
		"ISO +0000":                    `"(creationDate|dueDate)":"[0-9T:.-]+\+0000"`,
		"ISO +0530":                    `"(creationDate|dueDate)":"[0-9T:.-]+\+0530"`,
		"ISO without fraction":         `"(creationDate|dueDate)":"[0-9-]+T[0-9:]+-06:00"`,
		"ISO fractional seconds":       `"(creationDate|dueDate)":"[0-9-]+T[0-9:]+\.[0-9]{3}[-+]`,
		"HighLevel +00:00":             `"(createdAt|updatedAt|eventTime|installedAt)":"[0-9T:.-]+\+00:00"`,
		"money as 10-digit strings":    `"total":"[0-9]+\.[0-9]{10}"`,
		"money with float noise":       `"(total|amountCharged)":[0-9]+\.[0-9]{11,}[,}]`,
		"unknown members":              `"x-request-id"|"_links"|"__v"|"ünïcode_kéy"`,
		"JPY whole amounts":            `"currency":"JPY","total":[0-9]+[,}]`,
		"lead conversions (base data)": `"status":"CONVERTED","result":"WON","convertedCompany":\{"id":`,
	} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("varied data has no %s (/%s/)", what, re)
		}
	}
	// Absent optionals, other member orders; every boolean member takes both values.
	firstKey := map[string]string{"companies": "uuid", "users": "uuid", "invoices": "invoiceId", "leads": "id",
		"opportunities": "id", "events": "uuid", "charges": "chargeId", "locations": "_id"}
	for _, stream := range OracleStreams {
		absent, reordered := 0, 0
		bools := map[string]map[bool]int{}
		for _, r := range all[stream] {
			if stream == "companies" {
				if _, ok := r.Values["salesAgent"]; !ok {
					absent++
				}
			}
			dec := json.NewDecoder(bytes.NewReader(r.Record))
			_, _ = dec.Token()
			if k, _ := dec.Token(); k != firstKey[stream] {
				reordered++
			}
			for p, v := range r.Values {
				if b, ok := v.(bool); ok {
					if bools[p] == nil {
						bools[p] = map[bool]int{}
					}
					bools[p][b]++
				}
			}
		}
		if stream == "companies" && absent == 0 {
			t.Errorf("companies: no row leaves a null optional member out")
		}
		if reordered == 0 {
			t.Errorf("%s: every record starts with %s (no other member order)", stream, firstKey[stream])
		}
		for p, n := range bools {
			if p == "archived" || strings.HasPrefix(p, "nested.") {
				continue // unknown members
			}
			if n[true] == 0 || n[false] == 0 || min(n[true], n[false])*50 < n[true]+n[false] && stream != "locations" {
				t.Errorf("%s.%s: %d true, %d false; want both values common", stream, p, n[true], n[false])
			}
		}
	}
	// Plain data keeps today's spellings.
	p, _ := New(Config{Seed: 3, Scale: 500, Values: "plain", Profile: "fast"})
	for _, stream := range OracleStreams {
		for _, r := range rowsOf(t, p, stream) {
			if bytes.Contains(r.Record, []byte(`"\u`)) || bytes.Contains(r.Record, []byte(`"x-request-id"`)) || !bytes.HasPrefix(r.Record, []byte(`{"`+firstKey[stream]+`"`)) {
				t.Fatalf("plain %s row has a varied spelling: %s", stream, r.Record)
			}
		}
	}
}

// TestDemoData_MakesTheViewsMeaningful checks the shapes the shipped queries show.
func TestDemoData_MakesTheViewsMeaningful(t *testing.T) {
	skipUnderRace(t) // data shapes and equality, no concurrency: ten times slower under -race
	t.Parallel()
	start := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	s, _ := New(Config{Seed: 42, Scale: 2000, Profile: "fast", Start: start})
	if !s.Now().Equal(start) {
		t.Fatalf("simulated now %s, want Config.Start %s", s.Now(), start)
	}
	// Unpaid invoices over every aging bucket, not all 90+.
	buckets := map[string]int{}
	unpaid := 0
	for _, r := range rowsOf(t, s, "invoices") {
		if r.Values["currency"] == "JPY" {
			if tot, ok := r.Values["total"].(string); ok && strings.Contains(tot, ".") {
				t.Errorf("JPY invoice %s total %s has a minor unit", r.Key, tot)
			}
		}
		if r.Values["status"] != "UNPAID" {
			continue
		}
		unpaid++
		days := (start.UnixMicro() - r.Values["dueDate"].(int64)) / (86400 * 1_000_000)
		switch {
		case days < 0:
			buckets["not due"]++
		case days <= 30:
			buckets["1-30"]++
		case days <= 60:
			buckets["31-60"]++
		case days <= 90:
			buckets["61-90"]++
		default:
			buckets["90+"]++
		}
	}
	for _, b := range []string{"not due", "1-30", "31-60", "61-90", "90+"} {
		if buckets[b] == 0 {
			t.Errorf("no unpaid invoice %s days past due: %v", b, buckets)
		}
	}
	if buckets["90+"]*2 > unpaid {
		t.Errorf("most unpaid invoices are 90+ days past due: %v", buckets)
	}
	// Leads convert in the base data.
	status := map[string]int{}
	for _, r := range rowsOf(t, s, "leads") {
		status[r.Values["status"].(string)]++
		if r.Values["status"] == "CONVERTED" && (r.Values["result"] != "WON" || r.Values["convertedCompany.id"] == nil) {
			t.Fatalf("converted lead without result WON and convertedCompany: %s", r.Record)
		}
	}
	if status["CONVERTED"] < 2000/5 || status["SUBMITTED"] == 0 || status["DISQUALIFIED"] == 0 {
		t.Errorf("lead statuses %v: want conversions and open leads", status)
	}
	// Refunds are a minority of charges; refunded marks originals only.
	refunds, refunded, charges := 0, 0, 0
	for _, r := range rowsOf(t, s, "charges") {
		charges++
		switch {
		case r.Values["transactionType"] == "refund":
			refunds++
			if r.Values["refunded"] == true {
				t.Fatalf("a refund row marked refunded: %s", r.Record)
			}
		case r.Values["refunded"] == true:
			refunded++
		}
	}
	if refunds*100 < charges*4 || refunds*100 > charges*11 || refunded == 0 {
		t.Errorf("%d refunds and %d refunded originals in %d charges: want refunds 5-10%%", refunds, refunded, charges)
	}
	// Deterministic given (seed, scale, start); another start is other data.
	same, _ := New(Config{Seed: 42, Scale: 2000, Profile: "fast", Start: start})
	other, _ := New(Config{Seed: 42, Scale: 2000, Profile: "fast", Start: start.Add(time.Hour)})
	a, b, c := s.Truth(0), same.Truth(0), other.Truth(0)
	for _, stream := range OracleStreams {
		if a.Streams[stream].ContentDigest != b.Streams[stream].ContentDigest {
			t.Errorf("%s differs between two simulators with one seed, scale and start", stream)
		}
		if a.Streams[stream].ContentDigest == c.Streams[stream].ContentDigest {
			t.Errorf("%s is the same data an hour later", stream)
		}
	}
	// The zero Start keeps the fixed epoch.
	z, _ := New(Config{Seed: 1, Scale: 10})
	if !z.Now().Equal(DefaultStart) {
		t.Fatalf("zero Start: now %s, want %s", z.Now(), DefaultStart)
	}
}

func TestConfig_ValuesDefaultsAndValidation(t *testing.T) {
	for profile, want := range map[string]string{"realistic": "varied", "chaos": "varied", "fast": "plain"} {
		c := Config{Profile: profile}
		c.SetDefaults()
		if c.Values != want {
			t.Errorf("profile %s: values %q, want %q", profile, c.Values, want)
		}
	}
	if _, err := New(Config{Values: "odd"}); err == nil || !strings.Contains(err.Error(), "values") {
		t.Fatalf("Values odd: %v", err)
	}
}

// The digest's fast canonical writer equals CanonicalJSON's definition (encoding/json).
func TestCanonicalJSON_FastPathEqualsEncodingJSON(t *testing.T) {
	skipUnderRace(t) // data shapes and equality, no concurrency: ten times slower under -race
	t.Parallel()
	for _, values := range ValueForms {
		s, _ := New(Config{Seed: 5, Scale: 600, Locations: 7, Profile: "fast", Values: values})
		for _, stream := range OracleStreams {
			for _, r := range rowsOf(t, s, stream) {
				want, err := CanonicalJSON(r.Record)
				if err != nil {
					t.Fatal(err)
				}
				root, err := parseJSON(r.Record)
				if err != nil {
					t.Fatal(err)
				}
				if got := appendCanonical(nil, root); !bytes.Equal(got, want) {
					t.Fatalf("%s %s:\n fast %s\n json %s", stream, r.Key, got, want)
				}
			}
		}
	}
	for _, in := range []string{`{"b":1,"a":"\u2028<&>\u0001\b\f\ud83d\ude00","a":2}`, `[{"z":null,"y":[true,false,-0.0,1e5]}]`, `"\ud800x"`} {
		want, _ := CanonicalJSON([]byte(in))
		root, err := parseJSON([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendCanonical(nil, root); !bytes.Equal(got, want) {
			t.Fatalf("%s:\n fast %s\n json %s", in, got, want)
		}
	}
}
