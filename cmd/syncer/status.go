package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"

	"github.com/marketsync/marketsync/internal/control"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
)

const statusSQL = `
WITH last AS (
  SELECT tenant, stream, partition, arg_max(status, ended_at) AS last_status, max(ended_at) AS last_run,
         max(ended_at) FILTER (WHERE status = 'succeeded') AS last_success, arg_max(error, ended_at) AS last_error,
         arg_max(resumes_at, ended_at) AS resumes_at
  FROM _sync_runs GROUP BY tenant, stream, partition
)
SELECT l.tenant, l.stream, nullif(l.partition, '') AS partition, l.last_status, l.last_run, l.last_success,
       date_diff('minute', l.last_success, now()) AS minutes_since_success,
       CASE WHEN json_extract(s.cursor, '$.value_us') IS NULL THEN NULL
            ELSE to_timestamp(CAST(json_extract(s.cursor, '$.value_us') AS BIGINT) / 1000000) END AS cursor_at,
       CAST(json_extract_string(s.cursor, '$.last_full_scan') AS VARCHAR) AS last_full_scan,
       l.last_error, CASE WHEN l.last_status = 'deferred' THEN l.resumes_at END AS resumes_at
FROM last l LEFT JOIN _sync_state s ON s.tenant = l.tenant AND s.stream = l.stream AND s.partition = l.partition
ORDER BY l.tenant, l.stream, l.partition`

// statusOneTenantSQL is statusSQL without the tenant column, for a warehouse of one tenant.
var statusOneTenantSQL = strings.Replace(statusSQL, "SELECT l.tenant, l.stream,", "SELECT l.stream,", 1)

// tenantColumn is "tenant, " if the warehouse's run history names more than one tenant, else
// "": status and runs show the tenant column only where there is a choice, so a config without
// tenants: prints what it did before tenants existed.
func tenantColumn(ctx context.Context, db queryer) string {
	var n int
	if rows, err := db.QueryContext(ctx, `SELECT count(DISTINCT tenant) FROM _sync_runs`); err == nil {
		if rows.Next() {
			_ = rows.Scan(&n)
		}
		rows.Close()
	}
	if n > 1 {
		return "tenant, "
	}
	return ""
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", "status [--warehouse PATH] [--format table|csv|json]", stdout)
	cfgPath := fs.String("config", "", "YAML config `file` (for its warehouse path)")
	warehouse := fs.String("warehouse", "", "DuckDB warehouse `path`")
	format := fs.String("format", "table", "output format: table, csv or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return readWarehouse(ctx, *warehouse, *cfgPath, control.Request{Cmd: "status", Format: *format}, true, stdout, stderr,
		func(db *sql.DB) error { return printStatus(ctx, db, *format, stdout) })
}

// printStatus prints the streams' state and, in the table format, the rows per table.
func printStatus(ctx context.Context, db queryer, format string, stdout io.Writer) error {
	q := statusSQL
	if tenantColumn(ctx, db) == "" {
		q = statusOneTenantSQL
	}
	if err := printQuery(ctx, db, preTenantCompat(ctx, db, q), format, stdout); err != nil {
		return err
	}
	if format == "table" {
		fmt.Fprintln(stdout, "\nrows per table:")
		return printQuery(ctx, db, tableCountsSQL(), "table", stdout)
	}
	return nil
}

// tableCountsSQL counts live, soft-deleted and stale rows (their newer version was quarantined)
// of every declared table, and the quarantined records.
func tableCountsSQL() string {
	var parts []string
	for _, t := range schemas.Tables {
		parts = append(parts, fmt.Sprintf(`SELECT '%s' AS "table", count(*) FILTER (WHERE %s IS NULL) AS live, `+
			`count(*) FILTER (WHERE %s IS NOT NULL) AS deleted, count(*) FILTER (WHERE %s IS NOT NULL AND %s IS NULL) AS stale FROM %s`,
			t.Name, load.Quote(schemas.ColDeletedAt), load.Quote(schemas.ColDeletedAt), load.Quote(schemas.ColStaleSince),
			load.Quote(schemas.ColDeletedAt), load.Quote(t.Name)))
	}
	parts = append(parts, `SELECT '_rejected', count(*), 0, 0 FROM _rejected`)
	return strings.Join(parts, "\nUNION ALL ")
}

// preTenantCompat reads the state tables of a warehouse that no sync of a build with tenants
// has migrated yet (a read-only open cannot migrate) as the default tenant's, so status and
// runs work from the moment the binary is upgraded rather than after its first sync.
func preTenantCompat(ctx context.Context, db queryer, q string) string {
	if hasColumn(ctx, db, "_sync_runs", "tenant") {
		return q
	}
	for _, t := range []string{"_sync_runs", "_sync_state"} {
		q = strings.ReplaceAll(q, "FROM "+t+" ", fmt.Sprintf("FROM (SELECT '%s' AS tenant, * FROM %s) ", schemas.DefaultTenant, t))
		q = strings.ReplaceAll(q, "JOIN "+t+" ", fmt.Sprintf("JOIN (SELECT '%s' AS tenant, * FROM %s) ", schemas.DefaultTenant, t))
	}
	return q
}
