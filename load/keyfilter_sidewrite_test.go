package load_test

import (
	"context"
	"fmt"
	"path/filepath"
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

// layoutUsers: users whose id is ids[i] verbatim, roles and first name by version.
func layoutUsers(t *testing.T, mem memory.Allocator, tenant, run string, version func(string) int, ids ...string) arrow.RecordBatch {
	t.Helper()
	table, _ := schemas.Lookup("users")
	b := transform.NewBatcher(table, mem, transform.Meta{RunID: run, SyncedAt: time.Now().UnixMicro(), Tenant: tenant})
	defer b.Release()
	for _, id := range ids {
		v := version(id)
		roles := `"ROLE_USER"`
		for j := 0; j < v%4; j++ {
			roles += fmt.Sprintf(`,"R%d_%d"`, v, j)
		}
		rec := fmt.Sprintf(`{"uuid":%q,"email":"%s@example.com","firstName":"F%d","roles":[%s],"company":{"uuid":"c%d"},"lastModified":1700000000000}`, id, id, v, roles, v)
		if err := b.Add([]byte(rec)); err != nil {
			t.Fatal(err)
		}
	}
	return b.Flush()
}

// withKeyLayout rebuilds rec with its tenant and id columns as type dt (large_string,
// string_view, dictionary).
func withKeyLayout(t *testing.T, mem memory.Allocator, rec arrow.RecordBatch, dt arrow.DataType) arrow.RecordBatch {
	t.Helper()
	users, _ := schemas.Lookup("users")
	fields := append([]arrow.Field{}, rec.Schema().Fields()...)
	cols := make([]arrow.Array, rec.NumCols())
	for i := range cols {
		name := fields[i].Name
		if name != schemas.ColTenant && name != users.PrimaryKey {
			cols[i] = rec.Column(i)
			cols[i].Retain()
			continue
		}
		src := rec.Column(i).(*array.String)
		bld := array.NewBuilder(mem, dt)
		for j := 0; j < src.Len(); j++ {
			if src.IsNull(j) {
				bld.AppendNull()
				continue
			}
			switch b := bld.(type) {
			case *array.LargeStringBuilder:
				b.Append(src.Value(j))
			case *array.StringViewBuilder:
				b.Append(src.Value(j))
			case *array.BinaryDictionaryBuilder:
				if err := b.AppendString(src.Value(j)); err != nil {
					t.Fatal(err)
				}
			default:
				t.Fatalf("builder %T", bld)
			}
		}
		cols[i] = bld.NewArray()
		bld.Release()
		fields[i].Type = dt
	}
	out := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, rec.NumRows())
	for _, c := range cols {
		c.Release()
	}
	return out
}

func applyUsers(t *testing.T, d *load.DuckDB, rec arrow.RecordBatch, run, tenant string) load.Result {
	t.Helper()
	users, _ := schemas.Lookup("users")
	res, err := d.Apply(context.Background(), load.Write{Table: users, Batch: rec, Stream: "users", RunID: run, Tenant: tenant})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func noDupKeys(t *testing.T, d *load.DuckDB) {
	t.Helper()
	if n := count(t, d, `SELECT count(*) FROM (SELECT tenant, id FROM users GROUP BY ALL HAVING count(*) > 1)`); n != 0 {
		t.Fatalf("%d keys held more than once", n)
	}
}

// A side write through Conn that deletes one row and inserts another keeps count(*): the
// filter is trusted and lacks the inserted key.
func TestKeyFilter_SideWriteKeepingTheCountIsNotTrusted(t *testing.T) {
	mem := memory.NewGoAllocator()
	d := openTest(t, filepath.Join(t.TempDir(), "w.duckdb"))
	ctx := context.Background()
	rec := keyedUsers(t, mem, "a", "r1", "v1", span(0, 100)...)
	applyUsers(t, d, rec, "r1", "a")
	rec.Release()
	if _, err := d.Conn().ExecContext(ctx, `BEGIN; INSERT INTO users SELECT * REPLACE ('k09999' AS id) FROM users WHERE tenant = 'a' AND id = 'k00001';
		DELETE FROM users WHERE tenant = 'a' AND id = 'k00002'; COMMIT`); err != nil {
		t.Fatal(err)
	}
	rec = keyedUsers(t, mem, "a", "r2", "v2", 9999)
	wantUpdatedNotInserted(t, d, rec, "r2", "the row written by SQL")
}

// Rowids after deletes, a checkpoint (vacuum) and LIST updates: a mixed batch writes
// whole rows.
func TestKeyFilter_RowidUpdatesAfterVacuumAndListUpdates(t *testing.T) {
	skipUnderRace(t) // tens of thousands of rows through one writer: 33 s under -race, 11 s without
	for _, n := range []int{6000, 60000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) { checkRowidUpdates(t, n) })
	}
}

