package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/internal/simcheck"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
)

// writeTenantsConfig writes a config of two tenants: acme (AppDirect and HighLevel of a) and
// globex (AppDirect of b).
func writeTenantsConfig(t *testing.T, dir string, a, b *apisim.Server) string {
	t.Helper()
	ad := func(s *apisim.Server) string {
		return fmt.Sprintf(`{base_url: %s, client_id: %s, client_secret: "${TEST_AD_SECRET}", lead_username: %s, lead_password: "${TEST_LEAD_PASSWORD}", lead_company_id: c-1}`,
			s.URL(), apisim.DemoClientID, apisim.DemoLeadUser)
	}
	cfg := fmt.Sprintf(`warehouse: %[1]s/w.duckdb
parquet_dir: %[1]s/parquet
tenants:
  - name: acme
    sources:
      appdirect: %[2]s
      highlevel: {base_url: %[4]s, client_id: %[5]s, client_secret: "${TEST_HL_SECRET}", company_id: %[6]s, app_id: %[7]s}
  - name: globex
    sources:
      appdirect: %[3]s
`, dir, ad(a), ad(b), a.URL(), apisim.DemoHLClientID, apisim.DemoHLCompanyID, apisim.DemoHLAppID)
	p := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// syncer sync with a tenants list syncs every tenant into one warehouse (each equal to its own
// source), reports per tenant (summary table, JSON, metrics, status, runs), and --tenants
// selects; no output carries a secret.
func TestSync_TenantsConfigSyncsEveryTenant(t *testing.T) {
	setSecrets(t)
	dir := t.TempDir()
	a := startSim(t, apisim.Config{Seed: 11, Scale: 120, Profile: "fast"})
	b := startSim(t, apisim.Config{Seed: 12, Scale: 90, Profile: "fast"})
	cfg := writeTenantsConfig(t, dir, a, b)
	code, out, errOut := syncer(t, "sync", "--config", cfg, "--progress", "never", "--summary", "always",
		"--summary-json", dir+"/summary.json", "--metrics-file", dir+"/m.prom")
	if code != exitOK {
		t.Fatalf("sync: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, secret := range []string{apisim.DemoClientSecret, apisim.DemoLeadPassword, apisim.DemoHLClientSecret} {
		if strings.Contains(out+errOut, secret) {
			t.Fatal("the output shows a secret")
		}
	}
	if !strings.Contains(out, "acme/charges") || !strings.Contains(out, "globex/users") {
		t.Errorf("the summary table does not name tenant/stream:\n%s", out)
	}
	var rep runReport
	raw, _ := os.ReadFile(dir + "/summary.json")
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	byTenant := map[string]int{}
	for _, s := range rep.Streams {
		byTenant[s.Tenant]++
	}
	if rep.Status != "succeeded" || byTenant["globex"] != len(schemas.Streams) || byTenant["acme"] <= len(schemas.Streams) || len(byTenant) != 2 {
		t.Fatalf("summary json: status %s, stream runs per tenant %v", rep.Status, byTenant)
	}
	prom, _ := os.ReadFile(dir + "/m.prom")
	if !strings.Contains(string(prom), `marketsync_last_run_rows{outcome="inserted",partition="",stream="users",tenant="globex"} 90`) {
		t.Errorf("metrics file lacks globex's users:\n%s", prom)
	}
	db, err := load.OpenReadOnly(context.Background(), dir+"/w.duckdb")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tenant  string
		sim     *apisim.Server
		streams []string
	}{{"acme", a, schemas.Streams}, {"globex", b, []string{"companies", "users", "invoices", "leads", "opportunities", "events"}}} {
		diff, err := simcheck.CompareRows(context.Background(), db, c.sim, c.streams, simcheck.RowOptions{Tenant: c.tenant})
		if err != nil || diff != "" {
			t.Errorf("tenant %s differs from its source (%v):\n%s", c.tenant, err, diff)
		}
	}
	db.Close()

	code, out, _ = syncer(t, "status", "--config", cfg, "--format", "csv")
	if code != exitOK || !strings.HasPrefix(out, "tenant,stream,") || !strings.Contains(out, "globex,users,") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	code, out, _ = syncer(t, "runs", "--config", cfg, "--format", "csv")
	if code != exitOK || !strings.HasPrefix(out, "run_id,tenant,stream,") || !strings.Contains(out, ",acme,charges,3,") {
		t.Errorf("runs: exit %d\n%s", code, out)
	}

	// check probes each tenant, under its name.
	code, out, _ = syncer(t, "check", "--config", cfg)
	if _, globex, _ := strings.Cut(out, "tenant globex:\n"); code != exitOK || !strings.Contains(out, "tenant acme:") ||
		!strings.Contains(globex, "ok   appdirect users") || strings.Contains(globex, "highlevel") {
		t.Errorf("check: exit %d\n%s", code, out)
	}

	// --tenants globex syncs globex only.
	code, out, errOut = syncer(t, "sync", "--config", cfg, "--tenants", "globex", "--full-refresh", "--progress", "never", "--summary-json", "-")
	if code != exitOK {
		t.Fatalf("sync --tenants globex: exit %d\n%s", code, errOut)
	}
	rep = runReport{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Streams {
		if s.Tenant != "globex" {
			t.Errorf("sync --tenants globex ran %s %s", s.Tenant, s.Stream)
		}
	}
	code, _, errOut = syncer(t, "sync", "--config", cfg, "--tenants", "initech", "--progress", "never")
	if code != exitUsage || !strings.Contains(errOut, `no tenant "initech"`) || !strings.Contains(errOut, "acme, globex") {
		t.Errorf("sync --tenants initech: exit %d %s", code, errOut)
	}
}

// syncer auth highlevel with a tenants list needs --tenant, and names the tenant's keys.
func TestAuth_TenantsNeedTheTenantFlag(t *testing.T) {
	setSecrets(t)
	dir := t.TempDir()
	a := startSim(t, apisim.Config{Seed: 11, Scale: 10, Profile: "fast"})
	b := startSim(t, apisim.Config{Seed: 12, Scale: 10, Profile: "fast"})
	cfg := writeTenantsConfig(t, dir, a, b)
	if code, _, errOut := syncer(t, "auth", "highlevel", "--config", cfg); code != exitUsage || !strings.Contains(errOut, "--tenant") || !strings.Contains(errOut, "acme, globex") {
		t.Errorf("without --tenant: exit %d %s", code, errOut)
	}
	if code, _, errOut := syncer(t, "auth", "highlevel", "--config", cfg, "--tenant", "globex"); code != exitUsage || !strings.Contains(errOut, "tenants[1].sources.highlevel") {
		t.Errorf("--tenant globex (no highlevel): exit %d %s", code, errOut)
	}
	if code, _, errOut := syncer(t, "auth", "highlevel", "--config", cfg, "--tenant", "acme"); code != exitUsage || !strings.Contains(errOut, "tenants[0].sources.highlevel.auth") {
		t.Errorf("--tenant acme (client_credentials): exit %d %s", code, errOut)
	}
}
