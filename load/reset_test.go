package load_test

import (
	"context"
	"errors"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
)

// A reset commits all of its deletes or none: a failure before COMMIT leaves rows, cursors,
// quarantined records and source claims as they were.
func TestReset_AllOrNothing(t *testing.T) {
	ctx := context.Background()
	d := openTest(t, t.TempDir()+"/w.duckdb")
	users, _ := schemas.Lookup("users")
	cur := state.Cursor{Value: 1_700_000_000_000_000}
	batch := usersBatch(t, memory.NewGoAllocator(), "r1", 0, 5, 1_700_000_000_000)
	defer batch.Release()
	if _, err := d.Apply(ctx, load.Write{Table: users, Stream: "users", RunID: "r1", Batch: batch, Cursor: &cur}); err != nil {
		t.Fatal(err)
	}
	if err := d.ClaimSources(ctx, map[string]string{"appdirect": "https://a.example.com"}); err != nil {
		t.Fatal(err)
	}
	tables, err := load.ResetTables([]string{"users"})
	if err != nil || len(tables) != 1 {
		t.Fatalf("tables %v %v", tables, err)
	}
	snapshot := func() [3]int64 {
		return [3]int64{count(t, d, "SELECT count(*) FROM users"), count(t, d, "SELECT count(*) FROM _sync_state WHERE stream = 'users'"),
			count(t, d, "SELECT count(*) FROM _sources")}
	}
	boom := errors.New("boom")
	d.SetBeforeCommit(func() error { return boom })
	if _, err := d.Reset(ctx, tables); !errors.Is(err, boom) {
		t.Fatalf("reset with a failing commit: %v", err)
	}
	if got := snapshot(); got != [3]int64{5, 1, 1} {
		t.Fatalf("after a failed reset: rows, cursors, claims = %v, want [5 1 1]", got)
	}
	d.SetBeforeCommit(nil)
	rep, err := d.Reset(ctx, tables)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Tables) != 1 || rep.Tables[0].Rows != 5 || rep.Tables[0].Cursors != 1 || len(rep.Released) != 1 ||
		rep.Released[0] != (load.ReleasedClaim{Tenant: schemas.DefaultTenant, Source: "appdirect", Identity: "https://a.example.com"}) {
		t.Fatalf("report %+v", rep)
	}
	if got := snapshot(); got != [3]int64{0, 0, 0} {
		t.Fatalf("after the reset: rows, cursors, claims = %v, want [0 0 0]", got)
	}
	// charges come with their locations.
	if tables, _ := load.ResetTables([]string{"charges"}); len(tables) != 2 || tables[0].Name != "locations" {
		t.Fatalf("charges reset tables %v", tables)
	}
}
