package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/internal/fakes3"
	"github.com/marketsync/marketsync/internal/simcheck"
	"github.com/marketsync/marketsync/lake"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
)

// With a lake destination, every table's cursor lands in the lake with the data, equal to
// DuckDB's, across a full and an incremental run.
func TestRun_LakeGetsTheSameCommitsAndCursors(t *testing.T) {
	sim := startSim(t, apisim.Config{Seed: 14, Scale: 120, Profile: "fast"})
	dir := t.TempDir()
	lw, err := lake.Open(context.Background(), lake.Options{Catalog: "sql", URI: filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "lake")})
	if err != nil {
		t.Fatal(err)
	}
	defer lw.Close()
	cfg := testConfig(sim, 50, dir)
	cfg.ParquetDir, cfg.Lake, cfg.Streams = "", lw, []string{"users", "invoices", "charges"}
	for run := 0; run < 2; run++ {
		if _, err := Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		sim.Advance(3600e9)
	}
	db, err := load.Open(context.Background(), cfg.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cursors, err := db.Cursors(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range cursors {
		stream, partition, _ := cut(key)
		tb, _ := schemas.Lookup(stream)
		got, ok, err := lw.Cursor(context.Background(), tb, schemas.DefaultTenant, stream, partition)
		if err != nil || !ok || got.Value != want.Value {
			t.Errorf("%s/%s: lake cursor %+v (found %v, %v), DuckDB %+v", stream, partition, got, ok, err, want)
		}
	}
	if len(cursors) < 4 {
		t.Fatalf("only %d cursors", len(cursors))
	}
}

func cut(key string) (stream, partition string, ok bool) {
	for i := 0; i < len(key); i++ {
		if key[i] == 0 {
			return key[:i], key[i+1:], true
		}
	}
	return key, "", false
}

// lakeRows reads every lake table with iceberg-go's scan.
func lakeRows(t *testing.T, lw *lake.Writer) map[string][]arrow.RecordBatch {
	t.Helper()
	out := map[string][]arrow.RecordBatch{}
	for _, tb := range schemas.Tables {
		tbl, err := lw.Catalog().LoadTable(context.Background(), lw.Identifier(tb))
		if err != nil {
			continue // not synced
		}
		at, err := tbl.Scan().ToArrowTable(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		rdr := array.NewTableReader(at, 0)
		for rdr.Next() {
			rec := rdr.RecordBatch()
			rec.Retain()
			t.Cleanup(rec.Release)
			out[tb.Name] = append(out[tb.Name], rec)
		}
		rdr.Release()
		at.Release()
	}
	return out
}

func fullScans(sum Summary) map[string]bool {
	out := map[string]bool{}
	for _, s := range sum.Streams {
		out[s.Stream+"/"+s.Partition] = s.FullScan
	}
	return out
}

// A lake-configured run on a fresh machine (empty DuckDB file) resumes from the cursors
// committed in the lake, not from scratch; the lake's rows below those cursors are copied into
// the new DuckDB file first, so it has no gap: it equals the source row by row, and holds the
// rows the lake soft-deleted as soft-deleted.
func TestRun_FreshMachineResumesFromTheLakesCursorsWithoutAGap(t *testing.T) {
	skipUnderRace(t) // no concurrency of its own, 30-110 s under -race: .ci/run runs it without
	t.Parallel()     // the long tests overlap their waits when run without -race
	sim := startSim(t, apisim.Config{Seed: 15, Scale: 150, Profile: "fast", DeleteRate: 0.02})
	dir := t.TempDir()
	lw, err := lake.Open(context.Background(), lake.Options{Catalog: "sql", URI: filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "lake")})
	if err != nil {
		t.Fatal(err)
	}
	defer lw.Close()
	streams := []string{"users", "invoices", "charges"}
	first := testConfig(sim, 50, filepath.Join(dir, "machine-1"))
	first.ParquetDir, first.Lake, first.Streams = "", lw, streams
	for run := range 2 { // the second run a full refresh: it marks the deletions in the lake
		first.FullRefresh = run == 1
		if _, err := Run(context.Background(), first); err != nil {
			t.Fatal(err)
		}
		sim.Advance(2 * time.Hour)
	}
	first.FullRefresh = false
	fresh := first
	fresh.Warehouse = filepath.Join(dir, "machine-2", "w.duckdb")
	sum, err := Run(context.Background(), fresh)
	if err != nil {
		t.Fatal(err)
	}
	for unit, full := range fullScans(sum) {
		if full && unit != "locations/" { // locations has no cursor: always a full snapshot
			t.Errorf("%s: a full scan on the fresh machine, want a resume from the lake's cursor", unit)
		}
	}
	assertRows(t, fresh, sim, streams, true)
	// The fresh machine's cursors are the lake's.
	db, err := load.Open(context.Background(), fresh.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	cursors, err := db.Cursors(context.Background())
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	for key, local := range cursors {
		stream, partition, _ := cut(key)
		tb, _ := schemas.Lookup(stream)
		inLake, ok, err := lw.Cursor(context.Background(), tb, schemas.DefaultTenant, stream, partition)
		if err != nil || !ok || inLake.Encode() != local.Encode() {
			t.Errorf("%s/%s: DuckDB cursor %+v, lake %+v (found %v, %v)", stream, partition, local, inLake, ok, err)
		}
	}
	lakeTables := lakeRows(t, lw)
	diff, err := simcheck.CompareArrowRows(sim, lakeTables, streams, simcheck.RowOptions{UndetectedDeletes: true})
	if err != nil || diff != "" {
		t.Fatalf("lake differs from the source (%v):\n%s", err, diff)
	}
	// The soft-deleted rows came along: DuckDB has exactly the lake's deleted keys.
	total := assertSameDeletedKeys(t, fresh.Warehouse, lakeTables)
	if total == 0 {
		t.Fatal("no row was soft-deleted in the lake: the test checked nothing")
	}
	t.Logf("%d soft-deleted rows copied from the lake", total)
}

// assertSameDeletedKeys checks that the DuckDB file soft-deleted exactly the keys the lake's
// tables did; it returns how many there are.
func assertSameDeletedKeys(t *testing.T, warehouse string, lakeTables map[string][]arrow.RecordBatch) int {
	t.Helper()
	db, err := load.Open(context.Background(), warehouse)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	total := 0
	for name, recs := range lakeTables {
		tb, _ := schemas.Lookup(name)
		inLake := map[string]bool{}
		for _, r := range recs {
			pk, del := r.Column(r.Schema().FieldIndices(tb.PrimaryKey)[0]), r.Column(r.Schema().FieldIndices(schemas.ColDeletedAt)[0])
			for i := 0; i < int(r.NumRows()); i++ {
				if del.IsValid(i) {
					inLake[pk.ValueStr(i)] = true
				}
			}
		}
		rows, err := db.DB().QueryContext(context.Background(), "SELECT CAST("+load.Quote(tb.PrimaryKey)+" AS VARCHAR) FROM "+load.Quote(name)+" WHERE _deleted_at IS NOT NULL")
		if err != nil {
			t.Fatal(err)
		}
		inDuck := map[string]bool{}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				t.Fatal(err)
			}
			inDuck[k] = true
		}
		rows.Close()
		if fmt.Sprint(inDuck) != fmt.Sprint(inLake) {
			t.Errorf("%s: soft-deleted in DuckDB %v, in the lake %v", name, inDuck, inLake)
		}
		total += len(inLake)
	}
	return total
}

