package schemas

import "time"

// events: AppDirect subscription/order integration events (GET /api/channel/v1/events),
// filtered by creation date (fromDate, epoch ms) with a 10-minute overlap. Events are a log:
// they are not modified after they are written.
var _ = register(&Table{
	Name: "events", Source: "appdirect", PrimaryKey: "id", Cursor: "creation_date", SortedByCursor: true, Created: "creation_date",
	Resource: "appdirect.events", Endpoint: "GET /api/channel/v1/events?fromDate=", Lookback: 10 * time.Minute,
	Columns: []Column{
		col("id", "uuid", String), col("type", "type", String), col("creation_date", "creationDate", Timestamp),
		col("product", "product", JSON), col("product_id", "product.productId", String),
		col("product_name", "product.name", String),
		col("company", "company", JSON), col("company_id", "company.companyId", String),
		col("company_name", "company.name", String),
		col("order_id", "orderId", String), col("subscription_id", "subscriptionId", String),
		col("consumed", "consumed", Bool), col("successful", "successful", Bool),
		col("asynchronous", "asynchronous", Bool), col("manually_resolved", "manuallyResolved", Bool),
		col("error", "error", JSON),
	},
})
