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
	run := timedExec(t, c)
	counts := func(when string) {
		n1, _ := q("SELECT count(*) FROM users")
		n2, _ := q(est)
		t.Logf("%s: count %d, estimated %d", when, n1, n2)
	}
	run("BEGIN")
	run("INSERT INTO users SELECT * REPLACE (id || 'x' AS id) FROM users LIMIT 10")
	counts("in a transaction after 10 inserts")
	for _, step := range []struct{ q, when string }{
		{"COMMIT", "after commit"},
		{"DELETE FROM users WHERE id IN (SELECT id FROM users LIMIT 5)", "after 5 deletes"},
		{"INSERT INTO users SELECT * REPLACE (id || 'y' AS id) FROM users LIMIT 5", "after 5 inserts"},
		{"UPDATE users SET roles = list_append(roles, 'z'), email = email || 'q' WHERE id IN (SELECT id FROM users LIMIT 7)", "after 7 list updates"},
		{"CHECKPOINT", "after checkpoint"},
	} {
		run(step.q)
		counts(step.when)
	}
}
