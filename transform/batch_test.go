package transform

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/marketsync/marketsync/schemas"
)

type mappingFile struct {
	Table string `json:"table"`
	Cases []struct {
		Name   string          `json:"name"`
		Record json.RawMessage `json:"record"`
		Column string          `json:"column"`
		Want   *string         `json:"want"`
		Error  string          `json:"error"`
	} `json:"cases"`
}

// cellString renders one cell for comparison (timestamps as RFC 3339 UTC).
func cellString(col arrow.Array, i int) *string {
	if col.IsNull(i) {
		return nil
	}
	var s string
	switch a := col.(type) {
	case *array.Timestamp:
		s = a.Value(i).ToTime(arrow.Microsecond).UTC().Format("2006-01-02T15:04:05.999999Z07:00")
	case *array.Decimal128:
		s = a.Value(i).ToString(10)
	case *array.List:
		vals := a.ListValues().(*array.String)
		start, end := a.ValueOffsets(i)
		var parts []string
		for k := start; k < end; k++ {
			parts = append(parts, vals.Value(int(k)))
		}
		s = fmt.Sprint(parts)
	default:
		s = a.ValueStr(i)
	}
	return &s
}

// TestTypeMappings runs every case in testdata/mappings: each record is converted alone and the
// named column compared, or the error checked. The allocator proves every buffer is released.
func TestTypeMappings(t *testing.T) {
	files, _ := filepath.Glob("testdata/mappings/*.json")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		var mf mappingFile
		if err := json.Unmarshal(raw, &mf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		table, err := schemas.Lookup(mf.Table)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range mf.Cases {
			t.Run(filepath.Base(f)+"/"+c.Name, func(t *testing.T) {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				b := NewBatcher(table, mem, Meta{RunID: "r", SyncedAt: 1})
				defer b.Release()
				err := b.Add(c.Record)
				if c.Error != "" {
					if err == nil || !strings.Contains(err.Error(), c.Error) {
						t.Fatalf("error %v, want one containing %q", err, c.Error)
					}
					if b.Len() != 0 {
						t.Fatalf("a rejected record left %d rows in the batch", b.Len())
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				rec := b.Flush()
				defer rec.Release()
				idx := rec.Schema().FieldIndices(c.Column)
				if len(idx) != 1 {
					t.Fatalf("no column %s", c.Column)
				}
				got := cellString(rec.Column(idx[0]), 0)
				switch {
				case c.Want == nil && got != nil:
					t.Fatalf("got %q, want NULL", *got)
				case c.Want != nil && got == nil:
					t.Fatalf("got NULL, want %q", *c.Want)
				case c.Want != nil && *got != *c.Want:
					t.Fatalf("got %q, want %q", *got, *c.Want)
				}
			})
		}
	}
}

func TestFieldError_NamesStreamRecordFieldValue(t *testing.T) {
	table, _ := schemas.Lookup("leads")
	b := NewBatcher(table, memory.NewGoAllocator(), Meta{})
	defer b.Release()
	err := b.Add([]byte(`{"id":"lead-42","createdOn":"not a date"}`))
	var fe *FieldError
	if !asFieldError(err, &fe) || fe.Stream != "leads" || fe.RecordID != "lead-42" || fe.Field != "created_on" || !strings.Contains(fe.Value, "not a date") {
		t.Fatalf("error %v (%+v): want stream, record id, field and value", err, fe)
	}
}

func asFieldError(err error, fe **FieldError) bool {
	e, ok := err.(*FieldError)
	*fe = e
	return ok
}

func TestBatcher_ReusesBuildersAndRejectsDuplicateKeys(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	table, _ := schemas.Lookup("users")
	b := NewBatcher(table, mem, Meta{RunID: "run", SyncedAt: 5})
	defer b.Release()
	for batch := 0; batch < 3; batch++ {
		for i := 0; i < 100; i++ {
			if err := b.Add([]byte(fmt.Sprintf(`{"uuid":"u%d","email":"e%d","roles":["ROLE_USER"],"lastModified":%d}`, i, i, 1700000000000+i))); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Add([]byte(`{"uuid":"u7"}`)); err != ErrDuplicateKey {
			t.Fatalf("duplicate key in a batch: %v, want ErrDuplicateKey", err)
		}
		rec := b.Flush()
		if rec.NumRows() != 100 {
			t.Fatalf("batch %d: %d rows", batch, rec.NumRows())
		}
		run := rec.Column(rec.Schema().FieldIndices("_run_id")[0]).(*array.String)
		if run.Value(99) != "run" {
			t.Fatalf("_run_id = %q", run.Value(99))
		}
		rec.Release()
	}
	if b.Flush() != nil {
		t.Fatal("empty flush returned a batch")
	}
}

// addAll adds records to one Batcher and returns the flushed batch; a record that must fail is
// marked with a leading '!'.
func addAll(t *testing.T, b *Batcher, recs ...string) arrow.RecordBatch {
	t.Helper()
	for _, r := range recs {
		wantErr := strings.HasPrefix(r, "!")
		r = strings.TrimPrefix(r, "!")
		before := b.Len()
		err := b.Add([]byte(r))
		var fe *FieldError
		switch {
		case wantErr && !asFieldError(err, &fe):
			t.Fatalf("%s: got %v, want a *FieldError", r, err)
		case wantErr && b.Len() != before:
			t.Fatalf("%s: rejected but left a row pending", r)
		case !wantErr && err != nil:
			t.Fatalf("%s: %v", r, err)
		}
	}
	return b.Flush()
}

// cells renders every cell of the named column.
func cells(t *testing.T, rec arrow.RecordBatch, name string) []string {
	t.Helper()
	idx := rec.Schema().FieldIndices(name)
	if len(idx) != 1 {
		t.Fatalf("no column %s", name)
	}
	var out []string
	for i := 0; i < int(rec.NumRows()); i++ {
		if s := cellString(rec.Column(idx[0]), i); s != nil {
			out = append(out, *s)
		} else {
			out = append(out, "NULL")
		}
	}
	return out
}

func newTestBatcher(t *testing.T, table string) *Batcher {
	t.Helper()
	tb, err := schemas.Lookup(table)
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	b := NewBatcher(tb, mem, Meta{RunID: "r", SyncedAt: 1})
	t.Cleanup(b.Release)
	return b
}

func wantCells(t *testing.T, rec arrow.RecordBatch, name string, want ...string) {
	t.Helper()
	if got := cells(t, rec, name); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("%s = %q, want %q", name, got, want)
	}
}

// The defect this guards: a false after a true in the same batch stayed true, because the value
// slot kept the true's bit. One Batcher, many records, as the pipeline drives it.
func TestBatcher_BoolFalseAfterTrueInOneBatch(t *testing.T) {
	b := newTestBatcher(t, "companies")
	rec := addAll(t, b,
		`{"uuid":"a","enabled":true,"vendor":true}`,
		`{"uuid":"b","enabled":false,"vendor":"false"}`,
		`{"uuid":"c","vendor":"true"}`,
		`{"uuid":"d","enabled":null,"vendor":false}`,
		`!{"uuid":"e","enabled":true,"vendor":1}`,
		`{"uuid":"f","enabled":"false"}`,
	)
	defer rec.Release()
	wantCells(t, rec, "enabled", "true", "false", "NULL", "NULL", "false")
	wantCells(t, rec, "vendor", "true", "false", "true", "false", "NULL")
}

// No part of a record's scratch state reaches the next one: values of every kind, nested
// columns, _extra, and the state a record rejected half-way leaves behind.
func TestBatcher_NoStateSurvivesIntoTheNextRecord(t *testing.T) {
	b := newTestBatcher(t, "invoices")
	rec := addAll(t, b,
		`{"invoiceId":1,"total":"1.5","creationDate":1534531428,"orderIds":["a","b"],"company":{"-id":"c1"},"x":1}`,
		`{"invoiceId":2}`,
		`!{"invoiceId":3,"total":"7.25","orderIds":["z"],"company":{"-id":"c3"},"y":2,"creationDate":"yesterday"}`,
		`{"invoiceId":4,"total":null,"orderIds":[],"company":{"-href":"h"}}`,
		`{"invoiceId":5,"orderIds":[null],"company":null}`,
	)
	defer rec.Release()
	wantCells(t, rec, "invoice_id", "1", "2", "4", "5")
	wantCells(t, rec, "total", "1.5000000000", "NULL", "NULL", "NULL")
	wantCells(t, rec, "creation_date", "2018-08-17T18:43:48Z", "NULL", "NULL", "NULL")
	wantCells(t, rec, "order_ids", "[a b]", "NULL", "[]", "[]")
	wantCells(t, rec, "company_id", "c1", "NULL", "NULL", "NULL")
	wantCells(t, rec, "_extra", `{"x":1}`, "NULL", "NULL", "NULL")

	c := newTestBatcher(t, "companies")
	rec2 := addAll(t, c,
		`{"uuid":"a","enabled":true,"address":{"city":"X"},"dailyPurchaseLimitOverrideAmt":0.30000000000000004}`,
		`!{"uuid":"b","enabled":true,"address":{"city":"Y"},"creationDate":"bad"}`,
		`{"uuid":"c","enabled":false,"address":{},"dailyPurchaseLimitOverrideAmt":"1"}`,
		`{"uuid":"d"}`,
	)
	defer rec2.Release()
	wantCells(t, rec2, "enabled", "true", "false", "NULL")
	wantCells(t, rec2, "address_city", "X", "NULL", "NULL")
	wantCells(t, rec2, "daily_purchase_limit_override_amt", "0.3000000000", "1.0000000000", "NULL")
	if c.Rounded() != 1 {
		t.Errorf("Rounded() = %d, want 1", c.Rounded())
	}
}

// A repeated member replaces the earlier one entirely, as encoding/json decodes it: also an
// object whose nested columns the later copy lacks, a bad value a later copy replaces, and
// unknown members in _extra.
func TestBatcher_RepeatedMemberLastWins(t *testing.T) {
	b := newTestBatcher(t, "leads")
	rec := addAll(t, b,
		`{"id":"a","status":"OPEN","status":"WON","customer":{"company":{"name":"Acme"}},"customer":null}`,
		`{"id":"b","customer":{"company":{"name":"Old","country":"US"},"company":{"name":"New"}}}`,
		`{"id":"c","createdOn":"not a date","createdOn":1534531428000,"x":1,"y":2,"\u0078":3}`,
		`!{"id":"d","createdOn":1534531428000,"createdOn":"not a date"}`,
	)
	defer rec.Release()
	wantCells(t, rec, "status", "WON", "NULL", "NULL")
	wantCells(t, rec, "customer", "NULL", `{"company":{"name":"Old","country":"US"},"company":{"name":"New"}}`, "NULL")
	wantCells(t, rec, "customer_company_name", "NULL", "New", "NULL")
	wantCells(t, rec, "customer_country", "NULL", "NULL", "NULL")
	wantCells(t, rec, "created_on", "NULL", "NULL", "2018-08-17T18:43:48Z")
	wantCells(t, rec, "_extra", "NULL", "NULL", `{"y":2,"\u0078":3}`)
}

// Member names compare unescaped, at the top level and in nested paths.
func TestBatcher_EscapedKeysMapToTheirColumns(t *testing.T) {
	b := newTestBatcher(t, "leads")
	rec := addAll(t, b,
		`{"\u0069d":"a","\u0063ustomer":{"c\u006fmpany":{"\u006e\u0061\u006d\u0065":"Acme"}},"cre\u0061tedOn":1534531428}`,
		`{"id":"b","customer":{"company":{"name":"Plain"}}}`,
		`{"id":"c","\u00e9":1,"\"q\"":2}`,
	)
	defer rec.Release()
	wantCells(t, rec, "id", "a", "b", "c")
	wantCells(t, rec, "customer_company_name", "Acme", "Plain", "NULL")
	wantCells(t, rec, "created_on", "2018-08-17T18:43:48Z", "NULL", "NULL")
	wantCells(t, rec, "_extra", "NULL", "NULL", `{"\u00e9":1,"\"q\"":2}`)
}

// Invalid JSON anywhere in a record, also deep inside a JSON column or an unknown member (which
// a bracket-matching skip lets through, and DuckDB's JSON type rejects, failing the MERGE of the
// whole batch), makes the record a *FieldError; the next record is exact.
func TestBatcher_InvalidNestedJSONIsAFieldError(t *testing.T) {
	b := newTestBatcher(t, "leads")
	rec := addAll(t, b,
		`!{"id":"a","customer":{"x":[}}`,
		`!{"id":"a","customer":{"company":{"name":"A"},"n":01}}`,
		`!{"id":"a","recipient":{"n":1.}}`,
		`!{"id":"a","recipient":["\x"]}`,
		`!{"id":"a","recipient":{"a" 1}}`,
		`!{"id":"a","unknown":{"x":[}}`,
		`!{"id":"a","unknown":[1,]}`,
		`!{"id":"a","unknown":-}`,
		`!{"id":"a","status":01}`,
		`!{"id":"a"} trailing`,
		"!{\"id\":\"a\",\"notes\":\"tab\tinside\"}",
		"!{\"id\":\"a\",\"x\\u0000\":\"\xff\"}",
		`{"id":"b","customer":{"x":[1,{"y":"z"}]},"recipient":{"n":1.5e3}}`,
	)
	defer rec.Release()
	wantCells(t, rec, "id", "b")
	wantCells(t, rec, "customer", `{"x":[1,{"y":"z"}]}`)
	wantCells(t, rec, "recipient", `{"n":1.5e3}`)
}

// An escaped lone surrogate is valid JSON that decoders read as U+FFFD but DuckDB's JSON type
// rejects: stored JSON text gets \ufffd instead, strings get U+FFFD.
func TestBatcher_LoneSurrogatesStoredAsReplacement(t *testing.T) {
	b := newTestBatcher(t, "leads")
	rec := addAll(t, b,
		`{"id":"a","notes":"x\ud800","customer":{"company":{"name":"\udc00"},"k":"\ud83d\ude00"},"u\ud800":"\ud800\\ud800"}`,
	)
	defer rec.Release()
	wantCells(t, rec, "notes", "x\uFFFD")
	wantCells(t, rec, "customer_company_name", "\uFFFD")
	wantCells(t, rec, "customer", `{"company":{"name":"\ufffd"},"k":"\ud83d\ude00"}`)
	wantCells(t, rec, "_extra", `{"u\ufffd":"\ufffd\\ud800"}`)
}

// Rounded counts the decimal values rounded in the rows added: not those of rejected records,
// nor twice a record re-added after ErrDuplicateKey.
func TestBatcher_RoundedCountsValuesInRowsAdded(t *testing.T) {
	b := newTestBatcher(t, "charges")
	for _, r := range []string{
		`{"chargeId":"a","amountCharged":0.30000000000000004,"pricePerUnit":"0.1","units":"1.00000000005"}`,
		`{"chargeId":"b","amountCharged":"0.12345678900000000"}`,
		`{"chargeId":"c","amountCharged":0.30000000000000004,"createdAt":"bad"}`,
		`{"chargeId":"d","units":1e-20,"units":2}`,
	} {
		_ = b.Add([]byte(r))
	}
	if got := b.Rounded(); got != 2 {
		t.Fatalf("Rounded() = %d, want 2 (0.30000000000000004 and 1.00000000005)", got)
	}
	if err := b.Add([]byte(`{"chargeId":"a","amountCharged":0.30000000000000004}`)); err != ErrDuplicateKey {
		t.Fatalf("got %v, want ErrDuplicateKey", err)
	}
	if got := b.Rounded(); got != 2 {
		t.Fatalf("Rounded() = %d after a duplicate, want 2", got)
	}
	b.Flush().Release()
	if err := b.Add([]byte(`{"chargeId":"a","amountCharged":0.30000000000000004}`)); err != nil || b.Rounded() != 3 {
		t.Fatalf("re-added: %v, Rounded() = %d, want 3", err, b.Rounded())
	}
	b.Flush().Release()
}

// Steady state, Add allocates once per record (the primary key kept for the duplicate check),
// never per value: escaped names, nested walks and checks included.
func TestBatcher_AddAllocatesOnlyTheKey(t *testing.T) {
	recs, _ := benchLeads(400)
	for i, at := range []int{250, 350} { // seen once while warming up, then measured
		recs[at] = fmt.Appendf(nil, `{"\u0069d":"esc-%d","customer":{"c\u006fmpany":{"name":"A\u00e9"}},"notes":"x\ud800","y":{"\ud800":1}}`, i)
	}
	tb, _ := schemas.Lookup("leads")
	b := NewBatcher(tb, memory.NewGoAllocator(), Meta{RunID: "r"})
	defer b.Release()
	for _, r := range recs[:200] {
		if err := b.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	b.Flush().Release() // the next batch is reserved at this size
	for _, r := range recs[200:300] {
		if err := b.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	i := 300
	if n := testing.AllocsPerRun(90, func() {
		if err := b.Add(recs[i]); err != nil {
			t.Fatal(err)
		}
		i++
	}); n > 1 {
		t.Fatalf("Add allocates %v times per record, want at most 1", n)
	}
	b.Flush().Release()
}

// _extra keeps the last of each repeated unknown name also past the few a linear scan serves.
func TestBatcher_ManyRepeatedUnknownMembers(t *testing.T) {
	b := newTestBatcher(t, "locations")
	var parts, want []string
	for i := 0; i < 40; i++ {
		parts = append(parts, fmt.Sprintf(`"k%d":%d`, i%25, i))
	}
	for i := 15; i < 40; i++ {
		want = append(want, fmt.Sprintf(`"k%d":%d`, i%25, i))
	}
	rec := addAll(t, b, `{"_id":"a",`+strings.Join(parts, ",")+`}`)
	defer rec.Release()
	wantCells(t, rec, "_extra", "{"+strings.Join(want, ",")+"}")
}

// Nested members are predicted by position from the previous record (no key check or lookup
// when the raw name repeats): a prediction must carry everything the check found, so a
// predicted name escaping a lone surrogate still gets the enclosing JSON text repaired, and a
// shifted, escaped or new name is looked up again.
func TestBatcher_NestedMemberPredictionKeepsWhatTheCheckFound(t *testing.T) {
	b := newTestBatcher(t, "leads")
	rec := addAll(t, b,
		`{"id":"a","customer":{"k\ud800":1,"company":{"name":"n1","country":"US"}}}`,
		`{"id":"b","customer":{"k\ud800":2,"company":{"name":"n2","country":"FR"}}}`,
		`{"id":"c","customer":{"company":{"country":"DE","name":"n3"},"k\ud800":3}}`,
		`{"id":"d","customer":{"\u0063ompany":{"\u006eame":"n4"},"contact":{"email":"e4"}}}`,
		`{"id":"e","customer":{"company":{"name":"n5"},"contact":{"email":"e5"}}}`,
	)
	defer rec.Release()
	wantCells(t, rec, "customer",
		`{"k\ufffd":1,"company":{"name":"n1","country":"US"}}`,
		`{"k\ufffd":2,"company":{"name":"n2","country":"FR"}}`,
		`{"company":{"country":"DE","name":"n3"},"k\ufffd":3}`,
		`{"\u0063ompany":{"\u006eame":"n4"},"contact":{"email":"e4"}}`,
		`{"company":{"name":"n5"},"contact":{"email":"e5"}}`)
	wantCells(t, rec, "customer_company_name", "n1", "n2", "n3", "n4", "n5")
	wantCells(t, rec, "customer_country", "US", "FR", "DE", "NULL", "NULL")
	wantCells(t, rec, "customer_email", "NULL", "NULL", "NULL", "e4", "e5")
}

// A batch never holds more text in one column than arrow's 32-bit offsets address: the record
// that would pass the bound is refused with an error naming the stream and what to change,
// nothing of it is appended, and after a flush it is added.
func TestBatcher_RefusesARecordPastTheTextBound(t *testing.T) {
	defer func(old int) { maxBatchText = old }(maxBatchText)
	maxBatchText = 200
	b := newTestBatcher(t, "leads")
	recs := []string{`{"id":"a","notes":"` + strings.Repeat("x", 60) + `"}`, `{"id":"b","notes":"y"}`, `{"id":"c","notes":"` + strings.Repeat("z", 60) + `"}`}
	for _, r := range recs[:2] {
		if err := b.Add([]byte(r)); err != nil {
			t.Fatal(err)
		}
	}
	err := b.Add([]byte(recs[2]))
	if err == nil || !strings.Contains(err.Error(), "stream leads") || !strings.Contains(err.Error(), "lower batch_rows") {
		t.Fatalf("err %v, want the text bound named", err)
	}
	if b.Len() != 2 {
		t.Fatalf("%d rows pending, want 2", b.Len())
	}
	first := b.Flush()
	defer first.Release()
	wantCells(t, first, "id", "a", "b")
	if err := b.Add([]byte(recs[2])); err != nil {
		t.Fatal(err)
	}
	second := b.Flush()
	defer second.Release()
	wantCells(t, second, "notes", strings.Repeat("z", 60))
}
