package lake

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
)

// smallCommits commits 12 small batches of charges over 3 partitions (new rows, the last three
// also updating rows of earlier ones), each with its partition's cursor; it returns the rows
// committed.
func smallCommits(t *testing.T, w *Writer) map[string]row {
	t.Helper()
	charges := mustTable(t, "charges")
	want := map[string]row{}
	for c := range 12 {
		loc := fmt.Sprintf("loc-%d", c%3)
		var recs [][]byte
		for i := range 10 {
			recs = append(recs, chargeRec((c%3)*1000+(c/3)*10+i, loc, c))
		}
		if c >= 9 {
			recs = append(recs, chargeRec((c%3)*1000+3, loc, c), chargeRec((c%3)*1000+14, loc, c))
		}
		b := batch(t, charges, fmt.Sprintf("r%d", c), recs...)
		rowsOf(t, charges, want, b)
		if _, err := w.Commit(context.Background(), Commit{Table: charges, Batches: []arrow.RecordBatch{b}, Stream: "charges", Partition: loc,
			Cursor: &state.Cursor{Value: int64(100 + c)}}); err != nil {
			t.Fatal(err)
		}
		b.Release()
	}
	return want
}

func parquetFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".parquet") {
			n++
		}
		return nil
	})
	return n
}

// Compaction leaves fewer live files (and no equality deletes) with the same rows, read by
// iceberg-go's scan and by DuckDB over the files, and the same cursors.
func TestCompactFewerFilesSameRowsAndCursors(t *testing.T) {
	skipUnderRace(t) // one writer, nothing concurrent; 15-30 s under -race: .ci/run runs it without
	t.Parallel()     // the long tests overlap their waits when run without -race
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			w := newLakeDir(t).open(t, mode)
			charges := mustTable(t, "charges")
			want := smallCommits(t, w)
			equalRows(t, "before", scanRows(t, w, charges), want)
			cursors, err := w.Cursors(ctx, charges, schemas.DefaultTenant)
			if err != nil || len(cursors) != 3 {
				t.Fatalf("cursors %v %v", cursors, err)
			}
			res, err := w.Compact(ctx, charges, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", res)
			if res.SnapshotID == 0 || res.DataFiles >= res.DataFilesBefore {
				t.Fatalf("compaction: %+v, want fewer data files", res)
			}
			if mode == EqualityDeletes && (res.DeleteFilesBefore == 0 || res.DeleteFiles != 0) {
				t.Fatalf("compaction: %d delete files before, %d after; want some, then none", res.DeleteFilesBefore, res.DeleteFiles)
			}
			equalRows(t, "scan after compaction", scanRows(t, w, charges), want)
			got, _ := duckRows(t, w, charges)
			equalRows(t, "DuckDB after compaction", got, want)
			after, err := w.Cursors(ctx, charges, schemas.DefaultTenant)
			if err != nil || fmt.Sprint(after) != fmt.Sprint(cursors) {
				t.Fatalf("cursors after compaction %v (%v), before %v", after, err, cursors)
			}
			again, err := w.Compact(ctx, charges, 0)
			if err != nil || again.SnapshotID != 0 {
				t.Fatalf("second compaction %+v %v: want nothing to do", again, err)
			}
		})
	}
}

// Expiring snapshots removes the old ones and the files only they referenced; the current rows
// and every partition's cursor (committed in snapshots now expired) stay.
func TestExpireSnapshotsKeepsCurrentDataAndCursors(t *testing.T) {
	skipUnderRace(t) // one writer, nothing concurrent; 15-30 s under -race: .ci/run runs it without
	t.Parallel()     // the long tests overlap their waits when run without -race
	ctx := context.Background()
	d := newLakeDir(t)
	w := d.open(t, CopyOnWrite)
	charges := mustTable(t, "charges")
	want := smallCommits(t, w)
	if _, err := w.Compact(ctx, charges, 0); err != nil {
		t.Fatal(err)
	}
	cursors, _ := w.Cursors(ctx, charges, schemas.DefaultTenant)
	old := currentTable(t, w, charges).Metadata().Snapshots()
	filesBefore := parquetFiles(t, d.warehouse)
	if _, err := w.ExpireSnapshots(ctx, charges, 0, 0); err == nil || !strings.Contains(err.Error(), "retain-last") {
		t.Fatalf("retain-last 0: %v, want a refusal", err)
	}
	res, err := w.ExpireSnapshots(ctx, charges, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v; parquet files %d -> %d", res, filesBefore, parquetFiles(t, d.warehouse))
	tbl := currentTable(t, w, charges)
	if n := len(tbl.Metadata().Snapshots()); n != 1 || res.After != 1 || res.CursorsCarried != 3 {
		t.Fatalf("%d snapshots left (%+v), want 1 carrying the 3 cursors", n, res)
	}
	for _, s := range old {
		if tbl.SnapshotByID(s.SnapshotID) != nil {
			t.Fatalf("snapshot %d survived", s.SnapshotID)
		}
	}
	if parquetFiles(t, d.warehouse) >= filesBefore {
		t.Fatalf("parquet files %d -> %d: the expired snapshots' files stayed", filesBefore, parquetFiles(t, d.warehouse))
	}
	equalRows(t, "after expiry", scanRows(t, w, charges), want)
	after, err := w.Cursors(ctx, charges, schemas.DefaultTenant)
	if err != nil || fmt.Sprint(after) != fmt.Sprint(cursors) {
		t.Fatalf("cursors after expiry %v (%v), before %v", after, err, cursors)
	}
	// Nothing left to carry: a second expiry adds no snapshot.
	if res, err := w.ExpireSnapshots(ctx, charges, 0, 1); err != nil || res.CursorsCarried != 0 || res.After != 1 {
		t.Fatalf("second expiry %+v %v", res, err)
	}
}

// Compaction and expiry while another writer commits: whichever loses a race is re-planned, and
// the table ends with every committed row and cursor.
func TestMaintenanceWhileWriting(t *testing.T) {
	ctx := context.Background()
	d := newLakeDir(t)
	w := d.open(t, EqualityDeletes)
	maint := d.open(t, EqualityDeletes) // its own catalog connection, as `syncer lake` has
	charges := mustTable(t, "charges")
	want := smallCommits(t, w)
	var batches []arrow.RecordBatch // a new row and an update of row 5000 each
	for c := range 8 {
		b := batch(t, charges, fmt.Sprintf("w%d", c), chargeRec(5001+c, "loc-9", c), chargeRec(5000, "loc-9", c))
		rowsOf(t, charges, want, b)
		batches = append(batches, b)
	}
	done := make(chan error, 1)
	go func() {
		for c, b := range batches {
			_, err := w.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{b}, Stream: "charges", Partition: "loc-9",
				Cursor: &state.Cursor{Value: int64(200 + c)}})
			b.Release()
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := range 4 {
		if _, err := maint.Compact(ctx, charges, 0); err != nil {
			t.Fatalf("compaction %d: %v", i, err)
		}
		if _, err := maint.ExpireSnapshots(ctx, charges, 0, 2); err != nil {
			t.Fatalf("expiry %d: %v", i, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	equalRows(t, "after maintenance during writes", scanRows(t, w, charges), want)
	cursors, err := w.Cursors(ctx, charges, schemas.DefaultTenant)
	if err != nil || len(cursors) != 4 || cursors["loc-9"].Value != 207 {
		t.Fatalf("cursors %v %v: want 4 partitions, loc-9 at 207", cursors, err)
	}
	t.Logf("conflicts: writer %d, maintenance %d", w.Conflicts(), maint.Conflicts())
}
