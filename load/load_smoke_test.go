package load

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/transform"
)

func TestSmokeMerge(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tb, _ := schemas.Lookup("invoices")
	if err := d.Migrate(ctx, []*schemas.Table{tb}); err != nil {
		t.Fatal(err)
	}
	b := transform.NewBatcher(tb, memory.DefaultAllocator, transform.Meta{RunID: "r1", SyncedAt: 1})
	defer b.Release()
	if err := b.Add([]byte(`{"invoiceId":1,"creationDate":"2015-08-16T14:47:50-06:00","total":"42.5100000000","orderIds":["a"],"company":{"-id":"c1"},"zz":1}`)); err != nil {
		t.Fatal(err)
	}
	rec := b.Flush()
	defer rec.Release()
	res, err := d.Apply(ctx, Write{Table: tb, Batch: rec})
	if err != nil {
		t.Fatal(err)
	}
	var total, extra, cid string
	if err := d.conn.QueryRowContext(ctx, "SELECT total::VARCHAR, _extra::VARCHAR, company_id FROM invoices").Scan(&total, &extra, &cid); err != nil {
		t.Fatal(err)
	}
	t.Log(res, total, extra, cid)
}
