package lake

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/transform"
)

// lakeDir is a test's catalog file and warehouse folder.
type lakeDir struct{ catalog, warehouse string }

func newLakeDir(t testing.TB) lakeDir {
	d := t.TempDir()
	return lakeDir{catalog: filepath.Join(d, "catalog.db"), warehouse: filepath.Join(d, "warehouse")}
}

func (d lakeDir) open(t testing.TB, mode string) *Writer {
	t.Helper()
	w, err := Open(context.Background(), Options{Catalog: "sql", URI: d.catalog, Warehouse: d.warehouse, Upsert: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func mustTable(t testing.TB, name string) *schemas.Table {
	t.Helper()
	tb, err := schemas.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

var epoch = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// chargeRec is a HighLevel charge of location loc; v varies its values (a later version).
func chargeRec(i int, loc string, v int) []byte {
	created := epoch.Add(time.Duration(i) * time.Minute)
	if i%7 == 3 {
		created = created.AddDate(-1, 0, 0) // a second year, for year-partitioned readers
	}
	return fmt.Appendf(nil, `{"chargeId":"ch-%06d","appId":"app-1","meterId":"m-%d","entityType":"location","entityId":%q,`+
		`"amountCharged":"%d.%02d","pricePerUnit":0.125,"units":"%d","currency":"USD","transactionType":"debit","refunded":%t,`+
		`"meta":{"eventId":"ev-%d","description":"use \u2014 %d","eventTime":%d,"extra":[1,2]},"createdAt":%q,"updatedAt":%d,"surprise":%d}`,
		i, i%3, loc, i+v, i%100, i%9+1, (i+v)%2 == 0, i, v, created.UnixMilli(), created.Format(time.RFC3339Nano),
		created.Add(time.Duration(v)*time.Hour).UnixMilli(), v)
}

// invoiceRec is an AppDirect invoice (integer key, string list, decimals, year partitions).
func invoiceRec(i int, status string) []byte {
	created := epoch.AddDate(0, 0, -i*40)
	return fmt.Appendf(nil, `{"invoiceId":%d,"referenceNumber":"R-%d","creationDate":%d,"dueDate":null,"status":%q,"currency":"EUR",`+
		`"total":"%d.5","orderIds":["o-%d","o-%d"],"company":{"id":"c-%d"},"user":{"id":"u-%d"},"invoiceLines":[{"amount":"1.10"}]}`,
		1000+i, i, created.UnixMilli(), status, i*10, i, i+1, i%4, i%5)
}

// batch converts records with the production Batcher.
func batch(t testing.TB, tb *schemas.Table, runID string, recs ...[]byte) arrow.RecordBatch {
	t.Helper()
	b := transform.NewBatcher(tb, memory.NewGoAllocator(), transform.Meta{RunID: runID, SyncedAt: epoch.UnixMicro()})
	defer b.Release()
	for _, r := range recs {
		if err := b.Add(r); err != nil {
			t.Fatalf("%s: %v", r, err)
		}
	}
	return b.Flush()
}

// row is one row as canonical text per column (NULL for null).
type row map[string]string

// canon renders value i of a the way the DuckDB reader query renders it.
func canon(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return "NULL"
	}
	switch a := a.(type) {
	case *array.String:
		return a.Value(i)
	case *array.LargeString:
		return a.Value(i)
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10)
	case *array.Boolean:
		return strconv.FormatBool(a.Value(i))
	case *array.Float64:
		return strconv.FormatFloat(a.Value(i), 'g', -1, 64)
	case *array.Timestamp:
		return strconv.FormatInt(int64(a.Value(i)), 10)
	case *array.Decimal128:
		return a.Value(i).ToString(a.DataType().(*arrow.Decimal128Type).Scale)
	case array.ListLike:
		start, end := a.ValueOffsets(i)
		var out []string
		for j := start; j < end; j++ {
			out = append(out, canon(a.ListValues(), int(j)))
		}
		b, _ := json.Marshal(out)
		return string(b)
	}
	return a.ValueStr(i)
}

// lakeColumns are the columns of tb's lake table: every column of its batches, tenant included.
func lakeColumns(tb *schemas.Table) []schemas.Column { return tb.AllColumns() }

// keyOf is a row's key in the maps of rows: its primary key for the default tenant's rows,
// "<tenant>/<primary key>" for another tenant's.
func keyOf(tb *schemas.Table, r row) string {
	if r[schemas.ColTenant] == schemas.DefaultTenant {
		return r[tb.PrimaryKey]
	}
	return r[schemas.ColTenant] + "/" + r[tb.PrimaryKey]
}

// rowsOf adds the rows of recs to m by key (keyOf).
func rowsOf(t testing.TB, tb *schemas.Table, m map[string]row, recs ...arrow.RecordBatch) map[string]row {
	t.Helper()
	if m == nil {
		m = map[string]row{}
	}
	for _, rec := range recs {
		for i := 0; i < int(rec.NumRows()); i++ {
			r := row{}
			for c, f := range rec.Schema().Fields() {
				r[f.Name] = canon(rec.Column(c), i)
			}
			m[keyOf(tb, r)] = r
		}
	}
	return m
}

// scanRows reads the table's current snapshot with iceberg-go's scan (not the writer's code
// path), failing on a key seen twice.
func scanRows(t testing.TB, w *Writer, tb *schemas.Table) map[string]row {
	t.Helper()
	return scanCatalog(t, w.Catalog(), w.Identifier(tb), tb)
}

// scanCatalog reads table id of cat with iceberg-go's scan (see scanRows).
func scanCatalog(t testing.TB, cat catalog.Catalog, id table.Identifier, tb *schemas.Table) map[string]row {
	t.Helper()
	tbl, err := cat.LoadTable(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]row{}
	if tbl.CurrentSnapshot() == nil {
		return out
	}
	_, itr, err := tbl.Scan().ToArrowRecords(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for rec, err := range itr {
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			r := row{}
			for c, f := range rec.Schema().Fields() {
				r[f.Name] = canon(rec.Column(c), i)
			}
			k := keyOf(tb, r)
			if _, dup := out[k]; dup {
				t.Fatalf("%s: key %s twice in the lake", tb.Name, k)
			}
			out[k] = r
		}
		rec.Release()
	}
	return out
}

// equalRows compares whole rows, naming the first difference.
func equalRows(t testing.TB, what string, got, want map[string]row) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d", what, len(got), len(want))
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
	})
	bad := 0
	for _, k := range keys {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: key %s missing", what, k)
			bad++
		} else {
			for c, v := range want[k] {
				if g[c] != v {
					t.Errorf("%s: key %s column %s = %q, want %q", what, k, c, g[c], v)
					bad++
				}
			}
			if len(g) != len(want[k]) {
				t.Errorf("%s: key %s has %d columns, want %d", what, k, len(g), len(want[k]))
			}
		}
		if bad > 10 {
			t.Fatalf("%s: too many differences", what)
		}
	}
}

// currentTable loads tb's table.
func currentTable(t testing.TB, w *Writer, tb *schemas.Table) *table.Table {
	t.Helper()
	tbl, err := w.Catalog().LoadTable(context.Background(), w.Identifier(tb))
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

func localPath(uri string) string { return strings.TrimPrefix(uri, "file://") }

// skipUnderRace skips a test that takes over 20 s under the race detector; .ci/run runs it
// without.
func skipUnderRace(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("long test: .ci/run runs it without -race")
	}
}
