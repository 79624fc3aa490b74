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
	"sync/atomic"

	"github.com/duckdb/duckdb-go/v2"

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
	file  string // path, absolute with symbolic links resolved: the key of the file's side writes (keyfilter.go)
	db    *sql.DB
	conn  *sql.Conn
	arrow *duckdb.Arrow
	// beforeCommit, when set (tests), runs between the writes and COMMIT; an error rolls back.
	beforeCommit func() error
	views        int
	altered      map[string]bool       // tables Migrate added columns to: their Parquet is rewritten whole
	filters      map[string]*keyFilter // per table: the keys it holds (keyfilter.go)
	// ParquetPartitionsWritten counts the Parquet partition files written (benchmarks, tests).
	ParquetPartitionsWritten int
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
	d := &DuckDB{path: path, file: fileKey(dsn), db: db, conn: conn}
	if err := conn.Raw(func(dc any) error {
		a, err := duckdb.NewArrowFromConn(dc.(driver.Conn))
		d.arrow = a
		return err
	}); err != nil {
		d.Close()
		return nil, fmt.Errorf("opening the Arrow interface of %s: %w", path, err)
	}
	// Checkpoint (WAL -> database file) every 128 MB of WAL instead of DuckDB's 16 MB: a bulk
	// load spends less time rewriting the file (1M leads end to end: 24-28 s at 128MB-1GB
	// against 39-49 s at 32MB, CPU 112 against 197 s). Rows committed but not yet checkpointed
	// stay in DuckDB's memory, so a larger threshold can grow the process: at 256MB a sync of
	// 1M users held ~190 MB of them and its last checkpoint stalled one batch for seconds; at
	// 128MB its peak RSS was 401-404 MB against 451-453 MB at 32MB (issue 16, BENCHMARKS.md).
	// The WAL is as durable. Nothing depends on insertion order; without it COPY ... TO parquet
	// streams instead of buffering, which keeps exports inside the memory limit. The
	// allocator's background threads return freed memory to the system as a sync goes.
	// Nothing is downloaded at run time: a query naming an extension that is not built in
	// (sqlite_scan, a read of s3://) fails instead of fetching it from the internet.
	if _, err := conn.ExecContext(ctx, "SET checkpoint_threshold = '128MB'; SET preserve_insertion_order = false; "+
		"SET allocator_background_threads = true; SET allocator_flush_threshold = '8MB'; "+
		"SET autoinstall_known_extensions = false; SET allow_community_extensions = false"); err != nil {
		d.Close()
		return nil, fmt.Errorf("configuring %s: %w", path, err)
	}
	// One transaction: a process killed while creating a new warehouse leaves all of the state
	// tables or none.
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION;"+state.DDL+";COMMIT"); err != nil {
		d.Close()
		return nil, fmt.Errorf("creating state tables in %s: %w", path, err)
	}
	if err := d.migrateTenants(ctx); err != nil {
		d.Close()
		return nil, err
	}
	if dsn != "" {
		_ = os.Chmod(dsn, 0o600) // warehouse data is the user's business data: owner-only
	}
	return d, nil
}

// fileKey names the database file whatever the spelling of its path ("w.duckdb", "./w.duckdb",
// its absolute path, a path through a symbolic link): DuckDB's instance cache gives every one
// of them the same database, so they must share its side-write generations. "" (in memory)
// is a name of its own: each in-memory database is another database.
func fileKey(dsn string) string {
	if dsn == "" {
		return fmt.Sprintf(":memory:%d", memoryDBs.Add(1))
	}
	abs, err := filepath.Abs(dsn)
	if err != nil {
		return dsn
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real
	}
	return abs
}

var memoryDBs atomic.Int64

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
	if d == nil { // a deferred Close of a handle whose reopen failed
		return nil
	}
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
// Handing it out makes every key filter of the file be rebuilt at its next use: SQL run on it
// may change keys around upsert. Only SQL run before that use: a write through a kept handle
// after the next Apply is seen only if it moves the table's estimated_size, which an UPDATE of
// a key in place does not (call DB or Conn again for each such write).
func (d *DuckDB) DB() *sql.DB { d.sideWrite(); return d.db }

// Conn exposes the writer connection; reads through it see committed data.
// Handing it out makes every key filter of the file be rebuilt at its next use (see DB: only
// SQL run before that use is covered).
func (d *DuckDB) Conn() *sql.Conn { d.sideWrite(); return d.conn }

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
