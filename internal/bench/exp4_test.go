package bench

import (
	"context"
	"database/sql/driver"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
)

// Experiment (not CI): what the users key filter's build costs on a table of EXP4_ROWS keys
// (written by SQL, ids shaped like the loader's), against reading the keys alone and against
// DuckDB hashing them; and what the per-batch count(*) check costs.
func TestExpKeyFilterBuild(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("EXP4_ROWS"))
	if n == 0 {
		t.Skip("experiment")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.duckdb")
	d, err := load.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	users, _ := schemas.Lookup("users")
	if err := d.Migrate(ctx, []*schemas.Table{users}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Conn().ExecContext(ctx, `INSERT INTO users (id, tenant, _content_hash) SELECT printf('%08x-7d1c-4a1b-9c7e-%012x', i, i), 'default', i FROM range(`+strconv.Itoa(n)+`) r(i); CHECKPOINT`); err != nil {
		t.Fatal(err)
	}
	d.Close()
	for round := 0; round < 2; round++ {
		d, err = load.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		_ = d.SetMemoryLimit(ctx, "128MB")
		start := time.Now()
		var c int64
		_ = d.Conn().QueryRowContext(ctx, "SELECT count(*) FROM users").Scan(&c)
		t.Logf("count(*) of %d rows: %v", c, time.Since(start))
		start = time.Now()
		_ = d.Conn().QueryRowContext(ctx, "SELECT count(*) FROM users").Scan(&c)
		t.Logf("count(*) again: %v", time.Since(start))
		var a *duckdb.Arrow
		_ = d.Conn().Raw(func(dc any) error {
			a, err = duckdb.NewArrowFromConn(dc.(driver.Conn))
			return err
		})
		for _, q := range []string{`SELECT tenant, id FROM users`, `SELECT hash(tenant, id) FROM users`} {
			start = time.Now()
			rdr, err := a.QueryContext(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var rows, chunks int64
			for rdr.Next() {
				rows += rdr.RecordBatch().NumRows()
				chunks++
			}
			rdr.Release()
			t.Logf("%s: %d rows in %d chunks, %v", q, rows, chunks, time.Since(start))
		}
		b, err := userBatches(1, 1)
		if err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		if _, err := d.Apply(ctx, load.Write{Table: users, Batch: withKeySuffix(b[0], "id", "x"+strconv.Itoa(round))}); err != nil {
			t.Fatal(err)
		}
		t.Logf("first Apply (builds the filter): %v; %+v", time.Since(start), d.KeyFilters())
		d.Close()
	}
}
