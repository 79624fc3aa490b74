package load_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
)

// Two handles of one file spelled differently (relative and absolute: DuckDB's instance cache
// gives both the same database): a key changed by SQL on one must make the other's filter be
// rebuilt, as it does for one spelling.
func TestKeyFilter_SideWriteOnAnotherSpellingOfThePath(t *testing.T) {
	mem := memory.NewGoAllocator()
	ctx := context.Background()
	dir := t.TempDir()
	t.Chdir(dir)
	a := openTest(t, filepath.Join(dir, "w.duckdb"))
	rec := keyedUsers(t, mem, "a", "r1", "v1", span(0, 100)...)
	applyUsers(t, a, rec, "r1", "a")
	rec.Release()
	b, err := load.Open(ctx, "./w.duckdb")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Conn().ExecContext(ctx, `UPDATE users SET id = 'k09998' WHERE tenant = 'a' AND id = 'k00003'`); err != nil {
		t.Fatal(err)
	}
	rec = keyedUsers(t, mem, "a", "r2", "v2", 9998)
	wantUpdatedNotInserted(t, a, rec, "r2", "the row changed by SQL on the other handle")
}

// A write without rows (a stream's closing cursor) on handle A, after handle B of the same
// file inserted a key: A must not take B's rows for its own and trust its filter, which lacks
// B's key; A's next write of that key updates B's row.
func TestKeyFilter_WriteWithoutRowsAfterAnotherHandlesInsert(t *testing.T) {
	mem := memory.NewGoAllocator()
	ctx := context.Background()
	wh := filepath.Join(t.TempDir(), "w.duckdb")
	a := openTest(t, wh)
	rec := keyedUsers(t, mem, "a", "r1", "a1", span(0, 100)...)
	applyUsers(t, a, rec, "r1", "a")
	rec.Release()
	b, err := load.Open(ctx, wh)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rec = keyedUsers(t, mem, "a", "r2", "b1", 500)
	applyUsers(t, b, rec, "r2", "a")
	rec.Release()
	users, _ := schemas.Lookup("users")
	if _, err := a.Apply(ctx, load.Write{Table: users, Stream: "users", Cursor: &state.Cursor{V: 1, Value: 1}, RunID: "r3", Tenant: "a"}); err != nil {
		t.Fatal(err)
	}
	rec = keyedUsers(t, mem, "a", "r3", "a2", 500)
	wantUpdatedNotInserted(t, a, rec, "r3", "the row handle B wrote")
}

// Handle A updates list columns of checkpointed rows (DuckDB: a delete and an insert each);
// handle B inserts as many new keys and exports Parquet, whose CHECKPOINT vacuums A's deleted
// versions: the table's estimated_size is back to what A read after its commit (200 -> 300 ->
// 200). A must still see B's keys.
func TestKeyFilter_AnotherHandlesInsertsAndACheckpoint(t *testing.T) {
	mem := memory.NewGoAllocator()
	ctx := context.Background()
	dir := t.TempDir()
	wh := filepath.Join(dir, "w.duckdb")
	a := openTest(t, wh)
	v := func(string) int { return 1 }
	var ids, newIDs []string
	for _, i := range span(0, 100) {
		ids = append(ids, keyID(i))
		newIDs = append(newIDs, keyID(500+i))
	}
	users, _ := schemas.Lookup("users")
	rec := layoutUsers(t, mem, "a", "r1", v, ids...)
	applyUsers(t, a, rec, "r1", "a")
	rec.Release()
	if err := a.ExportParquet(ctx, filepath.Join(dir, "parquet"), []*schemas.Table{users}, nil); err != nil {
		t.Fatal(err) // its CHECKPOINT writes the rows to the file
	}
	rec = layoutUsers(t, mem, "a", "r2", func(string) int { return 2 }, ids...) // other roles: list updates
	applyUsers(t, a, rec, "r2", "a")
	rec.Release()
	b, err := load.Open(ctx, wh)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rec = layoutUsers(t, mem, "a", "r3", v, newIDs...)
	applyUsers(t, b, rec, "r3", "a")
	rec.Release()
	if err := b.ExportParquet(ctx, filepath.Join(dir, "parquet"), []*schemas.Table{users}, nil); err != nil {
		t.Fatal(err)
	}
	rec = layoutUsers(t, mem, "a", "r4", func(string) int { return 3 }, newIDs[50])
	wantUpdatedNotInserted(t, a, rec, "r4", "the row handle B wrote")
}

func keyID(i int) string { return "id" + string(rune('a'+i/26%26)) + string(rune('a'+i%26)) }
