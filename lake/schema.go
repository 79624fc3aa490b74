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
// strings holding JSON text) with (tenant, primary key) as its identifier fields, and to its
// partition spec: identity on the tenant, then the partitioning of the Parquet output (identity
// on Table.Partition when set, else year of Table.Created). The tenant partition keeps each
// tenant's rows in files of their own, so a tenant's copy-on-write rewrites and equality deletes
// never touch another tenant's files (README "Several tenants").
func icebergSchema(t *schemas.Table) (*iceberg.Schema, iceberg.PartitionSpec, error) {
	sc, err := table.ArrowSchemaToIcebergWithFreshIDs(t.Schema(), false)
	if err != nil {
		return nil, iceberg.PartitionSpec{}, fmt.Errorf("lake: schema of %s: %w", t.Name, err)
	}
	tenant, ok := sc.FindFieldByName(schemas.ColTenant)
	if !ok {
		return nil, iceberg.PartitionSpec{}, fmt.Errorf("lake: table %s has no %s column", t.Name, schemas.ColTenant)
	}
	pk, ok := sc.FindFieldByName(t.PrimaryKey)
	if !ok {
		return nil, iceberg.PartitionSpec{}, fmt.Errorf("lake: table %s has no primary key column %s", t.Name, t.PrimaryKey)
	}
	sc = iceberg.NewSchemaWithIdentifiers(0, []int{tenant.ID, pk.ID}, sc.Fields()...)
	opts := []iceberg.PartitionOption{iceberg.AddPartitionFieldByName(schemas.ColTenant, schemas.ColTenant, iceberg.IdentityTransform{}, sc, nil)}
	if t.Partition != "" {
		opts = append(opts, iceberg.AddPartitionFieldByName(t.Partition, t.Partition, iceberg.IdentityTransform{}, sc, nil))
	} else {
		opts = append(opts, iceberg.AddPartitionFieldByName(t.Created, t.Created+"_year", iceberg.YearTransform{}, sc, nil))
	}
	spec, err := iceberg.NewPartitionSpecOpts(opts...)
	if err != nil {
		return nil, iceberg.PartitionSpec{}, fmt.Errorf("lake: partition spec of %s: %w", t.Name, err)
	}
	return sc, spec, nil
}

// preTenantSchema is the Arrow schema of t's lake table as builds before tenants in the lake
// created it: t.Schema() without the tenant column (migrateTenant adds it).
func preTenantSchema(t *schemas.Table) *arrow.Schema {
	sc := t.Schema()
	idx := sc.FieldIndices(schemas.ColTenant)
	if len(idx) != 1 {
		return sc
	}
	fields := slices.Delete(slices.Clone(sc.Fields()), idx[0], idx[0]+1)
	return arrow.NewSchema(fields, nil)
}

// withTenant returns rec (without a tenant column) with a tenant column of value tenant, its
// columns in the order of sc. It releases rec.
func withTenant(mem memory.Allocator, sc *arrow.Schema, rec arrow.RecordBatch, tenant string) arrow.RecordBatch {
	defer rec.Release()
	b := array.NewStringBuilder(mem)
	defer b.Release()
	for range rec.NumRows() {
		b.Append(tenant)
	}
	col := b.NewArray()
	defer col.Release()
	cols := make([]arrow.Array, 0, sc.NumFields())
	for _, f := range sc.Fields() {
		if f.Name == schemas.ColTenant {
			cols = append(cols, col)
			continue
		}
		cols = append(cols, rec.Column(rec.Schema().FieldIndices(f.Name)[0]))
	}
	return array.NewRecordBatch(arrow.NewSchema(slices.Clone(sc.Fields()), nil), cols, rec.NumRows())
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

// columnsOf names the columns of sc with their types, in order.
func columnsOf(sc *iceberg.Schema) []string {
	var out []string
	for _, f := range sc.Fields() {
		out = append(out, f.Name+" "+f.Type.String())
	}
	return out
}

// sameColumns checks that an existing lake table has the declared columns, in order, with the
// same types: other schema evolution than adding the tenant column (migrateTenant) is not
// supported yet, and a silent mismatch would misplace values.
func sameColumns(t *schemas.Table, sc *iceberg.Schema) error {
	want, _, err := icebergSchema(t)
	if err != nil {
		return err
	}
	if have, wf := columnsOf(sc), columnsOf(want); !slices.Equal(have, wf) {
		return fmt.Errorf("lake: table %s exists with columns %v, but this build declares %v; schema evolution is not supported yet (drop the lake table or migrate it)",
			t.Name, have, wf)
	}
	return nil
}

// isPreTenant reports whether sc is the schema builds before tenants in the lake gave t: the
// declared columns without the tenant column.
func isPreTenant(t *schemas.Table, sc *iceberg.Schema) (bool, error) {
	old, err := table.ArrowSchemaToIcebergWithFreshIDs(preTenantSchema(t), false)
	if err != nil {
		return false, fmt.Errorf("lake: schema of %s: %w", t.Name, err)
	}
	return slices.Equal(columnsOf(sc), columnsOf(old)), nil
}

// writeSchema is the Arrow schema of tbl with Iceberg field IDs, the schema files are written in.
func writeSchema(tbl *table.Table) (*arrow.Schema, error) {
	return table.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
}
