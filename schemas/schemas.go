// Package schemas declares every warehouse table: its columns, where each column comes from in
// the API's JSON, its Arrow and DuckDB types, its primary key and its cursor column. Schemas are
// declared, never inferred from pages, so a column's type cannot drift between runs.
package schemas

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// Kind is a column's logical type; it fixes both the Arrow and the DuckDB type.
type Kind int

// Column kinds and their mapping (see README "Tables and columns"):
const (
	String     Kind = iota // utf8 / VARCHAR; JSON numbers are kept as their text
	Int64                  // int64 / BIGINT
	Float64                // float64 / DOUBLE (never money)
	Bool                   // bool / BOOLEAN; also "true"/"false" strings
	Timestamp              // timestamp[us, UTC] / TIMESTAMPTZ; epoch s or ms (number or numeric string), ISO-8601
	Decimal                // decimal128(38,10) / DECIMAL(38,10): money, parsed from its text, never via float
	JSON                   // utf8 holding the raw JSON value / JSON: documented nested objects and lists
	StringList             // list<utf8> / VARCHAR[]
)

// DecimalType is the type of every money column.
var DecimalType = &arrow.Decimal128Type{Precision: 38, Scale: 10}

// TimestampType is the type of every time column.
var TimestampType = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

// Arrow returns the Arrow type of k.
func (k Kind) Arrow() arrow.DataType {
	switch k {
	case Int64:
		return arrow.PrimitiveTypes.Int64
	case Float64:
		return arrow.PrimitiveTypes.Float64
	case Bool:
		return arrow.FixedWidthTypes.Boolean
	case Timestamp:
		return TimestampType
	case Decimal:
		return DecimalType
	case StringList:
		return arrow.ListOf(arrow.BinaryTypes.String)
	default:
		return arrow.BinaryTypes.String
	}
}

// SQL returns the DuckDB type of k.
func (k Kind) SQL() string {
	return [...]string{"VARCHAR", "BIGINT", "DOUBLE", "BOOLEAN", "TIMESTAMPTZ", "DECIMAL(38,10)", "JSON", "VARCHAR[]"}[k]
}

func (k Kind) String() string {
	return [...]string{"string", "int64", "float64", "bool", "timestamp", "decimal", "json", "string list"}[k]
}

// Column is one warehouse column and the JSON path it is read from.
type Column struct {
	Name string
	Path []string // object keys from the record root
	Kind Kind
}

// Metadata columns every table ends with.
const (
	ColSource    = "_source"
	ColSyncedAt  = "_synced_at"
	ColRunID     = "_run_id"
	ColDeletedAt = "_deleted_at"
	ColExtra     = "_extra"
	// ColStaleSince is set when a newer version of the row was quarantined: the row is the
	// last good version, no longer current. The loader maintains it; batches do not carry it.
	ColStaleSince = "_stale_since"
	// ColContentHash hashes the declared columns and _extra: a row listed again with the same
	// content is not rewritten. The loader maintains it.
	ColContentHash = "_content_hash"
	// ColTenant names the tenant (an AppDirect marketplace, a HighLevel agency: one entry of
	// the config's tenants list) a row belongs to. It is part of every table's key.
	ColTenant = "tenant"
)

// DefaultTenant is the tenant of a config without a tenants list, and the tenant a warehouse
// created before tenants existed is migrated to.
const DefaultTenant = "default"

// MetaColumns are appended to every table: where the row came from, when and by which run it was
// last written, when it vanished from the source (soft delete), any JSON member the declared
// columns do not cover, so nothing the API sends is ever dropped, and the tenant it belongs to.
var MetaColumns = []Column{
	{Name: ColSource, Kind: String},
	{Name: ColSyncedAt, Kind: Timestamp},
	{Name: ColRunID, Kind: String},
	{Name: ColDeletedAt, Kind: Timestamp},
	{Name: ColExtra, Kind: JSON},
	{Name: ColTenant, Kind: String},
}

// LoaderColumns follow MetaColumns in every table; the loader writes them, batches do not.
var LoaderColumns = []Column{{Name: ColStaleSince, Kind: Timestamp}, {Name: ColContentHash, Kind: Int64}}

