package load

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/bits-and-blooms/bloom/v3"

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
// table, and again whenever the table's row count is not the count the filter covers: rows
// inserted by any path that does not go through upsert (Append, SQL on Conn, a reset in this
// process) make it be rebuilt rather than trusted. The writer holds the file's lock, so no
// other process inserts rows meanwhile.
//
// Memory: sized for twice the table's rows at build time (at least minFilterKeys) at a 1 %
// false-positive rate, about 9.6 bits per key of capacity: 2.4 MB for a 1M-row table, 24 MB for
// a 10M-row one right after a build. When inserts fill it past its capacity it is rebuilt for
// twice the new count, so it stays within about 20 bits per key of the table.
type keyFilter struct {
	bloom    *bloom.BloomFilter
	seed     maphash.Seed // of the key hash: any, fixed for the filter's life
	capacity int64        // keys it was sized for
	added    int64        // keys added since the build, an upper bound of the new keys
	rows     int64        // rows of the table it covers, as committed
	// What building it cost, for KeyFilters.
	built     int64 // keys read when it was built
	buildTook time.Duration
	builds    int
	// Rows of batches it passed as new without the join, and rows it sent to the join.
	passed, probed int64
}

// testFilterBits, when not 0 (tests), sizes every filter at that many bits with 2 hash
// functions and never grows it: nearly every key is then a false positive.
var testFilterBits uint

// minFilterKeys is the smallest capacity a filter is sized for (about 300 KB): a first load
// then rebuilds it at 256k, 512k, 1M… rows, a scan of the keys each time.
const minFilterKeys = 256 << 10

// filterFP is the false-positive rate a filter has at its capacity.
const filterFP = 0.01

// KeyFilterInfo describes one table's key filter (debug logging, benchmarks).
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
			out = append(out, KeyFilterInfo{Table: t.Name, Rows: f.rows, Capacity: f.capacity, Bytes: int64(f.bloom.Cap() / 8),
				Builds: f.builds, BuildKeys: f.built, BuildTook: f.buildTook, Passed: f.passed, Probed: f.probed})
		}
	}
	return out
}

// forgetKeys makes the next write of table rebuild its key filter.
func (d *DuckDB) forgetKeys(table string) {
	if f := d.filters[table]; f != nil {
		f.rows = -1
	}
}

// keyFilterFor returns the table's key filter, built or rebuilt if needed, inside the write's
// transaction (its scan sees what the transaction sees). It returns nil, and the batch goes
// through the join whole, when the table's key columns are not strings.
func (d *DuckDB) keyFilterFor(ctx context.Context, t *schemas.Table) (*keyFilter, error) {
	if !stringKey(t) {
		return nil, nil
	}
	var rows int64
	if err := d.conn.QueryRowContext(ctx, "SELECT count(*) FROM "+Quote(t.Name)).Scan(&rows); err != nil {
		return nil, fmt.Errorf("counting the rows of %s: %w", t.Name, err)
	}
	f := d.filters[t.Name]
	if f != nil && f.rows == rows && f.built+f.added <= f.capacity {
		return f, nil
	}
	builds := 0
	if f != nil {
		builds = f.builds
	}
	start := time.Now()
	capacity := max(2*rows, minFilterKeys)
	f = &keyFilter{bloom: bloom.NewWithEstimates(uint(capacity), filterFP), seed: maphash.MakeSeed(), capacity: capacity, rows: rows, builds: builds + 1}
	if testFilterBits > 0 {
		f.bloom, f.capacity = bloom.New(testFilterBits, 2), 1<<62
	}
	delete(d.filters, t.Name) // a failed build leaves none
	rdr, err := d.arrow.QueryContext(ctx, fmt.Sprintf("SELECT %s, %s FROM %s", Quote(schemas.ColTenant), Quote(t.PrimaryKey), Quote(t.Name)))
	if err != nil {
		return nil, fmt.Errorf("reading the keys of %s: %w", t.Name, err)
	}
	defer rdr.Release()
	var buf [8]byte
	for rdr.Next() {
		rec := rdr.RecordBatch()
		tenants, ok1 := stringsOf(rec.Column(0))
		ids, ok2 := stringsOf(rec.Column(1))
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("reading the keys of %s: DuckDB returned them as %s and %s, not strings", t.Name, rec.Column(0).DataType(), rec.Column(1).DataType())
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			f.bloom.Add(keyBytes(&buf, f.seed, tenants(i), ids(i)))
			f.built++
		}
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

// keyBytes is the filter's element for one key: a 64-bit hash of the tenant and the key. Two
// keys with the same hash are one element (a false positive, never a false negative).
func keyBytes(buf *[8]byte, seed maphash.Seed, tenant, id string) []byte {
	var h maphash.Hash
	h.SetSeed(seed)
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(tenant)))
	h.Write(n[:])
	h.WriteString(tenant)
	h.WriteString(id)
	binary.LittleEndian.PutUint64(buf[:], h.Sum64())
	return buf[:]
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
