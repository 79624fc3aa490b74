package schemas

import "time"

// opportunities: creation filter; opportunities close later: a 30-day re-read window.
var _ = register(&Table{
	Name: "opportunities", Source: "appdirect", PrimaryKey: "id", Cursor: "created_on", SortedByCursor: true, Created: "created_on",
	Resource: "appdirect.opportunities", Endpoint: "GET /api/assistedSales/v1/opportunities?createdOn=gte()", Lookback: 30 * 24 * time.Hour,
	SweepColumn: "status", Sweeps: []string{"OPEN", "PENDING_REVIEW"},
	Columns: []Column{
		col("id", "id", String), col("name", "name", String), col("status", "status", String),
		col("owner_type", "ownerType", String), col("created_on", "createdOn", Timestamp),
		col("purchase_effective_date", "purchaseEffectiveDate", Timestamp),
		col("owner_user", "ownerUser", JSON), col("owner_company_id", "ownerUser.company.id", String),
		col("customer_user", "customerUser", JSON), col("customer_company_id", "customerUser.company.id", String),
		col("created_by_user", "createdByUser", JSON),
	},
})
