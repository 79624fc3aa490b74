package serve

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/internal/simcheck"
	"github.com/marketsync/marketsync/pipeline"
)

// BenchmarkServe_ViewDuringSync measures a shipped view's queries per second and latency over
// the PostgreSQL protocol (pgx, 4 connections) while scheduled syncs keep committing.
//
//	go test -tags duckdb_arrow -run '^$' -bench ViewDuringSync -benchtime 2000x ./serve
func BenchmarkServe_ViewDuringSync(b *testing.B) {
	for _, view := range []string{"revenue_by_month", "outstanding_invoices"} {
		b.Run(view+"/idle", func(b *testing.B) { benchView(b, view, false) })
		b.Run(view+"/during-syncs", func(b *testing.B) { benchView(b, view, true) })
	}
}

func benchView(b *testing.B, view string, syncing bool) {
	sim := simcheck.Start(b, apisim.Config{Seed: 3, Scale: 5000, Profile: "fast", Background: 3600})
	wh, _, addr := startServer(b, b.TempDir())
	ad, hl := simcheck.Sources(sim, 1000)
	pc := pipeline.Config{AppDirect: ad, HighLevel: hl, Warehouse: wh.Path, ParquetDir: wh.ParquetDir, DuckDBMemoryLimit: "1GB"}
	ctx := context.Background()
	if _, err := pipeline.Run(ctx, pc); err != nil {
		b.Fatal(err)
	}
	sched := &Scheduler{Schedule: Schedule{Every: 100 * time.Millisecond},
		Run: func(ctx context.Context) (pipeline.Summary, error) { return pipeline.Run(ctx, pc) }}
	if syncing {
		if err := sched.Start(ctx); err != nil {
			b.Fatal(err)
		}
		defer sched.Stop()
	}
	const conns = 4
	clients := make(chan *pgx.Conn, conns)
	for range conns {
		clients <- connect(b, addr)
	}
	q := `SELECT * FROM "` + view + `"`
	var mu sync.Mutex
	var lat []time.Duration
	runsBefore := sched.Status().Runs
	b.SetParallelism(1) // GOMAXPROCS goroutines; connections are handed out from the pool
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		c := <-clients
		defer func() { clients <- c }()
		var mine []time.Duration
		for pb.Next() {
			t0 := time.Now()
			if _, err := drain(ctx, c, q); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	el := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(float64(len(lat))/el.Seconds(), "queries/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(sched.Status().Runs-runsBefore), "syncs")
}
