package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/pipeline"
	"github.com/marketsync/marketsync/schemas"
)

func totals(sum pipeline.Summary) (rows, bytes, requests, throttled int64) {
	for _, s := range sum.Streams {
		rows += s.Inserted + s.Updated
		bytes += s.Bytes
		requests += s.Requests
		throttled += s.Throttled
	}
	return
}

// benchEndToEnd: every stream from the simulator in replay mode (pages pre-rendered, so the
// client is measured, not the generator) into DuckDB + Parquet; and leads alone against DuckDB's
// own read_json ingesting the same pages from disk.
func benchEndToEnd(ctx context.Context, o Options, rep *Report) error {
	if err := benchAllStreams(ctx, o, rep); err != nil {
		return err
	}
	return benchLeadsVsReadJSON(ctx, o, rep)
}

// allStreamsRows caps the all-streams run: at 1M rows per stream its warm-up and run take ~8
// minutes of a bench whose targets are the leads row and the loader; the figure is a rate.
const allStreamsRows = 200_000

func benchAllStreams(ctx context.Context, o Options, rep *Report) error {
	rows := min(o.Rows, allStreamsRows)
	sim, err := startSim(apisim.Config{Seed: 1, Scale: rows, Profile: "fast", Replay: true, Locations: 4})
	if err != nil {
		return err
	}
	defer sim.Close()
	// Warm-up: render and cache every page once.
	warm := syncConfig(sim, 0, filepath.Join(o.Dir, "e2e-warm"), o.Log)
	if _, err := pipeline.Run(ctx, warm); err != nil {
		return err
	}
	cfg := syncConfig(sim, 0, filepath.Join(o.Dir, "e2e"), o.Log)
	var prof strings.Builder
	stop := func() {}
	if o.CPUProfile {
		stop = profile(&prof)
	}
	start := time.Now()
	sum, err := pipeline.Run(ctx, cfg)
	el := time.Since(start)
	stop()
	if err != nil {
		return err
	}
	total, bytes, reqs, _ := totals(sum)
	rep.add(Row{Measure: fmt.Sprintf("End to end: all %d streams, %d rows each, replayed pages -> DuckDB + Parquet", len(schemas.Streams), rows),
		Ours:     fmt.Sprintf("%.1f s: %.0fk rows/s, %.0f MB/s", el.Seconds(), float64(total)/el.Seconds()/1e3, mb(bytes)/el.Seconds()),
		Baseline: "(see the read_json row)", Ratio: "-", Goal: "-", Verdict: "-",
		Notes: fmt.Sprintf("%d rows, %.0f MB of JSON, %d requests, Parquet export included", total, mb(bytes), reqs)})
	if prof.Len() > 0 {
		rep.Profiles = append(rep.Profiles, "End to end (all streams):\n"+prof.String())
	}

	return nil
}

// benchLeadsVsReadJSON: leads alone into DuckDB, then DuckDB's read_json over the same pages
// saved to disk, at the bench's full row count.
func benchLeadsVsReadJSON(ctx context.Context, o Options, rep *Report) error {
	sim, err := startSim(apisim.Config{Seed: 1, Scale: o.Rows, Profile: "fast", Replay: true, Locations: 4})
	if err != nil {
		return err
	}
	defer sim.Close()
	warm := syncConfig(sim, 0, filepath.Join(o.Dir, "e2e-leads-warm"), o.Log)
	warm.Streams, warm.ParquetDir = []string{"leads"}, ""
	if _, err := pipeline.Run(ctx, warm); err != nil { // renders and caches every lead page once
		return err
	}
	leadsCfg := syncConfig(sim, 0, filepath.Join(o.Dir, "e2e-leads"), o.Log)
	leadsCfg.Streams, leadsCfg.ParquetDir = []string{"leads"}, ""
	start := time.Now()
	lsum, err := pipeline.Run(ctx, leadsCfg)
	ours := time.Since(start)
	if err != nil {
		return err
	}
	lrows, lbytes, _, _ := totals(lsum)
	pagesDir := filepath.Join(o.Dir, "lead-pages")
	if err := os.MkdirAll(pagesDir, 0o700); err != nil {
		return err
	}
	var diskBytes int64
	for i, b := range sim.ReplayBodies("/api/lead/v2/leads") {
		diskBytes += int64(len(b))
		if err := os.WriteFile(filepath.Join(pagesDir, fmt.Sprintf("page-%05d.json", i)), b, 0o600); err != nil {
			return err
		}
	}
	db, err := load.Open(ctx, filepath.Join(o.Dir, "read_json.duckdb"))
	if err != nil {
		return err
	}
	defer db.Close()
	start = time.Now()
	// Both sides end with their data in the database file: our run closes (and so checkpoints)
	// its warehouse inside the timing, so the baseline checkpoints too.
	if _, err := db.Conn().ExecContext(ctx, fmt.Sprintf(`CREATE TABLE leads AS SELECT unnest(content, max_depth := 2) FROM read_json('%s/*.json'); CHECKPOINT`, pagesDir)); err != nil {
		return err
	}
	theirs := time.Since(start)
	var rjRows int64
	_ = db.Conn().QueryRowContext(ctx, "SELECT count(*) FROM leads").Scan(&rjRows)
	oursRate, theirRate := float64(lrows)/ours.Seconds(), float64(rjRows)/theirs.Seconds()
	rep.add(Row{Measure: fmt.Sprintf("End to end: %d leads over HTTP -> typed DuckDB table (no Parquet)", lrows),
		Ours:     fmt.Sprintf("%.2f s: %.0fk rows/s, %.0f MB/s", ours.Seconds(), oursRate/1e3, mb(lbytes)/ours.Seconds()),
		Baseline: fmt.Sprintf("DuckDB read_json of the same %d pages on disk: %.2f s, %.0fk rows/s, %.0f MB/s", len(sim.ReplayBodies("/api/lead/v2/leads")), theirs.Seconds(), theirRate/1e3, mb(diskBytes)/theirs.Seconds()),
		Ratio:    ratio(oursRate, theirRate), Goal: ">= 1.0", Verdict: verdict(oursRate >= theirRate),
		Notes: "ours also authenticates, pages over loopback HTTP, types every column and upserts by key; read_json infers types and only inserts"})
	return nil
}
