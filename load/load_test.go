package load_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
	"github.com/marketsync/marketsync/transform"
)

func openTest(t *testing.T, path string) *load.DuckDB {
	t.Helper()
	d, err := load.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Migrate(context.Background(), schemas.Tables); err != nil {
		t.Fatal(err)
	}
	return d
}

// usersBatch builds n users with ids from..from+n-1 and the given lastModified.
func usersBatch(t *testing.T, mem memory.Allocator, run string, from, n int, modified int64) arrow.RecordBatch {
	t.Helper()
	table, _ := schemas.Lookup("users")
	b := transform.NewBatcher(table, mem, transform.Meta{RunID: run, SyncedAt: time.Now().UnixMicro()})
	defer b.Release()
	for i := from; i < from+n; i++ {
		rec := fmt.Sprintf(`{"uuid":"u%05d","email":"u%d@example.com","roles":["ROLE_USER"],"company":{"uuid":"c1"},"lastModified":%d}`, i, i, modified)
		if err := b.Add([]byte(rec)); err != nil {
			t.Fatal(err)
		}
	}
	return b.Flush()
}

func count(t *testing.T, d *load.DuckDB, q string) int64 {
	t.Helper()
	var n int64
	if err := d.Conn().QueryRowContext(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestApply_ReplayIsHarmless(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	d := openTest(t, ":memory:")
	users, _ := schemas.Lookup("users")
	ctx := context.Background()
	rec := usersBatch(t, mem, "r1", 0, 1000, 1700000000000)
	defer rec.Release()
	res, err := d.Apply(ctx, load.Write{Table: users, Batch: rec, Stream: "users", Cursor: &state.Cursor{Value: 1}})
	if err != nil || res.Inserted != 1000 || res.Updated != 0 {
		t.Fatalf("first apply: %+v %v", res, err)
	}
	// Replayed within the same run (a listing that repeats itself): nothing to count again.
	res, err = d.Apply(ctx, load.Write{Table: users, Batch: rec, Stream: "users", Cursor: &state.Cursor{Value: 1}})
	if err != nil || res.Inserted != 0 || res.Updated != 0 || res.Unchanged != 0 {
		t.Fatalf("replay in the same run: %+v %v, want nothing counted again", res, err)
	}
	// Replayed by the next run (a resumed window): unchanged, not rewritten, not updated.
	replay := usersBatch(t, mem, "r1b", 0, 1000, 1700000000000)
	defer replay.Release()
	res, err = d.Apply(ctx, load.Write{Table: users, Batch: replay, Stream: "users", Cursor: &state.Cursor{Value: 1}})
	if err != nil || res.Inserted != 0 || res.Updated != 0 || res.Unchanged != 1000 {
		t.Fatalf("replay: %+v %v, want 1000 unchanged (same content: not rewritten, not counted as updated)", res, err)
	}
	// A later run lists 10 of them with a new lastModified: exactly those are updated.
	changed := usersBatch(t, mem, "r2", 0, 10, 1700000005000)
	defer changed.Release()
	res, err = d.Apply(ctx, load.Write{Table: users, Batch: changed, Stream: "users"})
	if err != nil || res.Inserted != 0 || res.Updated != 10 || res.Unchanged != 0 {
		t.Fatalf("changed rows: %+v %v, want 10 updated", res, err)
	}
	again := usersBatch(t, mem, "r3", 0, 1000, 1700000000000)
	defer again.Release()
	if res, err = d.Apply(ctx, load.Write{Table: users, Batch: again, Stream: "users"}); err != nil || res.Updated != 10 || res.Unchanged != 990 {
		t.Fatalf("mixed: %+v %v, want 10 updated (back to the old value) and 990 unchanged", res, err)
	}
	if n := count(t, d, "SELECT count(*) FROM users WHERE _run_id = 'r3'"); n != 1000 {
		t.Fatalf("%d rows carry the last run that saw them, want 1000 (unchanged rows are seen too)", n)
	}
	if n := count(t, d, "SELECT count(*) FROM users"); n != 1000 {
		t.Fatalf("%d rows after replay, want 1000", n)
	}
	if n := count(t, d, "SELECT count(DISTINCT id) FROM users"); n != 1000 {
		t.Fatalf("duplicate ids: %d distinct", n)
	}
}

func TestApply_CursorNeverAheadOfData(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	d := openTest(t, ":memory:")
	users, _ := schemas.Lookup("users")
	ctx := context.Background()
	first := usersBatch(t, mem, "r1", 0, 10, 1700000001000)
	defer first.Release()
	if _, err := d.Apply(ctx, load.Write{Table: users, Batch: first, Stream: "users", Cursor: &state.Cursor{Value: 1000}}); err != nil {
		t.Fatal(err)
	}
	// A crash between the writes and COMMIT: neither the rows nor the cursor may land.
	boom := errors.New("injected crash before commit")
	d.SetBeforeCommit(func() error { return boom })
	second := usersBatch(t, mem, "r2", 10, 10, 1700000002000)
	defer second.Release()
	_, err := d.Apply(ctx, load.Write{Table: users, Batch: second, Stream: "users", Cursor: &state.Cursor{Value: 2000},
		Deletes: &load.DeleteScope{RunID: "r2", At: time.Now()}})
	if !errors.Is(err, boom) {
		t.Fatalf("apply: %v, want the injected error", err)
	}
	d.SetBeforeCommit(nil)
	if n := count(t, d, "SELECT count(*) FROM users"); n != 10 {
		t.Fatalf("%d rows after a failed commit, want the 10 committed before", n)
	}
	if n := count(t, d, "SELECT count(*) FROM users WHERE _deleted_at IS NOT NULL"); n != 0 {
		t.Fatalf("%d soft deletes survived a rollback", n)
	}
	c, _, err := d.Cursor(ctx, "users", "")
	if err != nil || c.Value != 1000 {
		t.Fatalf("cursor %+v %v, want the committed 1000", c, err)
	}
	// The connection is usable again and the retry lands both.
	if _, err := d.Apply(ctx, load.Write{Table: users, Batch: second, Stream: "users", Cursor: &state.Cursor{Value: 2000}}); err != nil {
		t.Fatal(err)
	}
	if c, _, _ := d.Cursor(ctx, "users", ""); c.Value != 2000 || count(t, d, "SELECT count(*) FROM users") != 20 {
		t.Fatalf("after retry: cursor %d", c.Value)
	}
}

func TestApply_DeletesRowsAbsentFromFullScan(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	d := openTest(t, ":memory:")
	users, _ := schemas.Lookup("users")
	ctx := context.Background()
	all := usersBatch(t, mem, "r1", 0, 20, 1700000000001)
	defer all.Release()
	if _, err := d.Apply(ctx, load.Write{Table: users, Batch: all}); err != nil {
		t.Fatal(err)
	}
	// Run r2's full scan sees only users 0..14: 15..19 are gone from the source.
	seen := usersBatch(t, mem, "r2", 0, 15, 1700000000002)
	defer seen.Release()
	at := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	res, err := d.Apply(ctx, load.Write{Table: users, Batch: seen, Deletes: &load.DeleteScope{RunID: "r2", At: at}})
	if err != nil || res.Deleted != 5 {
		t.Fatalf("deletes: %+v %v, want 5", res, err)
	}
	if n := count(t, d, "SELECT count(*) FROM users WHERE _deleted_at IS NOT NULL AND id >= 'u00015'"); n != 5 {
		t.Fatalf("%d rows marked, want users 15..19", n)
	}
	if n := count(t, d, "SELECT count(*) FROM users"); n != 20 {
		t.Fatalf("soft delete must keep rows: %d", n)
	}
	// A row that comes back is live again.
	back := usersBatch(t, mem, "r3", 15, 1, 1700000000003)
	defer back.Release()
	if _, err := d.Apply(ctx, load.Write{Table: users, Batch: back}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, d, "SELECT count(*) FROM users WHERE _deleted_at IS NULL"); n != 16 {
		t.Fatalf("live rows %d, want 16", n)
	}
}

func TestMigrate_AddsColumnsAndRefusesTypeChanges(t *testing.T) {
	d := openTest(t, ":memory:")
	ctx := context.Background()
	if _, err := d.Conn().ExecContext(ctx, "ALTER TABLE users DROP COLUMN locale"); err != nil {
		t.Fatal(err)
	}
	if err := d.Migrate(ctx, schemas.Tables); err != nil {
		t.Fatalf("adding a missing column: %v", err)
	}
	if n := count(t, d, "SELECT count(*) FROM information_schema.columns WHERE table_name='users' AND column_name='locale'"); n != 1 {
		t.Fatal("column locale was not added back")
	}
	if _, err := d.Conn().ExecContext(ctx, "ALTER TABLE users ALTER COLUMN email TYPE BIGINT USING 0"); err != nil {
		t.Fatal(err)
	}
	err := d.Migrate(ctx, schemas.Tables)
	if !errors.Is(err, load.ErrSchema) || !strings.Contains(err.Error(), "users.email") || !strings.Contains(err.Error(), "syncer reset --streams users") {
		t.Fatalf("type change: %v, want ErrSchema naming users.email and the fix", err)
	}
}

func TestExportParquet_ReadsBackEqual(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	d := openTest(t, filepath.Join(dir, "w.duckdb"))
	ctx := context.Background()
	users, _ := schemas.Lookup("users")
	rec := usersBatch(t, mem, "r1", 0, 500, 1700000000000)
	defer rec.Release()
	if _, err := d.Apply(ctx, load.Write{Table: users, Batch: rec}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "parquet")
	for i := 0; i < 2; i++ { // the second export swaps in place
		if err := d.ExportParquet(ctx, out, schemas.Tables, nil); err != nil {
			t.Fatal(err)
		}
	}
	q := fmt.Sprintf(`SELECT count(*) FROM (
		SELECT id, email, roles, last_modified, _extra FROM users
		EXCEPT SELECT id, email, roles, last_modified, _extra FROM read_parquet('%s/users/*/*.parquet', hive_partitioning=true))`, out)
	if n := count(t, d, q); n != 0 {
		t.Fatalf("%d rows differ between DuckDB and Parquet", n)
	}
	if n := count(t, d, fmt.Sprintf(`SELECT count(*) FROM read_parquet('%s/users/*/*.parquet', hive_partitioning=true) WHERE year = 2023`, out)); n != 500 {
		t.Fatalf("%d rows in the year=2023 partition, want 500", n)
	}
}

func TestOpen_LockHeldByAnotherProcessIsExplained(t *testing.T) {
	// DuckDB's lock is per process; within one process a second open of the same file shares it,
	// so the message mapping is tested on the driver's text.
	err := load.OpenErrorForTest("/x/w.duckdb", errors.New(`IO Error: Could not set lock on file "/x/w.duckdb": Conflicting lock is held in /usr/bin/duckdb (PID 4242)`))
	if !errors.Is(err, load.ErrLocked) || !strings.Contains(err.Error(), "process 4242") || !strings.Contains(err.Error(), "Parquet") {
		t.Fatalf("lock error: %v", err)
	}
}
