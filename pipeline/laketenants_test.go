package pipeline

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/internal/simcheck"
	"github.com/marketsync/marketsync/lake"
	"github.com/marketsync/marketsync/lake/shard"
	"github.com/marketsync/marketsync/schemas"
)

// lakeStreams are the streams the lake tenant tests sync: a string key partitioned by location
// (charges), an integer key by year (invoices), a row that moves partition (users).
var lakeStreams = []string{"users", "invoices", "charges"}

// assertLakeTenant compares one tenant's rows of the lake, read by iceberg-go's scan, with its
// simulator, by the whole-row oracle.
func assertLakeTenant(t *testing.T, what string, tables map[string][]arrow.RecordBatch, tenant string, sim *apisim.Server, incremental bool) {
	t.Helper()
	diff, err := simcheck.CompareArrowRows(sim, tables, lakeStreams, simcheck.RowOptions{Tenant: tenant, UndetectedDeletes: incremental})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if diff != "" {
		t.Fatalf("%s: tenant %s's lake rows differ from its source:\n%s", what, tenant, diff)
	}
}

// lakeLive counts a tenant's live rows of a table in tables.
func lakeLive(tables map[string][]arrow.RecordBatch, table, tenant string) (live, all int) {
	for _, r := range tables[table] {
		tn, del := r.Column(r.Schema().FieldIndices(schemas.ColTenant)[0]), r.Column(r.Schema().FieldIndices(schemas.ColDeletedAt)[0])
		for i := 0; i < int(r.NumRows()); i++ {
			if tn.ValueStr(i) == tenant {
				all++
				if del.IsNull(i) {
					live++
				}
			}
		}
	}
	return live, all
}

// Two marketplaces and agencies (two simulators with different seeds, so ids collide) sync as
// two tenants into one lake, in both upsert modes: after a full run, an incremental run after
// changes, a full scan of one tenant alone and a full scan of both that finds deletions, each
// tenant's lake rows equal its own source row for row, the other tenant's untouched; each
// tenant's lake cursors are its DuckDB cursors; a fresh machine resumes both tenants from the
// lake's cursors.
func TestRun_TwoTenantsIntoOneLake(t *testing.T) {
	for _, mode := range []string{lake.CopyOnWrite, lake.EqualityDeletes} {
		t.Run(mode, func(t *testing.T) {
			skipUnderRace(t)
			t.Parallel() // the long tests overlap their waits when run without -race
			ctx := context.Background()
			acme := startSim(t, apisim.Config{Seed: 21, Scale: 60, Locations: 3, Profile: "fast", DeleteRate: 0.03})
			globex := startSim(t, apisim.Config{Seed: 22, Scale: 60, Locations: 3, Profile: "fast", DeleteRate: 0.03})
			dir := t.TempDir()
			lw, err := lake.Open(ctx, lake.Options{Catalog: "sql", URI: filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "lake"), Upsert: mode})
			if err != nil {
				t.Fatal(err)
			}
			defer lw.Close()
			adA, hlA := simcheck.Sources(acme, 50)
			adB, hlB := simcheck.Sources(globex, 50)
			both := []Tenant{{Name: "acme", AppDirect: adA, HighLevel: hlA}, {Name: "globex", AppDirect: adB, HighLevel: hlB}}
			cfg := testConfig(acme, 50, filepath.Join(dir, "machine-1"))
			cfg.ParquetDir, cfg.Lake, cfg.Streams, cfg.Tenants = "", lw, lakeStreams, both
			run := func(what string) Summary {
				t.Helper()
				start := time.Now()
				sum, err := Run(ctx, cfg)
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				t.Logf("%s: %s, %d lake commits so far", what, time.Since(start).Round(time.Millisecond), lw.Commits())
				return sum
			}

			run("full run")
			tables := lakeRows(t, lw)
			assertLakeTenant(t, "full run", tables, "acme", acme, false)
			assertLakeTenant(t, "full run", tables, "globex", globex, false)
			assertTenantRows(t, cfg.Warehouse, "acme", acme, lakeStreams, false)
			assertTenantRows(t, cfg.Warehouse, "globex", globex, lakeStreams, false)
			if n := queryInt(t, cfg.Warehouse, `SELECT count(*) FROM (SELECT invoice_id FROM invoices GROUP BY invoice_id HAVING count(DISTINCT tenant) = 2)`); n == 0 {
				t.Fatal("no invoice id is in both tenants: the test does not exercise colliding keys")
			}
			if _, none := lakeLive(tables, "invoices", schemas.DefaultTenant); none != 0 {
				t.Errorf("%d invoices of the default tenant in the lake", none)
			}

			// Changes in globex only, an incremental run of both: acme's lake rows stay.
			globex.Advance(6 * time.Hour)
			sum := run("incremental run")
			for _, s := range sum.Streams {
				if s.Tenant == "acme" && s.Inserted+s.Updated+s.Deleted > 0 {
					t.Errorf("acme %s/%s changed though only globex's source did", s.Stream, s.Partition)
				}
			}
			tables = lakeRows(t, lw)
			assertLakeTenant(t, "incremental run", tables, "acme", acme, false)
			assertLakeTenant(t, "incremental run", tables, "globex", globex, true)

			// A full scan of acme alone, after deletions in acme: no globex row is marked deleted,
			// though that scan saw none of them.
			acme.Advance(6 * time.Hour)
			liveB, _ := lakeLive(tables, "invoices", "globex")
			cfg.FullRefresh, cfg.Tenants = true, both[:1]
			run("full scan of acme")
			tables = lakeRows(t, lw)
			if n, _ := lakeLive(tables, "invoices", "globex"); n != liveB {
				t.Fatalf("a full scan of acme left %d live globex invoices of %d in the lake", n, liveB)
			}
			assertLakeTenant(t, "full scan of acme", tables, "acme", acme, false)
			assertLakeTenant(t, "full scan of acme", tables, "globex", globex, true)

			// A full scan of both: globex's deletions are marked, only in globex.
			cfg.Tenants = both
			sum = run("full scan of both")
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
			tables = lakeRows(t, lw)
			assertLakeTenant(t, "full scan of both", tables, "acme", acme, false)
			assertLakeTenant(t, "full scan of both", tables, "globex", globex, false)

			// Each tenant's lake cursors are its DuckDB cursors.
			rescan := map[string]bool{} // units whose next run is a full scan on any machine
			for _, tn := range []string{"acme", "globex"} {
				local := tenantCursors(t, cfg.Warehouse, tn)
				if len(local) < 4 {
					t.Fatalf("%s has %d cursors", tn, len(local))
				}
				for key, want := range local {
					stream, partition, _ := cut(key)
					tb, _ := schemas.Lookup(stream)
					got, ok, err := lw.Cursor(ctx, tb, tn, stream, partition)
					if err != nil || !ok || got.Encode() != want.Encode() {
						t.Errorf("%s %s/%s: lake cursor %+v (found %v, %v), DuckDB %+v", tn, stream, partition, got, ok, err, want)
					}
					rescan[tn+"/"+stream+"/"+partition] = got.Rescan
				}
			}

			// A fresh machine resumes both tenants from the lake's cursors, each tenant's rows
			// copied from the lake first.
			cfg.FullRefresh = false
			cfg.Warehouse = filepath.Join(dir, "machine-2", "w.duckdb")
			sum = run("fresh machine")
			for _, s := range sum.Streams {
				if s.FullScan && s.Stream != "locations" && !rescan[s.Tenant+"/"+s.Stream+"/"+s.Partition] {
					t.Errorf("%s %s/%s: a full scan on the fresh machine (%s), want a resume from the lake's cursor", s.Tenant, s.Stream, s.Partition, s.Note)
				}
			}
			assertTenantRows(t, cfg.Warehouse, "acme", acme, lakeStreams, true)
			assertTenantRows(t, cfg.Warehouse, "globex", globex, lakeStreams, true)
		})
	}
}

