package pipeline

import (
	"context"
	"database/sql"
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/load"
)

// The shipped views, after a sync, equal results computed here in Go from the simulator's own
// rows, not by running the same SQL: a wrong value or a wrong rule in a view shows.
func TestViews_EqualResultsComputedFromTheSource(t *testing.T) {
	skipUnderRace(t)
	t.Parallel()                                                      // the long tests overlap their waits when run without -race
	start := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour) // far from any bucket edge the test runs across
	sim := startSim(t, apisim.Config{Seed: 9, Scale: 900, Profile: "fast", Start: start})
	cfg := testConfig(sim, 50, t.TempDir())
	cfg.ParquetDir = ""
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	db, err := load.Open(context.Background(), cfg.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	src := sourceRows(t, sim)
	now := time.Now().UTC()

	// charges_by_location_meter_day: charges only, net of refund rows and refunded charges.
	type dayKey struct{ loc, meter, day, currency string }
	type dayAgg struct {
		n             int
		units, amount *big.Rat
	}
	days := map[dayKey]*dayAgg{}
	var refunds, refunded int
	for _, r := range src["charges"] {
		if r.Values["transactionType"] == "refund" {
			refunds++
			continue
		}
		if r.Values["refunded"] == true {
			refunded++
			continue
		}
		k := dayKey{str(r.Values["entityId"]), str(r.Values["meterId"]), usDay(r.Values["createdAt"]), str(r.Values["currency"])}
		a := days[k]
		if a == nil {
			a = &dayAgg{units: new(big.Rat), amount: new(big.Rat)}
			days[k] = a
		}
		a.n++
		a.units.Add(a.units, rat(t, r.Values["units"]))
		a.amount.Add(a.amount, rat(t, r.Values["amountCharged"]))
	}
	if refunds == 0 || refunded == 0 {
		t.Fatalf("demo data has %d refund rows and %d refunded charges; the view's rule needs both", refunds, refunded)
	}
	var want []string
	for k, a := range days {
		want = append(want, strings.Join([]string{k.loc, k.meter, k.day, k.currency, fmt.Sprint(a.n), ratText(a.units), ratText(a.amount)}, "|"))
	}
	assertView(t, db.DB(), `SELECT location_id, meter_id, strftime(day, '%Y-%m-%d'), currency, charges, units::VARCHAR, amount::VARCHAR FROM charges_by_location_meter_day`, want)

	// company_overview: counts per company and paid revenue as money, per currency.
	type company struct {
		users, leads, opps, invoices, paid int
		revenue                            map[string]*big.Rat
	}
	cos := map[string]*company{}
	for _, r := range src["companies"] {
		cos[r.Key] = &company{revenue: map[string]*big.Rat{}}
	}
	bump := func(id any, f func(*company)) {
		if c := cos[str(id)]; c != nil {
			f(c)
		}
	}
	for _, r := range src["users"] {
		bump(r.Values["company.uuid"], func(c *company) { c.users++ })
	}
	for _, r := range src["leads"] {
		bump(r.Values["creator.companyId"], func(c *company) { c.leads++ })
	}
	for _, r := range src["opportunities"] {
		bump(r.Values["customerUser.company.id"], func(c *company) { c.opps++ })
	}
	for _, r := range src["invoices"] {
		bump(r.Values["company.-id"], func(c *company) {
			c.invoices++
			if r.Values["status"] != "PAID" {
				return
			}
			c.paid++
			if r.Values["total"] == nil {
				return
			}
			cur := str(r.Values["currency"])
			if c.revenue[cur] == nil {
				c.revenue[cur] = new(big.Rat)
			}
			c.revenue[cur].Add(c.revenue[cur], rat(t, r.Values["total"]))
		})
	}
	want = nil
	for id, c := range cos {
		curs := make([]string, 0, len(c.revenue))
		for cur := range c.revenue {
			curs = append(curs, cur)
		}
		sort.Strings(curs)
		single, amount := "-", "-"
		var by []string
		for _, cur := range curs {
			by = append(by, cur+" "+ratText(c.revenue[cur]))
		}
		if len(curs) == 1 {
			single, amount = curs[0], ratText(c.revenue[curs[0]])
		}
		want = append(want, strings.Join([]string{id, fmt.Sprint(c.users), fmt.Sprint(c.leads), fmt.Sprint(c.opps), fmt.Sprint(c.invoices),
			fmt.Sprint(c.paid), single, amount, strings.Join(by, ", ")}, "|"))
	}
	assertView(t, db.DB(), `SELECT company_id, users, leads, opportunities, invoices, paid_invoices, coalesce(paid_currency, '-'),
		coalesce(paid_revenue::VARCHAR, '-'), coalesce(paid_revenue_by_currency, '') FROM company_overview`, want)

	// outstanding_invoices: unpaid invoices by days past due, as of now.
	type bucketKey struct{ bucket, currency string }
	buckets := map[bucketKey]*dayAgg{}
	for _, r := range src["invoices"] {
		if r.Values["status"] != "UNPAID" {
			continue
		}
		b := "not due"
		if due, ok := r.Values["dueDate"].(int64); ok {
			past := now.Sub(time.UnixMicro(due))
			switch {
			case past <= 0:
			case past <= 30*24*time.Hour:
				b = "1-30"
			case past <= 60*24*time.Hour:
				b = "31-60"
			case past <= 90*24*time.Hour:
				b = "61-90"
			default:
				b = "90+"
			}
		}
		k := bucketKey{b, str(r.Values["currency"])}
		a := buckets[k]
		if a == nil {
			a = &dayAgg{amount: new(big.Rat)}
			buckets[k] = a
		}
		a.n++
		if r.Values["total"] != nil {
			a.amount.Add(a.amount, rat(t, r.Values["total"]))
		}
	}
	seenBuckets := map[string]bool{}
	want = nil
	for k, a := range buckets {
		seenBuckets[k.bucket] = true
		want = append(want, strings.Join([]string{k.bucket, k.currency, fmt.Sprint(a.n), ratText(a.amount)}, "|"))
	}
	if len(seenBuckets) < 4 {
		t.Errorf("unpaid invoices fall in %d aging buckets (%v); demo data should fill them", len(seenBuckets), seenBuckets)
	}
	assertView(t, db.DB(), `SELECT aging_bucket, currency, invoices, coalesce(outstanding::VARCHAR, '0') FROM outstanding_invoices`, want)

	// lead_funnel: leads per status, and some convert.
	statuses := map[string]int{}
	for _, r := range src["leads"] {
		statuses[str(r.Values["status"])]++
	}
	if statuses["CONVERTED"] == 0 {
		t.Error("no demo lead is CONVERTED")
	}
	want = nil
	for st, n := range statuses {
		want = append(want, fmt.Sprintf("%s|%d", st, n))
	}
	assertView(t, db.DB(), `SELECT status, leads FROM lead_funnel`, want)
}

