package load

import (
	"context"
	"os"
	"testing"
	"time"
)

// Experiment (not CI): count(*) against the catalog's estimated_size on the 10M loader table,
// and how each write moves them.
func TestExp17Count(t *testing.T) {
	src := os.Getenv("EXP16_DIR")
	if src == "" {
		t.Skip("experiment")
	}
	ctx := context.Background()
	d := openLoaderCopy(t, src, "loader-big.duckdb")
	defer d.Close()
	c := d.Conn()
	q := func(s string) (int64, time.Duration) {
		start := time.Now()
		var n int64
		if err := c.QueryRowContext(ctx, s).Scan(&n); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		return n, time.Since(start)
	}
	est := `SELECT estimated_size FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main' AND table_name = 'users'`
	for i := 0; i < 3; i++ {
		n1, t1 := q("SELECT count(*) FROM users")
		n2, t2 := q(est)
		t.Logf("count %d in %v; estimated_size %d in %v", n1, t1, n2, t2)
	}
	exec1 := func(s string) {
		if _, err := c.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	exec1("BEGIN")
	exec1("INSERT INTO users SELECT * REPLACE (id || 'x' AS id) FROM users LIMIT 10")
	n1, _ := q("SELECT count(*) FROM users")
	n2, _ := q(est)
	t.Logf("in a transaction after 10 inserts: count %d, estimated %d", n1, n2)
	exec1("COMMIT")
	n1, _ = q("SELECT count(*) FROM users")
	n2, _ = q(est)
	t.Logf("after commit: count %d, estimated %d", n1, n2)
	exec1("DELETE FROM users WHERE id IN (SELECT id FROM users LIMIT 5)")
	n1, _ = q("SELECT count(*) FROM users")
	n2, _ = q(est)
	t.Logf("after 5 deletes: count %d, estimated %d", n1, n2)
	exec1("INSERT INTO users SELECT * REPLACE (id || 'y' AS id) FROM users LIMIT 5")
	n1, _ = q("SELECT count(*) FROM users")
	n2, _ = q(est)
	t.Logf("after 5 inserts: count %d, estimated %d", n1, n2)
	exec1("UPDATE users SET roles = list_append(roles, 'z'), email = email || 'q' WHERE id IN (SELECT id FROM users LIMIT 7)")
	n1, _ = q("SELECT count(*) FROM users")
	n2, _ = q(est)
	t.Logf("after 7 list updates: count %d, estimated %d", n1, n2)
	exec1("CHECKPOINT")
	n1, _ = q("SELECT count(*) FROM users")
	n2, _ = q(est)
	t.Logf("after checkpoint: count %d, estimated %d", n1, n2)
}
