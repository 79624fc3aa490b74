package load

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
)

// DeleteScope asks a write to soft-delete the rows a full scan did not see: every live row of
// the table (in the partition, if any) whose _run_id is not RunID and which the scan did not
// quarantine, of the write's tenant only. Whether the scan proved complete enough for that is
// the caller's decision.
type DeleteScope struct {
	RunID          string
	PartitionCol   string
	PartitionValue string
	At             time.Time
}

// StatusScope names rows a status sweep should have listed.
type StatusScope struct {
	Column string
	Values []string
	RunID  string
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
	Deletes   *DeleteScope
	// LeftStatus marks stale the live rows still in one of Values of Column that a complete
	// re-listing of those statuses (run RunID) did not list: they changed status at the source.
	LeftStatus *StatusScope
	Rejected   []Rejected
	RunID      string
	// Tenant is the tenant the write's rows, cursor and deletions belong to ("" is
	// schemas.DefaultTenant); the batch's tenant column holds it.
	Tenant string
}

// Result counts what a Write changed.
type Result struct {
	Inserted, Updated, Deleted int64
	Unchanged                  int64 // listed again with the same content: not rewritten
	Rejected                   int64 // records quarantined for the first time in this run
	Stale                      int64 // rows whose newer version was quarantined this write
	LeftStatus                 int64 // rows marked stale because they left a swept status
}

