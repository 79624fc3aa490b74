// Package schemas declares every warehouse table: its columns, where each column comes from in
// the API's JSON, its Arrow and DuckDB types, its primary key and its cursor column. Schemas are
// declared, never inferred from pages, so a column's type cannot drift between runs.
package schemas

import (
	"fmt"
	"strings"

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
)

// MetaColumns are appended to every table: where the row came from, when and by which run it was
// last written, when it vanished from the source (soft delete), and any JSON member the
// declared columns do not cover, so nothing the API sends is ever dropped.
var MetaColumns = []Column{
	{Name: ColSource, Kind: String},
	{Name: ColSyncedAt, Kind: Timestamp},
	{Name: ColRunID, Kind: String},
	{Name: ColDeletedAt, Kind: Timestamp},
	{Name: ColExtra, Kind: JSON},
}

// LoaderColumns follow MetaColumns in every table; the loader writes them, batches do not.
var LoaderColumns = []Column{{Name: ColStaleSince, Kind: Timestamp}}

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
	// SortedByCursor: the extractor asks the API to list rows ascending by the cursor column, so
	// every committed prefix of a listing can checkpoint the cursor mid-stream.
	SortedByCursor bool
	schema         *arrow.Schema
}

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
		fields = append(fields, arrow.Field{Name: c.Name, Type: c.Kind.Arrow(), Nullable: c.Name != t.PrimaryKey})
	}
	t.schema = arrow.NewSchema(fields, nil)
}

