package lake

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
)

var modes = []string{CopyOnWrite, EqualityDeletes}

// Batches made by the production Batcher for two tables (a string key partitioned by location,
// an integer key with lists partitioned by year) come back whole, with the cursor.
func TestRoundTrip(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			w := newLakeDir(t).open(t, mode)
			charges, invoices := mustTable(t, "charges"), mustTable(t, "invoices")
			var crecs [][]byte
			for i := range 40 {
				crecs = append(crecs, chargeRec(i, fmt.Sprintf("loc-%d", i%2), 0))
			}
			cb := batch(t, charges, "r1", crecs...)
			defer cb.Release()
			ib := batch(t, invoices, "r1", invoiceRec(1, "PAID"), invoiceRec(2, "DUE"), invoiceRec(30, "DUE"))
			defer ib.Release()
			cur := &state.Cursor{Value: 1700000000000000}
			res, err := w.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{cb}, Cursor: cur, Stream: "charges", Partition: "loc-0"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Upserted != 40 || res.Attempts != 1 || res.SnapshotID == 0 {
				t.Errorf("result %+v", res)
			}
			if _, err := w.Commit(ctx, Commit{Table: invoices, Batches: []arrow.RecordBatch{ib}, Stream: "invoices"}); err != nil {
				t.Fatal(err)
			}
			equalRows(t, "charges", scanRows(t, w, charges), rowsOf(t, charges, nil, cb))
			equalRows(t, "invoices", scanRows(t, w, invoices), rowsOf(t, invoices, nil, ib))
			// Partitioned like the Parquet output: by location for charges, by creation year else.
			for tb, want := range map[string][]string{"charges": {"location_id=loc-0", "location_id=loc-1"}, "invoices": {"creation_date_year=2024", "creation_date_year=2020"}} {
				tasks, err := currentTable(t, w, mustTable(t, tb)).Scan().PlanFiles(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var paths []string
				for _, task := range tasks {
					paths = append(paths, task.File.FilePath())
				}
				for _, p := range want {
					if !slices.ContainsFunc(paths, func(s string) bool { return strings.Contains(s, "/"+p+"/") }) {
						t.Errorf("%s: no data file under %s in %v", tb, p, paths)
					}
				}
			}
			got, ok, err := w.Cursor(ctx, charges, schemas.DefaultTenant, "charges", "loc-0")
			if err != nil || !ok || got.Value != cur.Value {
				t.Errorf("cursor = %+v, %v, %v; want %+v", got, ok, err, cur)
			}
			if _, ok, _ := w.Cursor(ctx, charges, schemas.DefaultTenant, "charges", "loc-1"); ok {
				t.Error("a cursor never committed was found")
			}
		})
	}
}

// The same key twice (in two commits, and in two batches of one commit) is one row with the
// latest values, in every partition layout.
func TestUpsert(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			w := newLakeDir(t).open(t, mode)
			charges, invoices := mustTable(t, "charges"), mustTable(t, "invoices")
			var v0, v1 [][]byte
			for i := range 30 {
				v0 = append(v0, chargeRec(i, "loc-a", 0))
				if i%3 == 0 {
					v1 = append(v1, chargeRec(i, "loc-a", 1))
				}
			}
			b0 := batch(t, charges, "r1", v0...)
			defer b0.Release()
			b1 := batch(t, charges, "r2", v1...)
			defer b1.Release()
			b2 := batch(t, charges, "r2", chargeRec(3, "loc-a", 2), chargeRec(100, "loc-a", 0))
			defer b2.Release()
			if _, err := w.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{b0}, Stream: "charges", Partition: "loc-a"}); err != nil {
				t.Fatal(err)
			}
			// One commit whose second batch repeats a key of its first: the later copy wins.
			res, err := w.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{b1, b2}, Stream: "charges", Partition: "loc-a"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Upserted != int64(b1.NumRows()+b2.NumRows()-1) {
				t.Errorf("upserted %d", res.Upserted)
			}
			want := rowsOf(t, charges, nil, b0, b1, b2)
			equalRows(t, "charges", scanRows(t, w, charges), want)
			if got := scanRows(t, w, charges)["ch-000003"]["_extra"]; got != `{"surprise":2}` {
				t.Errorf("ch-000003 _extra = %s, want the latest version's", got)
			}

			i0 := batch(t, invoices, "r1", invoiceRec(1, "DUE"), invoiceRec(2, "DUE"), invoiceRec(9, "DUE"))
			defer i0.Release()
			i1 := batch(t, invoices, "r2", invoiceRec(2, "PAID"), invoiceRec(9, "VOID"))
			defer i1.Release()
			for _, b := range []arrow.RecordBatch{i0, i1} {
				if _, err := w.Commit(ctx, Commit{Table: invoices, Batches: []arrow.RecordBatch{b}, Stream: "invoices"}); err != nil {
					t.Fatal(err)
				}
			}
			equalRows(t, "invoices", scanRows(t, w, invoices), rowsOf(t, invoices, nil, i0, i1))
		})
	}
}

