package load

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

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
	var checked *keyFilter // the table's key filter, if this transaction checked it
	if w.Batch != nil && w.Batch.NumRows() > 0 {
		c, err := d.upsert(ctx, w.Table, w.Batch)
		if err != nil {
			return Result{}, err
		}
		res.Inserted, res.Updated, res.Unchanged = c.Inserted, c.Updated, c.Unchanged
		checked = d.filters[w.Table.Name]
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
	if f := d.filters[tableName(w.Table)]; f != nil && f == checked {
		f.rows += res.Inserted // the rows its filter covers, now committed
		// What this write appended (its inserts, and the updates DuckDB makes a delete and an
		// insert): the next write trusts the filter only if nothing was appended since. Only
		// after a write that checked the filter: a write without rows (a closing cursor) would
		// take whatever was appended since the last check for its own.
		if n, err := d.appendedRows(ctx, w.Table); err == nil {
			f.appended = n
		} else {
			f.stale = true
		}
	}
	if res.Inserted > 0 {
		d.inserted(w.Table.Name, checked)
	}
	return res, nil
}

func tableName(t *schemas.Table) string {
	if t == nil {
		return ""
	}
	return t.Name
}

type upsertCounts struct{ Inserted, Updated, Unchanged int64 }

// What the classification found for each row of a batch.
const (
	classNew       = 0 // key not in the table: inserted
	classChanged   = 1 // content differs, or the row was deleted or marked stale: rewritten
	classSeen      = 2 // same content, first seen in this run: only _run_id moves
	classUntouched = 3 // same content, already seen in this run: left alone
	// Not classified by the join:
	classMaybe      = -1 // the key may be in the table: the join classifies the row
	classSuperseded = -2 // a later row of the same batch has the same key: that one is written
)

