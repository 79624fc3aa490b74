package extract_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/extract"
	"github.com/marketsync/marketsync/internal/simcheck"
)

// Whichever unit the server reads lead fromDate in, an incremental listing never silently
// misses a lead: a matching unit lists exactly the new leads; milliseconds read as seconds
// (an empty listing) fail naming the fix; seconds read as milliseconds list more than asked,
// every new lead among them, and say so.
func TestLeads_FromDateUnitNeverLosesALead(t *testing.T) {
	for _, server := range []string{extract.LeadDateMilliseconds, extract.LeadDateSeconds} {
		for _, sent := range []string{extract.LeadDateMilliseconds, extract.LeadDateSeconds} {
			t.Run("server "+server+", sent "+sent, func(t *testing.T) {
				s := sim(t, apisim.Config{Seed: 4, Scale: 400, Profile: "fast", LeadFromDateUnit: server})
				since := s.Now()
				s.Advance(24 * time.Hour) // about 20 new leads
				var want []string
				rows, err := s.Rows("leads")
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range rows {
					if r.Values["createdOn"].(int64) >= since.UnixMicro() {
						want = append(want, `"`+r.Key+`"`)
					}
				}
				if len(want) < 5 {
					t.Fatalf("only %d new leads: the test needs some", len(want))
				}
				ad, _ := simcheck.Sources(s, 1)
				ad.RatePerSecond, ad.LeadFromDateUnit = -1, sent
				a := extract.NewAppDirect(client(t, nil), *ad, &extract.Counters{})
				col := newCollector()
				out, err := a.Leads(context.Background(), since, &extract.Counters{}, col.emit("id"))
				switch {
				case server == sent:
					if err != nil || len(col.ids) != len(want) || strings.Contains(out.Notice, "lead_from_date_unit") {
						t.Fatalf("matching unit: %d leads (want %d), err %v, notice %q", len(col.ids), len(want), err, out.Notice)
					}
				case sent == extract.LeadDateMilliseconds: // read as seconds: far in the future
					if !errors.Is(err, extract.ErrLeadDateUnit) || !strings.Contains(err.Error(), "lead_from_date_unit: seconds") {
						t.Fatalf("milliseconds read as seconds: err %v, want ErrLeadDateUnit naming the fix", err)
					}
					if len(col.ids) != 0 {
						t.Fatalf("%d leads delivered before the unit check failed", len(col.ids))
					}
				default: // seconds read as milliseconds: January 1970
					if err != nil || !strings.Contains(out.Notice, "lead_from_date_unit: milliseconds") {
						t.Fatalf("seconds read as milliseconds: err %v, notice %q", err, out.Notice)
					}
				}
				if err == nil {
					for _, id := range want {
						if col.ids[id] != 1 {
							t.Fatalf("new lead %s listed %d times", id, col.ids[id])
						}
					}
				}
			})
		}
	}
}

// With no new lead, an empty incremental listing in the right unit passes the check (one more
// request, the probe in the other unit).
func TestLeads_EmptyIncrementalIsNotAUnitError(t *testing.T) {
	s := sim(t, apisim.Config{Seed: 4, Scale: 200, Profile: "fast", InsertRate: 1e-12, UpdateRate: 1e-12, DeleteRate: 1e-12})
	ad, _ := simcheck.Sources(s, 1)
	ad.RatePerSecond = -1
	a := extract.NewAppDirect(client(t, nil), *ad, &extract.Counters{})
	var st extract.Counters
	col := newCollector()
	if _, err := a.Leads(context.Background(), s.Now().Add(time.Hour), &st, col.emit("id")); err != nil || len(col.ids) != 0 {
		t.Fatalf("err %v, %d leads", err, len(col.ids))
	}
	if n := st.Requests.Load(); n != 3 { // token requests count for the stream that waits on them
		t.Fatalf("%d requests, want the user token, the page and one probe", n)
	}
}

// syncer check's probe names the unit the server reads.
func TestLeads_DateUnitProbe(t *testing.T) {
	for _, server := range []string{extract.LeadDateMilliseconds, extract.LeadDateSeconds} {
		s := sim(t, apisim.Config{Seed: 4, Scale: 200, Profile: "fast", LeadFromDateUnit: server})
		ad, _ := simcheck.Sources(s, 1)
		a := extract.NewAppDirect(client(t, nil), *ad, &extract.Counters{})
		if got, err := a.LeadDateUnit(context.Background()); err != nil || got != server {
			t.Errorf("server reads %s: probe says %q, %v", server, got, err)
		}
	}
}
