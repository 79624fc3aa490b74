package lake

import (
	"context"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/marketsync/marketsync/state"
)

var modes = []string{CopyOnWrite, EqualityDeletes}

// Batches made by the production Batcher for two tables (a string key partitioned by location,
// an integer key with lists partitioned by year) come back whole, with the cursor.
func TestRoundTrip(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			w := newLakeDir(t).open(t, mode)
			charges, invoices := mustTable(t, "charges"), mustTable(t, "invoices")
			var crecs [][]byte
			for i := range 40 {
				crecs = append(crecs, chargeRec(i, fmt.Sprintf("loc-%d", i%2), 0))
			}
			cb := batch(t, charges, "r1", crecs...)
			defer cb.Release()
			ib := batch(t, invoices, "r1", invoiceRec(1, "PAID"), invoiceRec(2, "DUE"), invoiceRec(30, "DUE"))
			defer ib.Release()
			cur := &state.Cursor{Value: 1700000000000000}
			res, err := w.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{cb}, Cursor: cur, Stream: "charges", Partition: "loc-0"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Upserted != 40 || res.Attempts != 1 || res.SnapshotID == 0 {
				t.Errorf("result %+v", res)
			}
			if _, err := w.Commit(ctx, Commit{Table: invoices, Batches: []arrow.RecordBatch{ib}, Stream: "invoices"}); err != nil {
				t.Fatal(err)
			}
			equalRows(t, "charges", scanRows(t, w, charges), rowsOf(t, charges, nil, cb))
			equalRows(t, "invoices", scanRows(t, w, invoices), rowsOf(t, invoices, nil, ib))
			got, ok, err := w.Cursor(ctx, charges, "charges", "loc-0")
			if err != nil || !ok || got.Value != cur.Value {
				t.Errorf("cursor = %+v, %v, %v; want %+v", got, ok, err, cur)
			}
			if _, ok, _ := w.Cursor(ctx, charges, "charges", "loc-1"); ok {
				t.Error("a cursor never committed was found")
			}
		})
	}
}

// The same key twice (in two commits, and in two batches of one commit) is one row with the
// latest values, in every partition layout.
func TestUpsert(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			w := newLakeDir(t).open(t, mode)
			charges, invoices := mustTable(t, "charges"), mustTable(t, "invoices")
			var v0, v1 [][]byte
			for i := range 30 {
				v0 = append(v0, chargeRec(i, "loc-a", 0))
				if i%3 == 0 {
					v1 = append(v1, chargeRec(i, "loc-a", 1))
				}
			}
			b0 := batch(t, charges, "r1", v0...)
			defer b0.Release()
			b1 := batch(t, charges, "r2", v1...)
			defer b1.Release()
			b2 := batch(t, charges, "r2", chargeRec(3, "loc-a", 2), chargeRec(100, "loc-a", 0))
			defer b2.Release()
			if _, err := w.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{b0}, Stream: "charges", Partition: "loc-a"}); err != nil {
				t.Fatal(err)
			}
			// One commit whose second batch repeats a key of its first: the later copy wins.
			res, err := w.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{b1, b2}, Stream: "charges", Partition: "loc-a"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Upserted != int64(b1.NumRows()+b2.NumRows()-1) {
				t.Errorf("upserted %d", res.Upserted)
			}
			want := rowsOf(t, charges, nil, b0, b1, b2)
			equalRows(t, "charges", scanRows(t, w, charges), want)
			if got := scanRows(t, w, charges)["ch-000003"]["_extra"]; got != `{"surprise":2}` {
				t.Errorf("ch-000003 _extra = %s, want the latest version's", got)
			}

			i0 := batch(t, invoices, "r1", invoiceRec(1, "DUE"), invoiceRec(2, "DUE"), invoiceRec(9, "DUE"))
			defer i0.Release()
			i1 := batch(t, invoices, "r2", invoiceRec(2, "PAID"), invoiceRec(9, "VOID"))
			defer i1.Release()
			for _, b := range []arrow.RecordBatch{i0, i1} {
				if _, err := w.Commit(ctx, Commit{Table: invoices, Batches: []arrow.RecordBatch{b}, Stream: "invoices"}); err != nil {
					t.Fatal(err)
				}
			}
			equalRows(t, "invoices", scanRows(t, w, invoices), rowsOf(t, invoices, nil, i0, i1))
		})
	}
}
