package load

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/marketsync/marketsync/schemas"
)

// ExportParquet writes every table as Hive-partitioned, zstd-compressed Parquet under dir
// (dir/<table>/<partition>=<value>/data.parquet), from committed data only. With changedSince
// set, only partitions holding rows written, deleted or marked stale at or after it are
// rewritten (a run passes its start: a table it did not change costs one small query); nil
// rewrites every partition. Each file is written beside its final name and renamed over it, so
// a reader always finds the directory and every file whole, old or new. Soft-deleted rows are
// kept (filter on _deleted_at IS NULL).
func (d *DuckDB) ExportParquet(ctx context.Context, dir string, tables []*schemas.Table, changedSince *time.Time) error {
	unlock, err := LockParquet(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating parquet directory: %w", err)
	}
	// Move committed data from the WAL into the database file first: it frees the buffer pool
	// (un-checkpointed rows live in memory) for the export's writers. Only an optimization:
	// DuckDB refuses it while another connection has a write transaction open (serve's readers
	// and the holder share the database), and the export is as correct without it.
	if _, err := d.conn.ExecContext(ctx, "CHECKPOINT"); err != nil && ctx.Err() != nil {
		return fmt.Errorf("checkpointing before the export: %w", err)
	}
	for _, t := range tables {
		since := changedSince
		tdir := filepath.Join(dir, t.Name)
		if _, err := os.Stat(tdir); err != nil || d.altered[t.Name] {
			since = nil // no earlier export, or its files lack a column added since
		}
		if since != nil {
			// A run that committed and then died before its export (a SIGKILL, a full disk) left
			// rows older than this run's start: export everything changed since the last export
			// that completed, or everything when none is recorded.
			through, ok := exportedThrough(tdir)
			switch {
			case !ok:
				since = nil
			case through.Before(*since):
				since = &through
			}
		}
		began := time.Now()
		n, err := d.exportTable(ctx, t, tdir, since)
		if err != nil {
			return fmt.Errorf("exporting %s to parquet: %w", t.Name, err)
		}
		// Every row committed before the export began is in the files now.
		if err := writeExportedThrough(tdir, began); err != nil {
			return fmt.Errorf("exporting %s to parquet: %w", t.Name, err)
		}
		d.ParquetPartitionsWritten += n
		delete(d.altered, t.Name)
	}
	return nil
}

// ExportedMarker, in a table's Parquet folder, holds the time before which every committed
// change of the table is in its files. It lives with the files: a folder deleted or copied
// without it is rewritten whole.
const ExportedMarker = ".marketsync-exported-through"

func exportedThrough(tdir string) (time.Time, bool) {
	b, err := os.ReadFile(filepath.Join(tdir, ExportedMarker))
	if err != nil {
		return time.Time{}, false
	}
	at, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
	return at, err == nil
}

