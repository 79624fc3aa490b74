package load_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
)

// The same account under a second tenant name (a tenant renamed, or a one-tenant warehouse
// moved to a tenants: list under a new name) is refused, naming the tenant holding it: it would
// hold every row twice. A claim nothing backs does not count; another account does not either.
func TestClaimTenantSources_RefusesTheSameAccountUnderAnotherTenant(t *testing.T) {
	ctx := context.Background()
	d := openTest(t, t.TempDir()+"/w.duckdb")
	if err := d.ClaimTenantSources(ctx, "empty", map[string]string{"appdirect": "https://acme.example.com"}); err != nil {
		t.Fatal(err)
	}
	// The default tenant's users back its claim.
	users, _ := schemas.Lookup("users")
	cur := state.Cursor{Value: 1_700_000_000_000_000}
	batch := usersBatch(t, memory.NewGoAllocator(), "r1", 0, 5, 1_700_000_000_000)
	defer batch.Release()
	if _, err := d.Apply(ctx, load.Write{Table: users, Stream: "users", RunID: "r1", Batch: batch, Cursor: &cur}); err != nil {
		t.Fatal(err)
	}
	if err := d.ClaimSources(ctx, map[string]string{"appdirect": "https://acme.example.com"}); err != nil {
		t.Fatalf("the default tenant beside an unbacked claim of the same account: %v", err)
	}
	err := d.ClaimTenantSources(ctx, "acme", map[string]string{"appdirect": "HTTPS://ACME.example.com"})
	if !errors.Is(err, load.ErrSourceMismatch) || !strings.Contains(err.Error(), `as tenant "default"`) || !strings.Contains(err.Error(), "held twice") {
		t.Fatalf("a second tenant of the same account: %v, want a refusal naming tenant default", err)
	}
	if n := count(t, d, "SELECT count(*) FROM _sources WHERE tenant = 'acme'"); n != 0 {
		t.Fatalf("the refused claim was recorded (%d)", n)
	}
	if err := d.ClaimTenantSources(ctx, "globex", map[string]string{"appdirect": "https://globex.example.com"}); err != nil {
		t.Fatalf("another account: %v", err)
	}
}
