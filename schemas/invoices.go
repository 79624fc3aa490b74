package schemas

import "time"

// invoices: the API filters on creation only while invoices keep changing (paid, voided): a 30-day re-read window.
var _ = register(&Table{
	Name: "invoices", Source: "appdirect", PrimaryKey: "invoice_id", Cursor: "creation_date", SortedByCursor: true, Created: "creation_date",
	Resource: "appdirect.invoices", Endpoint: "GET /api/billing/v1/invoices?fromDate=", Lookback: 30 * 24 * time.Hour,
	SweepColumn: "status", Sweeps: []string{"UNPAID"},
	Columns: []Column{
		col("invoice_id", "invoiceId", Int64), col("reference_number", "referenceNumber", String),
		col("creation_date", "creationDate", Timestamp), col("due_date", "dueDate", Timestamp),
		col("status", "status", String), col("currency", "currency", String), col("total", "total", Decimal),
		col("order_ids", "orderIds", StringList), col("company", "company", JSON),
		col("company_id", "company.-id", String), col("user", "user", JSON), col("user_id", "user.-id", String),
		col("delegated_to_invoice", "delegatedToInvoice", JSON), col("included_invoices", "includedInvoices", JSON),
		col("invoice_lines", "invoiceLines", JSON), col("links", "links", JSON),
	},
})
