package schemas

import "time"

// users: lastModified filter with a 10-minute overlap.
var _ = register(&Table{
	Name: "users", Source: "appdirect", PrimaryKey: "id", Cursor: "last_modified", SortedByCursor: true, CursorFromServerClock: true, Created: "last_modified", CreatedMoves: true,
	Resource: "appdirect.users", Endpoint: "GET /api/account/v2/users?lastModified=", Lookback: 10 * time.Minute,
	Columns: []Column{
		col("id", "uuid", String), col("email", "email", String), col("user_name", "userName", String),
		col("first_name", "firstName", String), col("last_name", "lastName", String),
		col("open_id", "openId", String), col("external_id", "externalId", String),
		col("locale", "locale", String), col("currency", "currency", String),
		col("roles", "roles", StringList), col("company", "company", JSON),
		col("company_id", "company.uuid", String), col("last_modified", "lastModified", Timestamp),
	},
})
