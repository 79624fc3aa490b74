package schemas

import "time"

// charges: one partition per installed location (its own token and budget); startDate with a 24-hour overlap.
var _ = register(&Table{
	Name: "charges", Source: "highlevel", PrimaryKey: "charge_id", Cursor: "updated_at", Created: "created_at", Partition: "location_id",
	Resource: "highlevel.charges", Endpoint: "GET /marketplace/billing/charges?startDate=", Lookback: 24 * time.Hour, PartitionedBy: "locations",
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
})
