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
// (dir/<table>/<partition>=<value>/*.parquet), from committed data only. Each table is written
// to a temporary directory and swapped in by rename, so readers see the old or the new snapshot,
// never a half-written one. Soft-deleted rows are kept (filter on _deleted_at IS NULL).
func (d *DuckDB) ExportParquet(ctx context.Context, dir string, tables []*schemas.Table) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating parquet directory: %w", err)
	}
	// Move committed data from the WAL into the database file first: it frees the buffer pool
	// (un-checkpointed rows live in memory) for the export's writers.
	if _, err := d.conn.ExecContext(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpointing before the export: %w", err)
	}
	stamp := time.Now().UTC().Format("20060102T150405.000000000")
	for _, t := range tables {
		final := filepath.Join(dir, t.Name)
		tmp := filepath.Join(dir, "."+t.Name+".tmp-"+stamp)
		if err := d.exportTable(ctx, t, tmp); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("exporting %s to parquet: %w", t.Name, err)
		}
		if err := ownerOnly(tmp); err != nil {
			os.RemoveAll(tmp)
			return err
		}
		old := filepath.Join(dir, "."+t.Name+".old-"+stamp)
		if _, err := os.Stat(final); err == nil {
			if err := os.Rename(final, old); err != nil {
				os.RemoveAll(tmp)
				return fmt.Errorf("swapping parquet of %s: %w", t.Name, err)
			}
		}
		if err := os.Rename(tmp, final); err != nil {
			return fmt.Errorf("swapping parquet of %s: %w", t.Name, err)
		}
		os.RemoveAll(old)
	}
	return nil
}

// exportTable writes one table into dir/<partition>=<value>/data.parquet, one partition at a
// time: a partitioned COPY keeps a writer (and its row groups) open per partition, which does not
// fit a bounded memory limit; one writer at a time does. The caller holds the only connection,
// so every partition comes from the same committed state.
func (d *DuckDB) exportTable(ctx context.Context, t *schemas.Table, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	part, expr, sel := t.Partition, Quote(t.Partition), fmt.Sprintf("* EXCLUDE (%s)", Quote(t.Partition))
	if part == "" {
		part, expr, sel = "year", fmt.Sprintf("coalesce(year(%s AT TIME ZONE 'UTC'), 0)", Quote(t.Created)), "*"
	}
	rows, err := d.conn.QueryContext(ctx, fmt.Sprintf("SELECT DISTINCT CAST(%s AS VARCHAR) FROM %s", expr, Quote(t.Name)))
	if err != nil {
		return err
	}
	var values []sql.NullString
	for rows.Next() {
		var v sql.NullString
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		values = append(values, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, v := range values {
		where, name := fmt.Sprintf("CAST(%s AS VARCHAR) = ?", expr), v.String
		if !v.Valid {
			where, name = fmt.Sprintf("%s IS NULL", expr), "__HIVE_DEFAULT_PARTITION__"
		}
		pdir := filepath.Join(dir, part+"="+url.PathEscape(name))
		if err := os.MkdirAll(pdir, 0o700); err != nil {
			return err
		}
		file := strings.ReplaceAll(filepath.Join(pdir, "data.parquet"), "'", "''")
		q := fmt.Sprintf(`COPY (SELECT %s FROM %s WHERE %s) TO '%s' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE_BYTES '16MB')`,
			sel, Quote(t.Name), where, file)
		args := []any{}
		if v.Valid {
			args = append(args, v.String)
		}
		if _, err := d.conn.ExecContext(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
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
