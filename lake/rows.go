package lake

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/marketsync/marketsync/schemas"
)

// mergeBatches turns a commit's batches into one batch with every (tenant, primary key) once,
// the last copy of a key winning (the Batcher flushes on a repeated key, so a later batch holds the newer row).
// It returns nil when there are no rows; the caller releases the result.
func mergeBatches(ctx context.Context, mem memory.Allocator, t *schemas.Table, batches []arrow.RecordBatch) (arrow.RecordBatch, error) {
	want := t.Schema()
	var recs []arrow.RecordBatch
	for i, b := range batches {
		if b == nil || b.NumRows() == 0 {
			continue
		}
		if !sameFields(b.Schema(), want) {
			return nil, fmt.Errorf("lake: batch %d of %s has schema %s, want the table's %s", i, t.Name, b.Schema(), want)
		}
		recs = append(recs, b)
	}
	switch len(recs) {
	case 0:
		return nil, nil
	case 1:
		recs[0].Retain()
		return recs[0], nil
	}
	cols := make([]arrow.Array, len(want.Fields()))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	var rows int64
	for _, r := range recs {
		rows += r.NumRows()
	}
	for i := range cols {
		parts := make([]arrow.Array, len(recs))
		for j, r := range recs {
			parts[j] = r.Column(i)
		}
		c, err := array.Concatenate(parts, mem)
		if err != nil {
			return nil, fmt.Errorf("lake: concatenating batches of %s: %w", t.Name, err)
		}
		cols[i] = c
	}
	pk, tn := cols[want.FieldIndices(t.PrimaryKey)[0]], cols[want.FieldIndices(schemas.ColTenant)[0]]
	last := make(map[string]int, rows)
	for i := 0; i < pk.Len(); i++ {
		last[rowKey(tn, pk, i)] = i
	}
	if len(last) == pk.Len() {
		return array.NewRecordBatch(want, cols, rows), nil
	}
	idx := make([]int64, 0, len(last))
	for _, i := range last {
		idx = append(idx, int64(i))
	}
	slices.Sort(idx)
	return take(ctx, mem, array.NewRecordBatch(want, cols, rows), idx)
}

// take returns the rows of rec at idx (and releases rec).
func take(ctx context.Context, mem memory.Allocator, rec arrow.RecordBatch, idx []int64) (arrow.RecordBatch, error) {
	defer rec.Release()
	b := array.NewInt64Builder(mem)
	b.AppendValues(idx, nil)
	ind := b.NewArray()
	b.Release()
	defer ind.Release()
	ctx = compute.WithAllocator(ctx, mem)
	cols := make([]arrow.Array, rec.NumCols())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i := range cols {
		c, err := compute.TakeArray(ctx, rec.Column(i), ind)
		if err != nil {
			return nil, fmt.Errorf("lake: selecting rows: %w", err)
		}
		cols[i] = c
	}
	return array.NewRecordBatch(rec.Schema(), cols, int64(len(idx))), nil
}

func sameFields(a, b *arrow.Schema) bool {
	if a.NumFields() != b.NumFields() {
		return false
	}
	for i := range a.NumFields() {
		if a.Field(i).Name != b.Field(i).Name || !arrow.TypeEqual(a.Field(i).Type, b.Field(i).Type) {
			return false
		}
	}
	return true
}

// keyAt is row i's primary key as text (string and int64 keys).
func keyAt(a arrow.Array, i int) string {
	switch a := a.(type) {
	case *array.String:
		return a.Value(i)
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10)
	default:
		return a.ValueStr(i)
	}
}

// keyColumns returns the tenant and primary key columns of rec.
func keyColumns(rec arrow.RecordBatch, t *schemas.Table) (tenant, pk arrow.Array) {
	return rec.Column(rec.Schema().FieldIndices(schemas.ColTenant)[0]), rec.Column(rec.Schema().FieldIndices(t.PrimaryKey)[0])
}

// rowKey is row i's (tenant, primary key) as text: the lake tables' key, so that tenants' rows
// with the same id are different rows.
func rowKey(tenant, pk arrow.Array, i int) string { return keyAt(tenant, i) + "\x00" + keyAt(pk, i) }

