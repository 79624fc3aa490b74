package lake

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go/catalog"

	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
)

// concurrentCases are the shapes of TestConcurrentWriters: each upsert mode, the writers on
// different partitions or all on one.
var concurrentCases = []struct {
	mode string
	same bool
}{{CopyOnWrite, false}, {EqualityDeletes, false}, {CopyOnWrite, true}, {EqualityDeletes, true}}

func concurrentName(mode string, same bool) string {
	if same {
		return mode + "/one-partition"
	}
	return mode + "/different-partitions"
}

// Writers with their own catalog connections (as shard processes have) commit to one table at
// the same time, to different partitions or (with different keys) to the same one; every row of
// every writer lands once with its latest values, and each writer's cursor is there, whatever
// the interleaving of their conflicts and retries.
func TestConcurrentWriters(t *testing.T) {
	for _, tc := range concurrentCases {
		t.Run(concurrentName(tc.mode, tc.same), func(t *testing.T) {
			// The cases share nothing; in parallel, one's retry backoffs overlap another's work.
			t.Parallel()
			dir := newLakeDir(t)
			open := func() *Writer { return dir.open(t, tc.mode) }
			reader := open()
			concurrentWriters(t, tc.same, open, reader.Catalog(), reader)
		})
	}
}

// concurrentSize is how many writers TestConcurrentWriters (and the catalogs' variants) start
// and how many commits each makes: 4 x 5 without the race detector; under it (ten times slower;
// the four cases took 173 s at 4 x 5) 3 writers of 3 commits, still racing on one table and,
// in the one-partition cases, on one partition.
func concurrentSize() (writers, commits int) {
	if raceEnabled {
		return 3, 3
	}
	return 4, 5
}

// concurrentWriters runs the writers of TestConcurrentWriters, each from open, and checks the
// table read through cat (iceberg-go's scan); it returns the conflicts the writers retried.
func concurrentWriters(t *testing.T, same bool, open func() *Writer, cat catalog.Catalog, ids *Writer) int64 {
	t.Helper()
	ctx := context.Background()
	charges := mustTable(t, "charges")
	writers, commits := concurrentSize()
	const rows = 20
	ws := make([]*Writer, writers)
	for i := range ws {
		ws[i] = open()
		ws[i].maxAttempts = 50
	}
	want := map[string]row{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for wi, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loc := fmt.Sprintf("loc-%d", wi)
			part := loc
			if same {
				loc = "loc-shared"
			}
			for c := range commits {
				var recs [][]byte
				for r := range rows {
					// Each commit adds new rows and updates two of the previous commit's.
					recs = append(recs, chargeRec(wi*10000+c*rows+r, loc, c))
				}
				if c > 0 {
					recs = append(recs, chargeRec(wi*10000+(c-1)*rows, loc, 50+c), chargeRec(wi*10000+(c-1)*rows+1, loc, 50+c))
				}
				b := batch(t, charges, fmt.Sprintf("run-%d", wi), recs...)
				_, err := w.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{b}, Cursor: &state.Cursor{Value: int64(c + 1)}, Stream: "charges", Partition: part})
				mu.Lock()
				rowsOf(t, charges, want, b)
				mu.Unlock()
				b.Release()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var conflicts int64
	for _, w := range ws {
		conflicts += w.Conflicts()
	}
	t.Logf("%d commits, %d conflicts retried", writers*commits, conflicts)
	equalRows(t, "charges", scanCatalog(t, cat, ids.Identifier(charges), charges), want)
	tbl, err := cat.LoadTable(ctx, ids.Identifier(charges))
	if err != nil {
		t.Fatal(err)
	}
	for wi := range writers {
		if c, ok, _ := CursorAt(tbl, schemas.DefaultTenant, "charges", fmt.Sprintf("loc-%d", wi)); !ok || c.Value != int64(commits) {
			t.Errorf("loc-%d cursor %+v %v, want %d", wi, c, ok, commits)
		}
	}
	return conflicts
}
