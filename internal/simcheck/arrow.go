package simcheck

import (
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/schemas"
)

// CompareArrowRows is CompareRows over rows read by another engine (e.g. an Iceberg scan): for
// each table of the streams, tables holds its rows as Arrow batches with the table's columns by
// name (any order; a table absent from the map has no rows). Tables without the loader's
// _stale_since column have no stale rows.
func CompareArrowRows(sim *apisim.Server, tables map[string][]arrow.RecordBatch, streams []string, opt RowOptions) (string, error) {
	return compareAll(sim, streams, opt, func(t *schemas.Table) (map[string]*warehouseRow, []Diff, error) {
		return arrowRows(t, tables[t.Name], opt.Tenant)
	})
}

func arrowRows(t *schemas.Table, recs []arrow.RecordBatch, tenant string) (map[string]*warehouseRow, []Diff, error) {
	wh := map[string]*warehouseRow{}
	var diffs []Diff
	for _, rec := range recs {
		col := func(name string) (arrow.Array, error) {
			idx := rec.Schema().FieldIndices(name)
			if len(idx) != 1 {
				return nil, fmt.Errorf("%s: the rows have %d columns named %s, want 1", t.Name, len(idx), name)
			}
			return rec.Column(idx[0]), nil
		}
		pk, err := col(t.PrimaryKey)
		if err != nil {
			return nil, nil, err
		}
		cols := make([]arrow.Array, len(t.Columns))
		for i, c := range t.Columns {
			if cols[i], err = col(c.Name); err != nil {
				return nil, nil, err
			}
		}
		extra, err := col(schemas.ColExtra)
		if err != nil {
			return nil, nil, err
		}
		deleted, err := col(schemas.ColDeletedAt)
		if err != nil {
			return nil, nil, err
		}
		var stale, tenants arrow.Array
		if idx := rec.Schema().FieldIndices(schemas.ColStaleSince); len(idx) == 1 {
			stale = rec.Column(idx[0])
		}
		if tenant != "" {
			if tenants, err = col(schemas.ColTenant); err != nil {
				return nil, nil, err
			}
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			if tenants != nil {
				if v, err := arrowValue(tenants, i); err != nil || fmt.Sprint(v) != tenant {
					continue
				}
			}
			k, err := arrowValue(pk, i)
			if err != nil {
				return nil, nil, fmt.Errorf("%s.%s: %w", t.Name, t.PrimaryKey, err)
			}
			key := fmt.Sprint(k)
			r := &warehouseRow{deleted: deleted.IsValid(i), stale: stale != nil && stale.IsValid(i)}
			for j, c := range t.Columns {
				v, err := arrowValue(cols[j], i)
				if err != nil {
					return nil, nil, fmt.Errorf("%s.%s: %w", t.Name, c.Name, err)
				}
				r.cells = append(r.cells, canonArrow(c.Kind, v))
			}
			v, err := arrowValue(extra, i)
			if err != nil {
				return nil, nil, fmt.Errorf("%s.%s: %w", t.Name, schemas.ColExtra, err)
			}
			r.extra = canonArrow(schemas.JSON, v)
			if _, dup := wh[key]; dup {
				diffs = append(diffs, Diff{Table: t.Name, Key: key, Column: "(row)", Source: "one row", Warehouse: "duplicate rows"})
			}
			wh[key] = r
		}
	}
	return wh, diffs, nil
}

// arrowValue reads value i of a as DuckDB's scan in duckRows would: text for strings, numbers
// and decimals, epoch microseconds for timestamps, bool, or a []any of a list's elements.
func arrowValue(a arrow.Array, i int) (any, error) {
	if a.IsNull(i) {
		return nil, nil
	}
	switch a := a.(type) {
	case *array.String:
		return a.Value(i), nil
	case *array.LargeString:
		return a.Value(i), nil
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10), nil
	case *array.Int32:
		return strconv.FormatInt(int64(a.Value(i)), 10), nil
	case *array.Float64:
		return strconv.FormatFloat(a.Value(i), 'g', -1, 64), nil
	case *array.Boolean:
		return a.Value(i), nil
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		return a.Value(i).ToTime(unit).UnixMicro(), nil
	case *array.Decimal128:
		return a.Value(i).ToString(a.DataType().(*arrow.Decimal128Type).Scale), nil
	case array.ListLike:
		start, end := a.ValueOffsets(i)
		out := make([]any, 0, end-start)
		for j := start; j < end; j++ {
			v, err := arrowValue(a.ListValues(), int(j))
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected Arrow type %s", a.DataType())
}

// canonArrow is canonWarehouse for a value arrowValue read.
func canonArrow(k schemas.Kind, v any) any {
	if list, ok := v.([]any); ok {
		return canonJSON(list)
	}
	if k == schemas.StringList {
		return fmt.Sprintf("not a list: %v", v)
	}
	return canonWarehouse(k, v)
}