// oneTenant checks that every row of rec belongs to tenant.
func oneTenant(rec arrow.RecordBatch, tenant string) error {
	idx := rec.Schema().FieldIndices(schemas.ColTenant)
	if len(idx) != 1 {
		return fmt.Errorf("the rows have no %s column", schemas.ColTenant)
	}
	col := rec.Column(idx[0])
	for i := 0; i < col.Len(); i++ {
		if col.IsNull(i) || keyAt(col, i) != tenant {
			return fmt.Errorf("a commit of tenant %s carries a row of tenant %q (row %d): a commit holds one tenant's rows", tenant, col.ValueStr(i), i)
		}
	}
	return nil
}

// conform gives rec the target schema (the table's, with Iceberg field IDs): columns are taken
// by name, relabeled when the types agree (a list's element name, field metadata) and cast when
// they differ (a scan's large strings).
func conform(ctx context.Context, rec arrow.RecordBatch, target *arrow.Schema) (arrow.RecordBatch, error) {
	cols := make([]arrow.Array, target.NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, f := range target.Fields() {
		idx := rec.Schema().FieldIndices(f.Name)
		if len(idx) != 1 {
			return nil, fmt.Errorf("lake: rows have no column %s", f.Name)
		}
		src := rec.Column(idx[0])
		if arrow.TypeEqual(src.DataType(), f.Type) {
			d := src.Data()
			nd := array.NewData(f.Type, d.Len(), d.Buffers(), d.Children(), d.NullN(), d.Offset())
			cols[i] = array.MakeFromData(nd)
			nd.Release()
			continue
		}
		c, err := compute.CastArray(ctx, src, compute.SafeCastOptions(f.Type))
		if err != nil {
			return nil, fmt.Errorf("lake: column %s: %s to %s: %w", f.Name, src.DataType(), f.Type, err)
		}
		cols[i] = c
	}
	return array.NewRecordBatch(target, cols, rec.NumRows()), nil
}

// project keeps the named columns.
func project(rec arrow.RecordBatch, names []string) (arrow.RecordBatch, error) {
	var fields []arrow.Field
	var cols []arrow.Array
	for _, n := range names {
		idx := rec.Schema().FieldIndices(n)
		if len(idx) != 1 {
			return nil, fmt.Errorf("lake: rows have no column %s", n)
		}
		fields = append(fields, rec.Schema().Field(idx[0]))
		cols = append(cols, rec.Column(idx[0]))
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, rec.NumRows()), nil
}

// retained yields each batch with an extra reference for a consumer that releases what it reads.
func retained(recs []arrow.RecordBatch) iter.Seq2[arrow.RecordBatch, error] {
	return func(yield func(arrow.RecordBatch, error) bool) {
		for _, r := range recs {
			r.Retain()
			if !yield(r, nil) {
				return
			}
		}
	}
}

// partitionsOf is the filter of the partitions the rows fall in: their Table.Partition values,
// or the UTC years of Table.Created.
func partitionsOf(t *schemas.Table, rows []arrow.RecordBatch) (iceberg.BooleanExpression, error) {
	if t.Partition != "" {
		return valuesIn(t.Partition, rows)
	}
	return yearsIn(t.Created, rows)
}

// valuesIn is `col IN (values of the rows)`, OR `col IS NULL` when a row has none.
func valuesIn(col string, rows []arrow.RecordBatch) (iceberg.BooleanExpression, error) {
	var strs []string
	var ints []int64
	nulls := false
	seen := map[string]bool{}
	for _, r := range rows {
		idx := r.Schema().FieldIndices(col)
		if len(idx) != 1 {
			return nil, fmt.Errorf("lake: rows have no column %s", col)
		}
		switch a := r.Column(idx[0]).(type) {
		case *array.String:
			for i := 0; i < a.Len(); i++ {
				if a.IsNull(i) {
					nulls = true
				} else if v := a.Value(i); !seen[v] {
					seen[v] = true
					strs = append(strs, v)
				}
			}
		case *array.Int64:
			for i := 0; i < a.Len(); i++ {
				if a.IsNull(i) {
					nulls = true
				} else if v := a.Value(i); !seen[strconv.FormatInt(v, 10)] {
					seen[strconv.FormatInt(v, 10)] = true
					ints = append(ints, v)
				}
			}
		default:
			return nil, fmt.Errorf("lake: column %s has type %s; keys and partitions must be strings or integers", col, a.DataType())
		}
	}
	var e iceberg.BooleanExpression = iceberg.AlwaysFalse{}
	switch {
	case len(strs) > 0:
		e = iceberg.IsIn(iceberg.Reference(col), strs...)
	case len(ints) > 0:
		e = iceberg.IsIn(iceberg.Reference(col), ints...)
	}
	if nulls {
		e = iceberg.NewOr(e, iceberg.IsNull(iceberg.Reference(col)))
	}
	return e, nil
}

// yearsIn is the OR of the UTC calendar years (as time ranges) the rows' col falls in.
func yearsIn(col string, rows []arrow.RecordBatch) (iceberg.BooleanExpression, error) {
	years := map[int]bool{}
	nulls := false
	for _, r := range rows {
		idx := r.Schema().FieldIndices(col)
		if len(idx) != 1 {
			return nil, fmt.Errorf("lake: rows have no column %s", col)
		}
		a, ok := r.Column(idx[0]).(*array.Timestamp)
		if !ok {
			return nil, fmt.Errorf("lake: column %s is not a timestamp", col)
		}
		for i := 0; i < a.Len(); i++ {
			if a.IsNull(i) {
				nulls = true
				continue
			}
			years[time.UnixMicro(int64(a.Value(i))).UTC().Year()] = true
		}
	}
	var e iceberg.BooleanExpression = iceberg.AlwaysFalse{}
	ref := iceberg.Reference(col)
	for _, y := range slices.Sorted(mapsKeys(years)) {
		from := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
		to := time.Date(y+1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
		e = iceberg.NewOr(e, iceberg.NewAnd(iceberg.GreaterThanEqual(ref, iceberg.Timestamp(from)), iceberg.LessThan(ref, iceberg.Timestamp(to))))
	}
	if nulls {
		e = iceberg.NewOr(e, iceberg.IsNull(ref))
	}
	return e, nil
}

func mapsKeys(m map[int]bool) iter.Seq[int] {
	return func(yield func(int) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// unseen reads tenant's live rows a complete scan did not see (DeleteScope) and returns them
// with _deleted_at set, to be upserted with the commit's rows. Keys the commit carries are kept;
// other tenants' rows are never read.
func (w *Writer) unseen(ctx context.Context, tbl *table.Table, t *schemas.Table, tenant string, ds *DeleteScope, rec arrow.RecordBatch, target *arrow.Schema) (out []arrow.RecordBatch, err error) {
	defer func() {
		if err != nil {
			for _, r := range out {
				r.Release()
			}
			out = nil
		}
	}()
	var filter iceberg.BooleanExpression = iceberg.NewAnd(iceberg.NewAnd(
		iceberg.EqualTo(iceberg.Reference(schemas.ColTenant), tenant),
		iceberg.IsNull(iceberg.Reference(schemas.ColDeletedAt))),
		iceberg.NotEqualTo(iceberg.Reference(schemas.ColRunID), ds.RunID))
	if ds.PartitionCol != "" {
		filter = iceberg.NewAnd(filter, iceberg.EqualTo(iceberg.Reference(ds.PartitionCol), ds.PartitionValue))
	}
	keep := map[string]bool{}
	if rec != nil {
		tn, pk := keyColumns(rec, t)
		for i := 0; i < pk.Len(); i++ {
			keep[rowKey(tn, pk, i)] = true
		}
	}
	_, itr, err := tbl.Scan(table.WithRowFilter(filter)).ToArrowRecords(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the rows of %s a full scan did not see: %w", t.Name, err)
	}
	delIdx := target.FieldIndices(schemas.ColDeletedAt)[0]
	for b, err := range itr {
		if err != nil {
			return out, fmt.Errorf("reading the rows of %s a full scan did not see: %w", t.Name, err)
		}
		r, err := conform(ctx, b, target)
		b.Release()
		if err != nil {
			return out, err
		}
		var idx []int64
		tn, pk := keyColumns(r, t)
		for i := 0; i < int(r.NumRows()); i++ {
			if !keep[rowKey(tn, pk, i)] {
				idx = append(idx, int64(i))
			}
		}
		if len(idx) == 0 {
			r.Release()
			continue
		}
		if len(idx) < int(r.NumRows()) {
			if r, err = take(ctx, w.mem, r, idx); err != nil {
				return out, err
			}
		}
		tb := array.NewTimestampBuilder(w.mem, target.Field(delIdx).Type.(*arrow.TimestampType))
		at := arrow.Timestamp(ds.At.UnixMicro())
		for range r.NumRows() {
			tb.Append(at)
		}
		del := tb.NewArray()
		tb.Release()
		cols := slices.Clone(r.Columns())
		cols[delIdx] = del
		out = append(out, array.NewRecordBatch(target, cols, r.NumRows()))
		del.Release()
		r.Release()
	}
	return out, nil
}
