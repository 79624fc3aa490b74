package lake

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/marketsync/marketsync/internal/pgserver"
	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
)

// A SQL catalog on a PostgreSQL server started by the test: commits, updates and cursors
// round-trip (read back through another connection by iceberg-go's scan), and four writers
// with their own connections commit concurrently, conflicts retried, every row once.
func TestPostgresCatalog(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // the long tests overlap their waits when run without -race
	pg := pgserver.Start(t)
	for _, tc := range concurrentCases {
		t.Run(concurrentName(tc.mode, tc.same), func(t *testing.T) {
			ctx := context.Background()
			wh := filepath.Join(t.TempDir(), "warehouse")
			ns := fmt.Sprintf("pg_%d_%t", len(tc.mode), tc.same) // one namespace per case: one server
			open := func() *Writer {
				w, err := Open(ctx, Options{Catalog: "sql", URI: pg.DSN, Warehouse: wh, Namespace: ns, Upsert: tc.mode})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { w.Close() })
				return w
			}
			reader := open()
			conflicts := concurrentWriters(t, tc.same, open, reader.Catalog(), reader)
			t.Logf("%d conflicts retried through Postgres", conflicts)
			// syncer check's probe: the namespace is there, another is not, nothing is created.
			for name, want := range map[string]bool{ns: true, ns + "_absent": false} {
				if ok, err := Probe(ctx, Options{Catalog: "sql", URI: pg.DSN, Warehouse: wh, Namespace: name}); err != nil || ok != want {
					t.Fatalf("probe of namespace %s: %v %v, want %v", name, ok, err, want)
				}
			}
			if ok, _ := Probe(ctx, Options{Catalog: "sql", URI: pg.DSN, Warehouse: wh, Namespace: ns + "_absent"}); ok {
				t.Fatal("the probe created the namespace")
			}
			if tc.same {
				return
			}
			// An update and a cursor read through another connection.
			charges := mustTable(t, "charges")
			b := batch(t, charges, "later", chargeRec(0, "loc-0", 77))
			defer b.Release()
			if _, err := open().Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{b}, Stream: "charges", Partition: "loc-0",
				Cursor: &state.Cursor{Value: 99}}); err != nil {
				t.Fatal(err)
			}
			got := scanRows(t, open(), charges)
			want := rowsOf(t, charges, nil, b)
			for k, r := range want {
				equalRows(t, "updated row", map[string]row{k: got[k]}, map[string]row{k: r})
			}
			if c, ok, err := open().Cursor(ctx, charges, schemas.DefaultTenant, "charges", "loc-0"); err != nil || !ok || c.Value != 99 {
				t.Fatalf("cursor %+v %v %v", c, ok, err)
			}
		})
	}
}
