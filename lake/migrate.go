package lake

import (
	"context"
	"fmt"
	"iter"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/marketsync/marketsync/schemas"
)

// migrateTenant gives a lake table written before tenants in the lake (no tenant column, the
// primary key alone its identifier) the tenant column, in one catalog commit:
//
//   - the schema gains tenant, a required string, and the identifier fields become (tenant,
//     primary key);
//   - the partition spec gains identity(tenant) (icebergSchema's spec);
//   - every live data file is rewritten with tenant = schemas.DefaultTenant (the rows as a scan
//     reads them: equality deletes applied, soft-deleted rows kept), replacing the old files and
//     their delete files;
//   - the new snapshot carries every cursor of the ancestry, under the same names (the default
//     tenant's names are those of builds before tenants), so no stream refetches.
//
// Iceberg v2 tables have no column defaults (initial-default is a v3 feature, and v3 tables are
// not read by every engine this lake serves), so the rows are rewritten once: every reader then
// sees tenant "default" in the files themselves. Either all of it commits or none of it (an
// interrupted migration leaves unreferenced files for orphan cleanup and runs again on the next
// open); a writer that finds the column already added (another process migrated first) changes
// nothing.
func (w *Writer) migrateTenant(ctx context.Context, t *schemas.Table) (*table.Table, error) {
	var out *table.Table
	err := w.retry(ctx, t, "adding the tenant column to", func(attempt int) error {
		tbl, err := w.cat.LoadTable(ctx, w.Identifier(t))
		if err != nil {
			return err
		}
		if old, err := isPreTenant(t, tbl.Schema()); err != nil || !old {
			out = tbl // migrated by another writer meanwhile (or another shape: Table reports it)
			return err
		}
		tx := tbl.NewTransaction()
		us := tx.UpdateSchema(true, true).
			AddColumn([]string{schemas.ColTenant}, iceberg.PrimitiveTypes.String, "the tenant the row belongs to (README \"Several tenants\")", true, nil).
			SetIdentifierField([][]string{{schemas.ColTenant}, {t.PrimaryKey}})
		if err := us.Commit(); err != nil {
			return fmt.Errorf("adding the column: %w", err)
		}
		if err := tx.UpdateSpec(true).AddIdentity(schemas.ColTenant).Commit(); err != nil {
			return fmt.Errorf("partitioning by tenant: %w", err)
		}
		props := cursorProps(tbl)
		props["marketsync.operation"] = "add-tenant"
		if tbl.CurrentSnapshot() != nil {
			if err := w.rewriteAsDefaultTenant(ctx, tx, tbl, props); err != nil {
				return err
			}
		}
		if w.beforeMigrate != nil {
			if err := w.beforeMigrate(t, attempt); err != nil {
				return err
			}
		}
		if out, err = tx.Commit(ctx); err == nil {
			w.mu.Lock()
			w.migrated = append(w.migrated, t.Name)
			w.mu.Unlock()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// rewriteAsDefaultTenant stages, in tx (whose schema has the tenant column), the replacement of
// every data file of tbl by files of the same rows with tenant = schemas.DefaultTenant, and the
// removal of the delete files the old ones had (their deletes are applied by the read).
func (w *Writer) rewriteAsDefaultTenant(ctx context.Context, tx *table.Transaction, tbl *table.Table, props iceberg.Properties) error {
	scan := tbl.Scan()
	tasks, err := scan.PlanFiles(ctx)
	if err != nil {
		return fmt.Errorf("planning the files to rewrite: %w", err)
	}
	var oldData, oldDeletes []iceberg.DataFile
	seenData, seenDel := map[string]bool{}, map[string]bool{}
	for _, task := range tasks {
		if p := task.File.FilePath(); !seenData[p] {
			seenData[p] = true
			oldData = append(oldData, task.File)
		}
		for _, dels := range [][]iceberg.DataFile{task.DeleteFiles, task.EqualityDeleteFiles, task.DeletionVectorFiles} {
			for _, d := range dels {
				if p := d.FilePath(); !seenDel[p] {
					seenDel[p] = true
					oldDeletes = append(oldDeletes, d)
				}
			}
		}
	}
	staged, err := tx.StagedTable()
	if err != nil {
		return err
	}
	target, err := writeSchema(staged.Table)
	if err != nil {
		return err
	}
	_, itr, err := scan.ToArrowRecords(ctx)
	if err != nil {
		return fmt.Errorf("reading the rows to rewrite: %w", err)
	}
	var readErr error
	rows := func(yield func(arrow.RecordBatch, error) bool) {
		for b, err := range itr {
			if err != nil {
				readErr = err
				yield(nil, err)
				return
			}
			r, err := conform(ctx, b, arrowWithout(target, schemas.ColTenant))
			b.Release()
			if err != nil {
				readErr = err
				yield(nil, err)
				return
			}
			if !yield(withTenant(w.mem, target, r, schemas.DefaultTenant), nil) {
				return
			}
		}
	}
	var added []iceberg.DataFile
	for df, err := range table.WriteRecords(ctx, staged.Table, target, iter.Seq2[arrow.RecordBatch, error](rows)) {
		if err != nil {
			return fmt.Errorf("rewriting the rows with the tenant column: %w", err)
		}
		added = append(added, df)
	}
	if readErr != nil {
		return fmt.Errorf("reading the rows to rewrite: %w", readErr)
	}
	if len(oldData)+len(oldDeletes)+len(added) == 0 {
		return nil // snapshots without data files: the schema change alone
	}
	return tx.ReplaceFiles(ctx, oldData, added, oldDeletes, props)
}

// arrowWithout is sc without the named column.
func arrowWithout(sc *arrow.Schema, name string) *arrow.Schema {
	var fields []arrow.Field
	for _, f := range sc.Fields() {
		if f.Name != name {
			fields = append(fields, f)
		}
	}
	return arrow.NewSchema(fields, nil)
}
