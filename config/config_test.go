package config

import (
	"errors"
	"strings"
	"testing"
)

const good = `
warehouse: /tmp/w.duckdb
streams: [users, charges]
sources:
  appdirect:
    base_url: https://marketplace.example.com
    client_id: abc
    client_secret: ${AD_SECRET}
  highlevel:
    client_id: hl
    client_secret: "${HL_SECRET}"
    company_id: c
    app_id: a
`

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParse_ExpandsEnvInValuesOnly(t *testing.T) {
	// A secret full of YAML syntax must stay one value.
	f, err := Parse([]byte(good), env(map[string]string{"AD_SECRET": "s3cr: et\n- x", "HL_SECRET": "h"}))
	if err != nil {
		t.Fatal(err)
	}
	if f.Sources.AppDirect.ClientSecret != "s3cr: et\n- x" || f.Sources.HighLevel.ClientSecret != "h" {
		t.Fatalf("secrets %q %q", f.Sources.AppDirect.ClientSecret, f.Sources.HighLevel.ClientSecret)
	}
	if f.Sources.HighLevel.BaseURL != "https://services.leadconnectorhq.com" || f.ParquetDir != DefaultParquetDir {
		t.Fatalf("defaults not applied: %+v", f)
	}
}

func TestParse_ErrorsNameTheKey(t *testing.T) {
	all := env(map[string]string{"AD_SECRET": "x", "HL_SECRET": "y"})
	cases := []struct {
		name, yaml string
		lookup     func(string) (string, bool)
		key, hint  string
	}{
		{"unknown top-level key", "warehose: x\n" + good, all, "warehose", "line 1"},
		{"unknown nested key", strings.Replace(good, "client_id: abc", "clientid: abc", 1), all, "clientid", "sources.appdirect"},
		{"missing env var", good, env(map[string]string{"HL_SECRET": "y"}), "sources.appdirect.client_secret", "AD_SECRET"},
		{"http to a remote host", strings.Replace(good, "https://marketplace", "http://marketplace", 1), all, "sources.appdirect.base_url", "allow_insecure_http"},
		{"bad stream", strings.Replace(good, "[users, charges]", "[users, chargez]", 1), all, "streams[1]", "chargez"},
		{"bad policy", "reject_policy: drop\n" + good, all, "reject_policy", "quarantine"},
		{"missing secret", strings.Replace(good, "client_secret: ${AD_SECRET}", "", 1), all, "sources.appdirect.client_secret", "required"},
		{"no sources", "warehouse: x\n", all, "sources", "at least one"},
		{"page size over the documented max", strings.Replace(good, "client_id: abc", "client_id: abc\n    page_size: 1000", 1), all, "sources.appdirect.page_size", "250"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml), c.lookup)
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != c.key || !strings.Contains(err.Error(), c.hint) {
				t.Fatalf("error %v, want key %s and hint %q", err, c.key, c.hint)
			}
		})
	}
}

func TestParse_LoopbackHTTPAllowed(t *testing.T) {
	y := strings.Replace(good, "https://marketplace.example.com", "http://127.0.0.1:8089", 1)
	if _, err := Parse([]byte(y), env(map[string]string{"AD_SECRET": "x", "HL_SECRET": "y"})); err != nil {
		t.Fatal(err)
	}
}

func TestMask_NeverShowsTheSecret(t *testing.T) {
	if m := Mask("hunter2-very-secret"); strings.Contains(m, "hunter2") || strings.Contains(m, "19") || m != Mask("x") {
		t.Fatalf("mask %q", m)
	}
}

// FuzzParse: arbitrary config text gives a config or an error, never a panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("sources: {appdirect: {base_url: 'http://[::1]:80', client_id: a, client_secret: b}}"))
	f.Add([]byte("streams: 5"))
	f.Add([]byte("lookback: {users: nope}"))
	f.Add([]byte("\x00\xff: ["))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Parse(data, env(map[string]string{"AD_SECRET": "x"}))
	})
}
