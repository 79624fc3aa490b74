package load

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/metadata"

	"github.com/marketsync/marketsync/schemas"
)

// A keyFilter is a Bloom filter of the (tenant, primary key) pairs one table holds, kept by the
// writer so that a batch's rows whose key is definitely not in the table are inserted without
// the classifying key join (which reads every key of the table). It may answer "maybe" for a
// key the table does not hold (a false positive: the row goes through the join, which finds it
// new), never "no" for a key it holds: every key of the table at build time is in it, and so
// is every key a write of this process inserts into the table (added before the INSERT runs;
// a key whose transaction rolls back only stays a false positive).
//
// The filter is built from one scan of the table's keys on the process's first write of the
// table, and again whenever another handle of this process on the file inserted rows into the
// table since this writer's last commit (see insertGens), any handle wrote around upsert since
// it was built (Append, a reset, handing out Conn or DB for SQL: see sideWrites), or the
// table's estimated_size moved since this writer's last commit (see appendedRows: it catches
// rows appended otherwise, unless deletes and a checkpoint bring it back): such rows make it be
// rebuilt rather than trusted. The writer holds the file's lock, so no other process writes
// meanwhile.
//
// The filter is Parquet's split-block Bloom filter (arrow-go's parquet/metadata, already a
// dependency): the 8 bits of a key are in one 32-byte block, so a test or an insert touches one
// cache line, where a classic Bloom filter (bits-and-blooms/bloom, k = 7) touches seven: 45 ns
// against 368 ns an insert at 1M keys, 93 against 893 at 10M (BENCHMARKS.md, issue 16).
//
// Memory: filterBitsPerKey (10) bits per key of capacity, rounded up to a power of two bytes,
// for a capacity of 1.25 times the table's rows at build time (at least minFilterKeys): 2 MB
// for a 1M-row table, 16 MB for a 10M-row one, between 12.5 and 25 bits per row of the table.
// At its capacity about 1 % of absent keys test positive. When inserts fill it past its
// capacity it is rebuilt for the new count.
type keyFilter struct {
	bloom    metadata.BloomFilterBuilder // Parquet's split-block Bloom filter, fed DuckDB's key hashes
	check    func(hash uint64) bool      // the same filter's test
	capacity int64                       // keys it was sized for
	added    int64                       // keys added since the build, an upper bound of the new keys
	rows     int64                       // rows of the table it covers, as committed
	appended int64                       // the table's appendedRows after the writer's last commit
	inserts  int64                       // the table's insert generation after the writer's last commit
	stale    bool                        // rows were written around it: rebuild before use
	gen      int64                       // the file's side-write generation it was built at
	// What building it cost, for KeyFilters.
	built     int64 // keys read when it was built
	buildTook time.Duration
	builds    int
	// Rows of batches it passed as new without the join, and rows it sent to the join.
	passed, probed int64
}

// testFilterBytes, when not 0 (tests), sizes every filter at that many bytes (at least one
// 32-byte block) and never grows it: nearly every key is then a false positive.
var testFilterBytes uint32

// minFilterKeys is the smallest capacity a filter is sized for (512 KB): a first load then
// rebuilds it at about 420k, 840k, 1.7M… rows, a scan of the keys each time.
const minFilterKeys = 256 << 10

// filterBitsPerKey is the filter's size per key of capacity.
const filterBitsPerKey = 10

// maxFilterBytes is the largest filter (arrow-go's limit too): 107M keys at 10 bits each.
const maxFilterBytes = 128 << 20

// KeyFilterInfo describes one table's key filter (benchmarks, tests).
type KeyFilterInfo struct {
	Table     string
	Rows      int64 // rows of the table it covers
	Capacity  int64 // keys it is sized for
	Bytes     int64 // memory of its bit set
	Builds    int   // times it was built in this process
	BuildKeys int64 // keys the last build read
	BuildTook time.Duration
	// Rows written since the last build whose key it proved new (no join), and rows it sent to
	// the classifying join (keys in the table, and false positives).
	Passed, Probed int64
}

// KeyFilters returns the key filters the writer holds, one per table it has written.
func (d *DuckDB) KeyFilters() []KeyFilterInfo {
	var out []KeyFilterInfo
	for _, t := range schemas.Tables {
		if f := d.filters[t.Name]; f != nil {
			out = append(out, KeyFilterInfo{Table: t.Name, Rows: f.rows, Capacity: f.capacity, Bytes: f.bloom.Size(),
				Builds: f.builds, BuildKeys: f.built, BuildTook: f.buildTook, Passed: f.passed, Probed: f.probed})
		}
	}
	return out
}

// forgetKeys makes the next write of table rebuild its key filter, in every handle of this
// process on the same file (they share DuckDB's database instance): a reset on one handle
// that deletes some keys and inserts as many others keeps the count another handle's filter
// trusts.
func (d *DuckDB) forgetKeys(table string) {
	if f := d.filters[table]; f != nil {
		f.stale = true
	}
	d.sideWrite()
}

