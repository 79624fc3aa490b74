// Package load writes Arrow batches into the DuckDB warehouse (the system of record) and derives
// Parquet files from what DuckDB committed.
package load

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/duckdb/duckdb-go/v2"

	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
)

// ErrLocked means another process holds the warehouse file.
var ErrLocked = errors.New("warehouse is locked by another process")

// ErrSchema means the warehouse has a column whose type differs from the declared one.
var ErrSchema = errors.New("warehouse schema is incompatible")

// DuckDB is the warehouse writer. It holds one connection and is not safe for concurrent use:
// the pipeline gives it to a single writer goroutine.
type DuckDB struct {
	path  string
	db    *sql.DB
	conn  *sql.Conn
	arrow *duckdb.Arrow
	// beforeCommit, when set (tests), runs between the writes and COMMIT; an error rolls back.
	beforeCommit func() error
	views        int
}

// Open opens (creating if needed) the warehouse at path (":memory:" or "" for an in-memory one)
// and creates the state tables. A lock held by another process is reported as ErrLocked with
// the holder and what to do.
func Open(ctx context.Context, path string) (*DuckDB, error) {
	dsn := path
	if path == ":memory:" {
		dsn = ""
	}
	if dsn != "" {
		if err := os.MkdirAll(filepath.Dir(dsn), 0o700); err != nil {
			return nil, fmt.Errorf("creating warehouse directory: %w", err)
		}
	}
	connector, err := duckdb.NewConnector(dsn, nil)
	if err != nil {
		return nil, openError(path, err)
	}
	db := sql.OpenDB(connector)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, openError(path, err)
	}
	d := &DuckDB{path: path, db: db, conn: conn}
	if err := conn.Raw(func(dc any) error {
		a, err := duckdb.NewArrowFromConn(dc.(driver.Conn))
		d.arrow = a
		return err
	}); err != nil {
		d.Close()
		return nil, fmt.Errorf("opening the Arrow interface of %s: %w", path, err)
	}
	// Checkpoint (WAL -> database file) every 256 MB of WAL instead of DuckDB's 16 MB: a bulk
	// load otherwise spends a third of its time rewriting the file. The WAL is as durable.
	// Nothing depends on insertion order; without it COPY ... TO parquet streams instead of
	// buffering, which keeps exports inside the memory limit.
	if _, err := conn.ExecContext(ctx, "SET checkpoint_threshold = '256MB'; SET preserve_insertion_order = false"); err != nil {
		d.Close()
		return nil, fmt.Errorf("configuring %s: %w", path, err)
	}
	if _, err := conn.ExecContext(ctx, state.DDL); err != nil {
		d.Close()
		return nil, fmt.Errorf("creating state tables in %s: %w", path, err)
	}
	if dsn != "" {
		_ = os.Chmod(dsn, 0o600) // warehouse data is the user's business data: owner-only
	}
	return d, nil
}

var lockPID = regexp.MustCompile(`PID (\d+)`)

func openError(path string, err error) error {
	msg := err.Error()
	if strings.Contains(msg, "Could not set lock") || strings.Contains(msg, "Conflicting lock") {
		holder := "another process"
		if m := lockPID.FindStringSubmatch(msg); m != nil {
			holder = "process " + m[1]
		}
		return fmt.Errorf("%w: %s holds %s (a running sync, or a BI tool / duckdb shell that opened it). "+
			"Wait for it or close it; BI tools should read the Parquet output, or open the warehouse read-only only while no sync runs",
			ErrLocked, holder, path)
	}
	return fmt.Errorf("opening warehouse %s: %w", path, err)
}

// SetMemoryLimit caps DuckDB's buffer pool, e.g. "256MB".
func (d *DuckDB) SetMemoryLimit(ctx context.Context, limit string) error {
	if _, err := d.conn.ExecContext(ctx, "SET memory_limit = ?", limit); err != nil {
		return fmt.Errorf("setting DuckDB memory_limit to %q: %w", limit, err)
	}
	return nil
}

