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
