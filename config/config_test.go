package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
		{"lead user without a company", strings.Replace(strings.Replace(good, "[users, charges]", "[users, leads]", 1), "client_id: abc", "client_id: abc\n    lead_username: u@example.com\n    lead_password: pw", 1), all, "sources.appdirect.lead_company_id", "required to sync leads"},
		{"unclosed variable", strings.Replace(good, "client_secret: ${AD_SECRET}", `client_secret: "${AD_SECRET"`, 1), all, "sources.appdirect.client_secret", "not closed"},
		{"env var set but empty", good, env(map[string]string{"AD_SECRET": "", "HL_SECRET": "y"}), "sources.appdirect.client_secret", "AD_SECRET is set but empty"},
		{"bad duration unit", "full_scan_every: 7x\n" + good, all, "full_scan_every", `"7x" is not a duration`},
		{"duration without a unit", "full_scan_every: 7\n" + good, all, "full_scan_every", "7d"},
		{"duration too short", "full_scan_every: 1s\n" + good, all, "full_scan_every", "at least 1m"},
		{"bad lookback in a flow mapping", "lookback: {users: 1d, invoices: soon}\n" + good, all, "lookback.invoices", `"soon" is not a duration`},
		{"negative lookback", "lookback: {users: -1h}\n" + good, all, "lookback.users", "0 or more"},
		{"lookback of a non-stream", "lookback: {userz: 1h}\n" + good, all, "lookback.userz", "not a stream"},
		{"word for a number", "concurrency: many\n" + good, all, "concurrency", `"many" is not a whole number`},
		{"word for a bool", "allow_insecure_http: maybe\n" + good, all, "allow_insecure_http", "true or false"},
		{"nested bad number", strings.Replace(good, "client_id: abc", "client_id: abc\n    page_size: lots", 1), all, "sources.appdirect.page_size", "whole number"},
		{"scalar for a list", "streams: users\n" + strings.Replace(good, "streams: [users, charges]\n", "", 1), all, "streams", "a list"},
		{"bad highlevel interval", strings.Replace(good, "app_id: a", "app_id: a\n    interval: 10 seconds", 1), all, "sources.highlevel.interval", "not a duration"},
		{"bad serve every", good + "serve: {every: weekly}\n", all, "serve.every", "not a duration"},
		{"bad variable name", strings.Replace(good, "${AD_SECRET}", "${AD-SECRET}", 1), all, "sources.appdirect.client_secret", "not a variable reference"},
		{"concurrency 0", "concurrency: 0\n" + good, all, "concurrency", `"0" (line 1) would silently mean the default: want 1 to 64`},
		{"concurrency without a value", "concurrency:\n" + good, all, "concurrency", "no value (line 1)"},
		{"batch_rows 0", "batch_rows: 0\n" + good, all, "batch_rows", `"0" (line 1) would silently mean the default: want 1 to 1000000`},
		{"empty streams", "streams: []\n" + strings.Replace(good, "streams: [users, charges]\n", "", 1), all, "streams", "an empty list (line 1) would silently mean the default: name at least one stream"},
		{"streams without a value", strings.Replace(good, "streams: [users, charges]", "streams:", 1), all, "streams", "no value (line 3)"},
		{"page_size 0", strings.Replace(good, "client_id: abc", "client_id: abc\n    page_size: 0", 1), all, "sources.appdirect.page_size", `"0" (line 8) would silently mean the default: want 1 to 250`},
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
	f.Add([]byte("full_scan_every: 7x\nlookback: {users: 1d, invoices: [x]}\nconcurrency: many"))
	f.Add([]byte("\x00\xff: ["))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Parse(data, env(map[string]string{"AD_SECRET": "x"}))
	})
}

func TestParse_InvalidYAMLNamesTheLine(t *testing.T) {
	_, err := Parse([]byte("warehouse: [x\nsources: {"), env(nil))
	var ce *Error
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "not valid YAML") || !strings.Contains(err.Error(), "line") {
		t.Fatalf("error %v, want a config error naming the line", err)
	}
}

func TestParse_DurationsAcceptDays(t *testing.T) {
	y := "full_scan_every: 7d\nlookback: {invoices: 1d12h, users: 90m}\n" + strings.Replace(good, "app_id: a", "app_id: a\n    interval: 10s", 1) +
		"serve: {every: 1d, users: [{name: u, password: password-1}]}\n"
	f, err := Parse([]byte(y), env(map[string]string{"AD_SECRET": "x", "HL_SECRET": "y"}))
	if err != nil {
		t.Fatal(err)
	}
	if f.FullScanEvery.Std() != 7*24*time.Hour || f.Lookback["invoices"].Std() != 36*time.Hour || f.Lookback["users"].Std() != 90*time.Minute ||
		f.Sources.HighLevel.Interval.Std() != 10*time.Second || f.Serve.Every.Std() != 24*time.Hour {
		t.Fatalf("durations %v %v %v %v %v", f.FullScanEvery, f.Lookback["invoices"], f.Lookback["users"], f.Sources.HighLevel.Interval, f.Serve.Every)
	}
	var d Duration
	if err := d.Set("2d"); err != nil || d.Std() != 48*time.Hour {
		t.Fatalf("flag value 2d: %v %v", d, err)
	}
	if err := d.Set("soon"); err == nil {
		t.Fatal("flag value soon accepted")
	}
}