// LogMemory logs DuckDB's memory use by component (debug aid).
func (d *DuckDB) LogMemory(ctx context.Context, log *slog.Logger) {
	rows, err := d.conn.QueryContext(ctx, `SELECT tag, memory_usage_bytes, temporary_storage_bytes FROM duckdb_memory() WHERE memory_usage_bytes + temporary_storage_bytes > 0`)
	if err != nil {
		return
	}
	defer rows.Close()
	for rows.Next() {
		var tag string
		var mem, tmp int64
		if rows.Scan(&tag, &mem, &tmp) == nil {
			log.Debug("duckdb memory", "tag", tag, "bytes", mem, "temporary_bytes", tmp)
		}
	}
}

// Close releases the connection and the file lock.
func (d *DuckDB) Close() error {
	var errs []error
	if d.conn != nil {
		errs = append(errs, d.conn.Close())
	}
	if d.db != nil {
		errs = append(errs, d.db.Close())
	}
	return errors.Join(errs...)
}

// DB exposes the database for read queries (status, query, tests).
func (d *DuckDB) DB() *sql.DB { return d.db }

// Conn exposes the writer connection; reads through it see committed data.
func (d *DuckDB) Conn() *sql.Conn { return d.conn }

// Quote quotes an SQL identifier.
func Quote(id string) string { return `"` + strings.ReplaceAll(id, `"`, `""`) + `"` }

func normType(t string) string {
	t = strings.ToUpper(strings.TrimSpace(t))
	switch t {
	case "TIMESTAMP WITH TIME ZONE":
		return "TIMESTAMPTZ"
	}
	return t
}

// Migrate creates missing tables and adds missing columns in place. A column whose type differs
// from its declaration is an ErrSchema naming the column and the fix; nothing is changed then.
func (d *DuckDB) Migrate(ctx context.Context, tables []*schemas.Table) error {
	for _, t := range tables {
		existing := map[string]string{}
		rows, err := d.conn.QueryContext(ctx, `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'main' AND table_name = ?`, t.Name)
		if err != nil {
			return fmt.Errorf("reading columns of %s: %w", t.Name, err)
		}
		for rows.Next() {
			var name, typ string
			if err := rows.Scan(&name, &typ); err != nil {
				rows.Close()
				return fmt.Errorf("reading columns of %s: %w", t.Name, err)
			}
			existing[name] = normType(typ)
		}
		rows.Close()
		if len(existing) == 0 {
			var defs []string
			for _, c := range t.WarehouseColumns() {
				def := Quote(c.Name) + " " + c.Kind.SQL()
				if c.Name == t.PrimaryKey {
					def += " NOT NULL"
				}
				defs = append(defs, def)
			}
			// No PRIMARY KEY constraint: upserts are MERGEs on the key, which measured 3x faster
			// than INSERT ... ON CONFLICT against an ART index; batches carry unique keys.
			if _, err := d.conn.ExecContext(ctx, fmt.Sprintf("CREATE TABLE %s (%s)", Quote(t.Name), strings.Join(defs, ", "))); err != nil {
				return fmt.Errorf("creating table %s: %w", t.Name, err)
			}
			continue
		}
		for _, c := range t.WarehouseColumns() {
			have, ok := existing[c.Name]
			if !ok {
				if _, err := d.conn.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", Quote(t.Name), Quote(c.Name), c.Kind.SQL())); err != nil {
					return fmt.Errorf("adding column %s.%s: %w", t.Name, c.Name, err)
				}
				continue
			}
			if have != normType(c.Kind.SQL()) {
				return fmt.Errorf("%w: column %s.%s is %s in the warehouse but this build declares %s. "+
					"Fix: export what you need, then `DROP TABLE %s` in the warehouse and run `syncer sync --full-refresh --streams %s`",
					ErrSchema, t.Name, c.Name, have, c.Kind.SQL(), t.Name, t.Name)
			}
		}
	}
	return nil
}

// DeleteScope asks a write to soft-delete the rows a complete full scan did not see: every live
// row of the table (in the partition, if any) whose _run_id is not RunID. If the scan wrote
// fewer rows than ExpectRows (the listing's final total; -1: unknown), rows moved across page
// boundaries during the scan: nothing is deleted and the result says Short.
type DeleteScope struct {
	RunID          string
	PartitionCol   string
	PartitionValue string
	At             time.Time
	ExpectRows     int
}

// Rejected is a record quarantined instead of loaded.
type Rejected struct {
	Stream, RecordID, Field, Value, Error string
	Record                                []byte
}

