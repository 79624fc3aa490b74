package load_test

import (
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
)

// The tenant migration of a pre-tenant warehouse is one transaction: failed after any of its
// statements (BEGIN, 28 of them, COMMIT), the warehouse is as it was (no tenant column anywhere, every cursor in place);
// the next open migrates it whole.
func TestMigrateTenants_AllOrNothing(t *testing.T) {
	ctx := context.Background()
	wh := filepath.Join(t.TempDir(), "w.duckdb")
	f, err := os.Open("../pipeline/testdata/pre-tenants.duckdb.gz") // written by the pre-tenant build
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := os.Create(wh)
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
	out.Close()
	f.Close()
	count := func(q string) (n int64) {
		t.Helper()
		db, err := load.OpenReadOnly(ctx, wh)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.QueryRow(q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	const tenantCols = `SELECT count(*) FROM information_schema.columns WHERE column_name = 'tenant'`
	cursors, users := count(`SELECT count(*) FROM _sync_state`), count(`SELECT count(*) FROM users`)
	if count(tenantCols) != 0 || cursors == 0 {
		t.Fatal("the fixture is not a pre-tenant warehouse")
	}
	for _, at := range []int{0, 5, 14, 28} {
		load.SetMigrateFailAt(at)
		_, err := load.Open(ctx, wh)
		if err == nil || !strings.Contains(err.Error(), "injected failure") || !strings.Contains(err.Error(), "unchanged") {
			t.Fatalf("failing after statement %d: err %v", at, err)
		}
		if n := count(tenantCols); n != 0 {
			t.Fatalf("failing after statement %d left %d tenant columns", at, n)
		}
		if n := count(`SELECT count(*) FROM _sync_state`); n != cursors {
			t.Fatalf("failing after statement %d left %d cursors of %d", at, n, cursors)
		}
		if n := count(`SELECT count(*) FROM information_schema.tables WHERE table_name LIKE '%pre_tenants'`); n != 0 {
			t.Fatalf("failing after statement %d left %d renamed tables", at, n)
		}
	}
	load.SetMigrateFailAt(-1)
	d, err := load.Open(ctx, wh)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if n := count(`SELECT count(*) FROM _sync_state WHERE tenant = 'default'`); n != cursors {
		t.Errorf("%d default-tenant cursors after the migration, want %d", n, cursors)
	}
	if n := count(`SELECT count(*) FROM users WHERE tenant = 'default'`); n != users {
		t.Errorf("%d default-tenant users after the migration, want %d", n, users)
	}
	// Every declared table and state table has the column.
	if n := count(tenantCols); n != int64(4+len(schemas.Tables)) {
		t.Errorf("%d tenant columns after the migration, want one in each of the 4 state tables and %d data tables", n, len(schemas.Tables))
	}
}
