package lake

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/marketsync/marketsync/internal/pgserver"
	"github.com/marketsync/marketsync/internal/restcatalog"
	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
)

const benchRows = 25000

// benchBatch is benchRows charges (key offset from, version v) over 5 locations, made by the
// production Batcher.
func benchBatch(b *testing.B, from, v int, locs ...string) arrow.RecordBatch {
	if len(locs) == 0 {
		locs = []string{"loc-0", "loc-1", "loc-2", "loc-3", "loc-4"}
	}
	recs := make([][]byte, benchRows)
	for i := range recs {
		recs[i] = chargeRec(from+i, locs[i%len(locs)], v)
	}
	return batch(b, mustTable(b, "charges"), fmt.Sprintf("run-%d", v), recs...)
}

// BenchmarkCommit measures one commit of a 25k-row batch of charges (19 columns, 5 location
// partitions) into a SQL (SQLite) catalog and a local warehouse, the table holding 25k rows
// before the first commit:
//
//	append: the batch's keys are new (the table grows by 25k rows per commit)
//	upsert: the batch's keys are the seeded rows' (every row replaced)
//
// in each upsert mode. The time covers writing Parquet, the delete files or the rewrite, the
// manifests and the catalog commit, not building the batch.
//
//	go test -tags duckdb_arrow -run '^$' -bench Commit -benchtime 5x ./lake
func BenchmarkCommit(b *testing.B) {
	ctx := context.Background()
	charges := mustTable(b, "charges")
	for _, mode := range modes {
		for _, kind := range []string{"append", "upsert"} {
			b.Run(mode+"/"+kind, func(b *testing.B) {
				w := newLakeDir(b).open(b, mode)
				seed := benchBatch(b, 0, 0)
				defer seed.Release()
				if _, err := w.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{seed}, Stream: "charges"}); err != nil {
					b.Fatal(err)
				}
				batches := make([]arrow.RecordBatch, b.N)
				for i := range batches {
					from := 0
					if kind == "append" {
						from = (i + 1) * benchRows
					}
					batches[i] = benchBatch(b, from, i+1)
				}
				b.ResetTimer()
				start, cpu0 := time.Now(), cpuTime()
				for i := range b.N {
					if _, err := w.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{batches[i]}, Stream: "charges",
						Cursor: &state.Cursor{Value: int64(i)}}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*benchRows)/time.Since(start).Seconds(), "rows/s")
				b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
				b.StopTimer()
				for _, x := range batches {
					x.Release()
				}
			})
		}
	}
}

// cpuTime is the process's user and system CPU time: under a loaded machine it is steadier than
// wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkConcurrentWriters: 1, 2 or 4 writers (each with its own catalog connection, as
// shard processes have) each commit 25k-row upserts of their own location partition to one
// table at the same time. It reports the total rows/s and conflicts per commit (commits
// re-applied because another writer committed first).
//
//	go test -tags duckdb_arrow -run '^$' -bench ConcurrentWriters -benchtime 4x ./lake
func BenchmarkConcurrentWriters(b *testing.B) {
	ctx := context.Background()
	charges := mustTable(b, "charges")
	for _, mode := range modes {
		for _, n := range []int{1, 2, 4} {
			b.Run(fmt.Sprintf("%s/writers=%d", mode, n), func(b *testing.B) {
				dir := newLakeDir(b)
				ws := make([]*Writer, n)
				batches := make([][]arrow.RecordBatch, n)
				for i := range ws {
					ws[i] = dir.open(b, mode)
					ws[i].maxAttempts = 100
					loc := fmt.Sprintf("loc-%d", i)
					for j := range b.N {
						batches[i] = append(batches[i], benchBatch(b, i*1_000_000, j, loc))
					}
				}
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				errs := make(chan error, n)
				for i, w := range ws {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for j := range b.N {
							_, err := w.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{batches[i][j]}, Stream: "charges",
								Partition: fmt.Sprintf("loc-%d", i), Cursor: &state.Cursor{Value: int64(j)}})
							if err != nil {
								errs <- err
								return
							}
						}
					}()
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				close(errs)
				for err := range errs {
					b.Fatal(err)
				}
				var conflicts int64
				for _, w := range ws {
					conflicts += w.Conflicts()
				}
				b.ReportMetric(float64(n*b.N*benchRows)/elapsed.Seconds(), "rows/s")
				b.ReportMetric(float64(conflicts)/float64(n*b.N), "conflicts/commit")
				for _, bs := range batches {
					for _, x := range bs {
						x.Release()
					}
				}
			})
		}
	}
}