// Write is one transaction: a batch upsert, optionally the stream's new cursor, soft deletes and
// quarantined records. All of it commits or none of it does.
type Write struct {
	Table     *schemas.Table
	Batch     arrow.RecordBatch // may be nil; not released by Write
	Stream    string
	Partition string
	Cursor    *state.Cursor
	// CursorIfShort replaces Cursor when the full scan turns out short (it must not claim a
	// complete scan).
	CursorIfShort *state.Cursor
	Deletes       *DeleteScope
	Rejected      []Rejected
	RunID         string
}

// Result counts what a Write changed.
type Result struct {
	Inserted, Updated, Deleted int64
	Rejected                   int64 // records quarantined for the first time in this run
	Stale                      int64 // rows whose newer version was quarantined this write
	Short                      bool  // the full scan missed rows: deletions were not marked
}

// Apply runs w in one transaction on the writer connection. On error nothing of w is visible.
func (d *DuckDB) Apply(ctx context.Context, w Write) (res Result, err error) {
	if _, err := d.conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return Result{}, fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() {
		if err != nil {
			// Roll back on a fresh context: a cancelled ctx must not leave the transaction open.
			if _, rbErr := d.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rbErr != nil {
				err = errors.Join(err, fmt.Errorf("rolling back: %w", rbErr))
			}
		}
	}()
	if w.Batch != nil && w.Batch.NumRows() > 0 {
		ins, upd, err := d.upsert(ctx, w.Table, w.Batch)
		if err != nil {
			return Result{}, err
		}
		res.Inserted, res.Updated = ins, upd
	}
	for _, r := range w.Rejected {
		// One row per record per run, however many scans of the run met it.
		ins, err := d.conn.ExecContext(ctx, `INSERT INTO _rejected SELECT ?, ?, ?, ?, ?, ?, ?, now()
			WHERE NOT EXISTS (SELECT 1 FROM _rejected WHERE stream = ? AND record_id = ? AND run_id = ? AND record = ?)`,
			r.Stream, r.RecordID, r.Field, r.Value, r.Error, string(r.Record), w.RunID,
			r.Stream, r.RecordID, w.RunID, string(r.Record))
		if err != nil {
			return Result{}, fmt.Errorf("quarantining a %s record: %w", r.Stream, err)
		}
		n, _ := ins.RowsAffected()
		res.Rejected += n
		// A quarantined update leaves the previous version live: mark it stale so no reader
		// takes it for current. The next good version clears the mark.
		if r.RecordID == "" || w.Table == nil {
			continue
		}
		q := fmt.Sprintf("UPDATE %s SET %s = ? WHERE CAST(%s AS VARCHAR) = ? AND %s IS NULL AND %s IS NULL",
			Quote(w.Table.Name), Quote(schemas.ColStaleSince), Quote(w.Table.PrimaryKey), Quote(schemas.ColDeletedAt), Quote(schemas.ColStaleSince))
		sr, err := d.conn.ExecContext(ctx, q, time.Now().UTC(), r.RecordID)
		if err != nil {
			return Result{}, fmt.Errorf("marking a quarantined %s record's previous version stale: %w", r.Stream, err)
		}
		stale, _ := sr.RowsAffected()
		res.Stale += stale
	}
	if ds := w.Deletes; ds != nil && ds.ExpectRows >= 0 {
		q := fmt.Sprintf("SELECT count(*) FROM %s WHERE %s = ?", Quote(w.Table.Name), Quote(schemas.ColRunID))
		args := []any{ds.RunID}
		if ds.PartitionCol != "" {
			q += fmt.Sprintf(" AND %s = ?", Quote(ds.PartitionCol))
			args = append(args, ds.PartitionValue)
		}
		var seen int64
		if err := d.conn.QueryRowContext(ctx, q, args...).Scan(&seen); err != nil {
			return Result{}, fmt.Errorf("verifying the full scan of %s: %w", w.Table.Name, err)
		}
		if seen < int64(ds.ExpectRows) {
			res.Short = true
		}
	}
	if ds := w.Deletes; ds != nil && !res.Short {
		q := fmt.Sprintf("UPDATE %s SET %s = ? WHERE %s IS NULL AND %s <> ?", Quote(w.Table.Name),
			Quote(schemas.ColDeletedAt), Quote(schemas.ColDeletedAt), Quote(schemas.ColRunID))
		args := []any{ds.At, ds.RunID}
		if ds.PartitionCol != "" {
			q += fmt.Sprintf(" AND %s = ?", Quote(ds.PartitionCol))
			args = append(args, ds.PartitionValue)
		}
		// A record the scan listed but quarantined was seen: it is not deleted.
		q += fmt.Sprintf(" AND CAST(%s AS VARCHAR) NOT IN (SELECT record_id FROM _rejected WHERE stream = ? AND run_id = ? AND record_id IS NOT NULL)",
			Quote(w.Table.PrimaryKey))
		args = append(args, w.Stream, w.RunID)
		r, err := d.conn.ExecContext(ctx, q, args...)
		if err != nil {
			return Result{}, fmt.Errorf("marking rows of %s deleted: %w", w.Table.Name, err)
		}
		res.Deleted, _ = r.RowsAffected()
	}
	cursor := w.Cursor
	if res.Short && w.CursorIfShort != nil {
		cursor = w.CursorIfShort
	}
	if cursor != nil {
		if _, err := d.conn.ExecContext(ctx, `INSERT OR REPLACE INTO _sync_state VALUES (?, ?, ?, now())`,
			w.Stream, w.Partition, cursor.Encode()); err != nil {
			return Result{}, fmt.Errorf("writing cursor of %s: %w", w.Stream, err)
		}
	}
	if d.beforeCommit != nil {
		if err := d.beforeCommit(); err != nil {
			return Result{}, err
		}
	}
	if _, err := d.conn.ExecContext(ctx, "COMMIT"); err != nil {
		return Result{}, fmt.Errorf("committing %s: %w", w.Table.Name, err)
	}
	return res, nil
}

