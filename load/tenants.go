package load

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
)

// tenantOr returns tenant, or schemas.DefaultTenant when it is "".
func tenantOr(tenant string) string {
	if tenant == "" {
		return schemas.DefaultTenant
	}
	return tenant
}

// keyMatch is the SQL condition that rows a and b (table aliases) have the same logical key
// (schemas.Table.Key: the tenant and the primary key).
func keyMatch(t *schemas.Table, a, b string) string {
	var parts []string
	for _, c := range t.Key() {
		parts = append(parts, fmt.Sprintf("%s.%s = %s.%s", a, Quote(c), b, Quote(c)))
	}
	return strings.Join(parts, " AND ")
}

// migrateTenants gives a warehouse created before tenants existed its tenant columns, in one
// transaction, so a process killed in the middle leaves the old warehouse or the new one:
// every row, cursor, run and source claim it holds becomes the default tenant's. The state
// tables whose primary key gains the tenant (_sync_state, _sources) are rebuilt; the others get
// the column filled with the default tenant. A warehouse that has the columns is left alone.
func (d *DuckDB) migrateTenants(ctx context.Context) error {
	// One query over DuckDB's catalog for every table: a query per table on
	// information_schema.columns cost ~20 ms each, ~250 ms of every Open.
	names := append([]string{"_sync_state", "_sources", "_sync_runs", "_rejected"}, tableNames()...)
	rows, err := d.conn.QueryContext(ctx, `SELECT table_name, count(*) FILTER (WHERE column_name = ?) FROM duckdb_columns()
		WHERE schema_name = 'main' AND NOT internal AND list_contains(?::VARCHAR[], table_name) GROUP BY table_name`,
		schemas.ColTenant, names)
	if err != nil {
		return fmt.Errorf("reading the columns of the tables in %s: %w", d.path, err)
	}
	lacking := map[string]bool{}
	for rows.Next() {
		var name string
		var tenant int
		if err := rows.Scan(&name, &tenant); err != nil {
			rows.Close()
			return fmt.Errorf("reading the columns of the tables in %s: %w", d.path, err)
		}
		lacking[name] = tenant == 0
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("reading the columns of the tables in %s: %w", d.path, err)
	}
	var todo []string
	for _, name := range names { // in this order: the state tables first
		if lacking[name] {
			todo = append(todo, name)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	def := "'" + schemas.DefaultTenant + "'"
	stmts := []string{"BEGIN TRANSACTION"}
	for _, name := range todo {
		switch name {
		case "_sync_state":
			stmts = append(stmts, "ALTER TABLE _sync_state RENAME TO _sync_state_pre_tenants", ddlOf("_sync_state"),
				"INSERT INTO _sync_state (tenant, stream, partition, cursor, updated_at) SELECT "+def+", stream, partition, cursor, updated_at FROM _sync_state_pre_tenants",
				"DROP TABLE _sync_state_pre_tenants")
		case "_sources":
			stmts = append(stmts, "ALTER TABLE _sources RENAME TO _sources_pre_tenants", ddlOf("_sources"),
				"INSERT INTO _sources (tenant, source, identity, first_seen, last_seen) SELECT "+def+", source, identity, first_seen, last_seen FROM _sources_pre_tenants",
				"DROP TABLE _sources_pre_tenants")
		default:
			stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s VARCHAR DEFAULT %s", Quote(name), Quote(schemas.ColTenant), def),
				fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT", Quote(name), Quote(schemas.ColTenant)))
		}
	}
	stmts = append(stmts, "COMMIT")
	for i, q := range stmts {
		_, err := d.conn.ExecContext(ctx, q)
		if err == nil && migrateFailAt != nil && i < len(stmts)-1 {
			err = migrateFailAt(i)
		}
		if err != nil {
			_, rbErr := d.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
			return errors.Join(fmt.Errorf("adding the tenant column to %s (warehouse %s, unchanged): %w", strings.Join(todo, ", "), d.path, err), rbErr)
		}
	}
	for _, name := range todo {
		if !strings.HasPrefix(name, "_") {
			if d.altered == nil {
				d.altered = map[string]bool{}
			}
			d.altered[name] = true // its Parquet files lack the column: rewritten whole
		}
	}
	return nil
}

// migrateFailAt, if set (tests), is called after each statement of the tenant migration but
// the COMMIT; an error fails the migration there.
var migrateFailAt func(stmt int) error

func tableNames() []string {
	var out []string
	for _, t := range schemas.Tables {
		out = append(out, t.Name)
	}
	return out
}

// ddlOf returns the CREATE TABLE statement of a state table from state.DDL.
func ddlOf(table string) string {
	for _, stmt := range strings.Split(state.DDL, ";") {
		if strings.HasPrefix(strings.TrimSpace(stmt), "CREATE TABLE IF NOT EXISTS "+table+" (") {
			return strings.TrimSpace(stmt)
		}
	}
	panic("state.DDL has no table " + table)
}