// upsert writes the batch into its table by key (tenant, primary key).
//
// The writer's key filter of the table (keyfilter.go) first sorts the rows whose key is
// definitely not in the table, new without a look at the table, from those whose key may be.
// Only the latter are classified by one query, a LEFT JOIN that reads the table's key and
// state columns once and returns, per row, its class and content hash to Go; a batch of new
// keys, as in a first load, runs no join at all. Each statement then reads an Arrow view of
// just its rows: the batch itself (zero copy) when every row is of that kind, else those rows
// taken from it. New keys are a plain INSERT from Arrow (computing their content hash with the
// same expression the join uses), changed rows one UPDATE, rows seen again one UPDATE of
// _run_id; a kind with no rows runs nothing. Nothing is copied into a DuckDB temp table: the
// staged version (the batch materialized in a temp table with its classification, then
// applied from it) measured about 2x slower per batch, first loads and upserts alike
// (BENCHMARKS.md, issue 16).
//
// The Batcher never puts a key twice in a batch; if a batch does hold one twice, its last row
// is written and the earlier ones are not (they are neither inserted nor counted), as if the
// rows had come in consecutive batches.
func (d *DuckDB) upsert(ctx context.Context, t *schemas.Table, rec arrow.RecordBatch) (c upsertCounts, err error) {
	n := int(rec.NumRows())
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
	// The content hash, over the view s: the classifying join and the INSERT of new keys compute
	// it with this one expression.
	hashOf := fmt.Sprintf("(hash(%s) >> 1)::BIGINT", strings.Join(content, ", "))
	hashCol := Quote(schemas.ColContentHash)
	names, srcs = append(names, hashCol), append(srcs, hashOf)
	sets = append(sets, Quote(schemas.ColStaleSince)+" = NULL", hashCol+" = s._ms_hash") // a good version is current again
	pk, run := Quote(t.PrimaryKey), Quote(schemas.ColRunID)
	del, stale := Quote(schemas.ColDeletedAt), Quote(schemas.ColStaleSince)

	classes, maybe, err := d.splitByKey(ctx, t, rec)
	if err != nil {
		return c, fmt.Errorf("upserting %d rows into %s: %w", n, t.Name, err)
	}
	hashes, rowids := make([]int64, n), make([]int64, n)
	if len(maybe) > 0 {
		if err := d.classify(ctx, t, rec, maybe, classes, hashes, rowids, fmt.Sprintf(`SELECT s._ms_pos, %[1]s AS h, t.rowid,
			CASE WHEN t.%[3]s IS NULL THEN %[9]d
				WHEN t.%[4]s IS DISTINCT FROM %[1]s OR t.%[5]s IS DISTINCT FROM s.%[5]s OR t.%[6]s IS NOT NULL THEN %[10]d
				WHEN t.%[7]s IS DISTINCT FROM s.%[7]s THEN %[11]d ELSE %[12]d END::TINYINT AS class
			FROM %%s AS s LEFT JOIN %[8]s AS t ON %[13]s`,
			hashOf, "", pk, hashCol, del, stale, run, Quote(t.Name),
			classNew, classChanged, classSeen, classUntouched, keyMatch(t, "t", "s"))); err != nil {
			return c, fmt.Errorf("upserting %d rows into %s (classifying %d whose key may be in the table): %w", n, t.Name, len(maybe), err)
		}
	}
	var byClass [4][]int32
	for i, k := range classes {
		if k == classSuperseded {
			continue
		}
		if k < 0 || int(k) >= len(byClass) {
			return c, fmt.Errorf("upserting into %s: row %d of the batch was not classified", t.Name, i)
		}
		byClass[k] = append(byClass[k], int32(i))
	}
	hashArr, rowidArr := int64Array(hashes), int64Array(rowids)
	defer hashArr.Release()
	defer rowidArr.Release()
	all := make([]string, 0, len(cols))
	var nonKey []string
	for _, c := range cols {
		all = append(all, c.Name)
		if !slices.Contains(t.Key(), c.Name) {
			nonKey = append(nonKey, c.Name)
		}
	}
	// Rows already in the table are updated by the rowid the classifying join found (in this
	// transaction: no row moves meanwhile), not joined again by key: the UPDATE of 12.5k rows
	// spread over 1M took 320-340 ms so against 420-780 ms by key (BENCHMARKS.md, issue 16).
	// Each view holds exactly the columns its statement reads (duckdb/duckdb-go#28).
	withHash := []extraCol{{"_ms_hash", hashArr}, {"_ms_rowid", rowidArr}}
	withRowid := []extraCol{{"_ms_rowid", rowidArr}}
	steps := []struct {
		what  string
		class int8
		cols  []string
		extra []extraCol
		q     string
	}{
		// A changed row, or one marked stale before, is rewritten (a good version is current
		// again). So is one whose _deleted_at differs from the batch's: a sync's batch is live
		// (NULL), and a batch copied from the lake carries the lake's soft delete, which the
		// DuckDB file then takes even when the content is the same.
		{"updating changed rows", classChanged, nonKey, withHash, fmt.Sprintf(`UPDATE %[1]s AS t SET %[2]s FROM %%s AS s WHERE t.rowid = s._ms_rowid`,
			Quote(t.Name), strings.Join(sets, ", "))},
		// A row whose content did not change is not rewritten: only _run_id moves (the scan saw
		// it); _synced_at stays when its content was last written. One seen earlier in this run
		// is left alone.
		{"marking unchanged rows seen", classSeen, []string{schemas.ColRunID}, withRowid, fmt.Sprintf(`UPDATE %[1]s AS t SET %[2]s = s.%[2]s FROM %%s AS s WHERE t.rowid = s._ms_rowid`,
			Quote(t.Name), run)},
		{"inserting new rows", classNew, all, nil, fmt.Sprintf(`INSERT INTO %[1]s (%[2]s) SELECT %[3]s FROM %%s AS s`,
			Quote(t.Name), strings.Join(names, ", "), strings.Join(srcs, ", "))},
	}
	for _, st := range steps {
		idx := byClass[st.class]
		if len(idx) == 0 {
			continue
		}
		part, err := rowsOf(ctx, rec, idx, st.cols, st.extra)
		if err != nil {
			return c, fmt.Errorf("upserting into %s (%s): %w", t.Name, st.what, err)
		}
		err = d.withView(ctx, part, "_batch_"+t.Name, func(view string) error {
			r, err := d.conn.ExecContext(ctx, fmt.Sprintf(st.q, Quote(view)))
			if err != nil {
				return err
			}
			if w, err := r.RowsAffected(); err != nil || w != int64(len(idx)) {
				return fmt.Errorf("%d rows written, %d classified (%v)", w, len(idx), err)
			}
			return nil
		})
		part.Release()
		if err != nil {
			return c, fmt.Errorf("upserting %d rows into %s (%s): %w", n, t.Name, st.what, err)
		}
	}
	c.Inserted = int64(len(byClass[classNew]))
	changed, seen := int64(len(byClass[classChanged])), int64(len(byClass[classSeen]))
	c.Updated = changed
	// Listed again with the same content, and not already counted earlier in this run (a full
	// scan that repeats itself, or a sweep re-reading rows of the window, counts a row once).
	c.Unchanged = seen
	return c, nil
}

