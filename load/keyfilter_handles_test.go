package load_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/marketsync/marketsync/load"
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
	res := applyUsers(t, a, rec, "r2", "a")
	rec.Release()
	if res.Inserted != 0 || res.Updated != 1 {
		t.Errorf("%+v, filter %+v: want the row changed by SQL on the other handle updated, not inserted again", res, filterOf(a, "users"))
	}
	noDupKeys(t, a)
}
