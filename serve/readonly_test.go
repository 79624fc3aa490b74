package serve

import (
	"errors"
	"testing"
)

func TestCheckReadOnly(t *testing.T) {
	for q, ok := range map[string]bool{
		"SELECT 1": true, "  with x AS (SELECT 1) SELECT * FROM x": true, "(SELECT 1)": true, "FROM t": true, "DESCRIBE t": true,
		"SELECT 1;": true, "-- c\nSELECT 1": true, "SELECT 'a;b'": true,
		"SELECT 1; SELECT 2": false, "": false, "DELETE FROM t": false, "COPY t TO 'x'": false, "ATTACH 'x'": false,
		"SELECT checkpoint()": false, "SELECT * FROM \"force_checkpoint\"()": false, "CALL checkpoint()": false,
		"PRAGMA version": false, "SET threads = 1": false, "INSTALL httpfs": false, "BEGIN": false,
		// EXPLAIN ANALYZE runs what it wraps, and DuckDB types it EXPLAIN whatever that is.
		"EXPLAIN SELECT 1": true, "EXPLAIN ANALYZE SELECT 1": true, "explain analyse with x AS (SELECT 1) FROM x": true,
		"EXPLAIN ANALYZE SET memory_limit = '2MB'": false, "EXPLAIN ANALYZE COPY (SELECT 1) TO '/tmp/x.csv'": false,
		"EXPLAIN ANALYZE CHECKPOINT": false, "explain analyse force checkpoint": false, "EXPLAIN SET threads = 1": false,
		"EXPLAIN (FORMAT json) SELECT 1": false, "EXPLAIN ANALYZE /* c */ SET threads = 1": false,
	} {
		err := CheckReadOnly(q)
		if (err == nil) != ok || (err != nil && !errors.Is(err, ErrNotReadOnly)) {
			t.Errorf("CheckReadOnly(%q) = %v, want allowed %v", q, err, ok)
		}
	}
}
