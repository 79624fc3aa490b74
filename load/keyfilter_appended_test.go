package load

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
	"github.com/marketsync/marketsync/transform"
)

func appendedTestUsers(t *testing.T, variant string, ids ...int) arrow.RecordBatch {
	t.Helper()
	table, _ := schemas.Lookup("users")
	b := transform.NewBatcher(table, memory.DefaultAllocator, transform.Meta{RunID: "r-" + variant, SyncedAt: time.Now().UnixMicro()})
	defer b.Release()
	for _, i := range ids {
		rec := fmt.Sprintf(`{"uuid":"k%05d","firstName":%q,"roles":["ROLE_USER",%q],"lastModified":1700000000000}`, i, variant, variant)
		if err := b.Add([]byte(rec)); err != nil {
			t.Fatal(err)
		}
	}
	return b.Flush()
}

func openAppendedTest(t *testing.T) (*DuckDB, *schemas.Table) {
	t.Helper()
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "w.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	users, _ := schemas.Lookup("users")
	if err := d.Migrate(ctx, []*schemas.Table{users}); err != nil {
		t.Fatal(err)
	}
	return d, users
}

func applyUsers(t *testing.T, d *DuckDB, users *schemas.Table, variant string, ids ...int) Result {
	t.Helper()
	b := appendedTestUsers(t, variant, ids...)
	defer b.Release()
	res, err := d.Apply(context.Background(), Write{Table: users, Batch: b})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func seq(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// A row appended behind the writer's back (here on its own connection, without the side-write
// mark every handed-out handle sets), even one that keeps the table's row count (a delete and
// an insert), makes the filter be rebuilt: the next write of that key updates it, never adds it
// twice. Counting the rows missed the same-count case.
func TestKeyFilter_RowsAppendedBehindTheWriterAreSeen(t *testing.T) {
	ctx := context.Background()
	d, users := openAppendedTest(t)
	applyUsers(t, d, users, "a", seq(1, 100)...)
	if _, err := d.conn.ExecContext(ctx, `DELETE FROM users WHERE id = 'k00001'`); err != nil {
		t.Fatal(err)
	}
	if _, err := d.conn.ExecContext(ctx, `INSERT INTO users SELECT * REPLACE ('k00500' AS id) FROM users WHERE id = 'k00002'`); err != nil {
		t.Fatal(err)
	}
	res := applyUsers(t, d, users, "b", 500, 600)
	var rows int
	var first string
	if err := d.conn.QueryRowContext(ctx, `SELECT count(*), any_value(first_name) FROM users WHERE id = 'k00500'`).Scan(&rows, &first); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || first != "b" || res.Inserted != 1 || res.Updated != 1 {
		t.Fatalf("k00500: %d rows, first_name %q; the write inserted %d, updated %d (want 1 row of b, 1 inserted, 1 updated)", rows, first, res.Inserted, res.Updated)
	}
}

// Updating list columns, which DuckDB makes a delete and an insert, does not make the writer's
// next write rebuild the filter (one scan of every key each time).
func TestKeyFilter_WritersOwnUpdatesKeepTheFilter(t *testing.T) {
	ctx := context.Background()
	d, users := openAppendedTest(t)
	applyUsers(t, d, users, "a", seq(1, 100)...)
	before, err := d.appendedRows(ctx, users)
	if err != nil {
		t.Fatal(err)
	}
	if res := applyUsers(t, d, users, "b", seq(1, 100)...); res.Updated != 100 {
		t.Fatalf("%+v", res)
	}
	after, err := d.appendedRows(ctx, users)
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Logf("the list updates appended nothing (%d -> %d): DuckDB updates lists in place now", before, after)
	}
	res := applyUsers(t, d, users, "c", seq(101, 200)...)
	f := d.filters["users"]
	if res.Inserted != 100 || f == nil || f.builds != 1 || f.passed != 200 {
		t.Fatalf("inserted %d; filter %+v: want one build, and the 200 new keys (first batch and last) passed without the join", res.Inserted, f)
	}
}

// The same rows appended behind the writer's back, then a write without rows (a stream's
// closing cursor): reading the table's appended rows after that commit must not take them for
// the writer's own, and the next write of the key updates it.
func TestKeyFilter_WriteWithoutRowsDoesNotAdoptRowsAppendedBehind(t *testing.T) {
	ctx := context.Background()
	d, users := openAppendedTest(t)
	applyUsers(t, d, users, "a", seq(1, 100)...)
	if _, err := d.conn.ExecContext(ctx, `INSERT INTO users SELECT * REPLACE ('k00500' AS id) FROM users WHERE id = 'k00002'`); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Apply(ctx, Write{Table: users, Stream: "users", Cursor: &state.Cursor{V: 1, Value: 1}}); err != nil {
		t.Fatal(err)
	}
	res := applyUsers(t, d, users, "b", 500)
	var rows int
	if err := d.conn.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE id = 'k00500'`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || res.Inserted != 0 || res.Updated != 1 {
		t.Fatalf("k00500: %d rows; the write inserted %d, updated %d (want 1 row, 0 inserted, 1 updated)", rows, res.Inserted, res.Updated)
	}
}