func checkRowidUpdates(t *testing.T, total int) {
	mem := memory.NewGoAllocator()
	d := openTest(t, filepath.Join(t.TempDir(), "w.duckdb"))
	ctx := context.Background()
	var ids []string
	for i := 0; i < total; i++ {
		ids = append(ids, fmt.Sprintf("id%06d", i))
	}
	ver := map[string]int{}
	v1 := func(id string) int { return 1 }
	for from := 0; from < total; from += 25000 {
		rec := layoutUsers(t, mem, "a", "r1", v1, ids[from:min(total, from+25000)]...)
		applyUsers(t, d, rec, "r1", "a")
		rec.Release()
	}
	for _, id := range ids {
		ver[id] = 1
	}
	// delete every third row, checkpoint: row groups may be compacted, rowids move
	if _, err := d.Conn().ExecContext(ctx, `DELETE FROM users WHERE CAST(substr(id, 3) AS INT) % 3 = 0 OR CAST(substr(id, 3) AS INT) BETWEEN 1000 AND 150000; CHECKPOINT; VACUUM users; CHECKPOINT`); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		var n int
		fmt.Sscanf(id, "id%06d", &n)
		if n%3 == 0 || (n >= 1000 && n <= 150000) {
			delete(ver, id)
		}
	}
	for round := 2; round < 6; round++ {
		// interleave: changed (list changes), seen, new, deleted-and-back
		var batch []string
		for i := 0; i < total; i += (1 + round%3) * (total / 6000) {
			batch = append(batch, ids[i])
		}
		for i := 0; i < 50; i++ {
			batch = append(batch, fmt.Sprintf("new%d_%03d", round, i))
		}
		vf := func(id string) int {
			h := 0
			for _, c := range id {
				h = h*31 + int(c)
			}
			if (h+round)%2 == 0 {
				return round
			}
			if v, ok := ver[id]; ok {
				return v
			}
			return round
		}
		rec := layoutUsers(t, mem, "a", fmt.Sprintf("r%d", round), vf, batch...)
		res := applyUsers(t, d, rec, fmt.Sprintf("r%d", round), "a")
		rec.Release()
		for _, id := range batch {
			ver[id] = vf(id)
		}
		t.Logf("round %d: %+v", round, res)
		noDupKeys(t, d)
		users, _ := schemas.Lookup("users")
		var content []string
		for _, c := range users.Columns {
			content = append(content, load.Quote(c.Name))
		}
		if n := count(t, d, `SELECT count(*) FROM users WHERE _content_hash IS DISTINCT FROM (hash(`+strings.Join(content, ", ")+`, _extra) >> 1)::BIGINT OR _run_id IS NULL OR _deleted_at IS NOT NULL`); n != 0 {
			t.Fatalf("%d rows whose stored hash is not their content's", n)
		}
		// every row holds its version's values
		rows, err := d.Conn().QueryContext(ctx, `SELECT id, first_name, len(roles), company_id FROM users WHERE tenant = 'a'`)
		if err != nil {
			// column names may differ; fall back
			rows, err = d.Conn().QueryContext(ctx, `SELECT id, first_name, len(roles), '' FROM users WHERE tenant = 'a'`)
			if err != nil {
				t.Fatal(err)
			}
		}
		got := 0
		for rows.Next() {
			var id, fn, comp string
			var nroles int
			if err := rows.Scan(&id, &fn, &nroles, &comp); err != nil {
				t.Fatal(err)
			}
			got++
			v, ok := ver[id]
			if !ok {
				t.Fatalf("row %s not expected", id)
			}
			if fn != fmt.Sprintf("F%d", v) || nroles != 1+v%4 || comp != fmt.Sprintf("c%d", v) {
				t.Fatalf("row %s: first_name %s, %d roles, want version %d", id, fn, nroles, v)
			}
		}
		rows.Close()
		if got != len(ver) {
			t.Fatalf("%d rows, want %d", got, len(ver))
		}
		if round == 3 {
			if _, err := d.Conn().ExecContext(ctx, `CHECKPOINT`); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// 3. Key string layouts and lengths (inlined <= 12 bytes and not, non-ASCII): the hashes the
// filter is built with (from the table, after a reopen) match those of a batch's view.
func TestKeyFilter_EveryKeyLayoutHashesAlike(t *testing.T) {
	mem := memory.NewGoAllocator()
	var ids []string
	for l := 1; l <= 40; l++ {
		ids = append(ids, strings.Repeat("x", l), strings.Repeat("é", l/2+1)+fmt.Sprint(l), "k"+strings.Repeat("0", l))
	}
	for _, dt := range []arrow.DataType{arrow.BinaryTypes.String, arrow.BinaryTypes.LargeString, arrow.BinaryTypes.StringView,
		&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}} {
		t.Run(dt.String(), func(t *testing.T) {
			wh := filepath.Join(t.TempDir(), "w.duckdb")
			d := openTest(t, wh)
			v := func(string) int { return 1 }
			rec := layoutUsers(t, mem, "tenant-with-a-long-name", "r1", v, ids...)
			applyUsers(t, d, rec, "r1", "tenant-with-a-long-name")
			rec.Release()
			d.Close()
			d = openTest(t, wh)
			for _, lay := range []arrow.DataType{dt, arrow.BinaryTypes.String} {
				base := layoutUsers(t, mem, "tenant-with-a-long-name", "r2", func(string) int { return 2 }, ids...)
				rec = base
				if lay != arrow.BinaryTypes.String {
					rec = withKeyLayout(t, mem, base, lay)
					base.Release()
				}
				res := applyUsers(t, d, rec, "r2", "tenant-with-a-long-name")
				rec.Release()
				t.Logf("layout %s: %+v filter %+v", lay, res, filterOf(d, "users"))
				if res.Inserted != 0 {
					t.Errorf("layout %s: %d inserted, want 0", lay, res.Inserted)
				}
				noDupKeys(t, d)
			}
		})
	}
}

// A batch holding a key twice whose key columns the filter cannot read (dictionary): the
// doc says its last row is written once.
func TestKeyFilter_DuplicateDictionaryKeysInsertOnce(t *testing.T) {
	mem := memory.NewGoAllocator()
	d := openTest(t, ":memory:")
	first := keyedUsers(t, mem, "a", "r1", "d1", 1, 2)
	second := keyedUsers(t, mem, "a", "r1", "d2", 1)
	dup := concatBatches(t, mem, first, second)
	first.Release()
	second.Release()
	rec := withKeyLayout(t, mem, dup, &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String})
	dup.Release()
	res := applyUsers(t, d, rec, "r1", "a")
	rec.Release()
	noDupKeys(t, d)
	var fn string
	_ = d.Conn().QueryRowContext(context.Background(), `SELECT string_agg(first_name, ',') FROM users WHERE id = 'k00001'`).Scan(&fn)
	if res.Inserted != 2 || fn != "d2" {
		t.Errorf("%+v, k00001's first name %q: want 2 inserted and the last row's d2", res, fn)
	}
}