// sideWrites counts, per database file, the writes of this process that may change a table's
// keys without going through upsert (a reset, Append, SQL run on Conn or DB): a filter built
// before the latest one is rebuilt, whatever the row count says.
var sideWrites sync.Map // fileKey -> *atomic.Int64

func (d *DuckDB) generation() *atomic.Int64 {
	g, _ := sideWrites.LoadOrStore(d.file, new(atomic.Int64))
	return g.(*atomic.Int64)
}

func (d *DuckDB) sideWrite() { d.generation().Add(1) }

// insertGens counts, per database file and table, the commits of this process that inserted
// rows into the table, by any handle: another handle's upserts are not side writes, and
// estimated_size alone does not show them, since a checkpoint that vacuums deleted row versions
// (of DELETEs, of list updates) lowers it and can bring it back to the value a filter read.
var insertGens sync.Map // [2]string{fileKey, table} -> *atomic.Int64

func (d *DuckDB) insertGeneration(table string) *atomic.Int64 {
	g, _ := insertGens.LoadOrStore([2]string{d.file, table}, new(atomic.Int64))
	return g.(*atomic.Int64)
}

// inserted records a commit that inserted rows into table. f is this handle's filter of table
// if this write checked it (keyFilterFor) in its transaction: it stays trusted when no other
// commit inserted into the table since; every other filter of the table is rebuilt at its next
// use.
func (d *DuckDB) inserted(table string, f *keyFilter) {
	g := d.insertGeneration(table)
	if f != nil && g.CompareAndSwap(f.inserts, f.inserts+1) {
		f.inserts++
		return
	}
	g.Add(1)
	if f != nil {
		f.stale = true
	}
}

// keyFilterFor returns the table's key filter, built or rebuilt if needed, inside the write's
// transaction (its scan sees what the transaction sees). It returns nil, and the batch goes
// through the join whole, when the table's key columns are not strings.
func (d *DuckDB) keyFilterFor(ctx context.Context, t *schemas.Table) (*keyFilter, error) {
	if !stringKey(t) {
		return nil, nil
	}
	// Not count(*): it reads the table (18-29 ms a batch at 10M rows, against 2-3 ms).
	appended, err := d.appendedRows(ctx, t)
	if err != nil {
		return nil, err
	}
	f := d.filters[t.Name]
	// A filter past its capacity is rebuilt larger, unless it is as large as it may be (a table
	// of over 100M rows): it then stays, with more false positives.
	gen, inserts := d.generation().Load(), d.insertGeneration(t.Name).Load()
	if f != nil && !f.stale && f.gen == gen && f.inserts == inserts && f.appended == appended && (f.built+f.added <= f.capacity || f.bloom.Size() >= maxFilterBytes) {
		return f, nil
	}
	var rows int64
	if err := d.conn.QueryRowContext(ctx, "SELECT count(*) FROM "+Quote(t.Name)).Scan(&rows); err != nil {
		return nil, fmt.Errorf("counting the rows of %s: %w", t.Name, err)
	}
	builds := 0
	if f != nil {
		builds = f.builds
	}
	start := time.Now()
	bytes := filterBytes(rows)
	if testFilterBytes > 0 {
		bytes = testFilterBytes
	}
	b := metadata.NewBloomFilter(bytes, maxFilterBytes, memory.DefaultAllocator)
	bf, ok := b.(metadata.BloomFilter)
	if !ok {
		return nil, fmt.Errorf("arrow-go's Bloom filter has no test (%T)", b)
	}
	f = &keyFilter{bloom: b, check: bf.CheckHash, capacity: b.Size() * 8 / filterBitsPerKey, rows: rows, appended: appended, builds: builds + 1, gen: gen, inserts: inserts}
	if testFilterBytes > 0 {
		f.capacity = 1 << 62
	}
	if old := d.filters[t.Name]; old != nil {
		old.bloom.Release()
	}
	delete(d.filters, t.Name) // a failed build leaves none
	// DuckDB hashes the keys (on both cores) and hands over 8 bytes a row: reading the key
	// strings alone into Go took 3 to 3.6 times as long (BENCHMARKS.md, issue 16).
	rdr, err := d.arrow.QueryContext(ctx, fmt.Sprintf("SELECT %s FROM %s AS t", keyHash(t, "t"), Quote(t.Name)))
	if err != nil {
		return nil, fmt.Errorf("reading the keys of %s: %w", t.Name, err)
	}
	defer rdr.Release()
	for rdr.Next() {
		rec := rdr.RecordBatch()
		hs, ok := rec.Column(0).(*array.Uint64)
		if !ok {
			return nil, fmt.Errorf("reading the keys of %s: DuckDB returned their hashes as %s", t.Name, rec.Column(0).DataType())
		}
		f.bloom.InsertBulk(hs.Uint64Values())
		f.built += int64(hs.Len())
	}
	if err := rdr.Err(); err != nil {
		return nil, fmt.Errorf("reading the keys of %s: %w", t.Name, err)
	}
	if f.built != rows {
		return nil, fmt.Errorf("reading the keys of %s: %d keys read, the table counts %d rows", t.Name, f.built, rows)
	}
	f.buildTook = time.Since(start)
	if d.filters == nil {
		d.filters = map[string]*keyFilter{}
	}
	d.filters[t.Name] = f
	return f, nil
}

