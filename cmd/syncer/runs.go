package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/marketsync/marketsync/schemas"
)

// runsSQL lists the last runs (newest first), one row per run and stream: a stream's
// partitions (HighLevel locations) are summed, and its status is the worst of theirs. It
// carries every counter of the run's JSON summary under the same names (bytes and
// budget_wait_seconds are null for runs recorded before they were stored).
// %[1]s filters the runs and their rows (a stream), %[2]d is how many runs, %[3]s and %[4]s
// are the bytes and budget wait columns (typed nulls in a warehouse no sync has migrated yet).
const runsSQL = `
WITH picked AS (
  SELECT run_id, min(started_at) AS run_started FROM _sync_runs WHERE true%[1]s
  GROUP BY run_id ORDER BY run_started DESC, run_id DESC LIMIT %[2]d
)
SELECT r.run_id, r.stream, count(*) AS parts,
       arg_max(r.status, CASE r.status WHEN 'failed' THEN 5 WHEN 'cancelled' THEN 4 WHEN 'deferred' THEN 3
                                       WHEN 'skipped' THEN 2 ELSE 1 END) AS status,
       CASE WHEN bool_or(r.full_scan) THEN 'full' ELSE 'incremental' END AS mode,
       min(r.started_at) AS started_at, max(r.ended_at) AS ended_at,
       round(date_diff('millisecond', min(r.started_at), max(r.ended_at)) / 1000, 1) AS seconds,
       CAST(sum(r.rows_inserted) AS BIGINT) AS inserted, CAST(sum(r.rows_updated) AS BIGINT) AS updated, CAST(sum(coalesce(r.rows_unchanged, 0)) AS BIGINT) AS unchanged,
       CAST(sum(r.rows_deleted) AS BIGINT) AS deleted, CAST(sum(r.rows_rejected) AS BIGINT) AS rejected, CAST(sum(r.requests) AS BIGINT) AS requests,
       CAST(sum(r.retries) AS BIGINT) AS retries, CAST(sum(r.throttled) AS BIGINT) AS throttled,
       CAST(sum(r.pages) AS BIGINT) AS pages, CAST(sum(r.rows_rounded) AS BIGINT) AS rounded, CAST(sum(r.rows_stale) AS BIGINT) AS stale,
       CAST(sum(%[3]s) AS BIGINT) AS bytes, round(sum(%[4]s), 6) AS budget_wait_seconds,
       max(r.resumes_at) AS resumes_at,
       nullif(string_agg(DISTINCT nullif(r.note, ''), '; '), '') AS note,
       nullif(string_agg(DISTINCT nullif(r.error, ''), '; '), '') AS error
FROM _sync_runs r JOIN picked p USING (run_id)
WHERE true%[1]s
GROUP BY r.run_id, r.stream, p.run_started
ORDER BY p.run_started DESC, r.run_id DESC, r.stream`

// runsTableSQL keeps the table narrow: the columns a person scans, and one detail column.
const runsTableSQL = `SELECT run_id, stream, status, mode, strftime(started_at AT TIME ZONE 'UTC', '%%m-%%d %%H:%%M:%%S') AS started,
  seconds, inserted, updated, deleted, requests,
  coalesce('resumes ' || strftime(resumes_at AT TIME ZONE 'UTC', '%%Y-%%m-%%d %%H:%%M UTC'), error, '') AS detail
FROM (%s)
ORDER BY min(started_at) OVER (PARTITION BY run_id) DESC, run_id DESC, stream`

func runRuns(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlags("runs", "runs [--last N] [--stream S] [--format table|csv|json] [--warehouse PATH | --config FILE]", stdout)
	cfgPath := fs.String("config", "", "YAML config `file` (for its warehouse path)")
	warehouse := fs.String("warehouse", "", "DuckDB warehouse `path`")
	last := fs.Int("last", 10, "show the last `N` runs")
	stream := fs.String("stream", "", "only runs of this `stream`")
	format := fs.String("format", "table", "output format: table, csv or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if *last < 1 {
		return usagef("--last %d: want 1 or more runs", *last)
	}
	filter := ""
	if setFlags(fs)["stream"] {
		all := append(slices.Clone(schemas.Streams), "locations")
		if !slices.Contains(all, *stream) {
			return usagef("--stream %q: want one of %s", *stream, strings.Join(all, ", "))
		}
		// A declared name (checked above) is safe to inline; serve's protocol takes no '?' placeholders.
		filter = fmt.Sprintf(" AND stream = '%s'", *stream)
	}
	db, err := openWarehouseReadOnly(ctx, *warehouse, *cfgPath)
	if err != nil {
		return err
	}
	defer db.Close()
	// A warehouse last written by a build that did not store bytes and budget wait gets the
	// columns at its next sync; until then they read as null.
	bytesCol, waitCol := "r.bytes", "r.budget_wait_seconds"
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.columns WHERE table_name = '_sync_runs' AND column_name = 'budget_wait_seconds'`).Scan(&n); err == nil && n == 0 {
		bytesCol, waitCol = "CAST(NULL AS BIGINT)", "CAST(NULL AS DOUBLE)"
	}
	q := fmt.Sprintf(runsSQL, filter, *last, bytesCol, waitCol)
	if *format == "table" {
		q = fmt.Sprintf(runsTableSQL, q) // csv and json carry every column
	}
	return printQuery(ctx, db, q, *format, stdout)
}
