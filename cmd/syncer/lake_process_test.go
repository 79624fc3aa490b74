package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	"github.com/apache/iceberg-go/table"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/internal/simcheck"
	"github.com/marketsync/marketsync/lake"
	"github.com/marketsync/marketsync/schemas"
)

// go test ./cmd/syncer -run TestLakeShards -lake-kill-rounds 10 -v   (the long mode; CI runs 3)
var lakeKillRounds = flag.Int("lake-kill-rounds", 3, "rounds of concurrent shards with random SIGKILLs in TestLakeShards_*")

// lakeShardConfigs writes one config per shard: each its own DuckDB warehouse (one writer per
// file) and Parquet folder, all the same lake (SQL catalog on SQLite, local warehouse folder).
func lakeShardConfigs(t testing.TB, dir string, s *apisim.Server, shards int, edit func(string) string) []string {
	t.Helper()
	lake := fmt.Sprintf("lake:\n  catalog: sql\n  uri: %[1]s/lake/catalog.db\n  warehouse: %[1]s/lake/warehouse\n", dir)
	cfgs := make([]string, shards)
	for i := range shards {
		d := filepath.Join(dir, fmt.Sprintf("shard-%d", i))
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		cfgs[i] = writeConfig(t, d, s, func(c string) string {
			c = strings.Replace(c, "lead_company_id: c-1", "lead_company_id: c-1\n    rate_per_second: 160\n    companies_rate_per_second: 200", 1) +
				"batch_rows: 200\n" + lake
			if edit != nil {
				c = edit(c)
			}
			return c
		})
	}
	return cfgs
}