// Apply runs w in one transaction on the writer connection. On error nothing of w is visible.
func (d *DuckDB) Apply(ctx context.Context, w Write) (res Result, err error) {
	w.Tenant = tenantOr(w.Tenant)
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
		c, err := d.upsert(ctx, w.Table, w.Batch)
		if err != nil {
			return Result{}, err
		}
		res.Inserted, res.Updated, res.Unchanged = c.Inserted, c.Updated, c.Unchanged
	}
	for _, r := range w.Rejected {
		// One row per record per run, however many scans of the run met it.
		ins, err := d.conn.ExecContext(ctx, `INSERT INTO _rejected (stream, record_id, field, value, error, record, run_id, rejected_at, tenant)
			SELECT ?, ?, ?, ?, ?, ?, ?, now(), ?
			WHERE NOT EXISTS (SELECT 1 FROM _rejected WHERE stream = ? AND record_id = ? AND run_id = ? AND record = ? AND tenant = ?)`,
			r.Stream, r.RecordID, r.Field, r.Value, r.Error, string(r.Record), w.RunID, w.Tenant,
			r.Stream, r.RecordID, w.RunID, string(r.Record), w.Tenant)
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
		q := fmt.Sprintf("UPDATE %s SET %s = ? WHERE CAST(%s AS VARCHAR) = ? AND %s IS NULL AND %s IS NULL AND %s = ?",
			Quote(w.Table.Name), Quote(schemas.ColStaleSince), Quote(w.Table.PrimaryKey), Quote(schemas.ColDeletedAt), Quote(schemas.ColStaleSince), Quote(schemas.ColTenant))
		sr, err := d.conn.ExecContext(ctx, q, time.Now().UTC(), r.RecordID, w.Tenant)
		if err != nil {
			return Result{}, fmt.Errorf("marking a quarantined %s record's previous version stale: %w", r.Stream, err)
		}
		stale, _ := sr.RowsAffected()
		res.Stale += stale
	}
	if ds := w.Deletes; ds != nil {
		q := fmt.Sprintf("UPDATE %s SET %s = ? WHERE %s IS NULL AND %s <> ? AND %s = ?", Quote(w.Table.Name),
			Quote(schemas.ColDeletedAt), Quote(schemas.ColDeletedAt), Quote(schemas.ColRunID), Quote(schemas.ColTenant))
		args := []any{ds.At, ds.RunID, w.Tenant}
		if ds.PartitionCol != "" {
			q += fmt.Sprintf(" AND %s = ?", Quote(ds.PartitionCol))
			args = append(args, ds.PartitionValue)
		}
		// A record the scan listed but quarantined was seen: it is not deleted.
		q += fmt.Sprintf(" AND CAST(%s AS VARCHAR) NOT IN (SELECT record_id FROM _rejected WHERE stream = ? AND run_id = ? AND tenant = ? AND record_id IS NOT NULL)",
			Quote(w.Table.PrimaryKey))
		args = append(args, w.Stream, w.RunID, w.Tenant)
		r, err := d.conn.ExecContext(ctx, q, args...)
		if err != nil {
			return Result{}, fmt.Errorf("marking rows of %s deleted: %w", w.Table.Name, err)
		}
		res.Deleted, _ = r.RowsAffected()
	}
	if ls := w.LeftStatus; ls != nil && len(ls.Values) > 0 {
		ph := strings.TrimSuffix(strings.Repeat("?, ", len(ls.Values)), ", ")
		q := fmt.Sprintf("UPDATE %s SET %s = coalesce(%s, ?) WHERE %s IS NULL AND %s <> ? AND %s = ? AND %s IN (%s)", Quote(w.Table.Name),
			Quote(schemas.ColStaleSince), Quote(schemas.ColStaleSince), Quote(schemas.ColDeletedAt), Quote(schemas.ColRunID), Quote(schemas.ColTenant), Quote(ls.Column), ph)
		args := []any{time.Now().UTC(), ls.RunID, w.Tenant}
		for _, v := range ls.Values {
			args = append(args, v)
		}
		r, err := d.conn.ExecContext(ctx, q, args...)
		if err != nil {
			return Result{}, fmt.Errorf("marking %s rows that left a swept status: %w", w.Table.Name, err)
		}
		res.LeftStatus, _ = r.RowsAffected()
	}
	if cursor := w.Cursor; cursor != nil {
		if _, err := d.conn.ExecContext(ctx, `INSERT OR REPLACE INTO _sync_state (tenant, stream, partition, cursor, updated_at) VALUES (?, ?, ?, ?, now())`,
			w.Tenant, w.Stream, w.Partition, cursor.Encode()); err != nil {
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

type upsertCounts struct{ Inserted, Updated, Unchanged int64 }

// upsert writes the batch into its table by its key (schemas.Table.Key: tenant and primary key).
// Keys are unique within a batch (the Batcher guarantees it), so each row of the table matches
// at most one row of the batch.
func (d *DuckDB) upsert(ctx context.Context, t *schemas.Table, rec arrow.RecordBatch) (c upsertCounts, err error) {
	rdr, err := array.NewRecordReader(rec.Schema(), []arrow.RecordBatch{rec})
	if err != nil {
		return c, fmt.Errorf("reading batch of %s: %w", t.Name, err)
	}
	defer rdr.Release()
	d.views++
	view := fmt.Sprintf("_batch_%s_%d", t.Name, d.views)
	release, err := d.arrow.RegisterView(rdr, view)
	if err != nil {
		return c, fmt.Errorf("registering batch of %s: %w", t.Name, err)
	}
	defer func() {
		release()
		_, _ = d.conn.ExecContext(context.WithoutCancel(ctx), "DROP VIEW IF EXISTS "+Quote(view))
	}()
	cols := t.AllColumns()
	names := make([]string, 0, len(cols)+1)
	srcs := make([]string, 0, len(cols)+1)
	sets := make([]string, 0, len(cols)+2)
	var content []string // what the content hash covers: declared columns and _extra, not metadata
	for _, c := range cols {
		names = append(names, Quote(c.Name))
		srcs = append(srcs, "s."+Quote(c.Name))
		if !slices.Contains(t.Key(), c.Name) {
			sets = append(sets, fmt.Sprintf("%s = s.%s", Quote(c.Name), Quote(c.Name)))
		}
		// The tenant is not content: the migration that added it leaves every row unchanged.
		if c.Name == schemas.ColExtra || (!strings.HasPrefix(c.Name, "_") && c.Name != schemas.ColTenant) {
			content = append(content, "s."+Quote(c.Name))
		}
	}
	hashCol := Quote(schemas.ColContentHash)
	names, srcs = append(names, hashCol), append(srcs, "s._h")
	sets = append(sets, Quote(schemas.ColStaleSince)+" = NULL", hashCol+" = s._h") // a good version is current again
	pk, run := Quote(t.PrimaryKey), Quote(schemas.ColRunID)
	// The batch is staged in a temp table with its content hash and what the table holds for
	// each key (one join that reads the table's keys once), then applied by statements that
	// each touch only their rows: a MERGE whose matched rows are spread over a large table
	// measured 3-5x slower and grew with the table (BENCHMARKS.md, issue 16). New keys are a
	// plain INSERT; an UPDATE runs only if the stage says it has rows.
	stage := Quote("_stage_" + t.Name)
	del, stale := Quote(schemas.ColDeletedAt), Quote(schemas.ColStaleSince)
	if _, err := d.conn.ExecContext(ctx, fmt.Sprintf(`CREATE OR REPLACE TEMP TABLE %[1]s AS
		SELECT s.*, (hash(%[2]s) >> 1)::BIGINT AS _h, t.%[4]s IS NOT NULL AS _exists,
			t.%[4]s IS NOT NULL AND (t.%[5]s IS DISTINCT FROM (hash(%[2]s) >> 1)::BIGINT OR t.%[6]s IS DISTINCT FROM s.%[6]s OR t.%[7]s IS NOT NULL) AS _changed,
			t.%[8]s IS DISTINCT FROM s.%[8]s AS _new_run
		FROM %[3]s AS s LEFT JOIN %[9]s AS t ON %[10]s`,
		stage, strings.Join(content, ", "), Quote(view), pk, hashCol, del, stale, run, Quote(t.Name), keyMatch(t, "t", "s"))); err != nil {
		return c, fmt.Errorf("upserting %d rows into %s (staging): %w", rec.NumRows(), t.Name, err)
	}
	defer func() {
		if _, dropErr := d.conn.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+stage); dropErr != nil && err == nil {
			err = fmt.Errorf("upserting into %s (dropping the stage): %w", t.Name, dropErr)
		}
	}()
	var changed, seen int64
	if err := d.conn.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) FILTER (WHERE NOT _exists), count(*) FILTER (WHERE _changed),
		count(*) FILTER (WHERE _exists AND NOT _changed AND _new_run) FROM %s`, stage)).Scan(&c.Inserted, &changed, &seen); err != nil {
		return c, fmt.Errorf("upserting into %s (counting the stage): %w", t.Name, err)
	}
	steps := []struct {
		what string
		rows int64
		q    string
	}{
		// A changed row, or one deleted or marked stale before, is rewritten (a good version
		// is current again). So is one whose _deleted_at differs from the batch's: a sync's
		// batch is live (NULL), and a batch copied from the lake carries the lake's soft
		// delete, which the DuckDB file then takes even when the content is the same.
		{"updating changed rows", changed, fmt.Sprintf(`UPDATE %[1]s AS t SET %[2]s FROM %[3]s AS s WHERE s._changed AND %[4]s`,
			Quote(t.Name), strings.Join(sets, ", "), stage, keyMatch(t, "t", "s"))},
		// A row whose content did not change is not rewritten: only _run_id moves (the scan saw
		// it); _synced_at stays when its content was last written. One seen earlier in this run
		// is left alone.
		{"marking unchanged rows seen", seen, fmt.Sprintf(`UPDATE %[1]s AS t SET %[2]s = s.%[2]s FROM %[3]s AS s WHERE s._exists AND NOT s._changed AND s._new_run AND %[4]s`,
			Quote(t.Name), run, stage, keyMatch(t, "t", "s"))},
		{"inserting new rows", c.Inserted, fmt.Sprintf(`INSERT INTO %[1]s (%[2]s) SELECT %[3]s FROM %[4]s AS s WHERE NOT s._exists`,
			Quote(t.Name), strings.Join(names, ", "), strings.Join(srcs, ", "), stage)},
	}
	for _, st := range steps {
		if st.rows == 0 {
			continue
		}
		r, err := d.conn.ExecContext(ctx, st.q)
		if err != nil {
			return c, fmt.Errorf("upserting %d rows into %s (%s): %w", rec.NumRows(), t.Name, st.what, err)
		}
		if n, err := r.RowsAffected(); err != nil || n != st.rows {
			return c, fmt.Errorf("upserting into %s (%s): %d rows written, %d staged (%v)", t.Name, st.what, n, st.rows, err)
		}
	}
	c.Updated = changed
	// Listed again with the same content, and not already counted earlier in this run (a full
	// scan that repeats itself, or a sweep re-reading rows of the window, counts a row once).
	c.Unchanged = seen
	return c, nil
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
