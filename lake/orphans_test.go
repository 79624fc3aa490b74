package lake

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/marketsync/marketsync/internal/fakes3"
	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
)

// localFiles lists every file under dir.
func localFiles(t *testing.T, dir string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	if err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out[p] = true
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// added lists the entries of after not in before, sorted.
func added(before, after map[string]bool) []string {
	var out []string
	for p := range after {
		if !before[p] {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// failedCommit runs a commit (updates and new rows) whose catalog commit fails after its files
// are written: a writer killed before its commit, or an attempt that lost a race.
func failedCommit(t *testing.T, w *Writer, v int) {
	t.Helper()
	charges := mustTable(t, "charges")
	b := batch(t, charges, fmt.Sprintf("lost-%d", v), chargeRec(3, "loc-0", 90+v), chargeRec(5000+v, "loc-1", v))
	defer b.Release()
	crash := errors.New("killed before the catalog commit")
	w.beforeCommit = func(*Commit, int) error { return crash }
	defer func() { w.beforeCommit = nil }()
	if _, err := w.Commit(context.Background(), Commit{Table: charges, Batches: []arrow.RecordBatch{b}, Stream: "charges", Partition: "loc-0",
		Cursor: &state.Cursor{Value: 999}}); !errors.Is(err, crash) {
		t.Fatalf("commit: %v, want the injected failure", err)
	}
}

func orphanPaths(r OrphanResult, strip string) []string {
	var out []string
	for _, o := range r.Orphans {
		out = append(out, strings.TrimPrefix(o.Path, strip))
	}
	return out
}

// The files of two failed commits are the only orphans: a dry run lists them and removes
// nothing; a removal takes those older than the threshold and keeps the newer ones; every
// referenced file stays, and the table (read by iceberg-go's scan and by DuckDB over its
// files) and its cursors are unchanged. A threshold of 0 then takes the newer ones too.
func TestRemoveOrphansRemovesOnlyUnreferencedOldFiles(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // the long tests overlap their waits when run without -race
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			d := newLakeDir(t)
			w := d.open(t, mode)
			charges := mustTable(t, "charges")
			want := smallCommits(t, w)
			cursors, _ := w.Cursors(ctx, charges, schemas.DefaultTenant)
			live := localFiles(t, d.warehouse)
			failedCommit(t, w, 1)
			afterOld := localFiles(t, d.warehouse)
			old := added(live, afterOld)
			if len(old) == 0 {
				t.Fatal("the failed commit left no file")
			}
			aged := time.Now().Add(-DefaultOrphanAge - time.Hour)
			for _, p := range old {
				if err := os.Chtimes(p, aged, aged); err != nil {
					t.Fatal(err)
				}
			}
			// Referenced files as old as the orphans must stay.
			for p := range live {
				if err := os.Chtimes(p, aged, aged); err != nil {
					t.Fatal(err)
				}
			}
			failedCommit(t, w, 2)
			young := added(afterOld, localFiles(t, d.warehouse))
			t.Logf("failed commits left %d old files and %d new ones", len(old), len(young))

			dry, err := w.RemoveOrphans(ctx, charges, DefaultOrphanAge, true)
			if err != nil {
				t.Fatal(err)
			}
			if got := orphanPaths(dry, "file://"); !slices.Equal(got, old) || dry.Removed != 0 || dry.Bytes <= 0 {
				t.Fatalf("dry run lists %v (%d removed, %d bytes), want %v and nothing removed", got, dry.Removed, dry.Bytes, old)
			}
			if n := len(localFiles(t, d.warehouse)); n != len(live)+len(old)+len(young) {
				t.Fatalf("the dry run removed files: %d left", n)
			}
			res, err := w.RemoveOrphans(ctx, charges, DefaultOrphanAge, false)
			if err != nil {
				t.Fatal(err)
			}
			left := localFiles(t, d.warehouse)
			if res.Removed != len(old) || !slices.Equal(added(live, left), young) {
				t.Fatalf("removed %d; left beyond the live files: %v; want %d removed and only the new orphans %v left", res.Removed, added(live, left), len(old), young)
			}
			equalRows(t, "scan after removing orphans", scanRows(t, w, charges), want)
			got, _ := duckRows(t, w, charges)
			equalRows(t, "DuckDB over the files after removing orphans", got, want)
			if after, err := w.Cursors(ctx, charges, schemas.DefaultTenant); err != nil || !maps.Equal(after, cursors) {
				t.Fatalf("cursors after %v (%v), before %v", after, err, cursors)
			}
			all, err := w.RemoveOrphans(ctx, charges, 0, false)
			if err != nil || all.Removed != len(young) || !maps.Equal(localFiles(t, d.warehouse), live) {
				t.Fatalf("older-than 0: %+v %v; want the %d new orphans removed and the live files left", all, err, len(young))
			}
			equalRows(t, "scan after removing every orphan", scanRows(t, w, charges), want)
			// A table still in use stays usable: a later commit and compaction work.
			if _, err := w.Compact(ctx, charges, 0); err != nil {
				t.Fatal(err)
			}
			equalRows(t, "scan after compaction", scanRows(t, w, charges), want)
		})
	}
}

// On S3 storage the listing is the bucket's: a failed commit's objects are listed and removed,
// the others stay, and the table is unchanged.
func TestRemoveOrphansOnS3(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // the long tests overlap their waits when run without -race
	ctx := context.Background()
	s3 := fakes3.Start(t, "lake")
	w, err := Open(ctx, s3Options(t, s3, CopyOnWrite))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	charges := mustTable(t, "charges")
	want := smallCommits(t, w)
	keys := func() map[string]bool {
		ks, err := s3.Keys("lake", "warehouse/")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, k := range ks {
			out[k] = true
		}
		return out
	}
	live := keys()
	failedCommit(t, w, 1)
	orphans := added(live, keys())
	if len(orphans) == 0 {
		t.Fatal("the failed commit left no object")
	}
	// Every object is new: the default threshold keeps them all.
	if res, err := w.RemoveOrphans(ctx, charges, DefaultOrphanAge, false); err != nil || len(res.Orphans) != 0 {
		t.Fatalf("default threshold: %+v %v, want nothing as old as that", res, err)
	}
	dry, err := w.RemoveOrphans(ctx, charges, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := orphanPaths(dry, "s3://lake/"); !slices.Equal(got, orphans) || len(keys()) != len(live)+len(orphans) {
		t.Fatalf("dry run lists %v, want %v, and removes nothing", got, orphans)
	}
	res, err := w.RemoveOrphans(ctx, charges, 0, false)
	if err != nil || res.Removed != len(orphans) || !maps.Equal(keys(), live) {
		t.Fatalf("%+v %v: want the %d orphans removed and the live objects left", res, err, len(orphans))
	}
	equalRows(t, "scan over S3 after removing orphans", scanRows(t, w, charges), want)
}