// lakeTables reads every table of the lake with iceberg-go's own scan (Scan().ToArrowTable),
// through a catalog handle of its own (the SQL catalog keys its rows by catalog name, so the
// same name): not the writer's code path.
func lakeTables(t testing.TB, catalogPath, warehouse string) map[string][]arrow.RecordBatch {
	t.Helper()
	db, err := sql.Open("sqlite", catalogPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cat, err := sqlcat.NewCatalog("marketsync", db, sqlcat.SQLite, iceberg.Properties{"warehouse": "file://" + warehouse})
	if err != nil {
		t.Fatal(err)
	}
	return catalogTables(t, cat)
}

// catalogTables reads every table of cat's marketsync namespace with iceberg-go's scan.
func catalogTables(t testing.TB, cat catalog.Catalog) map[string][]arrow.RecordBatch {
	t.Helper()
	ctx := context.Background()
	out := map[string][]arrow.RecordBatch{}
	for _, tb := range schemas.Tables {
		tbl, err := cat.LoadTable(ctx, table.Identifier{"marketsync", tb.Name})
		if errors.Is(err, catalog.ErrNoSuchTable) {
			continue
		}
		if err != nil {
			t.Fatalf("loading %s: %v", tb.Name, err)
		}
		at, err := tbl.Scan().ToArrowTable(ctx)
		if err != nil {
			t.Fatalf("scanning %s: %v", tb.Name, err)
		}
		rdr := array.NewTableReader(at, 0)
		for rdr.Next() {
			rec := rdr.RecordBatch()
			rec.Retain()
			out[tb.Name] = append(out[tb.Name], rec)
			t.Cleanup(rec.Release)
		}
		rdr.Release()
		at.Release()
	}
	return out
}

// assertLakeCursorsNotAhead checks, in a lake read by iceberg-go, that no stream partition's
// cursor (in its snapshot summaries) is ahead of the newest cursor-column value of its rows.
func assertLakeCursorsNotAhead(t *testing.T, dir string) {
	t.Helper()
	db, err := sql.Open("sqlite", dir+"/lake/catalog.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cat, err := sqlcat.NewCatalog("marketsync", db, sqlcat.SQLite, iceberg.Properties{"warehouse": "file://" + dir + "/lake/warehouse"})
	if err != nil {
		t.Fatal(err)
	}
	assertCatalogCursorsNotAhead(t, cat)
}

// assertCatalogCursorsNotAhead is assertLakeCursorsNotAhead on the tables of cat.
func assertCatalogCursorsNotAhead(t *testing.T, cat catalog.Catalog) {
	t.Helper()
	ctx := context.Background()
	for _, tb := range schemas.Tables {
		// A CursorFromServerClock cursor is the server's clock when a whole listing began,
		// committed with that listing's last rows: not a maximum of the data.
		if tb.Cursor == "" || tb.CursorFromServerClock {
			continue
		}
		tbl, err := cat.LoadTable(ctx, table.Identifier{"marketsync", tb.Name})
		if errors.Is(err, catalog.ErrNoSuchTable) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		cursors, err := lake.CursorsAt(tbl, schemas.DefaultTenant, tb.Name)
		if err != nil {
			t.Fatal(err)
		}
		newest := map[string]int64{} // partition -> max cursor column, microseconds
		if tbl.CurrentSnapshot() != nil {
			_, itr, err := tbl.Scan().ToArrowRecords(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for rec, err := range itr {
				if err != nil {
					t.Fatal(err)
				}
				cur := rec.Column(rec.Schema().FieldIndices(tb.Cursor)[0]).(*array.Timestamp)
				var part *array.String
				if tb.Partition != "" {
					part = rec.Column(rec.Schema().FieldIndices(tb.Partition)[0]).(*array.String)
				}
				for i := 0; i < cur.Len(); i++ {
					p := ""
					if part != nil {
						p = part.Value(i)
					}
					if cur.IsValid(i) {
						newest[p] = max(newest[p], int64(cur.Value(i)))
					}
				}
				rec.Release()
			}
		}
		for p, c := range cursors {
			if c.Value > newest[p] {
				t.Fatalf("%s %q: the lake's cursor %d is ahead of its rows (newest %d)", tb.Name, p, c.Value, newest[p])
			}
		}
	}
}

// assertLakeEqual compares every lake table, read independently, with the source by the
// whole-row oracle.
func assertLakeEqual(t *testing.T, dir string, s *apisim.Server, incremental bool, when string) {
	t.Helper()
	assertTablesEqual(t, lakeTables(t, dir+"/lake/catalog.db", dir+"/lake/warehouse"), s, incremental, when)
}

// assertTablesEqual compares lake tables read independently with the source.
func assertTablesEqual(t *testing.T, tables map[string][]arrow.RecordBatch, s *apisim.Server, incremental bool, when string) {
	t.Helper()
	diff, err := simcheck.CompareArrowRows(s, tables, schemas.Streams, simcheck.RowOptions{UndetectedDeletes: incremental})
	if err != nil || diff != "" {
		t.Fatalf("%s: the lake differs from the source (%v):\n%s", when, err, diff)
	}
	n := 0
	for _, recs := range tables {
		for _, r := range recs {
			n += int(r.NumRows())
		}
	}
	t.Logf("%s: %d lake rows in %d tables equal the source", when, n, len(tables))
}

// Done-when of issue 18: N shard processes sync concurrently from one simulator into the same
// Iceberg tables; random shards are SIGKILLed at random moments over several rounds (the source
// changing between them); then every shard runs again, incrementally and then with a full
// refresh. An independent reader (iceberg-go's scan) finds every table equal to the source,
// row by row.
func TestLakeShards_SIGKILLAndRerunEqualTheSourceByIndependentScan(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // mostly waiting (rate budgets, backoff, kills): the long tests overlap
	bin := binary(t)
	s := startSim(t, apisim.Config{Seed: 31, Scale: 800, Locations: 6, Profile: "realistic", Speed: 40})
	setSecrets(t)
	dir := t.TempDir()
	const shards = 3
	cfgs := lakeShardConfigs(t, dir, s, shards, nil)
	start := func(i int, args ...string) (*exec.Cmd, *lockedBuffer) {
		cmd := exec.Command(bin, append([]string{"sync", "--config", cfgs[i], "--shard", fmt.Sprintf("%d/%d", i, shards),
			"--progress", "never", "--log-level", "warn"}, args...)...)
		out := &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, out
	}
	rng := rand.New(rand.NewPCG(18, 18))
	killed, finished := 0, 0
	for round := range *lakeKillRounds {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i := range shards {
			kill := rng.IntN(3) != 0
			after := time.Duration(100+rng.IntN(2500)) * time.Millisecond
			cmd, _ := start(i)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			wg.Add(1)
			go func() {
				defer wg.Done()
				var timer <-chan time.Time
				if kill {
					timer = time.After(after)
				}
				select {
				case <-timer:
					_ = cmd.Process.Signal(syscall.SIGKILL)
					<-done
					mu.Lock()
					killed++
					mu.Unlock()
				case <-done:
					mu.Lock()
					finished++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		assertLakeCursorsNotAhead(t, dir)
		if round%2 == 1 {
			s.Advance(2 * time.Hour)
		}
	}
	if killed == 0 {
		t.Fatal("no shard was killed: make the sync longer")
	}
	// Shard 0 moves to a fresh machine: an empty DuckDB file, so it must resume from the lake's
	// cursors after copying its partitions' rows from the lake.
	for _, f := range []string{"w.duckdb", "w.duckdb.wal"} {
		if err := os.Remove(filepath.Join(dir, "shard-0", f)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	// Every shard again: incrementally, then with a full refresh (only full scans see deletions).
	for pass, args := range [][]string{nil, {"--full-refresh"}} {
		var wg sync.WaitGroup
		errs := make([]string, shards)
		copies := make([]int, shards)
		for i := range shards {
			cmd, out := start(i, append([]string{"--log-level", "info"}, args...)...)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := cmd.Wait(); err != nil {
					errs[i] = fmt.Sprintf("shard %d %v: %v\n%s", i, args, err, out.String())
				}
				copies[i] = strings.Count(out.String(), "copied the lake's rows")
			}()
		}
		wg.Wait()
		t.Logf("rerun %v: stream partitions whose DuckDB file was behind the lake (rows copied from it), per shard: %v", args, copies)
		if pass == 0 && copies[0] == 0 {
			t.Fatal("shard 0 on a fresh machine copied nothing from the lake")
		}
		assertLakeCursorsNotAhead(t, dir)
		if msg := strings.Join(errs, ""); msg != "" {
			t.Fatal(msg)
		}
		assertLakeEqual(t, dir, s, pass == 0, fmt.Sprintf("after %d SIGKILLs and a rerun %v", killed, args))
	}
	t.Logf("%d shard processes killed, %d finished on their own, over %d rounds", killed, finished, *lakeKillRounds)
	// The killed shards' and the lost attempts' files are unreferenced: remove-orphans (no writer
	// running now) takes them, and every table still equals the source.
	code, out, errOut := syncer(t, "lake", "remove-orphans", "--config", cfgs[0], "--older-than", "0s", "--no-writer-running")
	if code != exitOK {
		t.Fatalf("remove-orphans: exit %d\n%s%s", code, out, errOut)
	}
	removed := 0
	for _, m := range regexp.MustCompile(`removed (\d+) unreferenced files`).FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		removed += n
	}
	t.Logf("remove-orphans removed %d files left by killed shards and lost commit attempts", removed)
	assertLakeEqual(t, dir, s, false, "after remove-orphans")
}