// upsert merges the batch into its table by primary key. Keys are unique within a batch (the
// Batcher guarantees it), which MERGE requires to be deterministic.
func (d *DuckDB) upsert(ctx context.Context, t *schemas.Table, rec arrow.RecordBatch) (inserted, updated int64, err error) {
	rdr, err := array.NewRecordReader(rec.Schema(), []arrow.RecordBatch{rec})
	if err != nil {
		return 0, 0, fmt.Errorf("reading batch of %s: %w", t.Name, err)
	}
	defer rdr.Release()
	d.views++
	view := fmt.Sprintf("_batch_%s_%d", t.Name, d.views)
	release, err := d.arrow.RegisterView(rdr, view)
	if err != nil {
		return 0, 0, fmt.Errorf("registering batch of %s: %w", t.Name, err)
	}
	defer func() {
		release()
		_, _ = d.conn.ExecContext(context.WithoutCancel(ctx), "DROP VIEW IF EXISTS "+Quote(view))
	}()
	var before int64
	if err := d.conn.QueryRowContext(ctx, "SELECT count(*) FROM "+Quote(t.Name)).Scan(&before); err != nil {
		return 0, 0, fmt.Errorf("counting %s: %w", t.Name, err)
	}
	cols := t.AllColumns()
	names := make([]string, len(cols))
	srcs := make([]string, len(cols))
	sets := make([]string, 0, len(cols))
	for i, c := range cols {
		names[i] = Quote(c.Name)
		srcs[i] = "s." + Quote(c.Name)
		if c.Name != t.PrimaryKey {
			sets = append(sets, fmt.Sprintf("%s = s.%s", Quote(c.Name), Quote(c.Name)))
		}
	}
	sets = append(sets, Quote(schemas.ColStaleSince)+" = NULL") // a good version is current again
	pk := Quote(t.PrimaryKey)
	q := fmt.Sprintf("MERGE INTO %s AS t USING %s AS s ON t.%s = s.%s WHEN MATCHED THEN UPDATE SET %s WHEN NOT MATCHED THEN INSERT (%s) VALUES (%s)",
		Quote(t.Name), Quote(view), pk, pk, strings.Join(sets, ", "), strings.Join(names, ", "), strings.Join(srcs, ", "))
	if _, err := d.conn.ExecContext(ctx, q); err != nil {
		return 0, 0, fmt.Errorf("upserting %d rows into %s: %w", rec.NumRows(), t.Name, err)
	}
	var after int64
	if err := d.conn.QueryRowContext(ctx, "SELECT count(*) FROM "+Quote(t.Name)).Scan(&after); err != nil {
		return 0, 0, fmt.Errorf("counting %s: %w", t.Name, err)
	}
	inserted = after - before
	return inserted, rec.NumRows() - inserted, nil
}