// A failure after the data files are written and before the catalog commit leaves neither the
// rows nor the cursor visible; the next commit makes both visible at once.
func TestCursorNeverAheadOfData(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			dir := newLakeDir(t)
			w := dir.open(t, mode)
			charges := mustTable(t, "charges")
			b0 := batch(t, charges, "r1", chargeRec(1, "loc-a", 0), chargeRec(2, "loc-a", 0))
			defer b0.Release()
			c0 := &state.Cursor{Value: 100}
			if _, err := w.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{b0}, Cursor: c0, Stream: "charges", Partition: "loc-a"}); err != nil {
				t.Fatal(err)
			}
			b1 := batch(t, charges, "r2", chargeRec(2, "loc-a", 5), chargeRec(3, "loc-a", 0))
			defer b1.Release()
			crash := errors.New("killed between the data write and the commit")
			w.beforeCommit = func(*Commit, int) error { return crash }
			_, err := w.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{b1}, Cursor: &state.Cursor{Value: 200}, Stream: "charges", Partition: "loc-a"})
			if !errors.Is(err, crash) {
				t.Fatalf("err = %v, want the injected failure", err)
			}
			// A fresh writer (another process) sees the state before the failed commit.
			other := dir.open(t, mode)
			equalRows(t, "after the failure", scanRows(t, other, charges), rowsOf(t, charges, nil, b0))
			if got, ok, _ := other.Cursor(ctx, charges, schemas.DefaultTenant, "charges", "loc-a"); !ok || got.Value != 100 {
				t.Errorf("cursor after the failure = %+v %v, want 100", got, ok)
			}
			w.beforeCommit = nil
			if _, err := w.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{b1}, Cursor: &state.Cursor{Value: 200}, Stream: "charges", Partition: "loc-a"}); err != nil {
				t.Fatal(err)
			}
			equalRows(t, "after the retry", scanRows(t, other, charges), rowsOf(t, charges, nil, b0, b1))
			if got, _, _ := other.Cursor(ctx, charges, schemas.DefaultTenant, "charges", "loc-a"); got.Value != 200 {
				t.Errorf("cursor = %d, want 200", got.Value)
			}
			// A cursor-only commit (an empty incremental listing) is a snapshot of its own.
			if _, err := w.Commit(ctx, Commit{Table: charges, Cursor: &state.Cursor{Value: 300}, Stream: "charges", Partition: "loc-a"}); err != nil {
				t.Fatal(err)
			}
			if got, _, _ := other.Cursor(ctx, charges, schemas.DefaultTenant, "charges", "loc-a"); got.Value != 300 {
				t.Errorf("cursor = %d, want 300", got.Value)
			}
			// Another partition's commit does not hide this partition's cursor.
			b2 := batch(t, charges, "r3", chargeRec(9, "loc-b", 0))
			defer b2.Release()
			if _, err := w.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{b2}, Cursor: &state.Cursor{Value: 7}, Stream: "charges", Partition: "loc-b"}); err != nil {
				t.Fatal(err)
			}
			if got, _, _ := other.Cursor(ctx, charges, schemas.DefaultTenant, "charges", "loc-a"); got.Value != 300 {
				t.Errorf("loc-a cursor = %d after loc-b's commit, want 300", got.Value)
			}
		})
	}
}

// Rows a complete scan did not see are marked deleted (in the scope's partition only); rows it
// saw, and rows of other partitions, stay live.
func TestDeleteUnseen(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			w := newLakeDir(t).open(t, mode)
			charges := mustTable(t, "charges")
			var a, b [][]byte
			for i := range 10 {
				a = append(a, chargeRec(i, "loc-a", 0))
				b = append(b, chargeRec(100+i, "loc-b", 0))
			}
			ba := batch(t, charges, "r1", a...)
			defer ba.Release()
			bb := batch(t, charges, "r1", b...)
			defer bb.Release()
			for _, x := range []arrow.RecordBatch{ba, bb} {
				if _, err := w.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{x}, Stream: "charges"}); err != nil {
					t.Fatal(err)
				}
			}
			// Run r2 lists loc-a again and sees only rows 0..5 (row 5 in a batch of this commit).
			seen := batch(t, charges, "r2", a[:5]...)
			defer seen.Release()
			if _, err := w.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{seen}, Stream: "charges", Partition: "loc-a"}); err != nil {
				t.Fatal(err)
			}
			last := batch(t, charges, "r2", a[5])
			defer last.Release()
			at := epoch.Add(48 * time.Hour)
			res, err := w.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{last}, Stream: "charges", Partition: "loc-a",
				Cursor:       &state.Cursor{Value: 1},
				DeleteUnseen: &DeleteScope{RunID: "r2", PartitionCol: "location_id", PartitionValue: "loc-a", At: at}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Deleted != 4 {
				t.Errorf("deleted %d, want 4", res.Deleted)
			}
			want := rowsOf(t, charges, nil, ba, bb, seen, last)
			for i := 6; i < 10; i++ {
				want[fmt.Sprintf("ch-%06d", i)]["_deleted_at"] = fmt.Sprint(at.UnixMicro())
			}
			equalRows(t, "charges", scanRows(t, w, charges), want)
			// Deleting again finds nothing new: deleted rows are not live.
			res, err = w.Commit(ctx, Commit{Table: charges, Stream: "charges", Partition: "loc-a",
				DeleteUnseen: &DeleteScope{RunID: "r2", PartitionCol: "location_id", PartitionValue: "loc-a", At: at.Add(time.Hour)}})
			if err != nil || res.Deleted != 0 {
				t.Errorf("second delete: %+v, %v", res, err)
			}
			equalRows(t, "charges", scanRows(t, w, charges), want)
		})
	}
}

