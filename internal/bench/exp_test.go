package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
)

// Experiment (not CI): upsert strategies for one 25k-row probe batch against the 1M and 10M
// tables a full `syncer bench --only loader --dir EXP_DIR` left behind.
func TestExpUpsert(t *testing.T) {
	src := os.Getenv("EXP_DIR")
	if src == "" {
		t.Skip("experiment")
	}
	ctx := context.Background()
	users, _ := schemas.Lookup("users")
	var cols, sets []string
	for _, c := range users.AllColumns() {
		cols = append(cols, load.Quote(c.Name))
		if c.Name != users.PrimaryKey {
			sets = append(sets, fmt.Sprintf("%s = s.%s", load.Quote(c.Name), load.Quote(c.Name)))
		}
	}
	merge := func(from string) string {
		return fmt.Sprintf(`MERGE INTO users AS t USING (%s) AS s ON t.id = s.id WHEN MATCHED THEN UPDATE SET %s WHEN NOT MATCHED THEN INSERT (%s) VALUES (%s)`,
			from, strings.Join(sets, ", "), strings.Join(cols, ", "), "s."+strings.Join(cols, ", s."))
	}
	var excl []string
	for _, c := range users.AllColumns() {
		if c.Name != users.PrimaryKey {
			excl = append(excl, fmt.Sprintf("%s = excluded.%s", load.Quote(c.Name), load.Quote(c.Name)))
		}
	}
	onConflict := fmt.Sprintf("INSERT INTO users (%s) SELECT %s FROM stage ORDER BY id ON CONFLICT (id) DO UPDATE SET %s", strings.Join(cols, ", "), strings.Join(cols, ", "), strings.Join(excl, ", "))
	for _, side := range []struct {
		file string
		rows int
	}{{"loader-small.duckdb", 1_000_000}, {"loader-big.duckdb", 10_000_000}} {
		dst := filepath.Join(t.TempDir(), side.file)
		if out, err := exec.Command("cp", filepath.Join(src, side.file), dst).CombinedOutput(); err != nil {
			t.Fatal(err, string(out))
		}
		d, err := load.Open(ctx, dst)
		if err != nil {
			t.Fatal(err)
		}
		_ = d.SetMemoryLimit(ctx, "256MB")
		c := d.Conn()
		exec1 := func(q string) time.Duration {
			start := time.Now()
			if _, err := c.ExecContext(ctx, q); err != nil {
				t.Fatalf("%.60s: %v", q, err)
			}
			return time.Since(start)
		}
		exec1("CREATE TEMP TABLE stage AS SELECT * FROM users LIMIT 0")
		round := 100
		stage := func() {
			round++
			pb, err := probeBatch(side.rows, 1_000_000, round)
			if err != nil {
				t.Fatal(err)
			}
			exec1("DELETE FROM stage")
			if err := d.Append(ctx, "stage", pb); err != nil {
				t.Fatal(err)
			}
			pb.Release()
		}
		for _, v := range []struct{ name, q string }{
			{"merge from temp table", merge("SELECT * FROM stage")},
			{"merge from temp table, key-sorted", merge("SELECT * FROM stage ORDER BY id")},
			{"split: update existing, insert new", ""},
		} {
			var ts []time.Duration
			for r := 0; r < 3; r++ {
				stage()
				if v.q == "" {
					start := time.Now()
					exec1("BEGIN")
					exec1(fmt.Sprintf("UPDATE users AS t SET %s FROM stage AS s WHERE t.id = s.id", strings.Join(sets, ", ")))
					exec1(fmt.Sprintf("INSERT INTO users (%s) SELECT %s FROM stage s WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = s.id)", strings.Join(cols, ", "), strings.Join(cols, ", ")))
					exec1("COMMIT")
					ts = append(ts, time.Since(start))
					continue
				}
				ts = append(ts, exec1(v.q))
			}
			t.Logf("%d rows: %s: %v", side.rows, v.name, ts)
		}
		_ = d.SetMemoryLimit(ctx, "2GB") // the index does not fit 256MB
		el := exec1("CREATE UNIQUE INDEX users_id ON users (id)")
		var mem int64
		_ = c.QueryRowContext(ctx, "SELECT sum(memory_usage_bytes) FROM duckdb_memory()").Scan(&mem)
		t.Logf("%d rows: unique index built in %v; DuckDB memory %d MB", side.rows, el, mem>>20)
		var ts []time.Duration
		for r := 0; r < 3; r++ {
			stage()
			ts = append(ts, exec1(onConflict))
		}
		_ = c.QueryRowContext(ctx, "SELECT sum(memory_usage_bytes) FROM duckdb_memory()").Scan(&mem)
		t.Logf("%d rows: ART index + INSERT ... ON CONFLICT (key-sorted): %v; DuckDB memory %d MB", side.rows, ts, mem>>20)
		d.Close()
	}
}

// Experiment (not CI): Apply of probe batches into copies of the 1M and 10M loader tables.
func TestExpProbe(t *testing.T) {
	src := os.Getenv("EXP_PROBE_DIR")
	if src == "" {
		t.Skip("experiment")
	}
	ctx := context.Background()
	users, _ := schemas.Lookup("users")
	for _, side := range []struct {
		file string
		rows int
	}{{"loader-small.duckdb", 1_000_000}, {"loader-big.duckdb", 10_000_000}} {
		dst := filepath.Join(t.TempDir(), side.file)
		if out, err := exec.Command("cp", filepath.Join(src, side.file), dst).CombinedOutput(); err != nil {
			t.Fatal(err, string(out))
		}
		d, err := load.Open(ctx, dst)
		if err != nil {
			t.Fatal(err)
		}
		_ = d.SetMemoryLimit(ctx, "256MB")
		var ts []time.Duration
		for r := 0; r < 3; r++ {
			pb, err := probeBatch(side.rows, 1_000_000, 200+r)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			res, err := d.Apply(ctx, load.Write{Table: users, Batch: pb})
			ts = append(ts, time.Since(start))
			pb.Release()
			if err != nil || res.Inserted != 12500 || res.Updated != 12500 {
				t.Fatalf("%v %+v", err, res)
			}
		}
		t.Logf("%d rows: Apply of a probe batch: %v", side.rows, ts)
		d.Close()
	}
}

// Experiment (not CI): first load of 2M users through Apply; per-batch cost early and late.
func TestExpApply(t *testing.T) {
	if os.Getenv("EXP") == "" {
		t.Skip("experiment")
	}
	ctx := context.Background()
	batches, err := userBatches(1_000_000, loaderBatch)
	if err != nil {
		t.Fatal(err)
	}
	users, _ := schemas.Lookup("users")
	d, err := load.Open(ctx, filepath.Join(t.TempDir(), "x.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_ = d.SetMemoryLimit(ctx, "256MB")
	_ = d.Migrate(ctx, []*schemas.Table{users})
	var per []time.Duration
	var total time.Duration
	for pass := 0; pass < 2; pass++ {
		for _, b := range batches {
			rec := withKeySuffix(b, "id", fmt.Sprint(pass))
			start := time.Now()
			if _, err := d.Apply(ctx, load.Write{Table: users, Batch: rec}); err != nil {
				t.Fatal(err)
			}
			per = append(per, time.Since(start))
			total += per[len(per)-1]
			rec.Release()
		}
	}
	t.Logf("first load of 2M: total %v; first 10 batches %v each, last 10 %v each", total, meanOf(per[:10]), meanOf(per[len(per)-10:]))
}
