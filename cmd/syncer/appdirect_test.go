package main

import (
	"strings"
	"testing"

	"github.com/marketsync/marketsync/apisim"
)

// syncer check with the AppReseller family probes its endpoints with the user's token, reports
// the streams it lacks as skipped, shows the scopes in use and no secret; syncer sync through it
// succeeds with those streams skipped.
func TestCheckAndSync_ResellerFamily(t *testing.T) {
	s := startSim(t, apisim.Config{Seed: 1, Scale: 60, Profile: "fast"})
	setSecrets(t)
	dir := t.TempDir()
	p := writeConfig(t, dir, s, func(c string) string {
		c = strings.Replace(c, "    lead_company_id: c-1\n", "    lead_company_id: c-1\n    api: reseller\n    reseller_context: RESELLER\n", 1)
		return c[:strings.Index(c, "  highlevel:")]
	})
	code, out, errOut := syncer(t, "check", "--config", p)
	if code != exitOK {
		t.Fatalf("check: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"api=reseller",
		"scope ROLE_RESELLER_MANAGER ROLE_RESELLER",
		"ok   appdirect companies (AppReseller)",
		"ok   appdirect users (AppReseller)",
		"ok   appdirect opportunities (AppReseller)",
		"ok   appdirect leads fromDate unit (milliseconds, as configured)",
		"skip appdirect invoices: the AppReseller API family",
		"skip appdirect events: the AppReseller API family",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "client_credentials") {
		t.Errorf("the reseller family uses no client-credentials token:\n%s", out)
	}
	for _, secret := range []string{apisim.DemoClientSecret, apisim.DemoLeadPassword, "(18 chars)", "(14 chars)"} {
		if strings.Contains(out+errOut, secret) {
			t.Fatalf("check printed a secret or its length (%q):\n%s", secret, out)
		}
	}
	code, out, errOut = syncer(t, "sync", "--config", p, "--progress", "never", "--summary", "always")
	if code != exitOK {
		t.Fatalf("sync: exit %d\n%s\n%s", code, out, errOut)
	}
	_, out, _ = syncer(t, "query", "SELECT count(*) FROM companies", "--warehouse", dir+"/w.duckdb", "--format", "csv")
	if !strings.Contains(out, "60") {
		t.Fatalf("companies after a reseller sync: %s", out)
	}
}