// The same, for a key already in the table: the last row wins, written once by its rowid.
func TestKeyFilter_DuplicateDictionaryKeysOfAnExistingRow(t *testing.T) {
	mem := memory.NewGoAllocator()
	d := openTest(t, ":memory:")
	rec := keyedUsers(t, mem, "a", "r1", "d0", 1, 2)
	applyUsers(t, d, rec, "r1", "a")
	rec.Release()
	first := keyedUsers(t, mem, "a", "r2", "d1", 1, 2)
	second := keyedUsers(t, mem, "a", "r2", "d2", 1)
	dup := concatBatches(t, mem, first, second)
	first.Release()
	second.Release()
	rec = withKeyLayout(t, mem, dup, &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String})
	dup.Release()
	users, _ := schemas.Lookup("users")
	res, err := d.Apply(context.Background(), load.Write{Table: users, Batch: rec, Stream: "users", RunID: "r2", Tenant: "a"})
	rec.Release()
	var fn string
	_ = d.Conn().QueryRowContext(context.Background(), `SELECT string_agg(first_name, ',') FROM users WHERE id = 'k00001'`).Scan(&fn)
	if err != nil || res.Updated != 2 || res.Inserted != 0 || fn != "d2" {
		t.Errorf("%+v (%v), k00001's first name %q: want 2 updated and the last row's d2", res, err, fn)
	}
	noDupKeys(t, d)
}

