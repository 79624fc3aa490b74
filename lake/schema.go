package lake

import (
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
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
	sc, err := table.ArrowSchemaToIcebergWithFreshIDs(t.Schema(), false)
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