// Table is one declared table.
type Table struct {
	Name       string
	Source     string // appdirect | highlevel
	Columns    []Column
	PrimaryKey string
	// Cursor is the column whose maximum is the stream's incremental cursor ("" = full snapshot).
	Cursor string
	// Partition is the column the Parquet output is partitioned by ("" = by year of Created).
	Partition string
	// Created is the creation-time column (Parquet year partitions, freshness).
	Created string
	// CreatedMoves: Created is really a modification time (users have no creation date), so a
	// row can move between year partitions.
	CreatedMoves bool
	// SortedByCursor: the extractor asks the API to list rows ascending by the cursor column, so
	// every committed prefix of a listing can checkpoint the cursor mid-stream.
	SortedByCursor bool
	// CursorFromServerClock: bodies may lack the cursor column (the documents show no user
	// timestamp, §7.3), so a whole, drift-free listing moves the cursor to the server's clock
	// when the listing began (its Date header) rather than to the highest value seen.
	CursorFromServerClock bool

	// Stream rules: how the table is synced.
	Resource string        // the extract resource that lists it, e.g. "appdirect.users"
	Endpoint string        // the documented list call (docs, check)
	Lookback time.Duration // how far before the cursor an incremental run re-reads
	// PartitionedBy names the stream whose rows are this stream's partitions (charges: one per
	// installed location, each with its own token and budget); that stream syncs first.
	PartitionedBy string
	// Hidden streams are not selected by name: they sync with the stream they partition.
	Hidden bool
	// Sweeps are the non-terminal statuses an incremental run re-lists whatever their age: the
	// API filters only on creation while such records still change (an invoice paid 45 days
	// later, a lead converted late), so the lookback alone cannot catch every change.
	Sweeps      []string
	SweepColumn string // the status column the Sweeps are values of
	schema      *arrow.Schema
}

// Key returns the columns of the table's logical key: the tenant, then the primary key. Two
// tenants' rows with the same id are two rows; upserts, soft deletes and deletion detection
// match on all of them.
func (t *Table) Key() []string { return []string{ColTenant, t.PrimaryKey} }

// AllColumns returns the declared columns followed by the metadata columns.
func (t *Table) AllColumns() []Column {
	return append(append([]Column{}, t.Columns...), MetaColumns...)
}

// WarehouseColumns returns every column of the table in the warehouse: AllColumns, then
// LoaderColumns.
func (t *Table) WarehouseColumns() []Column {
	return append(t.AllColumns(), LoaderColumns...)
}

// Schema returns the Arrow schema of the table's batches (declared + metadata columns). It is
// built once, at package initialization, so concurrent callers share it safely.
func (t *Table) Schema() *arrow.Schema { return t.schema }

func (t *Table) buildSchema() {
	var fields []arrow.Field
	for _, c := range t.AllColumns() {
		fields = append(fields, arrow.Field{Name: c.Name, Type: c.Kind.Arrow(), Nullable: c.Name != t.PrimaryKey && c.Name != ColTenant})
	}
	t.schema = arrow.NewSchema(fields, nil)
}

func init() {
	// Tables registered by their files in file-name order; the known ones sync in `order`, any
	// other after them.
	rank := func(t *Table) int {
		if i := slices.Index(order, t.Name); i >= 0 {
			return i
		}
		return len(order)
	}
	slices.SortStableFunc(Tables, func(a, b *Table) int { return rank(a) - rank(b) })
	for _, t := range Tables {
		t.buildSchema()
		if !t.Hidden {
			Streams = append(Streams, t.Name)
		}
	}
}

// Column returns the named column.
func (t *Table) Column(name string) (Column, bool) {
	for _, c := range t.AllColumns() {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

func col(name, path string, k Kind) Column {
	return Column{Name: name, Path: strings.Split(path, "."), Kind: k}
}

// Tables lists every table, in sync order. Each table's file declares it (with its stream rules)
// by calling register.
var Tables []*Table

// order is the sync and listing order of the tables.
var order = []string{"companies", "users", "invoices", "leads", "opportunities", "events", "charges", "locations"}

// register declares a table; each stream's file calls it once.
func register(t *Table) *Table {
	Tables = append(Tables, t)
	return t
}

// Streams are the tables a user selects with --streams (hidden ones come with the stream they
// partition: locations with charges).
var Streams []string

// Lookup returns the named table.
func Lookup(name string) (*Table, error) {
	for _, t := range Tables {
		if t.Name == name {
			return t, nil
		}
	}
	return nil, fmt.Errorf("unknown table %q (tables: %s)", name, strings.Join(Streams, ", "))
}
