package lake

import (
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/marketsync/marketsync/schemas"
)

// icebergSchema maps a declared table to an Iceberg schema (the columns and types of its Arrow
// batches: utf8 -> string, int64 -> long, float64 -> double, bool -> boolean, timestamp[us,UTC] ->
// timestamptz, decimal128(38,10) -> decimal(38,10), list<utf8> -> list<string>; JSON columns are
// strings holding JSON text) with the primary key as its identifier field, and to the partition
// spec of the Parquet output: identity on Table.Partition when set, else year of Table.Created.
func icebergSchema(t *schemas.Table) (*iceberg.Schema, iceberg.PartitionSpec, error) {
	sc, err := table.ArrowSchemaToIcebergWithFreshIDs(tableSchema(t), false)
	if err != nil {
		return nil, iceberg.PartitionSpec{}, fmt.Errorf("lake: schema of %s: %w", t.Name, err)
	}
	pk, ok := sc.FindFieldByName(t.PrimaryKey)
	if !ok {
		return nil, iceberg.PartitionSpec{}, fmt.Errorf("lake: table %s has no primary key column %s", t.Name, t.PrimaryKey)
	}
	sc = iceberg.NewSchemaWithIdentifiers(0, []int{pk.ID}, sc.Fields()...)
	var opt iceberg.PartitionOption
	if t.Partition != "" {
		opt = iceberg.AddPartitionFieldByName(t.Partition, t.Partition, iceberg.IdentityTransform{}, sc, nil)
	} else {
		opt = iceberg.AddPartitionFieldByName(t.Created, t.Created+"_year", iceberg.YearTransform{}, sc, nil)
	}
	spec, err := iceberg.NewPartitionSpecOpts(opt)
	if err != nil {
		return nil, iceberg.PartitionSpec{}, fmt.Errorf("lake: partition spec of %s: %w", t.Name, err)
	}
	return sc, spec, nil
}

// tableSchema is the Arrow schema of t's lake table: t.Schema() without the tenant column. A lake
// holds the default tenant's rows only (several tenants in a lake are not supported yet: README
// "Several tenants"), so its tables keep the columns they were created with; commits drop the
// column (conform selects by name) and ReadRows adds it back (withTenant).
func tableSchema(t *schemas.Table) *arrow.Schema {
	sc := t.Schema()
	idx := sc.FieldIndices(schemas.ColTenant)
	if len(idx) != 1 {
		return sc
	}
	fields := slices.Delete(slices.Clone(sc.Fields()), idx[0], idx[0]+1)
	return arrow.NewSchema(fields, nil)
}

// withTenant returns rec (of tableSchema(t)) as a batch of t.Schema(), its tenant column the
// default tenant. It releases rec.
func withTenant(mem memory.Allocator, t *schemas.Table, rec arrow.RecordBatch) arrow.RecordBatch {
	defer rec.Release()
	sc := t.Schema()
	b := array.NewStringBuilder(mem)
	defer b.Release()
	for range rec.NumRows() {
		b.Append(schemas.DefaultTenant)
	}
	tenant := b.NewArray()
	defer tenant.Release()
	cols := make([]arrow.Array, 0, sc.NumFields())
	for _, f := range sc.Fields() {
		if f.Name == schemas.ColTenant {
			cols = append(cols, tenant)
			continue
		}
		cols = append(cols, rec.Column(rec.Schema().FieldIndices(f.Name)[0]))
	}
	return array.NewRecordBatch(sc, cols, rec.NumRows())
}

// partitionSource is the column a table is partitioned by.
func partitionSource(t *schemas.Table) string {
	if t.Partition != "" {
		return t.Partition
	}
	return t.Created
}

// partitionMoves reports whether a row's partition value can change between versions (users:
// partitioned by year of last_modified): upserts then look for the old copy in every partition.
func partitionMoves(t *schemas.Table) bool { return t.Partition == "" && t.CreatedMoves }

// sameColumns checks that an existing lake table has the declared columns, in order, with the
// same types: schema evolution is not supported yet, and a silent mismatch would misplace values.
func sameColumns(t *schemas.Table, sc *iceberg.Schema) error {
	want, _, err := icebergSchema(t)
	if err != nil {
		return err
	}
	have := sc.Fields()
	wf := want.Fields()
	names := func(fs []iceberg.NestedField) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Name+" "+f.Type.String())
		}
		return out
	}
	if !slices.Equal(names(have), names(wf)) {
		return fmt.Errorf("lake: table %s exists with columns %v, but this build declares %v; schema evolution is not supported yet (drop the lake table or migrate it)",
			t.Name, names(have), names(wf))
	}
	return nil
}

// writeSchema is the Arrow schema of tbl with Iceberg field IDs, the schema files are written in.
func writeSchema(tbl *table.Table) (*arrow.Schema, error) {
	return table.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
}
