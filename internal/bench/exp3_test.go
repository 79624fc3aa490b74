package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/marketsync/marketsync/load"
)

// Experiment (not CI): the existence join of one staged 25k-row probe batch against the 100k
// and 1M loader tables EXP3_DIR holds, reading all five columns vs the key alone.
func TestExpJoinWidth(t *testing.T) {
	src := os.Getenv("EXP3_DIR")
	if src == "" {
		t.Skip("experiment")
	}
	ctx := context.Background()
	for _, side := range []struct {
		file string
		rows int
	}{{"loader-small.duckdb", 100_000}, {"loader-big.duckdb", 1_000_000}} {
		dst := filepath.Join(t.TempDir(), side.file)
		if out, err := exec.Command("cp", filepath.Join(src, side.file), dst).CombinedOutput(); err != nil {
			t.Fatal(err, string(out))
		}
		d, err := load.Open(ctx, dst)
		if err != nil {
			t.Fatal(err)
		}
		_ = d.SetMemoryLimit(ctx, "128MB")
		c := d.Conn()
		run := func(q string) time.Duration {
			start := time.Now()
			if _, err := c.ExecContext(ctx, q); err != nil {
				t.Fatalf("%.80s: %v", q, err)
			}
			return time.Since(start)
		}
		run("CREATE TEMP TABLE stage AS SELECT * FROM users LIMIT 0")
		pb, err := probeBatch(side.rows, 100_000, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Append(ctx, "stage", pb); err != nil {
			t.Fatal(err)
		}
		pb.Release()
		variants := []struct{ name, q string }{
			{"five columns", `CREATE OR REPLACE TEMP TABLE m AS SELECT s.id, t.id IS NOT NULL AS e, t._content_hash, t._deleted_at, t._stale_since, t._run_id FROM stage s LEFT JOIN users t ON t.id = s.id`},
			{"key + rowid", `CREATE OR REPLACE TEMP TABLE m AS SELECT s.id, t.rowid AS rid FROM stage s LEFT JOIN users t ON t.id = s.id`},
			{"key semi", `CREATE OR REPLACE TEMP TABLE m AS SELECT t.rowid AS rid FROM users t SEMI JOIN stage s ON t.id = s.id`},
			{"hash key", `CREATE OR REPLACE TEMP TABLE m AS SELECT s.id, t.rowid AS rid FROM stage s LEFT JOIN users t ON hash(t.id) = hash(s.id) AND t.id = s.id`},
		}
		for round := 0; round < 3; round++ {
			for _, v := range variants {
				t.Logf("%d rows: %s: %v", side.rows, v.name, run(v.q))
			}
		}
		run(`CREATE OR REPLACE TEMP TABLE m AS SELECT t.rowid AS rid FROM users t SEMI JOIN stage s ON t.id = s.id`)
		for round := 0; round < 3; round++ {
			t.Logf("%d rows: fetch by rowid: %v", side.rows, run(`CREATE OR REPLACE TEMP TABLE m2 AS SELECT t.id, t._content_hash, t._deleted_at, t._stale_since, t._run_id FROM users t WHERE t.rowid IN (SELECT rid FROM m)`))
			t.Logf("%d rows: fetch by rowid join: %v", side.rows, run(`CREATE OR REPLACE TEMP TABLE m2 AS SELECT t.id, t._content_hash, t._deleted_at, t._stale_since, t._run_id FROM users t JOIN m ON t.rowid = m.rid`))
		}
		var plan string
		rows, _ := c.QueryContext(ctx, `EXPLAIN ANALYZE SELECT t.id, t._content_hash, t._deleted_at, t._stale_since, t._run_id FROM users t WHERE t.rowid IN (SELECT rid FROM m)`)
		for rows.Next() {
			var a, b string
			_ = rows.Scan(&a, &b)
			plan += b
		}
		rows.Close()
		t.Log(plan)
		d.Close()
	}
}
