package apisim

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"
)

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	}
	return "object"
}

// sameShape reports where got differs from the documented example: a member missing in every
// record, or one whose JSON type never matches. A null in the example (or in some records)
// stands for "optional": any type is accepted there. Nested objects are compared recursively.
func sameShape(path string, want any, got []any) []string {
	wm, ok := want.(map[string]any)
	if !ok {
		return nil
	}
	var diffs []string
	for k, wv := range wm {
		var vals []any
		present := false
		for _, g := range got {
			if gm, ok := g.(map[string]any); ok {
				if v, has := gm[k]; has {
					present = true
					vals = append(vals, v)
				}
			}
		}
		if !present {
			diffs = append(diffs, fmt.Sprintf("%s.%s missing", path, k))
			continue
		}
		if wv == nil {
			continue
		}
		var typed []any
		for _, v := range vals {
			if v == nil {
				continue
			}
			// Documented variants: numeric strings and ISO-8601 for timestamps (the docs show both).
			if jsonType(v) != jsonType(wv) && !(jsonType(wv) == "number" && numericOrTime(v)) {
				diffs = append(diffs, fmt.Sprintf("%s.%s is %s, documented %s", path, k, jsonType(v), jsonType(wv)))
				break
			}
			typed = append(typed, v)
		}
		if jsonType(wv) == "object" {
			diffs = append(diffs, sameShape(path+"."+k, wv, typed)...)
		}
	}
	return diffs
}

// numericOrTime accepts the documented string forms of numbers and timestamps ("1546300800000",
// "42.5100000000", "2015-08-16T14:47:50-06:00", also ISO-8601's offsets without colon).
func numericOrTime(v any) bool {
	str, ok := v.(string)
	if !ok {
		return false
	}
	if _, err := strconv.ParseFloat(str, 64); err == nil {
		return true
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05.999999999-0700"} {
		if _, err := time.Parse(layout, str); err == nil {
			return true
		}
	}
	return false
}

func TestAppDirectBodiesMatchDocumentedExamples(t *testing.T) {
	for _, values := range ValueForms {
		t.Run(values, func(t *testing.T) { testAppDirectExamples(t, values) })
	}
}

func testAppDirectExamples(t *testing.T, values string) {
	raw, err := os.ReadFile("testdata/appdirect_examples.json")
	if err != nil {
		t.Fatal(err)
	}
	var examples map[string]any
	if err := json.Unmarshal(raw, &examples); err != nil {
		t.Fatal(err)
	}
	s := testSim(t, Config{Seed: 12, Scale: 300, Profile: "fast", Values: values})
	partner := partnerToken(t, s)
	user := adToken(t, s, url.Values{"grant_type": {"password"}, "username": {DemoLeadUser}, "password": {DemoLeadPassword}, "scope": {"ROLE_RESELLER_MANAGER"}})
	pages := map[string]struct {
		path, tok string
		bare      bool
	}{
		"companies":     {"/api/account/v2/companies?size=250", partner, false},
		"users":         {"/api/account/v2/users?size=250", partner, false},
		"invoices":      {"/api/billing/v1/invoices?count=250", partner, true},
		"leads":         {"/api/lead/v2/leads?context=RESELLER_MANAGER&companyId=x&size=250", user, false},
		"opportunities": {"/api/assistedSales/v1/opportunities?size=250", partner, false},
		"events":        {"/api/channel/v1/events?size=250", partner, false},
	}
	for stream, p := range pages {
		r := do(t, "GET", s.URL()+p.path, map[string]string{"Authorization": "Bearer " + p.tok, "Accept-Language": "en-US"}, nil)
		var recs []any
		if p.bare {
			_ = json.Unmarshal(r.body, &recs)
		} else {
			var page struct {
				Content []any `json:"content"`
			}
			_ = json.Unmarshal(r.body, &page)
			recs = page.Content
		}
		if len(recs) != 250 {
			t.Fatalf("%s: %d records (status %d)", stream, len(recs), r.status)
		}
		if diffs := sameShape(stream, examples[stream], recs); len(diffs) > 0 {
			t.Errorf("%s differs from the documented example: %v", stream, diffs)
		}
	}
}