// An UPDATE of a key through Conn: count(*) unchanged, the new key is not in the filter.
func TestKeyFilter_KeyUpdatedByRawSQL(t *testing.T) {
	mem := memory.NewGoAllocator()
	d := openTest(t, filepath.Join(t.TempDir(), "w.duckdb"))
	rec := keyedUsers(t, mem, "a", "r1", "v1", span(0, 100)...)
	applyUsers(t, d, rec, "r1", "a")
	rec.Release()
	if _, err := d.Conn().ExecContext(context.Background(), `UPDATE users SET id = 'k09998' WHERE tenant = 'a' AND id = 'k00003'`); err != nil {
		t.Fatal(err)
	}
	rec = keyedUsers(t, mem, "a", "r2", "v2", 9998)
	wantUpdatedNotInserted(t, d, rec, "r2", "the row written by SQL")
}

// Two handles of one file in one process (serve's instance cache): B inserts a key, then A
// upserts it; then a rollback on A after a rebuild, then the retry.
func TestKeyFilter_TwoHandlesOfOneFile(t *testing.T) {
	mem := memory.NewGoAllocator()
	wh := filepath.Join(t.TempDir(), "w.duckdb")
	a := openTest(t, wh)
	rec := keyedUsers(t, mem, "a", "r1", "v1", span(0, 100)...)
	applyUsers(t, a, rec, "r1", "a")
	rec.Release()
	b, err := load.Open(context.Background(), wh)
	if err != nil {
		t.Skipf("second handle: %v", err)
	}
	defer b.Close()
	rec = keyedUsers(t, mem, "a", "r2", "b1", 500, 501)
	applyUsers(t, b, rec, "r2", "a")
	rec.Release()
	a.SetBeforeCommit(func() error { return fmt.Errorf("injected") })
	rec = keyedUsers(t, mem, "a", "r3", "a1", 500, 502)
	users, _ := schemas.Lookup("users")
	if _, err := a.Apply(context.Background(), load.Write{Table: users, Batch: rec, Stream: "users", RunID: "r3", Tenant: "a"}); err == nil {
		t.Fatal("no failure")
	}
	a.SetBeforeCommit(nil)
	res := applyUsers(t, a, rec, "r3", "a")
	rec.Release()
	t.Logf("%+v filter %+v", res, filterOf(a, "users"))
	if res.Inserted != 1 || res.Updated != 1 {
		t.Errorf("want 1 inserted, 1 updated")
	}
	noDupKeys(t, a)
}

// Handle B resets the table and loads as many rows with other keys; handle A's filter,
// whose count still matches, must not be trusted.
func TestKeyFilter_ResetOnAnotherHandle(t *testing.T) {
	mem := memory.NewGoAllocator()
	wh := filepath.Join(t.TempDir(), "w.duckdb")
	a := openTest(t, wh)
	rec := keyedUsers(t, mem, "a", "r1", "v1", span(0, 100)...)
	applyUsers(t, a, rec, "r1", "a")
	rec.Release()
	b, err := load.Open(context.Background(), wh)
	if err != nil {
		t.Skipf("second handle: %v", err)
	}
	defer b.Close()
	users, _ := schemas.Lookup("users")
	if _, err := b.Reset(context.Background(), []*schemas.Table{users}); err != nil {
		t.Fatal(err)
	}
	rec = keyedUsers(t, mem, "a", "r2", "b1", span(1000, 1100)...)
	applyUsers(t, b, rec, "r2", "a")
	rec.Release()
	rec = keyedUsers(t, mem, "a", "r3", "a1", 1050)
	wantUpdatedNotInserted(t, a, rec, "r3", "the row the other handle wrote")
}

// wantUpdatedNotInserted applies rec, one key the table already holds (written by some other
// path: what), on d, and checks that the row was updated, not inserted a second time.
func wantUpdatedNotInserted(t *testing.T, d *load.DuckDB, rec arrow.RecordBatch, run, what string) {
	t.Helper()
	res := applyUsers(t, d, rec, run, "a")
	rec.Release()
	if res.Inserted != 0 || res.Updated != 1 {
		t.Errorf("result %+v, filter %+v: want %s updated, not inserted again", res, filterOf(d, "users"), what)
	}
	noDupKeys(t, d)
}
