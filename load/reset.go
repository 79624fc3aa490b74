package load

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/marketsync/marketsync/schemas"
)

// Querier is what a reset preview reads through: a read-only *sql.DB or the writer's *sql.Conn.
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// ResetTable is what a reset clears of one table.
type ResetTable struct {
	Table    string
	Rows     int64 // rows in the table, soft-deleted ones included
	Rejected int64 // its quarantined records in _rejected
	Cursors  int64 // its _sync_state rows (one per partition)
}

// ResetReport is what a reset deletes (or, previewed, would delete).
type ResetReport struct {
	Tables []ResetTable
	// Tenants are the tenants the reset clears; empty: every tenant.
	Tenants []string
	// Released are the _sources claims that go because no stream of their source keeps rows
	// or a cursor of their tenant.
	Released []ReleasedClaim
}

// ReleasedClaim is a tenant's claim of a source (the account it syncs) that a reset releases.
type ReleasedClaim struct{ Tenant, Source, Identity string }

// ResetTables returns the tables a reset of the named streams clears: each stream's table, and
// the table its partitions come from (locations with charges), which syncs only with it.
func ResetTables(streams []string) ([]*schemas.Table, error) {
	var out []*schemas.Table
	add := func(t *schemas.Table) {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	for _, s := range streams {
		t, err := schemas.Lookup(s)
		if err != nil {
			return nil, err
		}
		if t.PartitionedBy != "" {
			parent, err := schemas.Lookup(t.PartitionedBy)
			if err != nil {
				return nil, err
			}
			add(parent)
		}
		add(t)
	}
	return out, nil
}

// KnownTenants lists the tenants a warehouse holds anything of (rows' cursors, source claims,
// run history), sorted.
func KnownTenants(ctx context.Context, q Querier) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT tenant FROM _sync_state UNION SELECT tenant FROM _sources
		UNION SELECT tenant FROM _sync_runs UNION SELECT tenant FROM _rejected WHERE tenant IS NOT NULL ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("listing the warehouse's tenants: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("listing the warehouse's tenants: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// tenantFilter is " AND tenant IN (?, ...)" and its arguments, or nothing for every tenant.
func tenantFilter(tenants []string) (string, []any) {
	if len(tenants) == 0 {
		return "", nil
	}
	args := make([]any, len(tenants))
	for i, t := range tenants {
		args[i] = t
	}
	return " AND " + Quote(schemas.ColTenant) + " IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(tenants)), ", ") + ")", args
}

// PreviewReset counts what a reset of tables would delete, reading through q: of the tenants
// named, or of every tenant when none is.
func PreviewReset(ctx context.Context, q Querier, tables []*schemas.Table, tenants ...string) (ResetReport, error) {
	rep := ResetReport{Tenants: tenants}
	type claim struct{ tenant, source string }
	remaining := map[claim]int64{} // rows and cursors a tenant keeps of a source's other tables
	for _, t := range schemas.Tables {
		if slices.Contains(tables, t) {
			c, err := countTable(ctx, q, t, tenants)
			if err != nil {
				return rep, err
			}
			rep.Tables = append(rep.Tables, c)
			continue
		}
		kept, err := keptByTenant(ctx, q, t)
		if err != nil {
			return rep, err
		}
		for tenant, n := range kept {
			remaining[claim{tenant, t.Source}] += n
		}
	}
	// A tenant's claim of a source goes when the reset leaves that tenant nothing of the source.
	filter, args := tenantFilter(tenants)
	rows, err := q.QueryContext(ctx, `SELECT tenant, source, identity FROM _sources WHERE true`+filter+` ORDER BY tenant, source`, args...)
	if err != nil {
		return rep, fmt.Errorf("reading _sources: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c ReleasedClaim
		if err := rows.Scan(&c.Tenant, &c.Source, &c.Identity); err != nil {
			return rep, fmt.Errorf("reading _sources: %w", err)
		}
		if remaining[claim{c.Tenant, c.Source}] == 0 {
			rep.Released = append(rep.Released, c)
		}
	}
	return rep, rows.Err()
}

func tableExists(ctx context.Context, q Querier, name string) (bool, error) {
	var exists bool
	if err := q.QueryRowContext(ctx, `SELECT count(*) > 0 FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?`, name).Scan(&exists); err != nil {
		return false, fmt.Errorf("looking up table %s: %w", name, err)
	}
	return exists, nil
}

func countTable(ctx context.Context, q Querier, t *schemas.Table, tenants []string) (ResetTable, error) {
	c := ResetTable{Table: t.Name}
	exists, err := tableExists(ctx, q, t.Name)
	if err != nil {
		return c, err
	}
	filter, args := tenantFilter(tenants)
	if exists {
		if err := q.QueryRowContext(ctx, "SELECT count(*) FROM "+Quote(t.Name)+" WHERE true"+filter, args...).Scan(&c.Rows); err != nil {
			return c, fmt.Errorf("counting %s: %w", t.Name, err)
		}
	}
	args2 := append(append([]any{t.Name}, args...), t.Name)
	args2 = append(args2, args...)
	if err := q.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM _rejected WHERE stream = ?`+filter+`), (SELECT count(*) FROM _sync_state WHERE stream = ?`+filter+`)`,
		args2...).Scan(&c.Rejected, &c.Cursors); err != nil {
		return c, fmt.Errorf("counting the state of %s: %w", t.Name, err)
	}
	return c, nil
}

// keptByTenant counts, per tenant, the rows and cursors of a table a reset leaves alone.
func keptByTenant(ctx context.Context, q Querier, t *schemas.Table) (map[string]int64, error) {
	exists, err := tableExists(ctx, q, t.Name)
	if err != nil {
		return nil, err
	}
	qs := "SELECT tenant, count(*) FROM _sync_state WHERE stream = ? GROUP BY tenant"
	if exists {
		qs = fmt.Sprintf("SELECT tenant, sum(n)::BIGINT FROM (SELECT %[1]s AS tenant, count(*) AS n FROM %[2]s GROUP BY 1 UNION ALL %[3]s) GROUP BY tenant",
			Quote(schemas.ColTenant), Quote(t.Name), qs)
	}
	rows, err := q.QueryContext(ctx, qs, t.Name)
	if err != nil {
		return nil, fmt.Errorf("counting what %s keeps: %w", t.Name, err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var tenant string
		var n int64
		if err := rows.Scan(&tenant, &n); err != nil {
			return nil, fmt.Errorf("counting what %s keeps: %w", t.Name, err)
		}
		out[tenant] += n
	}
	return out, rows.Err()
}

// Reset clears tables in one transaction, of the tenants named or of every tenant. A reset of
// every tenant drops each table and creates it again as this build declares it (which also
// cures a column whose type changed); a reset of some tenants deletes their rows and leaves
// the table (and the other tenants' rows) as it is. Either way the tenants' _rejected records
// and cursors are deleted, and so is every claim of a source the reset leaves its tenant
// nothing of. The run history (_sync_runs) is kept. Either all of it commits or nothing does.
// Parquet files are the caller's (they derive from what committed).
func (d *DuckDB) Reset(ctx context.Context, tables []*schemas.Table, tenants ...string) (ResetReport, error) {
	if _, err := d.conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return ResetReport{}, fmt.Errorf("starting the reset: %w", err)
	}
	rep, err := d.reset(ctx, tables, tenants)
	if err == nil && d.beforeCommit != nil {
		err = d.beforeCommit()
	}
	if err == nil {
		if _, err = d.conn.ExecContext(ctx, "COMMIT"); err == nil {
			return rep, nil
		}
	}
	if _, rerr := d.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
		err = fmt.Errorf("%w (and rolling back: %v)", err, rerr)
	}
	return ResetReport{}, fmt.Errorf("resetting (nothing was deleted): %w", err)
}

func (d *DuckDB) reset(ctx context.Context, tables []*schemas.Table, tenants []string) (ResetReport, error) {
	rep, err := PreviewReset(ctx, d.conn, tables, tenants...)
	if err != nil {
		return rep, err
	}
	filter, targs := tenantFilter(tenants)
	names := make([]any, 0, len(tables))
	marks := make([]string, 0, len(tables))
	for _, t := range tables {
		d.forgetKeys(t.Name) // rebuilt at the next write, committed or rolled back
		names = append(names, t.Name)
		marks = append(marks, "?")
		if len(tenants) > 0 {
			exists, err := tableExists(ctx, d.conn, t.Name)
			if err != nil {
				return rep, err
			}
			if exists {
				if _, err := d.conn.ExecContext(ctx, "DELETE FROM "+Quote(t.Name)+" WHERE true"+filter, targs...); err != nil {
					return rep, fmt.Errorf("deleting the rows of %s: %w", t.Name, err)
				}
			}
			continue
		}
		if _, err := d.conn.ExecContext(ctx, "DROP TABLE IF EXISTS "+Quote(t.Name)); err != nil {
			return rep, fmt.Errorf("dropping %s: %w", t.Name, err)
		}
	}
	if len(tenants) == 0 {
		if err := d.Migrate(ctx, tables); err != nil { // the tables as declared, empty
			return rep, err
		}
	}
	in := "(" + strings.Join(marks, ", ") + ")"
	for _, q := range []string{"DELETE FROM _rejected WHERE stream IN " + in + filter, "DELETE FROM _sync_state WHERE stream IN " + in + filter} {
		if _, err := d.conn.ExecContext(ctx, q, append(slices.Clone(names), targs...)...); err != nil {
			return rep, fmt.Errorf("clearing state: %w", err)
		}
	}
	for _, c := range rep.Released {
		if _, err := d.conn.ExecContext(ctx, `DELETE FROM _sources WHERE source = ? AND tenant = ?`, c.Source, c.Tenant); err != nil {
			return rep, fmt.Errorf("releasing tenant %s's %s source: %w", c.Tenant, c.Source, err)
		}
	}
	return rep, nil
}

// StreamsOf returns the selectable streams of a source, for a reset command naming them.
func StreamsOf(source string) []string {
	var out []string
	for _, s := range schemas.Streams {
		if t, err := schemas.Lookup(s); err == nil && t.Source == source {
			out = append(out, s)
		}
	}
	return out
}

// streamOf names the selectable stream that syncs table (locations sync with charges).
func streamOf(table string) string {
	for _, s := range schemas.Streams {
		if t, err := schemas.Lookup(s); err == nil && (t.Name == table || t.PartitionedBy == table) {
			return s
		}
	}
	return table
}

// ResetCommand returns the command line that clears streams of the warehouse; where says
// which warehouse (and Parquet folder), e.g. ["--warehouse", path] or ["--config", file].
func ResetCommand(streams []string, where ...string) string {
	args := []string{"syncer", "reset", "--streams", strings.Join(streams, ",")}
	for _, w := range where {
		args = append(args, ShellQuote(w))
	}
	return strings.Join(append(args, "--yes"), " ")
}

// FixByReset is an error whose fix is a `syncer reset` of Streams. Its message names the
// command; Command, when set by a caller that knows how it was invoked (the config file, the
// Parquet folder), replaces the default that names the warehouse path only.
type FixByReset struct {
	Err     error // the sentinel: ErrSchema or ErrSourceMismatch
	Path    string
	Streams []string
	Command string
	format  string // the message, with one %s for the command
}

func (e *FixByReset) Error() string {
	cmd := e.Command
	if cmd == "" {
		cmd = ResetCommand(e.Streams, "--warehouse", e.Path)
	}
	return fmt.Sprintf(e.format, cmd)
}

func (e *FixByReset) Unwrap() error { return e.Err }

// ShellQuote quotes a word for a POSIX shell when it needs it.
func ShellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
