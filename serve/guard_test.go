package serve

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// reviewedTableFunctions are DuckDB's table functions that were checked to have no effect
// beyond the reader's own query (file readers are stopped by enable_external_access = false).
var reviewedTableFunctions = map[string]bool{
	"duckdb_approx_database_count": true, "duckdb_columns": true, "duckdb_connection_count": true, "duckdb_constraints": true,
	"duckdb_coordinate_systems": true, "duckdb_databases": true, "duckdb_dependencies": true, "duckdb_extensions": true,
	"duckdb_external_file_cache": true, "duckdb_functions": true, "duckdb_indexes": true, "duckdb_keywords": true,
	"duckdb_log_contexts": true, "duckdb_logs": true, "duckdb_logs_parsed": true, "duckdb_memory": true, "duckdb_optimizers": true,
	"duckdb_prepared_statements": true, "duckdb_profiling_settings": true, "duckdb_schemas": true, "duckdb_secret_types": true,
	"duckdb_secrets": true, "duckdb_sequences": true, "duckdb_settings": true, "duckdb_table_sample": true, "duckdb_tables": true,
	"duckdb_temporary_files": true, "duckdb_types": true, "duckdb_variables": true, "duckdb_views": true, "generate_series": true,
	"glob": true, "histogram": true, "histogram_values": true, "icu_calendar_names": true, "json_each": true, "json_tree": true,
	"parquet_bloom_probe": true, "parquet_file_metadata": true, "parquet_full_metadata": true, "parquet_kv_metadata": true,
	"parquet_metadata": true, "parquet_scan": true, "parquet_schema": true, "pg_timezone_names": true, "pragma_collations": true,
	"pragma_database_size": true, "pragma_metadata_info": true, "pragma_platform": true, "pragma_show": true,
	"pragma_storage_info": true, "pragma_table_info": true, "pragma_user_agent": true, "pragma_version": true,
	"query_table": true, "range": true, "read_blob": true, "read_csv": true, "read_csv_auto": true, "read_duckdb": true,
	"read_json": true, "read_json_auto": true, "read_json_objects": true, "read_json_objects_auto": true, "read_ndjson": true,
	"read_ndjson_auto": true, "read_ndjson_objects": true, "read_parquet": true, "read_text": true, "repeat": true,
	"repeat_row": true, "seq_scan": true, "sniff_csv": true, "sql_auto_complete": true, "summary": true, "test_all_types": true,
	"test_vector_types": true, "unnest": true, "which_secret": true, "pg_get_keywords": true,
}

// TestDeniedFunctions_EveryTableFunctionReviewed fails when a DuckDB upgrade brings a table
// function nobody classified: table functions are where DuckDB puts side effects
// (checkpoint(), enable_logging(), ...), so each must be reviewed and allowed or denied.
func TestDeniedFunctions_EveryTableFunctionReviewed(t *testing.T) {
	_, _, addr := startServer(t, t.TempDir())
	c := connect(t, addr)
	rows, err := c.Query(context.Background(), "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type IN ('table', 'table_macro')")
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if !deniedFunctions[n] && !reviewedTableFunctions[n] {
			t.Errorf("table function %s() is neither denied (exec.go deniedFunctions) nor reviewed as harmless", n)
		}
	}
}
