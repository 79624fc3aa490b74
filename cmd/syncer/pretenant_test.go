package main

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// After an upgrade, status and runs read a warehouse that no sync of this build has migrated
// yet (a read-only open cannot migrate it): its history and cursors are the default tenant's.
// Monitoring must not break between the upgrade and the first sync.
func TestStatusAndRuns_ReadAWarehouseNotYetMigratedToTenants(t *testing.T) {
	wh := filepath.Join(t.TempDir(), "warehouse.duckdb")
	in, err := os.Open("../../pipeline/testdata/pre-tenants.duckdb.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(wh)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
	out.Close()

	code, stdout, stderr := runBin(t, "status", "--warehouse", wh, "--format", "json")
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, stderr)
	}
	var status []map[string]any
	if err := json.Unmarshal([]byte(stdout), &status); err != nil || len(status) == 0 {
		t.Fatalf("status: %d rows (%v):\n%s", len(status), err, stdout)
	}
	for _, r := range status {
		if r["cursor_at"] == nil && r["stream"] == "invoices" {
			t.Errorf("status lost the invoices cursor: %v", r)
		}
		if _, ok := r["tenant"]; ok {
			t.Errorf("a one-tenant warehouse's status has a tenant column: %v", r)
		}
	}
	code, stdout, stderr = runBin(t, "runs", "--warehouse", wh, "--format", "json")
	if code != 0 {
		t.Fatalf("runs: exit %d: %s", code, stderr)
	}
	var runs []map[string]any
	if err := json.Unmarshal([]byte(stdout), &runs); err != nil || len(runs) == 0 {
		t.Fatalf("runs: %d rows (%v):\n%s", len(runs), err, stdout)
	}
	if code, stdout, stderr = runBin(t, "status", "--warehouse", wh); code != 0 || !strings.Contains(stdout, "invoices") {
		t.Fatalf("status table: exit %d:\n%s%s", code, stdout, stderr)
	}
}

// syncer reset on a warehouse no sync of this build has migrated: the preview says what to do
// instead of failing on a missing column, --tenants names the one tenant it holds, and --yes
// upgrades the file and resets it.
func TestReset_AWarehouseNotYetMigratedToTenants(t *testing.T) {
	wh := filepath.Join(t.TempDir(), "warehouse.duckdb")
	raw, err := os.ReadFile("../../pipeline/testdata/pre-tenants.duckdb.gz")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wh, body, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"reset", "--warehouse", wh}, "run the reset with --yes"},
		{[]string{"reset", "--warehouse", wh, "--tenants", "acme", "--yes"}, "holds the tenant default only"},
	} {
		if code, _, stderr := runBin(t, c.args...); code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d %q, want %q", c.args, code, stderr, c.want)
		}
	}
	if code, stdout, stderr := runBin(t, "reset", "--warehouse", wh, "--streams", "users", "--tenants", "default", "--yes"); code != 0 || !strings.Contains(stdout, "of tenants default only") {
		t.Fatalf("reset --yes: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if n := queryInt(t, wh, `SELECT count(*) FROM users`) + queryInt(t, wh, `SELECT count(*) FROM _sync_state WHERE stream = 'users'`); n != 0 {
		t.Errorf("users rows and cursors after the reset: %d", n)
	}
	if n := queryInt(t, wh, `SELECT count(*) FROM invoices WHERE tenant = 'default'`); n != 60 {
		t.Errorf("invoices after a reset of users: %d rows, want the 60 kept", n)
	}
}