func TestParse_DollarWithoutBraceIsLiteral(t *testing.T) {
	// A secret may contain $ (and $$); only ${NAME} is a reference.
	y := strings.Replace(good, "client_id: abc", "client_id: a$b$$c${AD_SECRET}$", 1)
	f, err := Parse([]byte(y), env(map[string]string{"AD_SECRET": "x", "HL_SECRET": "y"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Sources.AppDirect.ClientID; got != "a$b$$cx$" {
		t.Fatalf("client_id %q, want a$b$$cx$", got)
	}
}

func TestLoad_RelativePathsResolveAgainstTheConfigFolder(t *testing.T) {
	dir := t.TempDir()
	y := strings.Replace(good, "warehouse: /tmp/w.duckdb", "warehouse: w/x.duckdb", 1) +
		"lake: {uri: cat.db, warehouse: lakefiles}\nserve: {tls_cert: tls/c.pem, tls_key: /abs/k.pem, users: [{name: u, password: password-1}]}\n"
	p := filepath.Join(dir, "conf.yaml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AD_SECRET", "x")
	t.Setenv("HL_SECRET", "y")
	t.Chdir(t.TempDir()) // another working directory: the paths must not depend on it
	f, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"warehouse": filepath.Join(dir, "w/x.duckdb"), "parquet_dir (default)": filepath.Join(dir, "data/parquet"),
		"lake.uri": filepath.Join(dir, "cat.db"), "lake.warehouse": filepath.Join(dir, "lakefiles"),
		"serve.tls_cert": filepath.Join(dir, "tls/c.pem"), "serve.tls_key": "/abs/k.pem",
	}
	got := map[string]string{"warehouse": f.Warehouse, "parquet_dir (default)": f.ParquetDir, "lake.uri": f.Lake.URI,
		"lake.warehouse": f.Lake.Warehouse, "serve.tls_cert": f.Serve.TLSCert, "serve.tls_key": f.Serve.TLSKey}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
	// A postgres DSN or s3:// location is not a path.
	y2 := good + "lake: {uri: 'postgres://u@h/db', warehouse: 's3://bucket/p'}\n"
	if err := os.WriteFile(p, []byte(y2), 0o600); err != nil {
		t.Fatal(err)
	}
	if f, err = Load(p); err != nil || f.Lake.URI != "postgres://u@h/db" || f.Lake.Warehouse != "s3://bucket/p" {
		t.Fatalf("%v %+v", err, f.Lake)
	}
}

func TestLoad_MissingFileIsAConfigError(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	var ce *Error
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("error %v", err)
	}
}

// Commands that only read the warehouse load the config without its secrets: an unset (or
// empty) secret's variable is no error and comes back empty; every other variable still must be
// set, and Load still needs them all.
func TestLoadDeferringSecrets_NeedsNoSecret(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	y := strings.Replace(good, "warehouse: /tmp/w.duckdb", "warehouse: ${WH_DIR}/w.duckdb", 1) + "serve:\n  users:\n    - name: bi\n      password: ${BI_PASSWORD}\n"
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WH_DIR", "/data")
	t.Setenv("HL_SECRET", "") // set but empty
	os.Unsetenv("AD_SECRET")
	os.Unsetenv("BI_PASSWORD")
	f, err := LoadDeferringSecrets(p)
	if err != nil {
		t.Fatal(err)
	}
	if f.Warehouse != "/data/w.duckdb" || f.Sources.AppDirect.ClientSecret != "" || f.Sources.HighLevel.ClientSecret != "" || f.Serve.Users[0].Password != "" {
		t.Fatalf("warehouse %q, secrets %q %q %q: want the path expanded and the secrets empty", f.Warehouse,
			f.Sources.AppDirect.ClientSecret, f.Sources.HighLevel.ClientSecret, f.Serve.Users[0].Password)
	}
	var ce *Error
	if _, err := Load(p); !errors.As(err, &ce) || ce.Key != "sources.appdirect.client_secret" {
		t.Fatalf("Load without the secrets: %v, want the unset AD_SECRET named", err)
	}
	os.Unsetenv("WH_DIR")
	if _, err := LoadDeferringSecrets(p); !errors.As(err, &ce) || ce.Key != "warehouse" || !strings.Contains(err.Error(), "WH_DIR is not set") {
		t.Fatalf("an unset non-secret variable: %v, want it named", err)
	}
}
