package schemas

// companies: no filter: every run is a full snapshot.
var _ = register(&Table{
	Name: "companies", Source: "appdirect", PrimaryKey: "id", Created: "creation_date",
	Resource: "appdirect.companies", Endpoint: "GET /api/account/v2/companies",
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
})