// appendedRows is DuckDB's estimated_size of t's table: the rows appended to its row groups.
// Every committed insert adds to it, and so does an update DuckDB makes as a delete and an
// insert (e.g. of a list column); a DELETE leaves it, but a checkpoint that vacuums deleted row
// versions lowers it (100 rows checkpointed, their lists updated: 200; 100 inserted: 300;
// CHECKPOINT: 200 again), so an equal value does not prove nothing was appended. Read from the
// catalog, without reading the table.
func (d *DuckDB) appendedRows(ctx context.Context, t *schemas.Table) (int64, error) {
	var n int64
	err := d.conn.QueryRowContext(ctx, `SELECT estimated_size FROM duckdb_tables()
		WHERE database_name = current_database() AND schema_name = current_schema() AND table_name = ?`, t.Name).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("reading how many rows %s holds: %w", t.Name, err)
	}
	return n, nil
}

// filterBytes is the size of a new filter for a table of rows: filterBitsPerKey bits per key of
// 1.25 times the rows, rounded up to a power of two, at most maxFilterBytes (capped before the
// conversion: 2^32, a table past ~1.37G rows, would wrap to 0).
func filterBytes(rows int64) uint32 {
	return uint32(min(bitutil.NextPowerOf2(int((max(rows+rows/4, minFilterKeys)*filterBitsPerKey+7)/8)), maxFilterBytes))
}

// stringKey reports whether the table's tenant and primary key are strings (every declared
// table's are).
func stringKey(t *schemas.Table) bool {
	for _, c := range t.AllColumns() {
		if (c.Name == t.PrimaryKey || c.Name == schemas.ColTenant) && c.Kind != schemas.String {
			return false
		}
	}
	return true
}

// keyHash is the SQL expression of the 64-bit hash of the key (tenant, primary key) of row
// alias, the filter's element: the same expression over the table and over a batch's view.
// Two keys with the same hash are one element (a false positive, never a false negative).
func keyHash(t *schemas.Table, alias string) string {
	return fmt.Sprintf("hash(CAST(%[1]s.%[2]s AS VARCHAR), CAST(%[1]s.%[3]s AS VARCHAR))", alias, Quote(schemas.ColTenant), Quote(t.PrimaryKey))
}

// batchKeyHashes returns keyHash of every row of rec, by position, computed by DuckDB over a
// view of the batch's two key columns (no join).
func (d *DuckDB) batchKeyHashes(ctx context.Context, t *schemas.Table, rec arrow.RecordBatch) ([]uint64, error) {
	n := int(rec.NumRows())
	pos := make([]int32, n)
	for i := range pos {
		pos[i] = int32(i)
	}
	posArr := int32Array(pos)
	defer posArr.Release()
	keys, err := project(rec, t.Key(), []string{"_ms_pos"}, []arrow.Array{posArr})
	if err != nil {
		return nil, err
	}
	defer keys.Release()
	out := make([]uint64, n)
	got := 0
	err = d.withView(ctx, keys, "_keys_"+t.Name, func(view string) error {
		rdr, err := d.arrow.QueryContext(ctx, fmt.Sprintf("SELECT s._ms_pos, %s FROM %s AS s", keyHash(t, "s"), Quote(view)))
		if err != nil {
			return err
		}
		defer rdr.Release()
		for rdr.Next() {
			rec := rdr.RecordBatch()
			at, ok1 := rec.Column(0).(*array.Int32)
			hs, ok2 := rec.Column(1).(*array.Uint64)
			if !ok1 || !ok2 {
				return fmt.Errorf("DuckDB returned the batch's key hashes as %s, %s", rec.Column(0).DataType(), rec.Column(1).DataType())
			}
			for i, p := range at.Int32Values() {
				if p < 0 || int(p) >= n {
					return fmt.Errorf("a key hash for row %d of %d", p, n)
				}
				out[p] = hs.Value(i)
				got++
			}
		}
		return rdr.Err()
	})
	if err == nil && got != n {
		err = fmt.Errorf("%d key hashes for %d rows", got, n)
	}
	if err != nil {
		return nil, fmt.Errorf("hashing the batch's keys: %w", err)
	}
	return out, nil
}

// stringsOf returns the values of a string column (any of Arrow's string layouts), or false.
// A null reads as "", the caller checks IsNull.
func stringsOf(a arrow.Array) (func(i int) string, bool) {
	switch s := a.(type) {
	case *array.String:
		return s.Value, true
	case *array.LargeString:
		return s.Value, true
	case *array.StringView:
		return s.Value, true
	}
	return nil, false
}
