package pipeline

import (
	"context"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
)

// cursorsFromLake makes the lake the system of record for the cursors of a lake-configured
// run: every stream partition of the run's tenant this process owns plans from the cursor committed in the lake,
// whichever machine committed it, not from the local DuckDB file's.
//
//   - The lake has no cursor (never synced there, or its snapshots were expired): the local
//     one is dropped, so the partition is scanned in full and the lake gets all of it.
//   - The lake's cursor differs from the local one (a fresh machine, a shard that moved, a
//     DuckDB commit lost after the lake's): the lake's rows of that partition are first
//     copied into DuckDB, then its cursor, in the last of those transactions, so DuckDB has no
//     gap below the cursor it resumes from.
//
// It runs before the committer starts, on the writer connection.
func (r *run) cursorsFromLake(ctx context.Context, tables []*schemas.Table) error {
	for _, t := range tables {
		unit := func(partition string) string {
			if partition == "" {
				return t.Name
			}
			return t.Name + "/" + partition
		}
		inLake, err := r.cfg.Lake.Cursors(ctx, t, r.tenant)
		if err != nil {
			return err
		}
		for key := range r.cursors {
			stream, partition, _ := strings.Cut(key, "\x00")
			if _, ok := inLake[partition]; stream == t.Name && !ok && r.owns(unit(partition)) {
				r.cfg.Log.Info("no cursor in the lake: a full scan", "stream", stream, "partition", partition)
				delete(r.cursors, key)
			}
		}
		for partition, lc := range inLake {
			key := t.Name + "\x00" + partition
			if local, ok := r.cursors[key]; (ok && local.Encode() == lc.Encode()) || !r.owns(unit(partition)) {
				continue
			}
			rows, err := r.copyFromLake(ctx, t, partition, lc)
			if err != nil {
				return fmt.Errorf("copying %s %q from the lake into the warehouse: %w", t.Name, partition, err)
			}
			r.cfg.Log.Info("the lake's cursor is not the warehouse's: copied the lake's rows, resuming from its cursor",
				"stream", t.Name, "partition", partition, "rows", rows, "cursor", lc.Time())
			r.cursors[key] = lc
		}
	}
	return nil
}

// copyFromLake upserts the lake's rows of one stream partition into DuckDB, the lake's cursor
// with the last batch (or alone).
func (r *run) copyFromLake(ctx context.Context, t *schemas.Table, partition string, cur state.Cursor) (int64, error) {
	var rows int64
	var pending arrow.RecordBatch // held back one batch so the cursor commits with the last
	defer func() {
		if pending != nil {
			pending.Release()
		}
	}()
	apply := func(b arrow.RecordBatch, c *state.Cursor) error {
		_, err := r.db.Apply(ctx, load.Write{Table: t, Stream: t.Name, Partition: partition, Batch: b, Cursor: c, RunID: r.id, Tenant: r.tenant})
		return err
	}
	err := r.cfg.Lake.ReadRows(ctx, t, r.tenant, partition, func(b arrow.RecordBatch) error {
		if b.NumRows() == 0 {
			return nil
		}
		if pending != nil {
			err := apply(pending, nil)
			pending.Release()
			pending = nil
			if err != nil {
				return err
			}
		}
		b.Retain()
		pending = b
		rows += b.NumRows()
		return nil
	})
	if err != nil {
		return 0, err
	}
	return rows, apply(pending, &cur)
}