// Three shards of a two-tenant config, each with its own DuckDB file, write one lake: every
// tenant's unit is synced by exactly one shard, and each tenant's lake rows equal its source.
func TestRun_ShardsOfTwoTenantsIntoOneLake(t *testing.T) {
	ctx := context.Background()
	a := startSim(t, apisim.Config{Seed: 24, Scale: 40, Locations: 4, Profile: "fast"})
	b := startSim(t, apisim.Config{Seed: 25, Scale: 40, Locations: 3, Profile: "fast"})
	adA, hlA := simcheck.Sources(a, 50)
	adB, hlB := simcheck.Sources(b, 50)
	dir := t.TempDir()
	lw, err := lake.Open(ctx, lake.Options{Catalog: "sql", URI: filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "lake")})
	if err != nil {
		t.Fatal(err)
	}
	defer lw.Close()
	seen := map[string]int{}
	for i := range 3 {
		cfg := testConfig(a, 50, filepath.Join(dir, "shard", string(rune('0'+i))))
		cfg.ParquetDir, cfg.Lake, cfg.Streams, cfg.Shard = "", lw, lakeStreams, &shard.Spec{Index: i, Of: 3}
		cfg.Tenants = []Tenant{{Name: "acme", AppDirect: adA, HighLevel: hlA}, {Name: "globex", AppDirect: adB, HighLevel: hlB}}
		sum, err := Run(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sum.Streams {
			if s.Status != "skipped" {
				seen[s.Tenant+"/"+s.Stream+"/"+s.Partition]++
			}
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
	// Per tenant: users, invoices, locations (the charges parent) and a charges partition per
	// installed location.
	if len(seen) != 2*3+installed {
		t.Errorf("%d units synced (%v), want %d", len(seen), seen, 2*3+installed)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s synced by %d shards", k, n)
		}
	}
	tables := lakeRows(t, lw)
	assertLakeTenant(t, "shards", tables, "acme", a, false)
	assertLakeTenant(t, "shards", tables, "globex", b, false)
}
