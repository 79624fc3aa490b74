package bench

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
)

// Experiment (not CI): first load of EXP2_ROWS users (copies of 100k) through Apply, logging
// each batch's time, DuckDB's memory (by tag) and the process RSS; EXP2_SET is run first
// (e.g. "SET checkpoint_threshold = '32MB'").
func TestExpFirstLoadTrace(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("EXP2_ROWS"))
	if n == 0 {
		t.Skip("experiment")
	}
	ctx := context.Background()
	base, err := userBatches(100_000, loaderBatch)
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
	if x := os.Getenv("EXP2_SET"); x != "" {
		if _, err := d.Conn().ExecContext(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	_ = d.Migrate(ctx, []*schemas.Table{users})
	var total time.Duration
	loaded := 0
	for pass := 0; loaded < n; pass++ {
		for _, b := range base {
			rec := b
			rec.Retain()
			if pass > 0 {
				rec.Release()
				rec = withKeySuffix(b, "id", strconv.Itoa(pass))
			}
			start := time.Now()
			res, err := d.Apply(ctx, load.Write{Table: users, Batch: rec})
			el := time.Since(start)
			total += el
			rec.Release()
			if err != nil || res.Inserted != loaderBatch {
				t.Fatal(err, res)
			}
			loaded += loaderBatch
			var mem int64
			_ = d.Conn().QueryRowContext(ctx, "SELECT sum(memory_usage_bytes) FROM duckdb_memory()").Scan(&mem)
			var tags string
			_ = d.Conn().QueryRowContext(ctx, "SELECT string_agg(tag || '=' || (memory_usage_bytes>>20), ' ') FROM duckdb_memory() WHERE memory_usage_bytes > 1<<20").Scan(&tags)
			t.Log(tags)
			rss, _ := procRSS(os.Getpid())
			if k := loaded / loaderBatch; k%4 == 0 || el > time.Second {
				t.Logf("%8d rows: batch %4.0f ms; duckdb %3d MB; rss %3d MB", loaded, ms(el), mem>>20, rss>>20)
			}
		}
	}
	_, hwm := procRSS(os.Getpid())
	t.Logf("first load of %d: %v in Apply (%.0f rows/s); peak RSS %d MB", n, total, float64(n)/total.Seconds(), hwm>>20)
}