func writeExportedThrough(tdir string, at time.Time) error {
	tmp := filepath.Join(tdir, ExportedMarker+".tmp")
	if err := os.WriteFile(tmp, []byte(at.UTC().Format(time.RFC3339Nano)+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(tdir, ExportedMarker))
}

// parquetSem serializes the Parquet writes of this process: a sync's (or a serve's scheduled
// sync's) own export and an ExportSnapshot asked for by `syncer export` through the control
// socket may target the same directory, whose temporary files and dropped partitions they
// would otherwise race on.
var parquetSem = make(chan struct{}, 1)

// LockParquet waits (until ctx ends) for this process's other Parquet writes and returns the
// unlock. An ExportSnapshot caller takes it before beginning its snapshot, so a sync's newer
// Parquet is never overwritten by an older snapshot that waited for it.
func LockParquet(ctx context.Context) (unlock func(), err error) {
	select {
	case parquetSem <- struct{}{}:
		return func() { <-parquetSem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ExportSnapshot writes every table like a full ExportParquet, from conn's open transaction (a
// READ ONLY one the caller began: one snapshot for every table, committed data only) while
// another connection of the same database may be writing. It does not checkpoint (a reader may
// not). The caller holds LockParquet. It returns the partitions written.
func ExportSnapshot(ctx context.Context, conn *sql.Conn, dir string, tables []*schemas.Table) (int, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, fmt.Errorf("creating parquet directory: %w", err)
	}
	d := &DuckDB{conn: conn}
	n := 0
	for _, t := range tables {
		k, err := d.exportTable(ctx, t, filepath.Join(dir, t.Name), nil)
		if err != nil {
			return n, fmt.Errorf("exporting %s to parquet: %w", t.Name, err)
		}
		n += k
	}
	return n, nil
}

// exportTable writes table t's partitions (all, or those changed since) into tdir, one
// partition at a time: a partitioned COPY keeps a writer (and its row groups) open per
// partition, which does not fit a bounded memory limit; one writer at a time does. The caller
// holds the only connection, so every partition comes from the same committed state.
func (d *DuckDB) exportTable(ctx context.Context, t *schemas.Table, tdir string, since *time.Time) (int, error) {
	if err := os.MkdirAll(tdir, 0o700); err != nil {
		return 0, err
	}
	part, expr, sel := t.Partition, Quote(t.Partition), fmt.Sprintf("* EXCLUDE (%s, %s)", Quote(t.Partition), Quote(schemas.ColContentHash))
	if part == "" {
		part, expr, sel = "year", fmt.Sprintf("coalesce(year(%s AT TIME ZONE 'UTC'), 0)", Quote(t.Created)), fmt.Sprintf("* EXCLUDE (%s)", Quote(schemas.ColContentHash))
	}
	q, args := fmt.Sprintf("SELECT DISTINCT CAST(%s AS VARCHAR) FROM %s", expr, Quote(t.Name)), []any{}
	if since != nil {
		q += fmt.Sprintf(" WHERE %s >= ? OR %s >= ? OR %s >= ?", Quote(schemas.ColSyncedAt), Quote(schemas.ColDeletedAt), Quote(schemas.ColStaleSince))
		args = append(args, *since, *since, *since)
	}
	values, err := d.distinct(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	if since != nil && len(values) > 0 && t.Partition == "" && t.CreatedMoves {
		// The partition column changes with the row (users: by year of last_modified): a changed
		// row may have left a partition that no changed row is in. Rewrite the table.
		return d.exportTable(ctx, t, tdir, nil)
	}
	keep := map[string]bool{}
	for _, v := range values {
		where, name := fmt.Sprintf("CAST(%s AS VARCHAR) = ?", expr), v.String
		if !v.Valid {
			where, name = fmt.Sprintf("%s IS NULL", expr), "__HIVE_DEFAULT_PARTITION__"
		}
		pname := part + "=" + url.PathEscape(name)
		keep[pname] = true
		pdir := filepath.Join(tdir, pname)
		if err := os.MkdirAll(pdir, 0o700); err != nil {
			return 0, err
		}
		final := filepath.Join(pdir, "data.parquet")
		tmp := filepath.Join(pdir, ".data.parquet.tmp")
		q := fmt.Sprintf(`COPY (SELECT %s FROM %s WHERE %s) TO '%s' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE_BYTES '16MB')`,
			sel, Quote(t.Name), where, strings.ReplaceAll(tmp, "'", "''"))
		args := []any{}
		if v.Valid {
			args = append(args, v.String)
		}
		if _, err := d.conn.ExecContext(ctx, q, args...); err != nil {
			os.Remove(tmp)
			return 0, err
		}
		if err := os.Chmod(tmp, 0o600); err != nil {
			return 0, err
		}
		// The file's bytes reach the disk before its name does: a crash after the rename must
		// not leave a reader a whole-looking name over a torn file.
		if err := syncFile(tmp); err != nil {
			return 0, err
		}
		if err := os.Rename(tmp, final); err != nil {
			return 0, err
		}
		if err := syncFile(pdir); err != nil {
			return 0, err
		}
	}
	if since == nil { // a full export also drops partitions that no longer exist
		entries, _ := os.ReadDir(tdir)
		for _, e := range entries {
			if e.IsDir() && !keep[e.Name()] {
				os.RemoveAll(filepath.Join(tdir, e.Name()))
			}
		}
	}
	return len(values), ownerOnly(tdir)
}

// syncFile flushes a file (or a directory's entries) to stable storage.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing %s to disk: %w", path, err)
	}
	return nil
}

func (d *DuckDB) distinct(ctx context.Context, q string, args ...any) ([]sql.NullString, error) {
	rows, err := d.conn.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var values []sql.NullString
	for rows.Next() {
		var v sql.NullString
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		values = append(values, v)
	}
	return values, rows.Err()
}

// ownerOnly restricts a directory tree of business data to its owner.
func ownerOnly(dir string) error {
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o600)
		if d.IsDir() {
			mode = 0o700
		}
		return os.Chmod(p, mode)
	})
}
