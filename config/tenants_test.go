package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/marketsync/marketsync/schemas"
)

const twoTenants = `
tenants:
  - name: acme
    sources:
      appdirect: {base_url: https://acme.example.com, client_id: a, client_secret: "${ACME_SECRET}"}
      highlevel: {client_id: hl, client_secret: h, company_id: c, app_id: x}
  - name: globex
    sources:
      appdirect: {base_url: https://globex.example.com, client_id: g, client_secret: s}
`

// A tenants list gives each tenant its own sources (defaults applied, env expanded); without
// one, the sources section is the default tenant.
func TestParse_Tenants(t *testing.T) {
	f, err := Parse([]byte(twoTenants), env(map[string]string{"ACME_SECRET": "s3"}))
	if err != nil {
		t.Fatal(err)
	}
	ts := f.TenantList()
	if len(ts) != 2 || ts[0].Name != "acme" || ts[1].Name != "globex" || ts[0].Sources.AppDirect.ClientSecret != "s3" ||
		ts[0].Sources.HighLevel.BaseURL != "https://services.leadconnectorhq.com" || ts[1].Sources.AppDirect.API != "marketplace" || ts[1].Sources.HighLevel != nil {
		t.Fatalf("tenants %+v", ts)
	}
	f, err = Parse([]byte(good), env(map[string]string{"AD_SECRET": "x", "HL_SECRET": "y"}))
	if err != nil {
		t.Fatal(err)
	}
	if ts := f.TenantList(); len(ts) != 1 || ts[0].Name != schemas.DefaultTenant || ts[0].Sources.AppDirect != f.Sources.AppDirect {
		t.Fatalf("without tenants: %+v", ts)
	}
}

// Several tenants may sync into one lake (each tenant's rows, cursors and deletions scoped to
// it: README "Several tenants").
func TestParse_TenantsWithALake(t *testing.T) {
	f, err := Parse([]byte(twoTenants+"lake: {catalog: sql, uri: cat.db, warehouse: ./lake}\n"), env(map[string]string{"ACME_SECRET": "s3"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.TenantList()) != 2 || f.Lake == nil {
		t.Fatalf("tenants %d, lake %v", len(f.TenantList()), f.Lake)
	}
}

func TestParse_TenantErrorsNameTheKey(t *testing.T) {
	all := env(map[string]string{"ACME_SECRET": "s3", "AD_SECRET": "x", "HL_SECRET": "y"})
	cases := []struct{ name, yaml, key, hint string }{
		{"tenants and sources", twoTenants + good[strings.Index(good, "sources:"):], "sources", "not both"},
		{"bad name", strings.Replace(twoTenants, "name: acme", "name: Acme Corp", 1), "tenants[0].name", "a-z"},
		{"duplicate name", strings.Replace(twoTenants, "name: globex", "name: acme", 1), "tenants[1].name", "unique"},
		{"tenant without sources", twoTenants + "  - name: empty\n", "tenants[2].sources", "at least one"},
		{"a tenant's missing secret", strings.Replace(twoTenants, "client_secret: s}", "}", 1), "tenants[1].sources.appdirect.client_secret", "required"},
		{"a tenant's bad auth", strings.Replace(twoTenants, "app_id: x}", "app_id: x, auth: magic}", 1), "tenants[0].sources.highlevel.auth", "client_credentials"},
		{"one account in two tenants", strings.Replace(twoTenants, "https://globex.example.com, client_id: g", "https://acme.example.com, client_id: a", 1), "tenants[1].sources", "one account"},
		{"one account in two tenants, the URL in capitals", strings.Replace(twoTenants, "https://globex.example.com, client_id: g", "HTTPS://ACME.example.com, client_id: a", 1), "tenants[1].sources", "one account"},
		{"unknown key in a tenant", strings.Replace(twoTenants, "name: globex", "name: globex\n    sorces: {}", 1), "sorces", "tenants"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml), all)
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != c.key || !strings.Contains(err.Error(), c.hint) {
				t.Fatalf("error %v, want key %s mentioning %q", err, c.key, c.hint)
			}
			if strings.Contains(err.Error(), "s3") {
				t.Fatalf("error %v shows a secret", err)
			}
		})
	}
}

// With auth: refresh_token each tenant's rotating token gets its own file by default, and two
// tenants may not share one.
func TestParse_TenantsTokenFiles(t *testing.T) {
	refresh := strings.Replace(twoTenants, "app_id: x}", "app_id: x, auth: refresh_token}", 1)
	refresh = strings.Replace(refresh, "      appdirect: {base_url: https://globex.example.com, client_id: g, client_secret: s}",
		"      appdirect: {base_url: https://globex.example.com, client_id: g, client_secret: s}\n      highlevel: {client_id: hl, client_secret: h, company_id: c2, app_id: x, auth: refresh_token}", 1)
	f, err := Parse([]byte(refresh), env(map[string]string{"ACME_SECRET": "s3"}))
	if err != nil {
		t.Fatal(err)
	}
	if a, g := f.Tenants[0].Sources.HighLevel.TokenFile, f.Tenants[1].Sources.HighLevel.TokenFile; a != "highlevel-token-acme.json" || g != "highlevel-token-globex.json" {
		t.Fatalf("token files %q %q", a, g)
	}
	shared := strings.ReplaceAll(refresh, "auth: refresh_token}", "auth: refresh_token, token_file: t.json}")
	_, err = Parse([]byte(shared), env(map[string]string{"ACME_SECRET": "s3"}))
	var ce *Error
	if !errors.As(err, &ce) || ce.Key != "tenants[1].sources.highlevel.token_file" || !strings.Contains(err.Error(), "acme") {
		t.Fatalf("shared token file: %v", err)
	}
}
