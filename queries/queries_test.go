package queries_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/queries"
	"github.com/marketsync/marketsync/schemas"
)

// fixture: 3 companies (one deleted), users, leads, opportunities, invoices, events and charges whose
// report results are known by hand.
const fixture = `
INSERT INTO companies (id, name, status) VALUES ('c1','Acme','ACTIVE'), ('c2','Globex','ACTIVE'), ('c3','Gone','ACTIVE');
UPDATE companies SET _deleted_at = TIMESTAMPTZ '2026-01-01' WHERE id = 'c3';
INSERT INTO users (id, company_id) VALUES ('u1','c1'), ('u2','c1'), ('u3','c2');
INSERT INTO leads (id, status, creator_company_id) VALUES ('l1','CONVERTED','c1'), ('l2','SUBMITTED','c1'), ('l3','SUBMITTED','c2'), ('l4','DISQUALIFIED','c2');
INSERT INTO opportunities (id, status, customer_company_id, created_on, purchase_effective_date) VALUES
  ('o1','OPEN','c1', TIMESTAMPTZ '2025-01-05', NULL), ('o2','CLOSED','c1', TIMESTAMPTZ '2025-02-01', TIMESTAMPTZ '2025-03-01'),
  ('o3','OPEN','c2', TIMESTAMPTZ '2025-03-09', NULL);
INSERT INTO invoices (invoice_id, company_id, status, currency, total, creation_date, due_date) VALUES
  (1,'c1','PAID','USD', 10.50, TIMESTAMPTZ '2025-01-10', NULL),
  (2,'c1','PAID','USD', 20.25, TIMESTAMPTZ '2025-01-20', NULL),
  (3,'c2','PAID','EUR', 7.00, TIMESTAMPTZ '2025-01-21', NULL),
  (4,'c2','PAID','USD', 1.00, TIMESTAMPTZ '2025-02-01', NULL),
  (5,'c2','UNPAID','USD', 100.00, TIMESTAMPTZ '2020-01-01', TIMESTAMPTZ '2020-01-31'),
  (6,'c2','UNPAID','USD', 50.00, TIMESTAMPTZ '2020-01-01', TIMESTAMPTZ '2999-01-01'),
  (7,'c1','PAID','USD', 99.00, TIMESTAMPTZ '2025-01-11', NULL);
UPDATE invoices SET _deleted_at = TIMESTAMPTZ '2026-01-01' WHERE invoice_id = 7;
INSERT INTO invoices (invoice_id, company_id, status, currency, total) VALUES (8,'c2','PAID','EUR', 3.00);
UPDATE invoices SET creation_date = TIMESTAMPTZ '2025-02-02' WHERE invoice_id = 8;
INSERT INTO locations (id, name) VALUES ('L1','Austin');
INSERT INTO charges (charge_id, location_id, meter_id, created_at, currency, units, amount_charged, refunded) VALUES
  ('a','L1','m1', TIMESTAMPTZ '2025-03-01 10:00:00+00', 'USD', 10, 0.10, false),
  ('b','L1','m1', TIMESTAMPTZ '2025-03-01 23:59:00+00', 'USD', 5, 0.05, false),
  ('c','L1','m1', TIMESTAMPTZ '2025-03-01 12:00:00+00', 'USD', 1, 0.01, true),
  ('e','L1','m1', TIMESTAMPTZ '2025-03-01 13:00:00+00', 'USD', 3, 0.03, false),
  ('d','L2','m2', TIMESTAMPTZ '2025-03-02 00:00:00+00', 'USD', 2, 0.20, false);
UPDATE charges SET transaction_type = 'refund' WHERE charge_id = 'e';
INSERT INTO events (id, type, creation_date, order_id, successful) VALUES
  ('e1','SUBSCRIPTION_ORDER', TIMESTAMPTZ '2025-01-31 23:30:00-02:00', '10', true),
  ('e2','SUBSCRIPTION_ORDER', TIMESTAMPTZ '2025-01-05 00:00:00+00', '11', true),
  ('e3','SUBSCRIPTION_ORDER', TIMESTAMPTZ '2025-01-06 00:00:00+00', '11', false),
  ('e4','SUBSCRIPTION_CANCEL', TIMESTAMPTZ '2025-01-20 00:00:00+00', '12', true),
  ('e5','SUBSCRIPTION_ORDER', TIMESTAMPTZ '2025-01-07 00:00:00+00', '13', true),
  ('e6','SUBSCRIPTION_ORDER', TIMESTAMPTZ '2025-02-10 00:00:00+00', '14', NULL);
UPDATE events SET _deleted_at = TIMESTAMPTZ '2026-01-01' WHERE id = 'e5';
INSERT INTO _sync_runs (run_id, stream, partition, ended_at, status, error) VALUES
  ('r1','users','', TIMESTAMPTZ '2026-01-01', 'succeeded', NULL), ('r2','users','', TIMESTAMPTZ '2026-01-02', 'failed', 'boom');
INSERT INTO _sync_state (stream, partition, cursor, updated_at, tenant) VALUES ('users','', '{"v":1,"value_us":1767225600000000}', now(), 'default');
UPDATE companies SET tenant = 'default'; UPDATE users SET tenant = 'default'; UPDATE leads SET tenant = 'default';
UPDATE opportunities SET tenant = 'default'; UPDATE invoices SET tenant = 'default'; UPDATE locations SET tenant = 'default';
UPDATE charges SET tenant = 'default'; UPDATE events SET tenant = 'default'; UPDATE _sync_runs SET tenant = 'default';
-- A second tenant whose ids collide with the first's: its rows are reported apart, and joins
-- do not cross tenants (its company c1 has no users; the default tenant's c1 gains no invoice).
INSERT INTO companies (tenant, id, name, status) VALUES ('other','c1','Other Acme','ACTIVE');
INSERT INTO invoices (tenant, invoice_id, company_id, status, currency, total, creation_date) VALUES ('other', 1, 'c1', 'PAID', 'USD', 5.00, TIMESTAMPTZ '2025-01-10');
INSERT INTO leads (tenant, id, status, creator_company_id) VALUES ('other','l1','SUBMITTED','c1');
INSERT INTO locations (tenant, id, name) VALUES ('other','L2','Boston');
INSERT INTO _sync_runs (tenant, run_id, stream, partition, ended_at, status, error) VALUES ('other','r2','users','', TIMESTAMPTZ '2026-01-02', 'succeeded', NULL);
`