// Append inserts the batch without any key check (append-only use; the benchmarks' floor).
func (d *DuckDB) Append(ctx context.Context, table string, rec arrow.RecordBatch) error {
	rdr, err := array.NewRecordReader(rec.Schema(), []arrow.RecordBatch{rec})
	if err != nil {
		return err
	}
	defer rdr.Release()
	d.views++
	view := fmt.Sprintf("_append_%d", d.views)
	release, err := d.arrow.RegisterView(rdr, view)
	if err != nil {
		return fmt.Errorf("registering batch of %s: %w", table, err)
	}
	defer func() {
		release()
		_, _ = d.conn.ExecContext(context.WithoutCancel(ctx), "DROP VIEW IF EXISTS "+Quote(view))
	}()
	if _, err := d.conn.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s BY NAME SELECT * FROM %s", Quote(table), Quote(view))); err != nil {
		return fmt.Errorf("appending to %s: %w", table, err)
	}
	return nil
}

// Cursor returns the committed cursor of a stream partition (found=false if none).
func (d *DuckDB) Cursor(ctx context.Context, stream, partition string) (c state.Cursor, found bool, err error) {
	var raw string
	err = d.conn.QueryRowContext(ctx, `SELECT CAST(cursor AS VARCHAR) FROM _sync_state WHERE stream = ? AND partition = ?`, stream, partition).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return state.Cursor{}, false, nil
	}
	if err != nil {
		return state.Cursor{}, false, fmt.Errorf("reading cursor of %s/%s: %w", stream, partition, err)
	}
	c, err = state.DecodeCursor(raw)
	return c, err == nil, err
}

// Cursors returns every committed cursor, keyed by stream + "\x00" + partition.
func (d *DuckDB) Cursors(ctx context.Context) (map[string]state.Cursor, error) {
	rows, err := d.conn.QueryContext(ctx, `SELECT stream, partition, CAST(cursor AS VARCHAR) FROM _sync_state`)
	if err != nil {
		return nil, fmt.Errorf("reading cursors: %w", err)
	}
	defer rows.Close()
	out := map[string]state.Cursor{}
	for rows.Next() {
		var stream, partition, raw string
		if err := rows.Scan(&stream, &partition, &raw); err != nil {
			return nil, fmt.Errorf("reading cursors: %w", err)
		}
		c, err := state.DecodeCursor(raw)
		if err != nil {
			return nil, fmt.Errorf("cursor of %s/%s: %w", stream, partition, err)
		}
		out[stream+"\x00"+partition] = c
	}
	return out, rows.Err()
}

// RecordRuns appends the per-stream outcomes of a run to _sync_runs.
func (d *DuckDB) RecordRuns(ctx context.Context, runs []state.StreamRun) error {
	for _, r := range runs {
		if _, err := d.conn.ExecContext(ctx, `INSERT INTO _sync_runs (run_id, stream, partition, started_at, ended_at, status,
			full_scan, rows_inserted, rows_updated, rows_deleted, rows_rejected, pages, requests, retries, throttled, error,
			rows_rounded, rows_stale) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.RunID, r.Stream, r.Partition, r.Started, r.Ended, r.Status, r.FullScan, r.Inserted, r.Updated, r.Deleted,
			r.Rejected, r.Pages, r.Requests, r.Retries, r.Throttled, r.Error, r.Rounded, r.Stale); err != nil {
			return fmt.Errorf("recording run of %s: %w", r.Stream, err)
		}
	}
	return nil
}

// OpenReadOnly opens an existing warehouse for reading. DuckDB still refuses while a writer
// holds the file; that is reported as ErrLocked.
func OpenReadOnly(ctx context.Context, path string) (*sql.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("warehouse %s does not exist yet: run `syncer sync` first", path)
	}
	connector, err := duckdb.NewConnector(path+"?access_mode=READ_ONLY", nil)
	if err != nil {
		return nil, openError(path, err)
	}
	db := sql.OpenDB(connector)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, openError(path, err)
	}
	return db, nil
}