// A DuckDB file behind the lake (machine B synced, then machine A's full refresh marked
// deletions in the lake) takes the lake's rows when B runs again: a row B still has live, with
// the same content, but the lake soft-deleted, is soft-deleted in B too, not left live until
// B's own next full scan.
func TestRun_DuckDBBehindTheLakeTakesItsSoftDeletes(t *testing.T) {
	skipUnderRace(t) // no concurrency of its own, 30-110 s under -race: .ci/run runs it without
	t.Parallel()     // the long tests overlap their waits when run without -race
	sim := startSim(t, apisim.Config{Seed: 19, Scale: 80, Profile: "fast", DeleteRate: 0.03})
	dir := t.TempDir()
	lw, err := lake.Open(context.Background(), lake.Options{Catalog: "sql", URI: filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "lake")})
	if err != nil {
		t.Fatal(err)
	}
	defer lw.Close()
	streams := []string{"invoices", "charges"}
	b := testConfig(sim, 50, filepath.Join(dir, "machine-b"))
	b.ParquetDir, b.Lake, b.Streams = "", lw, streams
	if _, err := Run(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	sim.Advance(2 * time.Hour)
	a := b
	a.Warehouse, a.FullRefresh = filepath.Join(dir, "machine-a", "w.duckdb"), true
	if _, err := Run(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	lakeTables := lakeRows(t, lw)
	if _, err := Run(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	total := assertSameDeletedKeys(t, b.Warehouse, lakeTables)
	if total == 0 {
		t.Fatal("no row was soft-deleted in the lake: the test checked nothing")
	}
	t.Logf("%d rows soft-deleted in the lake are soft-deleted in the DuckDB file that was behind it", total)
}

// A DuckDB file with cursors but a lake without them (a lake added to an existing warehouse):
// the lake is the system of record, so the run scans in full and the lake gets every row.
func TestRun_LakeWithoutCursorsScansInFull(t *testing.T) {
	skipUnderRace(t) // one sync at a time, nothing concurrent of its own: .ci/run runs it without -race
	t.Parallel()     // the long tests overlap their waits when run without -race
	sim := startSim(t, apisim.Config{Seed: 16, Scale: 120, Profile: "fast"})
	dir := t.TempDir()
	streams := []string{"users", "invoices", "charges"}
	cfg := testConfig(sim, 50, dir)
	cfg.ParquetDir, cfg.Streams = "", streams
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	sim.Advance(2 * time.Hour)
	lw, err := lake.Open(context.Background(), lake.Options{Catalog: "sql", URI: filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "lake")})
	if err != nil {
		t.Fatal(err)
	}
	defer lw.Close()
	cfg.Lake = lw
	sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for unit, full := range fullScans(sum) {
		if !full {
			t.Errorf("%s: incremental from DuckDB's cursor, want a full scan (the lake has none)", unit)
		}
	}
	diff, err := simcheck.CompareArrowRows(sim, lakeRows(t, lw), streams, simcheck.RowOptions{})
	if err != nil || diff != "" {
		t.Fatalf("lake differs from the source (%v):\n%s", err, diff)
	}
}

// A sync through S3-compatible storage (a server started by the test): a full and an
// incremental run; iceberg-go's scan of the lake equals the source row by row.
func TestRun_LakeOnS3StorageEqualsTheSource(t *testing.T) {
	skipUnderRace(t) // no concurrency of its own, 30-110 s under -race: .ci/run runs it without
	t.Parallel()     // the long tests overlap their waits when run without -race
	sim := startSim(t, apisim.Config{Seed: 17, Scale: 60, Profile: "fast"})
	s3 := fakes3.Start(t, "lake")
	dir := t.TempDir()
	lw, err := lake.Open(context.Background(), lake.Options{Catalog: "sql", URI: filepath.Join(dir, "catalog.db"), Warehouse: "s3://lake/marketsync",
		Properties: map[string]string{"s3.endpoint": s3.URL, "s3.region": "us-east-1", "s3.access-key-id": "k", "s3.secret-access-key": "s"}})
	if err != nil {
		t.Fatal(err)
	}
	defer lw.Close()
	cfg := testConfig(sim, 50, dir)
	cfg.ParquetDir, cfg.Lake = "", lw
	for run := range 2 {
		if _, err := Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		diff, err := simcheck.CompareArrowRows(sim, lakeRows(t, lw), schemas.Streams, simcheck.RowOptions{UndetectedDeletes: run > 0})
		if err != nil || diff != "" {
			t.Fatalf("run %d: the lake on S3 differs from the source (%v):\n%s", run, err, diff)
		}
		sim.Advance(2 * time.Hour)
	}
	keys, err := s3.Keys("lake", "marketsync/")
	if err != nil || len(keys) < 20 {
		t.Fatalf("%d objects on S3 (%v): the lake's files are not there", len(keys), err)
	}
}
