package transform

import (
	"bytes"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/marketsync/marketsync/schemas"
)

// FuzzBatcherAdd: the input is a sequence of records, one per line, for the table chosen by the
// first argument; an empty line flushes. All go through ONE Batcher, as a stream worker feeds
// it, and every outcome and every cell produced must match the reference decoding
// (reference_test.go): never a panic, never a half-appended row, never a leaked buffer, never a
// value left over from an earlier record.
func FuzzBatcherAdd(f *testing.F) {
	leads := byte(3) // schemas.Tables index
	for _, s := range []string{
		`{"id":"a","createdOn":1534531428,"customer":{"company":{"name":"Acme"}},"x":1}` + "\n" + `{"id":"b","customer":{"company":{}}}`,
		`{"id":"a","createdOn":"2015-08-16T14:47:50-06:00","status":null}` + "\n\n" + `{"id":"a","createdOn":"20250326"}`,
		`{"id":null}` + "\n" + `{"id":"\ud83d\ude00"}` + "\n" + `[]` + "\n" + `{` + "\n" + `{"id":"a","id":"b"}`,
		`{"id":"a","notes":"` + strings.Repeat("é", 300) + `"}` + "\n" + `{"id":"b"}`,
		`{"\u0069d":"a","customer":{"x":[}}` + "\n" + `{"id":"a","customer":{"c\u006fmpany":{"name":"B"}}}`,
		`{"id":"a","createdOn":12345678}` + "\n" + `{"id":"b","createdOn":"1534531428.5","y":{"\ud800":"\udc00"}}`,
	} {
		f.Add(leads, []byte(s))
	}
	f.Add(byte(0), []byte(`{"uuid":"a","enabled":true,"vendor":true}`+"\n"+`{"uuid":"b","enabled":false,"vendor":"false"}`+"\n"+`{"uuid":"c","thirtyDaysPurchaseLimitOverrideAmt":0.30000000000000004}`))
	f.Add(byte(2), []byte(`{"invoiceId":1,"total":"42.5100000000","orderIds":["a",null,1]}`+"\n"+`{"invoiceId":"1","total":1e-11}`+"\n"+`{"invoiceId":2,"total":"USD350.00"}`))
	for ti, table := range schemas.Tables {
		g := newRecGen(table, uint64(ti))
		var seq [][]byte
		for i := 0; i < 8; i++ {
			seq = append(seq, bytes.ReplaceAll(g.record(), []byte("\n"), []byte(" ")))
		}
		f.Add(byte(ti), bytes.Join(seq, []byte("\n")))
	}
	f.Fuzz(func(t *testing.T, tableIdx byte, data []byte) {
		table := schemas.Tables[int(tableIdx)%len(schemas.Tables)]
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		meta := Meta{RunID: "r", SyncedAt: 42}
		b := NewBatcher(table, mem, meta)
		defer b.Release()
		c := newRefChecker(t, table, b, meta)
		for _, rec := range bytes.Split(data, []byte("\n")) {
			if len(rec) == 0 {
				c.flush()
				continue
			}
			c.add(rec)
		}
		c.flush()
	})
}

// FuzzParseTimestamp: ParseTimestamp agrees with the reference rule (refTimestamp) on every
// string: both reject it, or both read the same microsecond.
func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{"1534531428", "1534465177000", "-1", "2015-08-16T14:47:50-06:00", "2025-03-26", "1e12", "", "99999999999999999999",
		"20250326", "12345678", "0", "2015-08-11T10:25:17.474-06:00", "2024-03-15T10:30:00.123Z", "2015-08-16T14:47:50+0530", "2015/08/16 14:47:50",
		"1534531428.123456789", "2024-02-30", "2015-08-16T14:47:50+24:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		us, err := ParseTimestamp(s)
		want, ok := refTimestamp(s)
		switch {
		case ok && err != nil:
			t.Fatalf("%q: %v, want %d", s, err, want)
		case !ok && err == nil:
			t.Fatalf("%q parsed to %d, want an error", s, us)
		case ok && us != want:
			t.Fatalf("%q parsed to %d, want %d", s, us, want)
		}
	})
}

// FuzzParseDecimal: an accepted value equals its input exactly, or rounded half-even to 10
// fraction digits (refDecimal); a rejected one is rejected by the reference too.
func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{"10.63", "42.5100000000", "-0.5", "1.5e3", "123456789012345678.25", "0.123456789012", "USD350.00", "", "-", ".",
		"0.30000000000000004", "0.00000000005", "0.00000000015", "1e-1000000000", "9999999999999999999999999999.99999999995", "5.", "+.5e-3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, rounded, err := parseDecimal(s)
		want, wantRounded, ok := refDecimal(s)
		switch {
		case ok && err != nil:
			t.Fatalf("%q: %v, want %s (unscaled)", s, err, want)
		case !ok && err == nil:
			t.Fatalf("%q became %s, want an error", s, d.ToString(10))
		case ok && (d.BigInt().Cmp(want) != 0 || rounded != wantRounded):
			t.Fatalf("%q became %s (rounded %v), want %s unscaled (rounded %v)", s, d.ToString(10), rounded, want, wantRounded)
		}
		if d2, err2 := ParseDecimal(s); d2 != d || (err2 == nil) != (err == nil) {
			t.Fatalf("%q: ParseDecimal and parseDecimal differ", s)
		}
	})
}
