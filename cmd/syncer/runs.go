package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/marketsync/marketsync/internal/control"
	"github.com/marketsync/marketsync/schemas"
)

// runsSQL lists the last runs (newest first), one row per run, tenant and stream: a stream's
// partitions (HighLevel locations) are summed, and its status is the worst of theirs. It
// carries every counter of the run's JSON summary under the same names (bytes and
// budget_wait_seconds are null for runs recorded before they were stored).
// %[1]s filters the runs and their rows (a stream), %[2]d is how many runs, %[3]s is the tenant
// column ("r.tenant, ") or "" (see tenantColumn), %[4]s and %[5]s are the bytes and budget wait
// columns (typed nulls in a warehouse no sync has migrated yet).
const runsSQL = `
WITH picked AS (
  SELECT run_id, min(started_at) AS run_started FROM _sync_runs WHERE true%[1]s
  GROUP BY run_id ORDER BY run_started DESC, run_id DESC LIMIT %[2]d
)
SELECT r.run_id, %[3]sr.stream, count(*) AS parts,
       arg_max(r.status, CASE r.status WHEN 'failed' THEN 5 WHEN 'cancelled' THEN 4 WHEN 'deferred' THEN 3
                                       WHEN 'skipped' THEN 2 ELSE 1 END) AS status,
       CASE WHEN bool_or(r.full_scan) THEN 'full' ELSE 'incremental' END AS mode,
       min(r.started_at) AS started_at, max(r.ended_at) AS ended_at,
       round(date_diff('millisecond', min(r.started_at), max(r.ended_at)) / 1000, 1) AS seconds,
       CAST(sum(r.rows_inserted) AS BIGINT) AS inserted, CAST(sum(r.rows_updated) AS BIGINT) AS updated, CAST(sum(coalesce(r.rows_unchanged, 0)) AS BIGINT) AS unchanged,
       CAST(sum(r.rows_deleted) AS BIGINT) AS deleted, CAST(sum(r.rows_rejected) AS BIGINT) AS rejected, CAST(sum(r.requests) AS BIGINT) AS requests,
       CAST(sum(r.retries) AS BIGINT) AS retries, CAST(sum(r.throttled) AS BIGINT) AS throttled,
       CAST(sum(r.pages) AS BIGINT) AS pages, CAST(sum(r.rows_rounded) AS BIGINT) AS rounded, CAST(sum(r.rows_stale) AS BIGINT) AS stale,
       CAST(sum(%[4]s) AS BIGINT) AS bytes, round(sum(%[5]s), 6) AS budget_wait_seconds,
       max(r.resumes_at) AS resumes_at,
       nullif(string_agg(DISTINCT nullif(r.note, ''), '; '), '') AS note,
       nullif(string_agg(DISTINCT nullif(r.error, ''), '; '), '') AS error
FROM _sync_runs r JOIN picked p USING (run_id)
WHERE true%[1]s
GROUP BY r.run_id, r.tenant, r.stream, p.run_started
ORDER BY p.run_started DESC, r.run_id DESC, r.tenant, r.stream`

// runsTableSQL keeps the table narrow: the columns a person scans, and one detail column.
const runsTableSQL = `SELECT run_id, %[2]sstream, status, mode, strftime(started_at AT TIME ZONE 'UTC', '%%m-%%d %%H:%%M:%%S') AS started,
  seconds, inserted, updated, deleted, requests,
  coalesce('resumes ' || strftime(resumes_at AT TIME ZONE 'UTC', '%%Y-%%m-%%d %%H:%%M UTC'), error, '') AS detail
FROM (%[1]s)
ORDER BY min(started_at) OVER (PARTITION BY run_id) DESC, run_id DESC, %[2]sstream`

func runRuns(ctx context.Context, args []string, stdout, stderr io.Writer) error {
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
	if setFlags(fs)["stream"] {
		if err := checkRunsStream(*stream); err != nil {
			return err
		}
	}
	return readWarehouse(ctx, *warehouse, *cfgPath, control.Request{Cmd: "runs", Stream: *stream, Last: *last, Format: *format}, true, stdout, stderr,
		func(db *sql.DB) error { return printRuns(ctx, db, *stream, *last, *format, stdout) })
}

// checkRunsStream refuses a --stream that names no declared stream.
func checkRunsStream(stream string) error {
	if all := append(slices.Clone(schemas.Streams), "locations"); !slices.Contains(all, stream) {
		return usagef("--stream %q: want one of %s", stream, strings.Join(all, ", "))
	}
	return nil
}

// printRuns prints the run history of one stream, or of all when stream is "". The holder of
// the warehouse calls it for a reader too, so the name is checked here again.
func printRuns(ctx context.Context, db queryer, stream string, last int, format string, stdout io.Writer) error {
	filter := ""
	if stream != "" {
		if err := checkRunsStream(stream); err != nil {
			return err
		}
		// A declared name (checked above) is safe to inline; serve's protocol takes no '?' placeholders.
		filter = fmt.Sprintf(" AND stream = '%s'", stream)
	}
	tenant := tenantColumn(ctx, db)
	// A warehouse last written by a build that did not store bytes and budget wait gets the
	// columns at its next sync; until then they read as null.
	bytesCol, waitCol := "r.bytes", "r.budget_wait_seconds"
	if !hasColumn(ctx, db, "_sync_runs", "budget_wait_seconds") {
		bytesCol, waitCol = "CAST(NULL AS BIGINT)", "CAST(NULL AS DOUBLE)"
	}
	q := fmt.Sprintf(runsSQL, filter, last, strings.ReplaceAll(tenant, "tenant", "r.tenant"), bytesCol, waitCol)
	if format == "table" {
		q = fmt.Sprintf(runsTableSQL, q, tenant) // csv and json carry every column
	}
	return printQuery(ctx, db, preTenantCompat(ctx, db, q), format, stdout)
}

// hasColumn reports whether the state table has the column (true when it cannot tell: the
// query then names the column and its error is the one to see). Both names are constants.
func hasColumn(ctx context.Context, db queryer, table, column string) bool {
	rows, err := db.QueryContext(ctx, `SELECT count(*) FROM information_schema.columns WHERE table_name = '`+table+`' AND column_name = '`+column+`'`)
	if err != nil {
		return true
	}
	defer rows.Close()
	var n int
	if !rows.Next() || rows.Scan(&n) != nil {
		return true
	}
	return n > 0
}
