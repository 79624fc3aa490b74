package config

import (
	"errors"
	"strings"
	"testing"
)

// The AppDirect family keys: defaults, and every bad value names its key and the fix.
func TestParse_AppDirectFamilyKeys(t *testing.T) {
	all := env(map[string]string{"AD_SECRET": "x", "HL_SECRET": "y"})
	f, err := Parse([]byte(good), all)
	if err != nil {
		t.Fatal(err)
	}
	if ad := f.Sources.AppDirect; ad.API != "marketplace" || ad.LeadFromDateUnit != "milliseconds" || ad.LeadContext != "RESELLER_MANAGER" || ad.ResellerContext != "" {
		t.Fatalf("defaults %+v", ad)
	}
	with := func(extra string) string {
		return strings.Replace(good, "client_id: abc", "client_id: abc\n"+extra, 1)
	}
	reseller := "    api: reseller\n    lead_username: u@example.com\n    lead_password: p"
	f, err = Parse([]byte(with(reseller)), all)
	if err != nil {
		t.Fatal(err)
	}
	if ad := f.Sources.AppDirect; ad.API != "reseller" || ad.ResellerContext != "RESELLER_MANAGER" {
		t.Fatalf("reseller defaults %+v", ad)
	}
	for _, c := range []struct {
		name, extra, key, hint string
	}{
		{"unknown family", "    api: partner", "sources.appdirect.api", "marketplace"},
		{"reseller without a user", "    api: reseller", "sources.appdirect.lead_", "required with api: reseller"},
		{"bad reseller context", reseller + "\n    reseller_context: SSR", "sources.appdirect.reseller_context", "RESELLER or RESELLER_MANAGER"},
		{"reseller context without the family", "    reseller_context: RESELLER", "sources.appdirect.reseller_context", "api: reseller"},
		{"bad lead context", "    lead_context: PARTNER", "sources.appdirect.lead_context", "RESELLER_MANAGER"},
		{"bad lead date unit", "    lead_from_date_unit: ms", "sources.appdirect.lead_from_date_unit", "milliseconds or seconds"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(with(c.extra)), all)
			var ce *Error
			if !errors.As(err, &ce) || !strings.HasPrefix(ce.Key, c.key) || !strings.Contains(err.Error(), c.hint) {
				t.Fatalf("error %v, want key %s and hint %q", err, c.key, c.hint)
			}
		})
	}
}
