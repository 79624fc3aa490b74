package lake

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
)

// Cursors returns the cursor of every partition of tenant's t stream committed to the lake
// (partition "" for an unpartitioned stream), as of the table's current snapshot: for each, the
// newest snapshot in the current ancestry that carries it. A table not yet created has none.
func (w *Writer) Cursors(ctx context.Context, t *schemas.Table, tenant string) (map[string]state.Cursor, error) {
	tbl, err := w.cat.LoadTable(ctx, w.Identifier(t))
	if errors.Is(err, catalog.ErrNoSuchTable) {
		return map[string]state.Cursor{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lake: loading table %s: %w", t.Name, err)
	}
	return CursorsAt(tbl, tenant, t.Name)
}

// CursorsAt reads every partition's cursor of tenant's stream from tbl's current snapshot
// ancestry.
func CursorsAt(tbl *table.Table, tenant, stream string) (map[string]state.Cursor, error) {
	whole := CursorProperty(tenant, stream, "")
	out := map[string]state.Cursor{}
	for s := tbl.CurrentSnapshot(); s != nil; {
		if s.Summary != nil {
			for k, v := range s.Summary.Properties {
				var part string
				switch {
				case k == whole:
				case strings.HasPrefix(k, whole+"."):
					part = k[len(whole)+1:]
				default:
					continue
				}
				if _, newer := out[part]; newer {
					continue
				}
				c, err := state.DecodeCursor(v)
				if err != nil {
					return nil, fmt.Errorf("lake: table %s snapshot %d: cursor %s: %w", tbl.Identifier(), s.SnapshotID, k, err)
				}
				out[part] = c
			}
		}
		if s.ParentSnapshotID == nil {
			break
		}
		s = tbl.SnapshotByID(*s.ParentSnapshotID)
	}
	return out, nil
}

// cursorProps returns every cursor property (of every tenant, stream and partition) of tbl's
// current snapshot ancestry, each as the newest snapshot carrying it has it: what a snapshot
// must carry for the cursors to survive the expiry of its ancestors.
func cursorProps(tbl *table.Table) iceberg.Properties {
	out := iceberg.Properties{}
	for s := tbl.CurrentSnapshot(); s != nil; {
		if s.Summary != nil {
			for k, v := range s.Summary.Properties {
				if _, newer := out[k]; !newer && isCursorProperty(k) {
					out[k] = v
				}
			}
		}
		if s.ParentSnapshotID == nil {
			break
		}
		s = tbl.SnapshotByID(*s.ParentSnapshotID)
	}
	return out
}

// ReadRows calls fn with tenant's rows of t in the lake's current snapshot, soft-deleted ones
// included, as batches of t's Arrow schema (t.Schema()); partition, if t has a Partition
// column, limits them to that partition. fn must not keep a batch past its return.
func (w *Writer) ReadRows(ctx context.Context, t *schemas.Table, tenant, partition string, fn func(arrow.RecordBatch) error) error {
	tbl, err := w.cat.LoadTable(ctx, w.Identifier(t))
	if errors.Is(err, catalog.ErrNoSuchTable) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("lake: loading table %s: %w", t.Name, err)
	}
	if tbl.CurrentSnapshot() == nil {
		return nil
	}
	// A table not yet migrated (no tenant column: written before tenants were in the lake, and
	// not yet committed to by this build) holds the default tenant's rows only.
	old, err := isPreTenant(t, tbl.Schema())
	if err != nil {
		return err
	}
	if old && tenant != schemas.DefaultTenant {
		return nil
	}
	var filter iceberg.BooleanExpression = iceberg.EqualTo(iceberg.Reference(schemas.ColTenant), tenant)
	if old {
		filter = iceberg.AlwaysTrue{}
	}
	if t.Partition != "" {
		filter = iceberg.NewAnd(filter, iceberg.EqualTo(iceberg.Reference(t.Partition), partition))
	}
	_, itr, err := tbl.Scan(table.WithRowFilter(filter)).ToArrowRecords(ctx)
	if err != nil {
		return fmt.Errorf("lake: reading %s: %w", t.Name, err)
	}
	for b, err := range itr {
		if err != nil {
			return fmt.Errorf("lake: reading %s: %w", t.Name, err)
		}
		var r arrow.RecordBatch
		if old {
			if r, err = conform(ctx, b, preTenantSchema(t)); err == nil {
				r = withTenant(w.mem, t.Schema(), r, schemas.DefaultTenant)
			}
		} else {
			r, err = conform(ctx, b, t.Schema())
		}
		b.Release()
		if err != nil {
			return err
		}
		err = fn(r)
		r.Release()
		if err != nil {
			return err
		}
	}
	return nil
}
