package load_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/transform"
)

// One batch holding every kind of row (new keys, changed rows, a deleted row listed again, rows
// seen again, rows already seen in this run) writes each whole row where it belongs: the
// classification's positions, the per-kind subsets and the content hashes line up.
func TestApply_MixedBatchWritesWholeRows(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	d := openTest(t, ":memory:")
	users, _ := schemas.Lookup("users")
	ctx := context.Background()
	build := func(run string, ids []int, modified func(int) int64) *transform.Batcher {
		b := transform.NewBatcher(users, mem, transform.Meta{RunID: run, SyncedAt: time.Now().UnixMicro()})
		for _, i := range ids {
			rec := fmt.Sprintf(`{"uuid":"u%05d","email":"u%d@example.com","firstName":"F%d","roles":["ROLE_USER","R%d"],"company":{"uuid":"c%d","n":%d},"lastModified":%d}`,
				i, i, i, i%3, i%7, i, modified(i))
			if err := b.Add([]byte(rec)); err != nil {
				t.Fatal(err)
			}
		}
		return b
	}
	span := func(from, to int) []int {
		var ids []int
		for i := from; i < to; i++ {
			ids = append(ids, i)
		}
		return ids
	}
	old := func(int) int64 { return 1700000000000 }
	apply := func(b *transform.Batcher) load.Result {
		t.Helper()
		rec := b.Flush()
		b.Release()
		defer rec.Release()
		res, err := d.Apply(ctx, load.Write{Table: users, Batch: rec, Stream: "users", RunID: "test"})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := apply(build("r1", span(0, 100), old)); res.Inserted != 100 {
		t.Fatalf("first load: %+v", res)
	}
	if _, err := d.Conn().ExecContext(ctx, `UPDATE users SET _deleted_at = now() WHERE id = 'u00005'`); err != nil {
		t.Fatal(err)
	}
	if res := apply(build("r2", span(40, 50), old)); res.Unchanged != 10 {
		t.Fatalf("rows 40-49 seen by r2: %+v", res)
	}
	// Interleaved: new keys, changed, seen again, already seen in r2, and the deleted row 5.
	var ids []int
	for i := 0; i < 20; i++ {
		ids = append(ids, 100+i, 20+i, i)
		if i < 10 {
			ids = append(ids, 40+i)
		}
	}
	mixed := build("r2", ids, func(i int) int64 {
		if i >= 20 && i < 40 {
			return 1700000009000
		}
		return 1700000000000
	})
	want := mixed.Flush()
	mixed.Release()
	defer want.Release()
	if _, err := d.Conn().ExecContext(ctx, `CREATE TABLE want AS SELECT * EXCLUDE (_stale_since, _content_hash) FROM users LIMIT 0`); err != nil {
		t.Fatal(err)
	}
	if err := d.Append(ctx, "want", want); err != nil {
		t.Fatal(err)
	}
	res, err := d.Apply(ctx, load.Write{Table: users, Batch: want, Stream: "users", RunID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	// New 100-119; changed 20-39 and the deleted 5; seen 0-19 but 5; 40-49 already seen in r2.
	if res.Inserted != 20 || res.Updated != 21 || res.Unchanged != 19 {
		t.Fatalf("mixed batch: %+v, want 20 inserted, 21 updated, 19 unchanged", res)
	}
	var content []string
	for _, c := range users.Columns {
		content = append(content, load.Quote(c.Name))
	}
	cols := strings.Join(content, ", ")
	for _, q := range []string{
		// Every listed row holds exactly the batch's values and is live.
		`SELECT count(*) FROM (SELECT ` + cols + ` FROM want EXCEPT SELECT ` + cols + ` FROM users WHERE _deleted_at IS NULL AND _stale_since IS NULL)`,
		// Every row's stored hash is the hash of its own content.
		`SELECT count(*) FROM users WHERE _content_hash IS DISTINCT FROM (hash(` + cols + `, _extra) >> 1)::BIGINT`,
		// Rows the batch rewrote carry its _synced_at; rows it only saw keep theirs.
		`SELECT count(*) FROM users u JOIN want w USING (id) WHERE u._run_id <> 'r2' OR ((u.id >= 'u00020' AND u.id < 'u00040' OR u.id >= 'u00100' OR u.id = 'u00005') <> (u._synced_at = w._synced_at))`,
		// Rows not listed stay as r1 wrote them.
		`SELECT count(*) FROM users WHERE id >= 'u00050' AND id < 'u00100' AND (_run_id <> 'r1' OR _deleted_at IS NOT NULL)`,
	} {
		if n := count(t, d, q); n != 0 {
			t.Errorf("%d rows wrong: %s", n, q)
		}
	}
	if n := count(t, d, "SELECT count(*) FROM users"); n != 120 {
		t.Fatalf("%d rows, want 120", n)
	}
}