// BenchmarkCatalogs: the same commits through each catalog kind, to show what the catalog
// costs: 1 or 4 writers (own connections) each commit small 200-row appends of charges to its
// own location partition of one table, copy-on-write. sqlite is the SQL catalog on a SQLite
// file; rest is the test REST server (internal/restcatalog, its own SQLite store) over HTTP on
// loopback with OAuth2; postgres is the SQL catalog on a PostgreSQL server started by the
// benchmark (skipped without Debian's postgresql).
//
//	go test -tags duckdb_arrow -run '^$' -bench Catalogs -benchtime 20x ./lake
func BenchmarkCatalogs(b *testing.B) {
	ctx := context.Background()
	charges := mustTable(b, "charges")
	const rows = 200
	for _, kind := range []string{"sqlite", "rest", "postgres"} {
		for _, n := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/writers=%d", kind, n), func(b *testing.B) {
				var open func() *Writer
				switch kind {
				case "sqlite":
					dir := newLakeDir(b)
					open = func() *Writer { return dir.open(b, CopyOnWrite) }
				case "rest":
					s := restcatalog.Start(b, restcatalog.Options{Dir: b.TempDir(), Warehouse: restWH, Credential: restClientID + ":" + restSecret})
					open = func() *Writer { return openREST(b, restOptions(s, CopyOnWrite)) }
				case "postgres":
					pg := pgserver.Start(b)
					wh := b.TempDir()
					open = func() *Writer {
						w, err := Open(ctx, Options{Catalog: "sql", URI: pg.DSN, Warehouse: wh})
						if err != nil {
							b.Fatal(err)
						}
						b.Cleanup(func() { w.Close() })
						return w
					}
				}
				ws := make([]*Writer, n)
				batches := make([][]arrow.RecordBatch, n)
				for i := range ws {
					ws[i] = open()
					ws[i].maxAttempts = 100
					loc := fmt.Sprintf("loc-%d", i)
					for j := range b.N {
						recs := make([][]byte, rows)
						for r := range recs {
							recs[r] = chargeRec(i*1_000_000+j*rows+r, loc, j)
						}
						batches[i] = append(batches[i], batch(b, charges, fmt.Sprintf("run-%d", j), recs...))
					}
				}
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				errs := make(chan error, n)
				for i, w := range ws {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for j := range b.N {
							if _, err := w.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{batches[i][j]}, Stream: "charges",
								Partition: fmt.Sprintf("loc-%d", i), Cursor: &state.Cursor{Value: int64(j)}}); err != nil {
								errs <- err
								return
							}
						}
					}()
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				close(errs)
				for err := range errs {
					b.Fatal(err)
				}
				var conflicts int64
				for _, w := range ws {
					conflicts += w.Conflicts()
				}
				b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "commits/s")
				b.ReportMetric(float64(conflicts)/float64(n*b.N), "conflicts/commit")
				for _, bs := range batches {
					for _, x := range bs {
						x.Release()
					}
				}
			})
		}
	}
}

// BenchmarkTenantUpdate measures one copy-on-write (or row-delta) commit of 20 updated rows of a
// small tenant (500 charges) beside a large one (20,000 charges) in the same location, after a
// compaction. With the tenant partition the small tenant's commit rewrites its own file only;
// without it (a table partitioned by location alone) the compacted file holds both tenants and
// every update rewrites the large tenant's rows too (README "Several tenants" gives the numbers).
func BenchmarkTenantUpdate(b *testing.B) {
	for _, mode := range modes {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			w := newLakeDir(b).open(b, mode)
			charges := mustTable(b, "charges")
			commit := func(tenant string, recs [][]byte) {
				r := tenantBatch(b, charges, tenant, "r1", recs...)
				defer r.Release()
				if _, err := w.Commit(ctx, Commit{Table: charges, Tenant: tenant, Batches: []arrow.RecordBatch{r}, Stream: "charges", Partition: "loc-a"}); err != nil {
					b.Fatal(err)
				}
			}
			var big [][]byte
			for i := range 20000 {
				big = append(big, chargeRec(i, "loc-a", 0))
			}
			for k := range 4 {
				commit("globex", big[k*5000:(k+1)*5000])
			}
			commit(schemas.DefaultTenant, big[:500])
			if _, err := w.Compact(ctx, charges, 512<<20); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				var upd [][]byte
				for i := range 20 {
					upd = append(upd, chargeRec((n*20+i)%500, "loc-a", n+1))
				}
				commit(schemas.DefaultTenant, upd)
			}
		})
	}
}
