package schemas

import "time"

// leads: creation filter; leads convert later: a 30-day re-read window.
var _ = register(&Table{
	Name: "leads", Source: "appdirect", PrimaryKey: "id", Cursor: "created_on", SortedByCursor: true, Created: "created_on",
	Resource: "appdirect.leads", Endpoint: "GET /api/lead/v2/leads?fromDate=", Lookback: 30 * 24 * time.Hour,
	SweepColumn: "status", Sweeps: []string{"PENDING_SUBMISSION", "SUBMITTED", "ASSIGNED", "PENDING_CONVERSION_APPROVAL", "CONVERSION_APPROVED"},
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
})