// A commit that keeps losing the race fails with ErrConflict and leaves nothing of itself.
func TestConflictBounded(t *testing.T) {
	ctx := context.Background()
	dir := newLakeDir(t)
	w, other := dir.open(t, CopyOnWrite), dir.open(t, CopyOnWrite)
	w.maxAttempts = 3
	charges := mustTable(t, "charges")
	b0 := batch(t, charges, "r1", chargeRec(1, "loc-a", 0))
	defer b0.Release()
	if _, err := w.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{b0}, Stream: "charges"}); err != nil {
		t.Fatal(err)
	}
	n := 0
	w.beforeCommit = func(*Commit, int) error {
		// Another writer commits between this writer's read and its commit, every time.
		n++
		b := batch(t, charges, "rx", chargeRec(1000+n, "loc-z", 0))
		defer b.Release()
		_, err := other.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{b}, Stream: "charges", Partition: "loc-z"})
		return err
	}
	b1 := batch(t, charges, "r2", chargeRec(2, "loc-a", 0))
	defer b1.Release()
	_, err := w.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{b1}, Cursor: &state.Cursor{Value: 9}, Stream: "charges", Partition: "loc-a"})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	t.Log(err)
	if n != 3 || w.Conflicts() != 2 {
		t.Errorf("attempts %d, conflicts counted %d", n, w.Conflicts())
	}
	if _, ok := scanRows(t, w, charges)["ch-000002"]; ok {
		t.Error("the failed commit's row is visible")
	}
	if _, ok, _ := w.Cursor(ctx, charges, schemas.DefaultTenant, "charges", "loc-a"); ok {
		t.Error("the failed commit's cursor is visible")
	}
	// When the other writer commits once only, the same commit lands on its second attempt,
	// re-applied on top of the other writer's rows.
	hook := w.beforeCommit
	w.beforeCommit = func(c *Commit, attempt int) error {
		if attempt == 1 {
			return hook(c, attempt)
		}
		return nil
	}
	res, err := w.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{b1}, Cursor: &state.Cursor{Value: 9}, Stream: "charges", Partition: "loc-a"})
	if err != nil || res.Attempts != 2 {
		t.Fatalf("%+v, %v", res, err)
	}
	got := scanRows(t, w, charges)
	for _, k := range []string{"ch-000001", "ch-000002", "ch-001001", "ch-001002", "ch-001003", "ch-001004"} {
		if _, ok := got[k]; !ok {
			t.Errorf("row %s missing", k)
		}
	}
	if len(got) != 6 {
		t.Errorf("%d rows, want 6", len(got))
	}
	if c, _, _ := w.Cursor(ctx, charges, schemas.DefaultTenant, "charges", "loc-a"); c.Value != 9 {
		t.Errorf("cursor %d", c.Value)
	}
}

// A user whose last_modified moves to another year (its partition) is still one row: the old
// copy in the old year's partition is replaced, in both modes.
func TestUpsertRowThatMovesPartition(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			w := newLakeDir(t).open(t, mode)
			users := mustTable(t, "users")
			user := func(id, modified string) []byte {
				return fmt.Appendf(nil, `{"uuid":%q,"email":"%s@example.com","roles":["USER"],"company":{"uuid":"c1"},"lastModified":%q}`, id, id, modified)
			}
			b0 := batch(t, users, "r1", user("u1", "2023-12-31T23:00:00Z"), user("u2", "2023-06-01T00:00:00Z"))
			defer b0.Release()
			b1 := batch(t, users, "r2", user("u1", "2024-01-02T00:00:00Z"))
			defer b1.Release()
			for _, b := range []arrow.RecordBatch{b0, b1} {
				if _, err := w.Commit(ctx, Commit{Table: users, Batches: []arrow.RecordBatch{b}, Stream: "users"}); err != nil {
					t.Fatal(err)
				}
			}
			equalRows(t, "users", scanRows(t, w, users), rowsOf(t, users, nil, b0, b1))
			got, _ := duckRows(t, w, users)
			equalRows(t, "DuckDB users", got, rowsOf(t, users, nil, b0, b1))
		})
	}
}
