package load

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openLoaderCopy opens a copy (with its WAL) of a warehouse a loader bench left in src.
func openLoaderCopy(t *testing.T, src, file string) *DuckDB {
	t.Helper()
	dst := filepath.Join(t.TempDir(), file)
	for _, suffix := range []string{"", ".wal"} {
		if _, err := os.Stat(filepath.Join(src, file) + suffix); suffix != "" && err != nil {
			continue
		}
		if out, err := exec.Command("cp", filepath.Join(src, file)+suffix, dst+suffix).CombinedOutput(); err != nil {
			t.Fatal(err, string(out))
		}
	}
	d, err := Open(context.Background(), dst)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// timedExec returns a function that runs a statement on c (failing the test on an error) and
// returns how long it took.
func timedExec(t *testing.T, c *sql.Conn) func(q string) time.Duration {
	return func(q string) time.Duration {
		t.Helper()
		start := time.Now()
		if _, err := c.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%.80s: %v", q, err)
		}
		return time.Since(start)
	}
}

// Experiment (not CI): where one probe upsert's time goes in the 1M and 10M loader tables that
// `syncer bench --only loader --dir EXP16_DIR` leaves: the classifying join by strings against a
// stored key hash, the UPDATE of 12.5k spread rows by rowid against a DELETE and INSERT.
func TestExp16Classify(t *testing.T) {
	src := os.Getenv("EXP16_DIR")
	if src == "" {
		t.Skip("experiment")
	}
	ctx := context.Background()
	for _, file := range []string{"loader-small.duckdb", "loader-big.duckdb"} {
		d := openLoaderCopy(t, src, file)
		_ = d.SetMemoryLimit(ctx, "128MB")
		c := d.Conn()
		run := timedExec(t, c)
		var n int64
		_ = c.QueryRowContext(ctx, "SELECT count(*) FROM users").Scan(&n)
		// the probe: 12.5k existing keys spread over the table, 12.5k new
		run(`CREATE TEMP TABLE stage AS SELECT * FROM users USING SAMPLE 12500 ROWS`)
		run(`INSERT INTO stage SELECT * REPLACE (id || 'new' AS id) FROM stage`)
		run(`ALTER TABLE stage ADD COLUMN h UBIGINT`)
		run(`UPDATE stage SET h = hash(tenant, id)`)
		t.Logf("%d rows: adding _key_hash: %v", n, run(`ALTER TABLE users ADD COLUMN _key_hash UBIGINT`)+run(`UPDATE users SET _key_hash = hash(tenant, id)`)+run("CHECKPOINT"))
		variants := []struct{ name, q string }{
			{"current: left join on strings, state cols", `CREATE OR REPLACE TEMP TABLE m AS SELECT s.id, t.rowid, t._content_hash, t._deleted_at, t._stale_since, t._run_id FROM stage s LEFT JOIN users t ON t.tenant = s.tenant AND t.id = s.id`},
			{"left join on strings, rowid only", `CREATE OR REPLACE TEMP TABLE m AS SELECT s.id, t.rowid FROM stage s LEFT JOIN users t ON t.tenant = s.tenant AND t.id = s.id`},
			{"semi on strings, rowid", `CREATE OR REPLACE TEMP TABLE m AS SELECT t.rowid FROM users t SEMI JOIN stage s ON t.tenant = s.tenant AND t.id = s.id`},
			{"semi on stored hash, rowid", `CREATE OR REPLACE TEMP TABLE m AS SELECT t.rowid FROM users t SEMI JOIN stage s ON t._key_hash = s.h`},
			{"left join on stored hash + strings, state", `CREATE OR REPLACE TEMP TABLE m AS SELECT s.id, t.rowid, t._content_hash, t._deleted_at, t._stale_since, t._run_id FROM stage s LEFT JOIN users t ON t._key_hash = s.h AND t.tenant = s.tenant AND t.id = s.id`},
			{"two-step: hash semi then fetch by rowid", `CREATE OR REPLACE TEMP TABLE m AS WITH c AS (SELECT t.rowid AS rid FROM users t SEMI JOIN stage s ON t._key_hash = s.h) SELECT t.rowid, t.tenant, t.id, t._content_hash, t._deleted_at, t._stale_since, t._run_id FROM users t WHERE t.rowid IN (SELECT rid FROM c)`},
			{"scan only: count hash", `CREATE OR REPLACE TEMP TABLE m AS SELECT count(_key_hash) FROM users`},
			{"scan only: hash(tenant,id)", `CREATE OR REPLACE TEMP TABLE m AS SELECT sum(hash(tenant, id)) FROM users`},
		}
		run(`CREATE TEMP TABLE upd AS SELECT s.*, t.rowid AS rid FROM stage s JOIN users t ON t.tenant = s.tenant AND t.id = s.id`)
		run(`CREATE TEMP TABLE ins AS SELECT s.* FROM stage s ANTI JOIN users t ON t.tenant = s.tenant AND t.id = s.id`)
		var sets []string
		for _, col := range []string{"email", "user_name", "first_name", "last_name", "open_id", "external_id", "locale", "currency", "roles", "company", "company_id", "last_modified", "_content_hash", "_run_id", "_synced_at", "_extra", "_stale_since"} {
			sets = append(sets, col+" = s."+col)
		}
		for round := 0; round < 3; round++ {
			run("BEGIN")
			u := run(`UPDATE users AS t SET ` + strings.Join(sets, ", ") + ` FROM upd AS s WHERE t.rowid = s.rid`)
			cm := run("COMMIT")
			run("BEGIN")
			u1 := run(`UPDATE users AS t SET _run_id = s._run_id FROM upd AS s WHERE t.rowid = s.rid`)
			run("ROLLBACK")
			run("BEGIN")
			i := run(`INSERT INTO users BY NAME SELECT * EXCLUDE (h), h AS _key_hash FROM ins`)
			run("ROLLBACK")
			run("BEGIN")
			dl := run(`DELETE FROM users WHERE rowid IN (SELECT rid FROM upd)`)
			dl2 := run(`INSERT INTO users BY NAME SELECT * EXCLUDE (h, rid), h AS _key_hash FROM upd`)
			run("ROLLBACK")
			t.Logf("%d rows: DELETE 12.5k spread by rowid %v + INSERT them %v", n, dl, dl2)
			c := run("SELECT count(*) FROM users")
			t.Logf("%d rows: UPDATE 12.5k spread by rowid, 7 cols %v (commit %v), 1 col %v; INSERT 12.5k %v; count %v", n, u, cm, u1, i, c)
		}
		for round := 0; round < 3; round++ {
			for _, v := range variants {
				t.Logf("%d rows: %s: %v", n, v.name, run(v.q))
			}
		}
		for _, q := range []string{variants[0].q, variants[5].q} {
			rows, err := c.QueryContext(ctx, "EXPLAIN ANALYZE "+q[len("CREATE OR REPLACE TEMP TABLE m AS "):])
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var a, b string
				_ = rows.Scan(&a, &b)
				t.Log(b)
			}
			rows.Close()
		}
		d.Close()
	}
}
