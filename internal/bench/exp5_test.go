package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
)

// Experiment (not CI): on a first-loaded table of EXP5_ROWS users, the UPDATE of a probe
// batch's 12.5k spread rows joined on the key (tenant, id), as the upsert does, against the
// same UPDATE joined on the rowid the classifying join could return; and the classifying
// join reading the key and state columns against the key and rowid alone. Each in a
// transaction rolled back, alternated.
func TestExpUpdateByRowid(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("EXP5_ROWS"))
	if n == 0 {
		t.Skip("experiment")
	}
	ctx := context.Background()
	base, err := userBatches(min(n, 1_000_000), loaderBatch)
	if err != nil {
		t.Fatal(err)
	}
	defer release(base)
	d, took, _, err := firstLoad(ctx, Options{Dir: t.TempDir()}, "x", base, n)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	t.Logf("first load of %d: %v", n, took)
	c := d.Conn()
	exec := func(q string) time.Duration {
		t.Helper()
		start := time.Now()
		if _, err := c.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return time.Since(start)
	}
	exec("CHECKPOINT")
	users, _ := schemas.Lookup("users")
	var sets []string
	for _, col := range users.Columns {
		if col.Name != "id" {
			sets = append(sets, fmt.Sprintf("%s = s.%s", load.Quote(col.Name), load.Quote(col.Name)))
		}
	}
	for round := 0; round < 3; round++ {
		pb, err := probeBatch(n, len(base)*loaderBatch, round)
		if err != nil {
			t.Fatal(err)
		}
		exec("CREATE OR REPLACE TEMP TABLE p AS SELECT * FROM users LIMIT 0")
		if err := d.Append(ctx, "p", pb); err != nil {
			t.Fatal(err)
		}
		pb.Release()
		exec("DELETE FROM p WHERE id NOT IN (SELECT id FROM users)") // the updates only
		exec("BEGIN")
		wide := exec(`CREATE TEMP TABLE m1 AS SELECT s.id, t.id AS tid, t._content_hash, t._deleted_at, t._stale_since, t._run_id FROM p s LEFT JOIN users t ON t.tenant = s.tenant AND t.id = s.id`)
		narrow := exec(`CREATE TEMP TABLE m2 AS SELECT s.id, t.rowid AS rid FROM p s LEFT JOIN users t ON t.tenant = s.tenant AND t.id = s.id`)
		exec("ROLLBACK")
		exec("CREATE OR REPLACE TEMP TABLE pr AS SELECT p.*, t.rowid AS rid FROM p JOIN users t ON t.tenant = p.tenant AND t.id = p.id")
		exec("BEGIN")
		byKey := exec(`UPDATE users AS t SET ` + strings.Join(sets, ", ") + ` FROM p AS s WHERE t.tenant = s.tenant AND t.id = s.id`)
		exec("ROLLBACK")
		exec("BEGIN")
		byRowid := exec(`UPDATE users AS t SET ` + strings.Join(sets, ", ") + ` FROM pr AS s WHERE t.rowid = s.rid`)
		exec("ROLLBACK")
		var rows int64
		_ = c.QueryRowContext(ctx, "SELECT count(*) FROM p").Scan(&rows)
		t.Logf("%d rows into %d: classify wide %v, key+rowid %v; UPDATE by key %v, by rowid %v", rows, n, wide, narrow, byKey, byRowid)
	}
}
