package pipeline

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/internal/simcheck"
	"github.com/marketsync/marketsync/lake/shard"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
)

// appDirectStreams are the streams of a tenant with an AppDirect marketplace only.
var appDirectStreams = slices.DeleteFunc(slices.Clone(schemas.Streams), func(s string) bool { return s == "charges" })

// assertTenantRows compares one tenant's rows of the streams' tables with its simulator, by the
// whole-row oracle.
func assertTenantRows(t *testing.T, warehouse, tenant string, sim *apisim.Server, streams []string, incremental bool) {
	t.Helper()
	ctx := context.Background()
	db, err := load.OpenReadOnly(ctx, warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	diff, err := simcheck.CompareRows(ctx, db, sim, streams, simcheck.RowOptions{Tenant: tenant, UndetectedDeletes: incremental})
	if err != nil {
		t.Fatal(err)
	}
	if diff != "" {
		t.Fatalf("tenant %s differs from its source:\n%s", tenant, diff)
	}
}

func queryInt(t *testing.T, warehouse, q string, args ...any) int64 {
	t.Helper()
	db, err := load.OpenReadOnly(context.Background(), warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func tenantCursors(t *testing.T, warehouse, tenant string) map[string]state.Cursor {
	t.Helper()
	db, err := load.Open(context.Background(), warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := db.TenantCursors(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Two marketplaces (two simulators with different seeds, so invoice ids collide) and a
// HighLevel agency in one of them sync as two tenants of one warehouse: after a full sync, an
// incremental one and full scans that find deletions in one tenant only, each tenant's rows
// equal its own source, row for row; a full scan of one tenant never soft-deletes the other's.
func TestRun_TwoTenantsEachEqualTheirSource(t *testing.T) {
	skipUnderRace(t)                                                                          // about 110 s under -race; .ci/run runs it without
	t.Parallel()                                                                              // the long tests overlap their waits when run without -race
	acme := startSim(t, apisim.Config{Seed: 1, Scale: 300, Profile: "realistic", Speed: 200}) // rates are TestRun_TenantsHaveTheirOwnBudgets's
	globex := startSim(t, apisim.Config{Seed: 2, Scale: 300, Profile: "realistic", Speed: 200})
	cfg := testConfig(acme, 200, t.TempDir())
	adA, hlA := simcheck.Sources(acme, 200)
	adB, _ := simcheck.Sources(globex, 200)
	both := []Tenant{{Name: "acme", AppDirect: adA, HighLevel: hlA}, {Name: "globex", AppDirect: adB}}
	cfg.Tenants = both
	sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	for _, s := range sum.Streams {
		if s.Tenant == "globex" && s.Stream == "charges" {
			if s.Status != "skipped" || !strings.Contains(s.Note, "tenant globex") {
				t.Errorf("globex charges: %s %q, want skipped naming the tenant", s.Status, s.Note)
			}
		} else if s.Status != "succeeded" || !s.FullScan {
			t.Errorf("%s %s/%s: %s full_scan=%v, want a succeeded full scan", s.Tenant, s.Stream, s.Partition, s.Status, s.FullScan)
		}
	}
	assertTenantRows(t, cfg.Warehouse, "acme", acme, schemas.Streams, false)
	assertTenantRows(t, cfg.Warehouse, "globex", globex, appDirectStreams, false)
	// The same invoice id in both marketplaces is two rows.
	if n := queryInt(t, cfg.Warehouse, `SELECT count(*) FROM (SELECT invoice_id FROM invoices GROUP BY invoice_id HAVING count(DISTINCT tenant) = 2)`); n == 0 {
		t.Fatal("no invoice id is in both tenants: the test does not exercise colliding keys")
	}
	if n := queryInt(t, cfg.Warehouse, `SELECT count(*) FROM _sync_runs WHERE run_id = ? AND tenant = 'globex'`, sum.RunID); n != int64(len(schemas.Streams)) {
		t.Errorf("_sync_runs has %d globex rows for the run, want one per stream (%d)", n, len(schemas.Streams))
	}
	ca, cb := tenantCursors(t, cfg.Warehouse, "acme"), tenantCursors(t, cfg.Warehouse, "globex")
	if _, ok := cb["charges\x00"]; ok || len(ca) <= len(cb) {
		t.Errorf("globex has cursors %v, acme %v: only acme has HighLevel partitions", keysOf(cb), keysOf(ca))
	}

	// Changes in globex only; an incremental run of both.
	globex.Advance(12 * time.Hour)
	sum, err = Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("incremental run: %v", err)
	}
	for _, s := range sum.Streams {
		if s.Tenant == "acme" && (s.Inserted+s.Updated+s.Deleted) > 0 {
			t.Errorf("acme %s/%s changed (%d inserted, %d updated, %d deleted) though only globex's source did", s.Stream, s.Partition, s.Inserted, s.Updated, s.Deleted)
		}
	}
	assertTenantRows(t, cfg.Warehouse, "acme", acme, schemas.Streams, false)
	assertTenantRows(t, cfg.Warehouse, "globex", globex, appDirectStreams, true)
	// Each tenant's cursors are its own: globex's moved with its source, acme's stayed.
	ca2, cb2 := tenantCursors(t, cfg.Warehouse, "acme"), tenantCursors(t, cfg.Warehouse, "globex")
	for _, s := range []string{"invoices\x00", "events\x00"} {
		if ca2[s].Value != ca[s].Value || cb2[s].Value <= cb[s].Value {
			t.Errorf("%s cursors: acme %d -> %d (want unchanged), globex %d -> %d (want later)", strings.TrimSuffix(s, "\x00"),
				ca[s].Value, ca2[s].Value, cb[s].Value, cb2[s].Value)
		}
	}

	// A full scan of acme alone (syncer sync --tenants acme), which finds deletions in acme,
	// marks no globex row deleted, though none of them was seen by the scan.
	acme.Advance(12 * time.Hour)
	liveB := queryInt(t, cfg.Warehouse, `SELECT count(*) FROM invoices WHERE tenant = 'globex' AND _deleted_at IS NULL`)
	cfg.FullRefresh, cfg.Tenants = true, both[:1]
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatalf("full scan of acme: %v", err)
	}
	if n := queryInt(t, cfg.Warehouse, `SELECT count(*) FROM invoices WHERE tenant = 'globex' AND _deleted_at IS NULL`); n != liveB {
		t.Fatalf("a full scan of acme left %d live globex invoices of %d", n, liveB)
	}
	assertTenantRows(t, cfg.Warehouse, "globex", globex, appDirectStreams, true)
	assertTenantRows(t, cfg.Warehouse, "acme", acme, schemas.Streams, false)

	// Deletions in globex: its full scan marks them, and only them.
	cfg.Tenants = both
	sum, err = Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("full scan of both: %v", err)
	}
	var deleted int64
	for _, s := range sum.Streams {
		if s.Tenant == "acme" && s.Deleted > 0 {
			t.Errorf("acme %s: %d rows marked deleted", s.Stream, s.Deleted)
		}
		if s.Tenant == "globex" {
			deleted += s.Deleted
		}
	}
	if deleted == 0 {
		t.Fatal("globex's full scan marked no deletions: the source's Advance deleted rows")
	}
	assertTenantRows(t, cfg.Warehouse, "acme", acme, schemas.Streams, false)
	assertTenantRows(t, cfg.Warehouse, "globex", globex, appDirectStreams, false)
}

func keysOf(m map[string]state.Cursor) []string {
	var out []string
	for k := range m {
		out = append(out, strings.ReplaceAll(k, "\x00", "/"))
	}
	slices.Sort(out)
	return out
}

// A tenant whose server does not answer (a closed port) fails its own streams only: the other
// tenant's streams commit and equal their source, and the failing one gets no row or cursor.
func TestRun_AFailingTenantDoesNotStopTheOthers(t *testing.T) {
	sim := startSim(t, apisim.Config{Seed: 3, Scale: 200, Profile: "realistic", Speed: 50})
	cfg := testConfig(sim, 50, t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	ad, hl := simcheck.Sources(sim, 50)
	down := *ad
	down.BaseURL = closed
	cfg.Retry.MaxAttempts = 2
	cfg.Tenants = []Tenant{{Name: "down", AppDirect: &down}, {Name: "up", AppDirect: ad, HighLevel: hl}}
	sum, err := Run(context.Background(), cfg)
	if !errors.Is(err, ErrStreamsFailed) || !strings.Contains(err.Error(), "tenant down") {
		t.Fatalf("err %v, want failed streams of tenant down", err)
	}
	for _, s := range sum.Streams {
		switch {
		case s.Tenant == "up" && s.Status != "succeeded":
			t.Errorf("up %s/%s: %s %s", s.Stream, s.Partition, s.Status, s.Error)
		case s.Tenant == "down" && s.Stream != "charges" && s.Status != "failed":
			t.Errorf("down %s: %s, want failed", s.Stream, s.Status)
		}
	}
	assertTenantRows(t, cfg.Warehouse, "up", sim, schemas.Streams, false)
	if n := queryInt(t, cfg.Warehouse, `SELECT (SELECT count(*) FROM users WHERE tenant = 'down') + (SELECT count(*) FROM _sync_state WHERE tenant = 'down')`); n != 0 {
		t.Errorf("the failing tenant has %d rows and cursors", n)
	}
}

// A warehouse written by the build before tenants existed (testdata/pre-tenants.duckdb.gz: see
// testdata/README.md) migrates on the first run of a config without tenants: every row,
// cursor, run and claim becomes the default tenant's, the cursors carry over (the run is
// incremental, not a first sync), no row counts as changed, and the warehouse still equals the
// source.
func TestRun_PreTenantWarehouseMigratesToTheDefaultTenant(t *testing.T) {
	dir := t.TempDir()
	wh := filepath.Join(dir, "warehouse.duckdb")
	gunzip(t, "testdata/pre-tenants.duckdb.gz", wh)
	// The simulator the fixture was synced from: `syncer sync --sim-scale 60 --sim-seed 42
	// --sim-start 2026-01-01T00:00:00Z` (the embedded demo).
	sim := startSim(t, apisim.Config{Seed: 42, Scale: 60, Profile: "realistic", Speed: 25,
		Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), LinkBase: apisim.DemoLinkBase})
	cfg := testConfig(sim, 25, dir)
	cfg.Warehouse = wh
	cfg.FullScanEvery = 100 * 365 * 24 * time.Hour // the fixture's last full scans are from the day it was made
	demo := "the embedded simulator (demo data)"
	cfg.SourceIdentity = map[string]string{"appdirect": demo, "highlevel": demo}

	before := queryInt(t, wh, `SELECT count(*) FROM users`)
	var cursorsBefore int64
	{
		db, err := load.OpenReadOnly(context.Background(), wh)
		if err != nil {
			t.Fatal(err)
		}
		var tenantCols int64
		if err := db.QueryRow(`SELECT count(*) FROM information_schema.columns WHERE column_name = 'tenant'`).Scan(&tenantCols); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(`SELECT count(*) FROM _sync_state`).Scan(&cursorsBefore); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if tenantCols != 0 || cursorsBefore == 0 {
			t.Fatalf("the fixture has %d tenant columns and %d cursors: not a pre-tenant warehouse", tenantCols, cursorsBefore)
		}
	}
	usersCursor := queryInt(t, wh, `SELECT CAST(json_extract(cursor, '$.value_us') AS BIGINT) FROM _sync_state WHERE stream = 'invoices'`)

	sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("run on the pre-tenant warehouse: %v", err)
	}
	for _, s := range sum.Streams {
		if s.Tenant != schemas.DefaultTenant {
			t.Errorf("%s: tenant %q, want %q", s.Stream, s.Tenant, schemas.DefaultTenant)
		}
		if s.Inserted+s.Updated+s.Deleted > 0 {
			t.Errorf("%s/%s: %d inserted, %d updated, %d deleted on an unchanged source: the migration changed rows' content",
				s.Stream, s.Partition, s.Inserted, s.Updated, s.Deleted)
		}
		if tb, _ := schemas.Lookup(s.Stream); tb.Cursor != "" && s.FullScan {
			t.Errorf("%s/%s: a full scan: the cursor did not carry over", s.Stream, s.Partition)
		}
	}
	for _, q := range []string{`SELECT count(*) FROM users WHERE tenant IS DISTINCT FROM 'default'`, `SELECT count(*) FROM charges WHERE tenant IS DISTINCT FROM 'default'`,
		`SELECT count(*) FROM _sync_state WHERE tenant <> 'default'`, `SELECT count(*) FROM _sync_runs WHERE tenant IS DISTINCT FROM 'default'`,
		`SELECT count(*) FROM _sources WHERE tenant <> 'default'`} {
		if n := queryInt(t, wh, q); n != 0 {
			t.Errorf("%s: %d", q, n)
		}
	}
	if n := queryInt(t, wh, `SELECT count(*) FROM users`); n != before {
		t.Errorf("%d users after, %d before", n, before)
	}
	if n := queryInt(t, wh, `SELECT count(*) FROM _sync_state`); n != cursorsBefore {
		t.Errorf("%d cursors after, %d before", n, cursorsBefore)
	}
	if n := queryInt(t, wh, `SELECT CAST(json_extract(cursor, '$.value_us') AS BIGINT) FROM _sync_state WHERE stream = 'invoices'`); n < usersCursor {
		t.Errorf("invoices cursor went back from %d to %d", usersCursor, n)
	}
	assertTenantRows(t, wh, schemas.DefaultTenant, sim, schemas.Streams, false)
	// And the Parquet files, rewritten whole, carry the column.
	if n := queryInt(t, wh, `SELECT count(*) FROM read_parquet('`+filepath.Join(cfg.ParquetDir, "users", "*", "*.parquet")+`') WHERE tenant = 'default'`); n != before {
		t.Errorf("the users Parquet files hold %d rows of the default tenant, want %d", n, before)
	}
}

func gunzip(t *testing.T, from, to string) {
	t.Helper()
	f, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// N shards cover every tenant's streams and locations exactly once, and a tenant's units spread
// over the shards on their own (the shard key includes the tenant).
func TestRun_ShardsCoverEveryTenantsWorkExactlyOnce(t *testing.T) {
	a := startSim(t, apisim.Config{Seed: 4, Scale: 40, Locations: 5, Profile: "fast"})
	b := startSim(t, apisim.Config{Seed: 5, Scale: 40, Locations: 4, Profile: "fast"})
	adA, hlA := simcheck.Sources(a, 50)
	adB, hlB := simcheck.Sources(b, 50)
	seen := map[string]int{}
	byShard := map[string]map[int]bool{}
	for i := range 3 {
		cfg := testConfig(a, 50, t.TempDir())
		cfg.ParquetDir, cfg.Shard = "", &shard.Spec{Index: i, Of: 3}
		cfg.Tenants = []Tenant{{Name: "acme", AppDirect: adA, HighLevel: hlA}, {Name: "globex", AppDirect: adB, HighLevel: hlB}}
		sum, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sum.Streams {
			seen[s.Tenant+"/"+s.Stream+"/"+s.Partition]++
			if byShard[s.Tenant] == nil {
				byShard[s.Tenant] = map[int]bool{}
			}
			byShard[s.Tenant][i] = true
		}
	}
	installed := 0
	for _, sim := range []*apisim.Server{a, b} {
		for _, r := range must(sim.Rows("locations")) {
			if r.Values["isInstalled"] == true {
				installed++
			}
		}
	}
	if len(seen) != 2*7+installed {
		t.Fatalf("%d units synced (%v), want 6 AppDirect streams and locations per tenant and %d location partitions", len(seen), seen, installed)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s synced by %d shards", k, n)
		}
	}
	for tenant, shards := range byShard {
		if len(shards) < 2 {
			t.Errorf("tenant %s's units all went to shards %v", tenant, shards)
		}
	}
}

// Each tenant draws on its own rate budgets: a tenant whose AppDirect client is held to a slow
// rate waits on it, the other tenant (same client id, another marketplace) barely waits.
func TestRun_TenantsHaveTheirOwnBudgets(t *testing.T) {
	a := startSim(t, apisim.Config{Seed: 6, Scale: 100, Profile: "fast"})
	b := startSim(t, apisim.Config{Seed: 7, Scale: 100, Profile: "fast"})
	cfg := testConfig(a, 1, t.TempDir())
	cfg.ParquetDir, cfg.Streams = "", []string{"users", "invoices", "events"}
	slow, _ := simcheck.Sources(a, 1)
	fast, _ := simcheck.Sources(b, 1)
	slow.PageSize, slow.RatePerSecond, slow.Burst = 10, 8, 1
	fast.PageSize, fast.RatePerSecond, fast.Burst = 10, 10_000, 100
	cfg.Tenants = []Tenant{{Name: "slow", AppDirect: slow}, {Name: "fast", AppDirect: fast}}
	sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	waited, requests := map[string]time.Duration{}, map[string]int64{}
	for _, s := range sum.Streams {
		waited[s.Tenant] += s.Waited
		requests[s.Tenant] += s.Requests
	}
	// 3 streams of 100 rows in pages of 10: 30 and more requests at 8/s (less the limiter's
	// RateFactor) is seconds of waiting, summed over the 3 concurrent streams; at 10,000/s
	// there is next to none. Had the tenants one limiter, both would wait alike.
	if waited["slow"] < 3*time.Second || waited["fast"] > 200*time.Millisecond || requests["fast"] < 30 {
		t.Fatalf("budget waits %v over requests %v: want the slow tenant to wait and the fast one hardly", waited, requests)
	}
	t.Logf("budget waits %v over requests %v", waited, requests)
}
