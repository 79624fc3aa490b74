package schemas

// locations: listed with charges: its rows are the charges partitions.
var _ = register(&Table{
	Name: "locations", Source: "highlevel", PrimaryKey: "id", Created: "installed_at",
	Resource: "highlevel.locations", Endpoint: "GET /oauth/installedLocations", Hidden: true,
	Columns: []Column{
		col("id", "_id", String), col("name", "name", String), col("address", "address", String),
		col("is_installed", "isInstalled", Bool), col("app_version_id", "appVersionId", String),
		col("version_id", "versionId", String), col("installed_at", "installedAt", Timestamp),
	},
})
