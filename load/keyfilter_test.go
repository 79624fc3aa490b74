package load_test

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/transform"
)

// keyedUsers builds one batch of users of a tenant: ids[i] with first_name variant.
func keyedUsers(t *testing.T, mem memory.Allocator, tenant, run, variant string, ids ...int) arrow.RecordBatch {
	t.Helper()
	table, _ := schemas.Lookup("users")
	b := transform.NewBatcher(table, mem, transform.Meta{RunID: run, SyncedAt: time.Now().UnixMicro(), Tenant: tenant})
	defer b.Release()
	for _, i := range ids {
		rec := fmt.Sprintf(`{"uuid":"k%05d","email":"k%d@example.com","firstName":"%s","roles":["ROLE_USER"],"company":{"uuid":"c1"},"lastModified":1700000000000}`, i, i, variant)
		if err := b.Add([]byte(rec)); err != nil {
			t.Fatal(err)
		}
	}
	return b.Flush()
}

func span(from, to int) []int {
	var ids []int
	for i := from; i < to; i++ {
		ids = append(ids, i)
	}
	return ids
}

// concatBatches puts the rows of recs in one batch (a batch the Batcher would refuse: a key
// twice).
func concatBatches(t *testing.T, mem memory.Allocator, recs ...arrow.RecordBatch) arrow.RecordBatch {
	t.Helper()
	cols := make([]arrow.Array, recs[0].NumCols())
	var n int64
	for i := range cols {
		var parts []arrow.Array
		for _, r := range recs {
			parts = append(parts, r.Column(i))
		}
		c, err := array.Concatenate(parts, mem)
		if err != nil {
			t.Fatal(err)
		}
		cols[i] = c
	}
	for _, r := range recs {
		n += r.NumRows()
	}
	out := array.NewRecordBatch(recs[0].Schema(), cols, n)
	for _, c := range cols {
		c.Release()
	}
	return out
}

