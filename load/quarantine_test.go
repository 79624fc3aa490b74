package load_test

import (
	"context"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
)

// A full scan that quarantines a record's new version has still seen the record: its previous
// version stays live (marked stale, not deleted), and a repeated scan of the same run adds no
// second _rejected row.
func TestApply_QuarantinedRecordIsSeenStaleAndRejectedOnce(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	d := openTest(t, ":memory:")
	users, _ := schemas.Lookup("users")
	ctx := context.Background()
	first := usersBatch(t, mem, "r1", 0, 3, 1700000000000)
	defer first.Release()
	if _, err := d.Apply(ctx, load.Write{Table: users, Batch: first, Stream: "users", RunID: "r1"}); err != nil {
		t.Fatal(err)
	}
	// Run r2 scans twice (drift); each scan loads users 0 and 1 and quarantines user 2's update.
	bad := load.Rejected{Stream: "users", RecordID: "u00002", Field: "last_modified", Value: `"soon"`, Error: "not a time",
		Record: []byte(`{"uuid":"u00002","lastModified":"soon"}`)}
	for scan, id := range []string{"r2", "r2.2"} {
		seen := usersBatch(t, mem, id, 0, 2, 1700000001000)
		res, err := d.Apply(ctx, load.Write{Table: users, Batch: seen, Stream: "users", RunID: "r2", Rejected: []load.Rejected{bad},
			Deletes: &load.DeleteScope{RunID: id, At: time.Now()}})
		seen.Release()
		if err != nil {
			t.Fatal(err)
		}
		if res.Deleted != 0 {
			t.Fatalf("scan %d soft-deleted %d rows; the quarantined record was listed, so nothing is gone", scan+1, res.Deleted)
		}
		if want := int64(1 - scan); res.Rejected != want || res.Stale != want {
			t.Fatalf("scan %d: rejected %d stale %d, want %d each (one per record per run)", scan+1, res.Rejected, res.Stale, want)
		}
	}
	if n := count(t, d, "SELECT count(*) FROM _rejected"); n != 1 {
		t.Fatalf("%d _rejected rows, want 1", n)
	}
	if n := count(t, d, "SELECT count(*) FROM users WHERE id = 'u00002' AND _deleted_at IS NULL AND _stale_since IS NOT NULL AND epoch_ms(last_modified) = 1700000000000"); n != 1 {
		t.Fatal("the previous version of u00002 must stay live and be marked stale")
	}
	if n := count(t, d, "SELECT count(*) FROM users WHERE _stale_since IS NOT NULL"); n != 1 {
		t.Fatalf("%d stale rows, want only u00002", n)
	}
	// The next good version is current again.
	fixed := usersBatch(t, mem, "r3", 2, 1, 1700000002000)
	defer fixed.Release()
	if _, err := d.Apply(ctx, load.Write{Table: users, Batch: fixed, Stream: "users", RunID: "r3"}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, d, "SELECT count(*) FROM users WHERE _stale_since IS NOT NULL"); n != 0 {
		t.Fatalf("%d stale rows after a good version arrived", n)
	}
	// A later run that quarantines it again records it again: one row per record per run.
	if res, err := d.Apply(ctx, load.Write{Table: users, Stream: "users", RunID: "r4", Rejected: []load.Rejected{bad}}); err != nil || res.Rejected != 1 {
		t.Fatalf("run r4: %+v %v, want a new _rejected row", res, err)
	}
}

// ScanFacts counts what a scan wrote and what deletions would mark, leaving quarantined
// records out of the candidates; equal key sets give equal digests.
func TestScanFacts_SeenCandidatesAndDigest(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	d := openTest(t, ":memory:")
	users, _ := schemas.Lookup("users")
	ctx := context.Background()
	all := usersBatch(t, mem, "r1", 0, 5, 1700000000000)
	defer all.Release()
	if _, err := d.Apply(ctx, load.Write{Table: users, Batch: all, Stream: "users", RunID: "r1"}); err != nil {
		t.Fatal(err)
	}
	first, err := d.ScanFacts(ctx, users, "", "users", "r1", "r1", "", "")
	if err != nil || first.Seen != 5 || first.Candidates != 0 {
		t.Fatalf("facts %+v %v, want 5 seen and no candidates", first, err)
	}
	// Scan r2 sees users 0..2, quarantines user 3; user 4 is the only candidate.
	seen := usersBatch(t, mem, "r2", 0, 3, 1700000000001)
	defer seen.Release()
	bad := load.Rejected{Stream: "users", RecordID: "u00003", Field: "x", Record: []byte(`{}`)}
	if _, err := d.Apply(ctx, load.Write{Table: users, Batch: seen, Stream: "users", RunID: "r2", Rejected: []load.Rejected{bad}}); err != nil {
		t.Fatal(err)
	}
	f, err := d.ScanFacts(ctx, users, "", "users", "r2", "r2", "", "")
	if err != nil || f.Seen != 3 || f.Candidates != 1 || f.KeyDigest == first.KeyDigest {
		t.Fatalf("facts %+v %v, want 3 seen, 1 candidate and a different digest", f, err)
	}
	again := usersBatch(t, mem, "r3", 0, 5, 1700000000002)
	defer again.Release()
	if _, err := d.Apply(ctx, load.Write{Table: users, Batch: again, Stream: "users", RunID: "r3"}); err != nil {
		t.Fatal(err)
	}
	if f, _ := d.ScanFacts(ctx, users, "", "users", "r3", "r3", "", ""); f.KeyDigest != first.KeyDigest {
		t.Fatalf("the same keys gave digest %s, then %s", first.KeyDigest, f.KeyDigest)
	}
}