func init() {
	for _, t := range Tables {
		t.buildSchema()
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

// Tables lists every table, in sync order.
var Tables = []*Table{
	{
		Name: "companies", Source: "appdirect", PrimaryKey: "id", Created: "creation_date",
		Columns: []Column{
			col("id", "uuid", String), col("name", "name", String), col("enabled", "enabled", Bool),
			col("status", "status", String), col("creation_date", "creationDate", Timestamp),
			col("company_size", "companySize", String), col("industry", "industry", String),
			col("sales_agent", "salesAgent", JSON), col("email_address", "emailAddress", String),
			col("website", "website", String), col("picture", "picture", String),
			col("vendor", "vendor", Bool), col("reseller", "reseller", Bool), col("channel_admin", "channelAdmin", Bool),
			col("external_id", "externalId", String), col("phone_number", "phoneNumber", String),
			col("default_role", "defaultRole", String), col("country_code", "countryCode", String),
			col("address", "address", JSON), col("address_city", "address.city", String),
			col("address_country", "address.country", String), col("custom_attributes", "customAttributes", JSON),
			col("thirty_days_purchase_limit_exempt", "thirtyDaysPurchaseLimitExempt", Bool),
			col("thirty_days_purchase_limit_override_amt", "thirtyDaysPurchaseLimitOverrideAmt", Decimal),
			col("daily_purchase_limit_exempt", "dailyPurchaseLimitExempt", Bool),
			col("daily_purchase_limit_override_amt", "dailyPurchaseLimitOverrideAmt", Decimal),
			col("import_apps_enabled", "importAppsEnabled", Bool), col("only_admins_can_buy", "onlyAdminsCanBuy", Bool),
		},
	},
	{
		Name: "users", Source: "appdirect", PrimaryKey: "id", Cursor: "last_modified", SortedByCursor: true, Created: "last_modified",
		Columns: []Column{
			col("id", "uuid", String), col("email", "email", String), col("user_name", "userName", String),
			col("first_name", "firstName", String), col("last_name", "lastName", String),
			col("open_id", "openId", String), col("external_id", "externalId", String),
			col("locale", "locale", String), col("currency", "currency", String),
			col("roles", "roles", StringList), col("company", "company", JSON),
			col("company_id", "company.uuid", String), col("last_modified", "lastModified", Timestamp),
		},
	},
	{
		Name: "invoices", Source: "appdirect", PrimaryKey: "invoice_id", Cursor: "creation_date", SortedByCursor: true, Created: "creation_date",
		Columns: []Column{
			col("invoice_id", "invoiceId", Int64), col("reference_number", "referenceNumber", String),
			col("creation_date", "creationDate", Timestamp), col("due_date", "dueDate", Timestamp),
			col("status", "status", String), col("currency", "currency", String), col("total", "total", Decimal),
			col("order_ids", "orderIds", StringList), col("company", "company", JSON),
			col("company_id", "company.-id", String), col("user", "user", JSON), col("user_id", "user.-id", String),
			col("delegated_to_invoice", "delegatedToInvoice", JSON), col("included_invoices", "includedInvoices", JSON),
			col("invoice_lines", "invoiceLines", JSON), col("links", "links", JSON),
		},
	},
	{
		Name: "leads", Source: "appdirect", PrimaryKey: "id", Cursor: "created_on", SortedByCursor: true, Created: "created_on",
		Columns: []Column{
			col("id", "id", String), col("created_on", "createdOn", Timestamp), col("last_modified", "lastModified", Timestamp),
			col("status", "status", String), col("result", "result", String), col("lead_type", "leadType", String),
			col("partner", "partner", String), col("notes", "notes", String),
			col("creator", "creator", JSON), col("creator_company_id", "creator.companyId", String),
			col("customer", "customer", JSON), col("customer_company_name", "customer.company.name", String),
			col("customer_country", "customer.company.country", String), col("customer_email", "customer.contact.email", String),
			col("custom_attributes", "customAttributes", JSON), col("recipient", "recipient", JSON),
			col("referrer", "referrer", JSON), col("reseller", "reseller", JSON),
			col("converted_company", "convertedCompany", JSON), col("converted_company_id", "convertedCompany.id", String),
			col("converted_user", "convertedUser", JSON), col("profile_company", "profileCompany", JSON),
			col("profile_product", "profileProduct", JSON), col("profile_product_edition", "profileProductEdition", JSON),
		},
	},
	{
		Name: "opportunities", Source: "appdirect", PrimaryKey: "id", Cursor: "created_on", SortedByCursor: true, Created: "created_on",
		Columns: []Column{
			col("id", "id", String), col("name", "name", String), col("status", "status", String),
			col("owner_type", "ownerType", String), col("created_on", "createdOn", Timestamp),
			col("purchase_effective_date", "purchaseEffectiveDate", Timestamp),
			col("owner_user", "ownerUser", JSON), col("owner_company_id", "ownerUser.company.id", String),
			col("customer_user", "customerUser", JSON), col("customer_company_id", "customerUser.company.id", String),
			col("created_by_user", "createdByUser", JSON),
		},
	},
	{
		Name: "charges", Source: "highlevel", PrimaryKey: "charge_id", Cursor: "updated_at", Created: "created_at", Partition: "location_id",
		Columns: []Column{
			col("charge_id", "chargeId", String), col("app_id", "appId", String), col("meter_id", "meterId", String),
			col("entity_type", "entityType", String), col("location_id", "entityId", String),
			col("amount_charged", "amountCharged", Decimal), col("price_per_unit", "pricePerUnit", Decimal),
			col("units", "units", Decimal), col("currency", "currency", String),
			col("transaction_type", "transactionType", String), col("refunded", "refunded", Bool),
			col("meta", "meta", JSON), col("event_id", "meta.eventId", String), col("description", "meta.description", String),
			col("event_time", "meta.eventTime", Timestamp), col("created_at", "createdAt", Timestamp),
			col("updated_at", "updatedAt", Timestamp),
		},
	},
	{
		Name: "locations", Source: "highlevel", PrimaryKey: "id", Created: "installed_at",
		Columns: []Column{
			col("id", "_id", String), col("name", "name", String), col("address", "address", String),
			col("is_installed", "isInstalled", Bool), col("app_version_id", "appVersionId", String),
			col("version_id", "versionId", String), col("installed_at", "installedAt", Timestamp),
		},
	},
}

// Streams are the tables a user selects with --streams (locations come with charges).
var Streams = []string{"companies", "users", "invoices", "leads", "opportunities", "charges"}

// Lookup returns the named table.
func Lookup(name string) (*Table, error) {
	for _, t := range Tables {
		if t.Name == name {
			return t, nil
		}
	}
	return nil, fmt.Errorf("unknown table %q (tables: %s)", name, strings.Join(Streams, ", "))
}