// wantUsers checks that the users table holds exactly the rows want names (tenant/id ->
// first_name), each key once, live, with the content hash of its own row.
func wantUsers(t *testing.T, d *load.DuckDB, want map[string]string) {
	t.Helper()
	ctx := context.Background()
	rows, err := d.Conn().QueryContext(ctx, `SELECT tenant || '/' || id, first_name, count(*) OVER (PARTITION BY tenant, id) FROM users WHERE _deleted_at IS NULL AND _stale_since IS NULL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]string{}
	var dups []string
	for rows.Next() {
		var k, v string
		var n int
		if err := rows.Scan(&k, &v, &n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			dups = append(dups, fmt.Sprintf("%s x%d", k, n))
		}
		got[k] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(dups)
	if len(dups) > 0 {
		t.Fatalf("keys held more than once: %s", strings.Join(dups, ", "))
	}
	var diffs []string
	for k, v := range want {
		if got[k] != v {
			diffs = append(diffs, fmt.Sprintf("%s: %q, want %q", k, got[k], v))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: not expected", k))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Fatalf("%d rows wrong: %s", len(diffs), strings.Join(diffs[:min(len(diffs), 10)], "; "))
	}
	users, _ := schemas.Lookup("users")
	var content []string
	for _, c := range users.Columns {
		content = append(content, load.Quote(c.Name))
	}
	if n := count(t, d, `SELECT count(*) FROM users WHERE _content_hash IS DISTINCT FROM (hash(`+strings.Join(content, ", ")+`, _extra) >> 1)::BIGINT`); n != 0 {
		t.Fatalf("%d rows whose stored hash is not their content's", n)
	}
}

func filterOf(d *load.DuckDB, table string) load.KeyFilterInfo {
	for _, f := range d.KeyFilters() {
		if f.Table == table {
			return f
		}
	}
	return load.KeyFilterInfo{}
}

// The key filter's edge cases, with a real filter and with a tiny one (nearly every key a false
// positive): every key is written once, updated rather than duplicated, whatever path put it in
// the table, and a batch of new keys skips the join only when the filter proves them new.
func TestApply_KeyFilterNeverDuplicates(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bytes uint32
	}{{"real filter", 0}, {"tiny filter", 32}} {
		t.Run(tc.name, func(t *testing.T) {
			load.SetKeyFilterBytes(tc.bytes)
			defer load.SetKeyFilterBytes(0)
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			ctx := context.Background()
			d := openTest(t, filepath.Join(t.TempDir(), "w.duckdb"))
			users, _ := schemas.Lookup("users")
			want := map[string]string{}
			apply := func(rec arrow.RecordBatch, run, tenant string) load.Result {
				t.Helper()
				defer rec.Release()
				res, err := d.Apply(ctx, load.Write{Table: users, Batch: rec, Stream: "users", RunID: run, Tenant: tenant})
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			set := func(tenant, variant string, ids []int) {
				for _, i := range ids {
					want[fmt.Sprintf("%s/k%05d", tenant, i)] = variant
				}
			}

			// A first load: new keys only.
			if res := apply(keyedUsers(t, mem, "a", "r1", "v1", span(0, 200)...), "r1", "a"); res.Inserted != 200 {
				t.Fatalf("first batch: %+v", res)
			}
			set("a", "v1", span(0, 200))
			wantUsers(t, d, want)
			f := filterOf(d, "users")
			if f.Builds != 1 || f.Rows != 200 {
				t.Fatalf("after the first batch: filter %+v, want built once, covering 200 rows", f)
			}
			if tc.bytes == 0 && (f.Probed != 0 || f.Passed != 200) {
				t.Fatalf("a batch of new keys into an empty table went through the join: %+v", f)
			}

			// Another tenant with the same ids: new rows, the first tenant's untouched.
			if res := apply(keyedUsers(t, mem, "b", "r1", "w1", span(0, 200)...), "r1", "b"); res.Inserted != 200 || res.Updated != 0 {
				t.Fatalf("tenant b, same ids: %+v, want 200 inserted", res)
			}
			set("b", "w1", span(0, 200))
			wantUsers(t, d, want)

			// Half changed, half new, for tenant a.
			if res := apply(keyedUsers(t, mem, "a", "r2", "v2", span(100, 300)...), "r2", "a"); res.Inserted != 100 || res.Updated != 100 {
				t.Fatalf("half changed, half new: %+v", res)
			}
			set("a", "v2", span(100, 300))
			wantUsers(t, d, want)
			f = filterOf(d, "users")
			if f.Probed < 100 {
				t.Fatalf("rows already in the table skipped the join: %+v", f)
			}
			if tc.bytes != 0 && f.Passed == f.Rows-f.BuildKeys {
				t.Fatalf("the tiny filter let every key through as new (no false positive exercised): %+v", f)
			}

			// A batch holding keys twice: its last row of each key is written, once.
			first := keyedUsers(t, mem, "a", "r3", "d1", 300, 301, 150)
			second := keyedUsers(t, mem, "a", "r3", "d2", 300, 150)
			dup := concatBatches(t, mem, first, second)
			first.Release()
			second.Release()
			if res := apply(dup, "r3", "a"); res.Inserted != 2 || res.Updated != 1 {
				t.Fatalf("keys twice in a batch: %+v, want 2 inserted (300, 301), 1 updated (150)", res)
			}
			set("a", "d1", []int{301})
			set("a", "d2", []int{300, 150})
			wantUsers(t, d, want)

			// A transaction rolled back after its inserts, then the same batch again.
			d.SetBeforeCommit(func() error { return errors.New("injected") })
			rec := keyedUsers(t, mem, "a", "r4", "x1", span(400, 450)...)
			if _, err := d.Apply(ctx, load.Write{Table: users, Batch: rec, Stream: "users", RunID: "r4", Tenant: "a"}); err == nil {
				t.Fatal("the injected failure did not fail the write")
			}
			d.SetBeforeCommit(nil)
			wantUsers(t, d, want)
			if res := apply(rec, "r4", "a"); res.Inserted != 50 {
				t.Fatalf("the batch again after its rollback: %+v, want 50 inserted", res)
			}
			set("a", "x1", span(400, 450))
			wantUsers(t, d, want)

			// Rows put in by another path than the upsert, then the same keys in a batch.
			side := keyedUsers(t, mem, "a", "r5", "s1", 500, 501)
			if err := d.Append(ctx, "users", side); err != nil {
				t.Fatal(err)
			}
			side.Release()
			if _, err := d.Conn().ExecContext(ctx, `INSERT INTO users SELECT * REPLACE ('k00502' AS id) FROM users WHERE tenant = 'a' AND id = 'k00500'`); err != nil {
				t.Fatal(err)
			}
			if res := apply(keyedUsers(t, mem, "a", "r5", "s2", 500, 501, 502, 503), "r5", "a"); res.Inserted != 1 || res.Updated != 3 {
				t.Fatalf("keys another path inserted: %+v, want 3 updated (500-502), 1 inserted (503)", res)
			}
			set("a", "s2", []int{500, 501, 502, 503})
			wantUsers(t, d, want)
			if f := filterOf(d, "users"); f.Builds < 2 {
				t.Fatalf("rows written around the filter did not make it rebuild: %+v", f)
			}

			// A reset in this process, then the keys again: new, each once.
			if _, err := d.Reset(ctx, []*schemas.Table{users}); err != nil {
				t.Fatal(err)
			}
			if res := apply(keyedUsers(t, mem, "a", "r6", "z1", span(0, 100)...), "r6", "a"); res.Inserted != 100 {
				t.Fatalf("after a reset: %+v", res)
			}
			want = map[string]string{}
			set("a", "z1", span(0, 100))
			wantUsers(t, d, want)
		})
	}
}

// A warehouse written before tenants existed: after its migration, a batch holding keys it has
// updates them (one row per key), whatever the filter.
func TestApply_KeyFilterAfterTenantMigration(t *testing.T) {
	ctx := context.Background()
	wh := filepath.Join(t.TempDir(), "w.duckdb")
	f, err := os.Open("../pipeline/testdata/pre-tenants.duckdb.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := os.Create(wh)
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
	out.Close()
	d := openTest(t, wh)
	total := count(t, d, "SELECT count(*) FROM users")
	rows, err := d.Conn().QueryContext(ctx, "SELECT id FROM users ORDER BY id LIMIT 20")
	if err != nil {
		t.Fatal(err)
	}
	users, _ := schemas.Lookup("users")
	b := transform.NewBatcher(users, memory.NewGoAllocator(), transform.Meta{RunID: "after", SyncedAt: time.Now().UnixMicro()})
	defer b.Release()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		if err := b.Add([]byte(fmt.Sprintf(`{"uuid":%q,"firstName":"migrated","lastModified":1700000000000}`, id))); err != nil {
			t.Fatal(err)
		}
	}
	rows.Close()
	if total < 20 || len(ids) != 20 {
		t.Fatalf("the fixture holds %d users", total)
	}
	rec := b.Flush()
	defer rec.Release()
	res, err := d.Apply(ctx, load.Write{Table: users, Batch: rec, Stream: "users", RunID: "after"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Updated != 20 || res.Inserted != 0 {
		t.Fatalf("%+v, want the 20 migrated rows updated", res)
	}
	if n := count(t, d, "SELECT count(*) FROM users"); n != total {
		t.Fatalf("%d users after the batch, want %d", n, total)
	}
	if n := count(t, d, "SELECT count(*) FROM users WHERE first_name = 'migrated' AND tenant = 'default'"); n != 20 {
		t.Fatalf("%d rows updated, want 20", n)
	}
}
