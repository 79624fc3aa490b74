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
	// Released are the _sources claims that go because no stream of their source keeps rows
	// or a cursor: source -> the identity it held.
	Released map[string]string
}

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

// PreviewReset counts what a reset of tables would delete, reading through q.
func PreviewReset(ctx context.Context, q Querier, tables []*schemas.Table) (ResetReport, error) {
	rep := ResetReport{Released: map[string]string{}}
	remaining := map[string]int64{} // source -> rows and cursors its other tables keep
	for _, t := range schemas.Tables {
		c, err := countTable(ctx, q, t)
		if err != nil {
			return rep, err
		}
		if slices.Contains(tables, t) {
			rep.Tables = append(rep.Tables, c)
		} else {
			remaining[t.Source] += c.Rows + c.Cursors
		}
	}
	// A reset clears the streams of every tenant: each tenant's claim of a source goes with them.
	rows, err := q.QueryContext(ctx, `SELECT source, identity FROM _sources ORDER BY source, tenant`)
	if err != nil {
		return rep, fmt.Errorf("reading _sources: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var source, identity string
		if err := rows.Scan(&source, &identity); err != nil {
			return rep, fmt.Errorf("reading _sources: %w", err)
		}
		if remaining[source] == 0 {
			if have, ok := rep.Released[source]; ok && have != identity {
				identity = have + "; " + identity
			}
			rep.Released[source] = identity
		}
	}
	return rep, rows.Err()
}

func countTable(ctx context.Context, q Querier, t *schemas.Table) (ResetTable, error) {
	c := ResetTable{Table: t.Name}
	var exists bool
	if err := q.QueryRowContext(ctx, `SELECT count(*) > 0 FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?`, t.Name).Scan(&exists); err != nil {
		return c, fmt.Errorf("looking up table %s: %w", t.Name, err)
	}
	if exists {
		if err := q.QueryRowContext(ctx, "SELECT count(*) FROM "+Quote(t.Name)).Scan(&c.Rows); err != nil {
			return c, fmt.Errorf("counting %s: %w", t.Name, err)
		}
	}
	if err := q.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM _rejected WHERE stream = ?), (SELECT count(*) FROM _sync_state WHERE stream = ?)`,
		t.Name, t.Name).Scan(&c.Rejected, &c.Cursors); err != nil {
		return c, fmt.Errorf("counting the state of %s: %w", t.Name, err)
	}
	return c, nil
}

// Reset clears tables in one transaction: each is dropped and created again as this build
// declares it (which also cures a column whose type changed), its _rejected records and its
// cursors are deleted, and so is every _sources claim no remaining stream backs. The run
// history (_sync_runs) is kept. Either all of it commits or nothing does. Parquet files are
// the caller's (they derive from what committed).
func (d *DuckDB) Reset(ctx context.Context, tables []*schemas.Table) (ResetReport, error) {
	if _, err := d.conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return ResetReport{}, fmt.Errorf("starting the reset: %w", err)
	}
	rep, err := d.reset(ctx, tables)
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

func (d *DuckDB) reset(ctx context.Context, tables []*schemas.Table) (ResetReport, error) {
	rep, err := PreviewReset(ctx, d.conn, tables)
	if err != nil {
		return rep, err
	}
	names := make([]any, 0, len(tables))
	marks := make([]string, 0, len(tables))
	for _, t := range tables {
		d.forgetKeys(t.Name) // rebuilt at the next write, committed or rolled back
		if _, err := d.conn.ExecContext(ctx, "DROP TABLE IF EXISTS "+Quote(t.Name)); err != nil {
			return rep, fmt.Errorf("dropping %s: %w", t.Name, err)
		}
		names = append(names, t.Name)
		marks = append(marks, "?")
	}
	if err := d.Migrate(ctx, tables); err != nil { // the tables as declared, empty
		return rep, err
	}
	in := "(" + strings.Join(marks, ", ") + ")"
	for _, q := range []string{"DELETE FROM _rejected WHERE stream IN " + in, "DELETE FROM _sync_state WHERE stream IN " + in} {
		if _, err := d.conn.ExecContext(ctx, q, names...); err != nil {
			return rep, fmt.Errorf("clearing state: %w", err)
		}
	}
	for source := range rep.Released {
		if _, err := d.conn.ExecContext(ctx, `DELETE FROM _sources WHERE source = ?`, source); err != nil {
			return rep, fmt.Errorf("releasing the %s source: %w", source, err)
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