// splitByKey returns each row's class as far as the table's key filter tells it (classNew: the
// key is definitely not in the table; classMaybe; classSuperseded: the key comes again later
// in the batch), and the rows left to classify (classMaybe, ascending). Every key of the batch
// is in the filter when it returns: the rows inserted next are covered before they exist.
func (d *DuckDB) splitByKey(ctx context.Context, t *schemas.Table, rec arrow.RecordBatch) (classes []int8, maybe []int32, err error) {
	n := int(rec.NumRows())
	classes = make([]int8, n)
	for i := range classes {
		classes[i] = classMaybe
	}
	f, err := d.keyFilterFor(ctx, t)
	if err != nil {
		return nil, nil, err
	}
	ti, pi := rec.Schema().FieldIndices(schemas.ColTenant), rec.Schema().FieldIndices(t.PrimaryKey)
	if len(ti) != 1 || len(pi) != 1 {
		return nil, nil, fmt.Errorf("the batch has %d columns named %q and %d named %q, want 1 each", len(ti), schemas.ColTenant, len(pi), t.PrimaryKey)
	}
	tcol, icol := rec.Column(ti[0]), rec.Column(pi[0])
	// Keys in another layout (a dictionary, …) are read as plain strings: the last row of a key
	// must win in every batch, with or without a filter. DuckDB hashes the value, not the layout.
	for _, c := range []*arrow.Array{&tcol, &icol} {
		if _, ok := stringsOf(*c); ok {
			continue
		}
		cast, err := compute.CastArray(ctx, *c, compute.SafeCastOptions(arrow.BinaryTypes.String))
		if err != nil {
			return nil, nil, fmt.Errorf("reading the batch's keys (%s) as strings: %w", (*c).DataType(), err)
		}
		defer cast.Release()
		*c = cast
	}
	tenants, ok1 := stringsOf(tcol)
	ids, ok2 := stringsOf(icol)
	if !ok1 || !ok2 {
		return nil, nil, fmt.Errorf("the batch's keys are %s and %s, not strings", tcol.DataType(), icol.DataType())
	}
	var added int64
	if f != nil {
		added = f.added
	}
	last := make(map[[2]string]int32, n)
	for i := range n {
		if tcol.IsNull(i) || icol.IsNull(i) {
			continue // the join decides (it matches no row of the table)
		}
		key := [2]string{tenants(i), ids(i)}
		if j, ok := last[key]; ok {
			classes[j] = classSuperseded
		}
		last[key] = int32(i)
	}
	if f != nil {
		hashes, err := d.batchKeyHashes(ctx, t, rec)
		if err != nil {
			return nil, nil, err
		}
		for i := range n {
			if tcol.IsNull(i) || icol.IsNull(i) || classes[i] == classSuperseded {
				continue // the join decides (it matches no row of the table); a superseded row is not written
			}
			if !f.check(hashes[i]) {
				f.bloom.InsertHash(hashes[i])
				classes[i] = classNew
				f.added++
			}
		}
	}
	for i, k := range classes {
		if k == classMaybe {
			maybe = append(maybe, int32(i))
		}
	}
	if f != nil {
		f.probed += int64(len(maybe))
		f.passed += f.added - added
	}
	return classes, maybe, nil
}

// classify runs query (its view as %s: the rows idx of rec's key, content, run and
// _deleted_at columns, with each row's position in rec as _ms_pos) and records each row's
// class and content hash. The view holds exactly the columns the query reads: DuckDB's Arrow
// scan can crash when it reads only some columns of a batch with list columns
// (duckdb/duckdb-go#28), so every view here is read whole.
func (d *DuckDB) classify(ctx context.Context, t *schemas.Table, rec arrow.RecordBatch, idx []int32, classes []int8, hashes, rowids []int64, query string) error {
	n := len(classes)
	pos := make([]int32, n)
	for i := range pos {
		pos[i] = int32(i)
	}
	posArr := int32Array(pos)
	defer posArr.Release()
	keep := []string{}
	for _, c := range t.AllColumns() {
		// The key (tenant and primary key), the content, the run, and _deleted_at (a batch copied
		// from the lake carries the lake's soft deletes).
		if c.Name == t.PrimaryKey || c.Name == schemas.ColRunID || c.Name == schemas.ColExtra || c.Name == schemas.ColDeletedAt ||
			!strings.HasPrefix(c.Name, "_") {
			keep = append(keep, c.Name)
		}
	}
	probe, err := project(rec, keep, []string{"_ms_pos"}, []arrow.Array{posArr})
	if err != nil {
		return err
	}
	if len(idx) < n {
		part, err := takeRows(ctx, probe, idx)
		probe.Release()
		if err != nil {
			return err
		}
		probe = part
	}
	defer probe.Release()
	left := len(idx)
	err = d.withView(ctx, probe, "_batch_"+t.Name, func(view string) error {
		rows, err := d.conn.QueryContext(ctx, fmt.Sprintf(query, Quote(view)))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var at int32
			var h int64
			var rowid sql.NullInt64 // NULL: not in the table
			var k int8
			if err := rows.Scan(&at, &h, &rowid, &k); err != nil {
				return err
			}
			if at < 0 || int(at) >= n || classes[at] != classMaybe {
				return fmt.Errorf("row %d of the batch classified twice (a key held twice by the table?)", at)
			}
			hashes[at], rowids[at], classes[at] = h, rowid.Int64, k
			if k != classNew && !rowid.Valid {
				return fmt.Errorf("row %d of the batch classified %d without a row of the table", at, k)
			}
			left--
		}
		return rows.Err()
	})
	if err == nil && left != 0 {
		err = fmt.Errorf("%d rows of the batch not classified", left)
	}
	return err
}

