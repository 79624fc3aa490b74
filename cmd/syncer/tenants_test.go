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
	skipUnderRace(t) // sync, reset and read flows in one goroutine each; the in-process simulator is slow under -race
	t.Parallel()
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

// syncer reset --tenants clears those tenants' rows, quarantine, cursors and claims and nothing
// of the others: their rows and cursors stay byte for byte, Parquet keeps only their rows, and
// the next sync scans the reset tenant in full and the other one incrementally.
func TestReset_TenantsClearsOnlyThoseTenants(t *testing.T) {
	skipUnderRace(t) // sync, reset and read flows in one goroutine each; the in-process simulator is slow under -race
	t.Parallel()
	setSecrets(t)
	dir := t.TempDir()
	a := startSim(t, apisim.Config{Seed: 11, Scale: 120, Profile: "fast"})
	b := startSim(t, apisim.Config{Seed: 12, Scale: 90, Profile: "fast"})
	cfg := writeTenantsConfig(t, dir, a, b)
	wh := dir + "/w.duckdb"
	sync := func() {
		t.Helper()
		if code, out, errOut := syncer(t, "sync", "--config", cfg, "--progress", "never"); code != exitOK {
			t.Fatalf("sync: exit %d\n%s\n%s", code, out, errOut)
		}
	}
	sync()
	// What globex holds, every column of every row and every cursor, as one digest per table.
	digest := func(tenant string) map[string]string {
		db, err := load.OpenReadOnly(context.Background(), wh)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		out := map[string]string{}
		for _, tbl := range schemas.Tables {
			var d string
			q := fmt.Sprintf(`SELECT count(*) || ':' || coalesce(md5(string_agg(CAST(r AS VARCHAR), '|' ORDER BY CAST(r AS VARCHAR))), '') FROM %s r WHERE tenant = ?`, load.Quote(tbl.Name))
			if err := db.QueryRowContext(context.Background(), q, tenant).Scan(&d); err != nil {
				t.Fatal(err)
			}
			out[tbl.Name] = d
		}
		for _, st := range []string{"_sync_state", "_sources"} {
			var d string
			q := fmt.Sprintf(`SELECT count(*) || ':' || coalesce(md5(string_agg(CAST(r AS VARCHAR), '|' ORDER BY CAST(r AS VARCHAR))), '') FROM %s r WHERE tenant = ?`, st)
			if err := db.QueryRowContext(context.Background(), q, tenant).Scan(&d); err != nil {
				t.Fatal(err)
			}
			out[st] = d
		}
		return out
	}
	before := digest("globex")

	code, out, errOut := syncer(t, "reset", "--config", cfg, "--tenants", "acme")
	if code != exitUsage || !strings.Contains(out, "would delete") || !strings.Contains(out, "of tenants acme only") {
		t.Fatalf("reset --tenants acme without --yes: exit %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = syncer(t, "reset", "--config", cfg, "--tenants", "acme,initech", "--yes")
	if code != exitUsage || !strings.Contains(errOut, `no tenant "initech"`) || !strings.Contains(errOut, "acme, globex") {
		t.Fatalf("reset --tenants initech: exit %d %s", code, errOut)
	}
	if got := digest("acme"); got["users"] == "0:" {
		t.Fatalf("a refused reset deleted acme's rows: %v", got)
	}
	code, out, errOut = syncer(t, "reset", "--config", cfg, "--tenants", "acme", "--yes")
	if code != exitOK || !strings.Contains(out, "appdirect of tenant acme") || strings.Contains(out, "of tenant globex") {
		t.Fatalf("reset --tenants acme --yes: exit %d\n%s\n%s", code, out, errOut)
	}
	for name, d := range digest("acme") {
		if d != "0:" {
			t.Errorf("after the reset acme still has %s in %s", d, name)
		}
	}
	if after := digest("globex"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the reset changed globex:\nbefore %v\nafter  %v", before, after)
	}
	// Parquet holds every tenant's rows in one file per partition: rewritten with globex's only.
	pq := queryInt(t, wh, fmt.Sprintf(`SELECT count(*) FILTER (WHERE tenant = 'acme') * 1000000 + count(*) FROM read_parquet('%s/parquet/users/*/*.parquet')`, dir))
	if want := queryInt(t, wh, `SELECT count(*) FROM users WHERE tenant = 'globex'`); pq != want {
		t.Errorf("users Parquet after the reset: %d (acme rows x 1e6 + rows), want %d globex rows", pq, want)
	}

	sync()
	// The run after the reset scanned acme's streams in full and globex's users incrementally.
	full := queryInt(t, wh, `SELECT count(*) FILTER (WHERE tenant = 'acme' AND full_scan) * 1000 + count(*) FILTER (WHERE tenant = 'globex' AND stream = 'users' AND NOT full_scan)
		FROM _sync_runs WHERE run_id = (SELECT max_by(run_id, started_at) FROM _sync_runs)`)
	if acmeRuns := queryInt(t, wh, `SELECT count(*) FROM _sync_runs WHERE tenant = 'acme' AND run_id = (SELECT max_by(run_id, started_at) FROM _sync_runs)`); full != acmeRuns*1000+1 {
		t.Errorf("the sync after the reset: %d (acme full scans x 1000 + globex incremental users), want %d", full, acmeRuns*1000+1)
	}
	db, err := load.OpenReadOnly(context.Background(), wh)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range []struct {
		tenant  string
		sim     *apisim.Server
		streams []string
	}{{"acme", a, schemas.Streams}, {"globex", b, []string{"companies", "users", "invoices", "leads", "opportunities", "events"}}} {
		diff, err := simcheck.CompareRows(context.Background(), db, c.sim, c.streams, simcheck.RowOptions{Tenant: c.tenant})
		if err != nil || diff != "" {
			t.Errorf("tenant %s differs from its source after the reset and a sync (%v):\n%s", c.tenant, err, diff)
		}
	}
}
