package load

import (
	"context"
	"fmt"
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
	stamp := time.Now().UTC().Format("20060102T150405.000000000")
	for _, t := range tables {
		final := filepath.Join(dir, t.Name)
		tmp := filepath.Join(dir, "."+t.Name+".tmp-"+stamp)
		part, expr := t.Partition, Quote(t.Partition)
		if part == "" {
			part, expr = "year", fmt.Sprintf("coalesce(year(%s AT TIME ZONE 'UTC'), 0)", Quote(t.Created))
		}
		q := fmt.Sprintf(`COPY (SELECT *, %s AS %s FROM %s) TO '%s' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (%s), ROW_GROUP_SIZE 122880, OVERWRITE_OR_IGNORE)`,
			expr, Quote("__part"), Quote(t.Name), strings.ReplaceAll(tmp, "'", "''"), Quote("__part"))
		// Partition directories are named by a stable column name, then renamed below.
		if _, err := d.conn.ExecContext(ctx, q); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("exporting %s to parquet: %w", t.Name, err)
		}
		if err := renamePartitions(tmp, "__part", part); err != nil {
			os.RemoveAll(tmp)
			return err
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

// renamePartitions renames dir/__part=X to dir/<name>=X. DuckDB names partitions after the
// column; a computed column needs a name that cannot collide with a real one.
func renamePartitions(dir, from, to string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) { // empty table: no files at all
			return os.MkdirAll(dir, 0o700)
		}
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	for _, e := range entries {
		if v, ok := strings.CutPrefix(e.Name(), from+"="); ok {
			if err := os.Rename(filepath.Join(dir, e.Name()), filepath.Join(dir, to+"="+v)); err != nil {
				return fmt.Errorf("naming partition %s: %w", e.Name(), err)
			}
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
