package lake

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/marketsync/marketsync/state"
)

// Writers with their own catalog connections (as shard processes have) commit to one table at
// the same time, to different partitions or (with different keys) to the same one; every row of
// every writer lands once with its latest values, and each writer's cursor is there, whatever
// the interleaving of their conflicts and retries.
func TestConcurrentWriters(t *testing.T) {
	for _, tc := range []struct {
		mode string
		same bool
	}{{CopyOnWrite, false}, {EqualityDeletes, false}, {CopyOnWrite, true}, {EqualityDeletes, true}} {
		mode := tc.mode
		name := mode + "/different-partitions"
		if tc.same {
			name = mode + "/one-partition"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dir := newLakeDir(t)
			charges := mustTable(t, "charges")
			const writers, commits, rows = 4, 5, 20
			ws := make([]*Writer, writers)
			for i := range ws {
				ws[i] = dir.open(t, mode)
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
					if tc.same {
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
			reader := dir.open(t, mode)
			equalRows(t, "charges", scanRows(t, reader, charges), want)
			for wi := range writers {
				if c, ok, _ := reader.Cursor(ctx, charges, "charges", fmt.Sprintf("loc-%d", wi)); !ok || c.Value != commits {
					t.Errorf("loc-%d cursor %+v %v, want %d", wi, c, ok, commits)
				}
			}
		})
	}
}