func sourceRows(t *testing.T, sim *apisim.Server) map[string][]apisim.Row {
	t.Helper()
	out := map[string][]apisim.Row{}
	for _, s := range []string{"companies", "users", "invoices", "leads", "opportunities", "charges"} {
		rows, err := sim.Rows(s)
		if err != nil {
			t.Fatal(err)
		}
		out[s] = rows
	}
	return out
}

func assertView(t *testing.T, db *sql.DB, q string, want []string) {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var got []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			cells[i] = decimalText.ReplaceAllStringFunc(v.String, func(d string) string {
				return strings.TrimSuffix(strings.TrimRight(d, "0"), ".")
			})
		}
		got = append(got, strings.Join(cells, "|"))
	}
	sort.Strings(got)
	sort.Strings(want)
	if g, w := strings.Join(got, "\n"), strings.Join(want, "\n"); g != w {
		t.Errorf("%s\n got %d rows, want %d computed from the source; first difference:\n%s", q, len(got), len(want), firstDiff(got, want))
	}
}

// decimalText finds DECIMAL text in a cell, to compare it without its trailing zeros.
var decimalText = regexp.MustCompile(`\b\d+\.\d+\b`)

func firstDiff(got, want []string) string {
	for i := 0; i < max(len(got), len(want)); i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			return fmt.Sprintf(" got  %q\n want %q", g, w)
		}
	}
	return ""
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func rat(t *testing.T, v any) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(fmt.Sprint(v))
	if !ok {
		t.Fatalf("not a decimal: %v", v)
	}
	// The warehouse keeps DECIMAL(38,10): round half-even to 10 fraction digits, as documented.
	scale := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(10), nil))
	x := new(big.Rat).Mul(r, scale)
	q, m := new(big.Int).QuoRem(x.Num(), x.Denom(), new(big.Int))
	twice := new(big.Int).Mul(new(big.Int).Abs(m), big.NewInt(2))
	if c := twice.Cmp(x.Denom()); c > 0 || (c == 0 && q.Bit(0) == 1) {
		q.Add(q, big.NewInt(int64(x.Sign())))
	}
	return new(big.Rat).Quo(new(big.Rat).SetInt(q), scale)
}

func ratText(r *big.Rat) string {
	s := r.FloatString(10)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "" || s == "-" {
		return "0"
	}
	return s
}

func usDay(v any) string {
	us, _ := v.(int64)
	return time.UnixMicro(us).UTC().Format("2006-01-02")
}