func int32Array(v []int32) *array.Int32 {
	return array.NewInt32Data(array.NewData(arrow.PrimitiveTypes.Int32, len(v), []*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(v))}, nil, 0, 0))
}

func int64Array(v []int64) *array.Int64 {
	return array.NewInt64Data(array.NewData(arrow.PrimitiveTypes.Int64, len(v), []*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int64Traits.CastToBytes(v))}, nil, 0, 0))
}

// project returns the named columns of rec, in that order, followed by extra (no data copied).
func project(rec arrow.RecordBatch, names []string, extraNames []string, extra []arrow.Array) (arrow.RecordBatch, error) {
	fields := make([]arrow.Field, 0, len(names)+len(extra))
	cols := make([]arrow.Array, 0, len(names)+len(extra))
	for _, name := range names {
		idx := rec.Schema().FieldIndices(name)
		if len(idx) != 1 {
			return nil, fmt.Errorf("the batch has %d columns named %q, want 1", len(idx), name)
		}
		fields, cols = append(fields, rec.Schema().Field(idx[0])), append(cols, rec.Column(idx[0]))
	}
	for i, a := range extra {
		fields, cols = append(fields, arrow.Field{Name: extraNames[i], Type: a.DataType()}), append(cols, a)
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, rec.NumRows()), nil
}

// An extraCol is a column added to a batch's view (the content hash, the rowid).
type extraCol struct {
	name string
	col  arrow.Array
}

// rowsOf returns the rows idx (ascending) of rec's columns names followed by extra (columns as
// long as rec). Every row of the batch is taken without copying.
func rowsOf(ctx context.Context, rec arrow.RecordBatch, idx []int32, names []string, extra []extraCol) (arrow.RecordBatch, error) {
	var extraNames []string
	var extraCols []arrow.Array
	for _, e := range extra {
		extraNames, extraCols = append(extraNames, e.name), append(extraCols, e.col)
	}
	whole, err := project(rec, names, extraNames, extraCols)
	if err != nil || len(idx) == int(rec.NumRows()) {
		return whole, err
	}
	defer whole.Release()
	return takeRows(ctx, whole, idx)
}

// takeRows returns the rows idx of rec (copied).
func takeRows(ctx context.Context, rec arrow.RecordBatch, idx []int32) (arrow.RecordBatch, error) {
	ia := int32Array(idx)
	defer ia.Release()
	var err error
	cols := make([]arrow.Array, rec.NumCols())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i := range cols {
		if cols[i], err = compute.TakeArray(ctx, rec.Column(i), ia); err != nil {
			return nil, fmt.Errorf("taking rows of column %s: %w", rec.Schema().Field(i).Name, err)
		}
	}
	return array.NewRecordBatch(rec.Schema(), cols, int64(len(idx))), nil
}

// withView registers rec as a view (one Arrow stream: a view is read once), runs f with its
// name and removes the view.
func (d *DuckDB) withView(ctx context.Context, rec arrow.RecordBatch, prefix string, f func(view string) error) error {
	rdr, err := array.NewRecordReader(rec.Schema(), []arrow.RecordBatch{rec})
	if err != nil {
		return err
	}
	defer rdr.Release()
	d.views++
	view := fmt.Sprintf("%s_%d", prefix, d.views)
	release, err := d.arrow.RegisterView(rdr, view)
	if err != nil {
		return fmt.Errorf("registering the batch: %w", err)
	}
	defer func() {
		release()
		_, _ = d.conn.ExecContext(context.WithoutCancel(ctx), "DROP VIEW IF EXISTS "+Quote(view))
	}()
	return f(view)
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
	d.forgetKeys(table) // rows the key filter does not cover: rebuilt at the next upsert
	if _, err := d.conn.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s BY NAME SELECT * FROM %s", Quote(table), Quote(view))); err != nil {
		return fmt.Errorf("appending to %s: %w", table, err)
	}
	return nil
}
