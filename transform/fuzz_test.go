package transform

import (
	"math/big"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/marketsync/marketsync/schemas"
)

// FuzzBatcherAdd: any bytes either become one row or a clear error; never a panic, never a
// half-appended row, never a leaked buffer.
func FuzzBatcherAdd(f *testing.F) {
	for _, s := range []string{
		`{"id":"a","createdOn":1534531428,"customer":{"company":{"name":"Acme"}},"x":1}`,
		`{"id":"a","createdOn":"2015-08-16T14:47:50-06:00","status":null}`,
		`{"id":null}`, `{"id":"\ud83d\ude00"}`, `[]`, `{`, `{"id":"a","id":"b"}`, `{"id":"a","notes":"` + strings.Repeat("é", 300) + `"}`,
	} {
		f.Add([]byte(s))
	}
	table, _ := schemas.Lookup("leads")
	f.Fuzz(func(t *testing.T, data []byte) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		b := NewBatcher(table, mem, Meta{RunID: "r"})
		defer b.Release()
		err := b.Add(data)
		if err != nil && b.Len() != 0 {
			t.Fatalf("error %v but %d rows pending", err, b.Len())
		}
		if rec := b.Flush(); rec != nil {
			if err != nil || rec.NumRows() != 1 {
				t.Fatalf("rows %d with error %v", rec.NumRows(), err)
			}
			rec.Release()
		}
	})
}

func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{"1534531428", "1534465177000", "-1", "2015-08-16T14:47:50-06:00", "2025-03-26", "1e12", "", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		us, err := ParseTimestamp(s)
		if err == nil && (us > 1e15*1000 || us < -1e15*1000) {
			t.Fatalf("%q parsed to an absurd %d", s, us)
		}
	})
}

// FuzzParseDecimal: an accepted value equals its input exactly (no float rounding).
func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{"10.63", "42.5100000000", "-0.5", "1.5e3", "123456789012345678.25", "0.123456789012", "USD350.00", "", "-", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDecimal(s)
		if err != nil {
			return
		}
		want, ok := new(big.Rat).SetString(strings.TrimPrefix(s, "+"))
		if !ok {
			t.Fatalf("accepted %q, which is not a number", s)
		}
		got, _ := new(big.Rat).SetString(d.ToString(10))
		if got.Cmp(want) != 0 {
			t.Fatalf("%q became %s", s, d.ToString(10))
		}
	})
}