func rows(t *testing.T, d *load.DuckDB, q string) string {
	t.Helper()
	r, err := d.Conn().QueryContext(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer r.Close()
	cols, _ := r.Columns()
	var out []string
	for r.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := r.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var cells []string
		for _, v := range vals {
			cells = append(cells, fmt.Sprint(v))
		}
		out = append(out, strings.Join(cells, "|"))
	}
	return strings.Join(out, "\n")
}

func TestShippedQueries_ExactResults(t *testing.T) {
	ctx := context.Background()
	d, err := load.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Migrate(ctx, schemas.Tables); err != nil {
		t.Fatal(err)
	}
	if err := queries.Install(ctx, d.Conn()); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Conn().ExecContext(ctx, fixture); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct{ q, want string }{
		"revenue_by_month": {`SELECT tenant, strftime(month, '%Y-%m'), currency, invoices, revenue::VARCHAR FROM revenue_by_month`,
			"default|2025-01|EUR|1|7.0000000000\ndefault|2025-01|USD|2|30.7500000000\ndefault|2025-02|EUR|1|3.0000000000\ndefault|2025-02|USD|1|1.0000000000\n" +
				"other|2025-01|USD|1|5.0000000000"},
		"outstanding_invoices": {`SELECT tenant || ' ' || aging_bucket, currency, invoices, outstanding::VARCHAR FROM outstanding_invoices`,
			"default 90+|USD|1|100.0000000000\ndefault not due|USD|1|50.0000000000"},
		"lead_funnel": {`SELECT tenant, status, leads, share, conversion_rate FROM lead_funnel`,
			"default|SUBMITTED|2|0.5|0.25\ndefault|CONVERTED|1|0.25|0.25\ndefault|DISQUALIFIED|1|0.25|0.25\nother|SUBMITTED|1|1|0"},
		"opportunity_pipeline": {`SELECT tenant || ' ' || stage, opportunities, share, with_purchase_date FROM opportunity_pipeline`,
			"default CLOSED|1|0.3333|1\ndefault OPEN|2|0.6667|0"},
		"charges_by_location_meter_day": {`SELECT tenant || ' ' || location_id, coalesce(location_name,'-'), meter_id, strftime(day, '%Y-%m-%d'), charges, units::VARCHAR, amount::VARCHAR FROM charges_by_location_meter_day`,
			"default L1|Austin|m1|2025-03-01|2|15.0000000000|0.1500000000\ndefault L2|-|m2|2025-03-02|1|2.0000000000|0.2000000000"},
		"company_overview": {`SELECT tenant || ' ' || company_id, users, leads, opportunities, invoices, paid_invoices, coalesce(paid_currency, '-'), coalesce(paid_revenue::VARCHAR, '-'), paid_revenue_by_currency FROM company_overview`,
			"default c1|2|2|2|2|2|USD|30.7500000000|USD 30.7500000000\ndefault c2|1|2|1|5|3|-|-|EUR 10.0000000000, USD 1.0000000000\n" +
				"other c1|0|1|0|1|1|USD|5.0000000000|USD 5.0000000000"},
		"orders_by_month": {`SELECT tenant || ' ' || strftime(month, '%Y-%m'), type, events, successful, orders FROM orders_by_month`,
			"default 2025-01|SUBSCRIPTION_CANCEL|1|1|1\ndefault 2025-01|SUBSCRIPTION_ORDER|2|1|1\ndefault 2025-02|SUBSCRIPTION_ORDER|2|1|2"},
		"data_freshness": {`SELECT tenant || ' ' || stream, partitions, strftime(last_success, '%Y-%m-%d'), strftime(cursor_at, '%Y-%m-%d'), last_error FROM data_freshness`,
			"default users|1|2026-01-01|2026-01-01|boom\nother users|1|2026-01-02|<nil>|<nil>"},
	}
	if len(cases) != len(queries.All()) {
		t.Fatalf("%d queries shipped, %d tested", len(queries.All()), len(cases))
	}
	for name, c := range cases {
		if got := rows(t, d, c.q); got != c.want {
			t.Errorf("%s:\n got  %q\n want %q", name, got, c.want)
		}
	}
}
