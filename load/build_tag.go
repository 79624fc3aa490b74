//go:build !duckdb_arrow

package load

// The loader needs DuckDB's Arrow interface, which the driver only compiles with a build tag.
// Without it, this line fails first with a name that says the fix.
var _ = Build_with_tags_duckdb_arrow__go_build_tags_duckdb_arrow
