package main

import (
	"flag"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/internal/restcatalog"
	"github.com/marketsync/marketsync/internal/simcheck"
	"github.com/marketsync/marketsync/schemas"
)

var lakeBenchBatch = flag.Int("lake-bench-batch", 5000, "batch_rows of BenchmarkLakeShards' shards (smaller: more, smaller commits)")

var lakeBenchCatalog = flag.String("lake-bench-catalog", "sql", "BenchmarkLakeShards' catalog: sql (SQLite) or rest (the test REST catalog, internal/restcatalog)")

var lakeCommitsLine = regexp.MustCompile(`msg="lake commits" snapshots=(\d+) conflicts=(\d+)`)

// BenchmarkLakeShards: 1, 2 and 4 `syncer sync --shard I/N` processes on this machine do a
// first sync of one simulator (fast profile, rate limits raised so the source is not the
// bottleneck) into one lake (SQL catalog on SQLite, local folder), concurrently. rows/s is the
// lake's rows (read back by iceberg-go's scan, checked equal to the source) over the wall time
// from the first start to the last exit; conflicts/commit is the commit attempts that lost a race
// and were re-applied, per snapshot committed, summed over the processes.
//
//	go test -tags duckdb_arrow -run '^$' -bench LakeShards -benchtime 1x ./cmd/syncer [-args -lake-bench-batch 500 -lake-bench-catalog rest]
func BenchmarkLakeShards(b *testing.B) {
	for _, shards := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("shards=%d", shards), func(b *testing.B) {
			for range b.N {
				rows, took, snaps, conflicts := lakeShardRun(b, shards)
				b.ReportMetric(float64(rows)/took.Seconds(), "rows/s")
				b.ReportMetric(float64(conflicts)/float64(max(snaps, 1)), "conflicts/commit")
				b.ReportMetric(float64(snaps), "snapshots")
				b.ReportMetric(float64(rows), "rows")
			}
		})
	}
}

func lakeShardRun(b *testing.B, shards int) (rows int64, took time.Duration, snaps, conflicts int64) {
	b.StopTimer()
	bin := binary(b)
	s := simcheck.Start(b, apisim.Config{Seed: 8, Scale: 4000, Locations: 8, Profile: "fast", Speed: 1000})
	b.Setenv("TEST_AD_SECRET", apisim.DemoClientSecret)
	b.Setenv("TEST_LEAD_PASSWORD", apisim.DemoLeadPassword)
	b.Setenv("TEST_HL_SECRET", apisim.DemoHLClientSecret)
	dir := b.TempDir()
	var rest *restcatalog.Server
	if *lakeBenchCatalog == "rest" {
		rest = restcatalog.Start(b, restcatalog.Options{Dir: b.TempDir(), Warehouse: "analytics", Credential: "marketsync:" + lakeRESTSecret})
		b.Setenv("LAKE_CLIENT_ID", "marketsync")
		b.Setenv("LAKE_CLIENT_SECRET", lakeRESTSecret)
	}
	cfgs := lakeShardConfigs(b, dir, s, shards, func(c string) string {
		if rest != nil {
			c, _, _ = strings.Cut(c, "lake:\n")
			c += "lake:\n  catalog: rest\n  uri: " + rest.URL + "\n  warehouse: analytics\n  credential: ${LAKE_CLIENT_ID}:${LAKE_CLIENT_SECRET}\n"
		}
		c = strings.Replace(c, "rate_per_second: 160\n    companies_rate_per_second: 200", "rate_per_second: 4000\n    companies_rate_per_second: 5000", 1)
		c = strings.Replace(c, "app_id: "+apisim.DemoHLAppID, "app_id: "+apisim.DemoHLAppID+"\n    interval: 10ms", 1)
		return strings.Replace(c, "batch_rows: 200", fmt.Sprintf("batch_rows: %d", *lakeBenchBatch), 1)
	})
	var wg sync.WaitGroup
	outs := make([]*lockedBuffer, shards)
	errs := make([]error, shards)
	b.StartTimer()
	start := time.Now()
	for i := range shards {
		cmd := exec.Command(bin, "sync", "--config", cfgs[i], "--shard", fmt.Sprintf("%d/%d", i, shards), "--progress", "never", "--log-level", "info", "--parquet-dir", "-")
		outs[i] = &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = cmd.Wait() }()
	}
	wg.Wait()
	took = time.Since(start)
	b.StopTimer()
	for i, err := range errs {
		m := lakeCommitsLine.FindStringSubmatch(outs[i].String())
		if err != nil || m == nil {
			b.Fatalf("shard %d: %v\n%s", i, err, outs[i].String())
		}
		n, _ := strconv.ParseInt(m[1], 10, 64)
		c, _ := strconv.ParseInt(m[2], 10, 64)
		snaps, conflicts = snaps+n, conflicts+c
	}
	var tables map[string][]arrow.RecordBatch
	if rest != nil {
		tables = catalogTables(b, rest.Backend())
	} else {
		tables = lakeTables(b, dir+"/lake/catalog.db", dir+"/lake/warehouse")
	}
	if diff, err := simcheck.CompareArrowRows(s, tables, schemas.Streams, simcheck.RowOptions{}); err != nil || diff != "" {
		b.Fatalf("the lake differs from the source (%v):\n%s", err, diff)
	}
	for _, recs := range tables {
		for _, r := range recs {
			rows += r.NumRows()
		}
	}
	return rows, took, snaps, conflicts
}
