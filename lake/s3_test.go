package lake

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/marketsync/marketsync/internal/fakes3"
	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
)

// s3Options is a lake with its SQL catalog in a local SQLite file and its data and metadata
// files on an S3-compatible server started by the test.
func s3Options(t *testing.T, s3 *fakes3.Server, mode string) Options {
	return Options{Catalog: "sql", URI: filepath.Join(t.TempDir(), "catalog.db"), Warehouse: "s3://lake/warehouse", Upsert: mode,
		Properties: map[string]string{"s3.endpoint": s3.URL, "s3.region": "us-east-1", "s3.access-key-id": "test-key", "s3.secret-access-key": "test-secret"}}
}

// Inserts, updates and a cursor round-trip through S3 storage: the files are on the server,
// iceberg-go's scan reads back the committed rows, and a second writer sees the cursor.
func TestS3WarehouseRoundTrip(t *testing.T) {
	skipUnderRace(t) // one writer, nothing concurrent; 13-16 s under -race: .ci/run runs it without
	t.Parallel()     // the long tests overlap their waits when run without -race
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			s3 := fakes3.Start(t, "lake")
			o := s3Options(t, s3, mode)
			w, err := Open(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			charges := mustTable(t, "charges")
			var v0, v1 [][]byte
			for i := range 40 {
				v0 = append(v0, chargeRec(i, fmt.Sprintf("loc-%d", i%2), 0))
				if i%3 == 0 {
					v1 = append(v1, chargeRec(i, fmt.Sprintf("loc-%d", i%2), 1))
				}
			}
			b0, b1 := batch(t, charges, "r1", v0...), batch(t, charges, "r2", v1...)
			defer b0.Release()
			defer b1.Release()
			for i, b := range []arrow.RecordBatch{b0, b1} {
				if _, err := w.Commit(ctx, Commit{Table: charges, Batches: []arrow.RecordBatch{b}, Stream: "charges", Partition: "loc-0",
					Cursor: &state.Cursor{Value: int64(i + 1)}}); err != nil {
					t.Fatal(err)
				}
			}
			equalRows(t, "scan over S3", scanRows(t, w, charges), rowsOf(t, charges, nil, b0, b1))
			keys, err := s3.Keys("lake", "warehouse/")
			if err != nil {
				t.Fatal(err)
			}
			var data, meta int
			for _, k := range keys {
				switch {
				case strings.HasSuffix(k, ".parquet"):
					data++
				case strings.HasSuffix(k, ".metadata.json"):
					meta++
				}
			}
			if data == 0 || meta < 2 {
				t.Fatalf("S3 holds %d Parquet and %d metadata files (%v), want the table's files there", data, meta, keys)
			}
			other, err := Open(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			if c, ok, err := other.Cursor(ctx, charges, schemas.DefaultTenant, "charges", "loc-0"); err != nil || !ok || c.Value != 2 {
				t.Fatalf("cursor read by another writer: %+v %v %v", c, ok, err)
			}
			t.Logf("%s: %d objects on S3 (%d Parquet)", mode, len(keys), data)
		})
	}
}
