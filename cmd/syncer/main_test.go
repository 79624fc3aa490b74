package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/internal/simcheck"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
)

// syncer runs the CLI in-process and returns exit code, stdout and stderr.
func syncer(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func startSim(t *testing.T, cfg apisim.Config) *apisim.Server { return simcheck.Start(t, cfg) }

// writeConfig writes a config for the simulator; edit lets a test break one value.
func writeConfig(t testing.TB, dir string, s *apisim.Server, edit func(string) string) string {
	t.Helper()
	cfg := fmt.Sprintf(`warehouse: %[1]s/w.duckdb
parquet_dir: %[1]s/parquet
sources:
  appdirect:
    base_url: %[2]s
    client_id: %[3]s
    client_secret: ${TEST_AD_SECRET}
    lead_username: %[4]s
    lead_password: ${TEST_LEAD_PASSWORD}
    lead_company_id: c-1
  highlevel:
    base_url: %[2]s
    client_id: %[5]s
    client_secret: ${TEST_HL_SECRET}
    company_id: %[6]s
    app_id: %[7]s
`, dir, s.URL(), apisim.DemoClientID, apisim.DemoLeadUser, apisim.DemoHLClientID, apisim.DemoHLCompanyID, apisim.DemoHLAppID)
	if edit != nil {
		cfg = edit(cfg)
	}
	p := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testSecrets are the simulator's credentials the test configs name. TestMain sets them for
// the whole test process, so that tests that run in parallel (which may not t.Setenv) find them.
var testSecrets = [][2]string{
	{"TEST_AD_SECRET", apisim.DemoClientSecret},
	{"TEST_LEAD_PASSWORD", apisim.DemoLeadPassword},
	{"TEST_HL_SECRET", apisim.DemoHLClientSecret},
	{"LAKE_CLIENT_ID", "marketsync"},
	{"LAKE_CLIENT_SECRET", lakeRESTSecret},
}

func TestMain(m *testing.M) {
	for _, kv := range testSecrets {
		os.Setenv(kv[0], kv[1])
	}
	os.Exit(m.Run())
}

// setSecrets makes sure the test configs' secrets are set: a test that changed one (t.Setenv)
// has it restored when it ends, so this sets only what is missing, and works in parallel tests.
func setSecrets(t *testing.T) {
	for _, kv := range testSecrets[:3] {
		setenv(t, kv[0], kv[1])
	}
}

// setenv is t.Setenv unless the variable already holds the value (then it also works in a
// parallel test).
func setenv(t *testing.T, key, value string) {
	if v, ok := os.LookupEnv(key); !ok || v != value {
		t.Setenv(key, value)
	}
}

func TestSync_NoConfigSyncsTheEmbeddedSimulator(t *testing.T) {
	skipUnderRace(t) // sync, reset and read flows in one goroutine each; the in-process simulator is slow under -race
	t.Parallel()
	dir := t.TempDir()
	// A twin of the embedded simulator: the same seed, scale, start and address serve the same
	// data (links carry the address), so the warehouse can be compared with it row by row.
	twin := startSim(t, apisim.Config{Seed: 42, Scale: 300, Start: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), LinkBase: apisim.DemoLinkBase})
	addr := strings.TrimPrefix(twin.URL(), "http://")
	twin.Close()
	code, out, errOut := syncer(t, "sync", "--warehouse", dir+"/w.duckdb", "--parquet-dir", dir+"/pq", "--progress", "never",
		"--sim-scale", "300", "--sim-start", "2026-06-01T00:00:00Z", "--sim-addr", addr, "--summary", "always",
		"--summary-json", dir+"/summary.json", "--metrics-file", dir+"/marketsync.prom")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// The JSON summary and the metrics file carry the same true counters as the table.
	var rep runReport
	if b, err := os.ReadFile(dir + "/summary.json"); err != nil || json.Unmarshal(b, &rep) != nil {
		t.Fatalf("summary json: %v %s", err, b)
	}
	var companies int64
	for _, s := range rep.Streams {
		if s.Stream == "companies" {
			companies = s.Inserted
		}
	}
	if rep.Status != "succeeded" || rep.RunID == "" || companies != 300 || len(rep.Streams) != 10 {
		t.Fatalf("summary json %+v: want succeeded, 300 companies inserted, 10 stream partitions", rep)
	}
	prom, _ := os.ReadFile(dir + "/marketsync.prom")
	if !strings.Contains(string(prom), `marketsync_last_run_rows{outcome="inserted",partition="",stream="companies",tenant="default"} 300`) ||
		!strings.Contains(string(prom), `marketsync_last_run_timestamp_seconds{status="succeeded"}`) {
		t.Fatalf("metrics file lacks the run's counters:\n%s", prom)
	}
	if !strings.Contains(errOut, `msg="run finished"`) || !strings.Contains(errOut, rep.RunID) {
		t.Fatalf("logs lack the closing run finished event:\n%s", errOut)
	}
	wh, err := load.OpenReadOnly(context.Background(), dir+"/w.duckdb")
	if err != nil {
		t.Fatal(err)
	}
	diff, err := simcheck.CompareRows(context.Background(), wh, twin, schemas.Streams, simcheck.RowOptions{})
	wh.Close()
	if err != nil || diff != "" {
		t.Fatalf("the demo warehouse differs from the simulator's rows (%v):\n%s", err, diff)
	}
	// A second demo run (a new embedded simulator, possibly on another port) re-reads rows
	// whose content did not change: none may count as updated (links must not carry the port).
	if code, _, errOut := syncer(t, "sync", "--warehouse", dir+"/w.duckdb", "--parquet-dir", dir+"/pq", "--progress", "never",
		"--sim-scale", "300", "--sim-start", "2026-06-01T00:00:00Z", "--summary-json", dir+"/summary2.json"); code != exitOK {
		t.Fatalf("second run: exit %d: %s", code, errOut)
	}
	var rep2 runReport
	if b, err := os.ReadFile(dir + "/summary2.json"); err != nil || json.Unmarshal(b, &rep2) != nil {
		t.Fatalf("summary json: %v %s", err, b)
	}
	for _, s := range rep2.Streams {
		if s.Updated != 0 || s.Inserted != 0 {
			t.Errorf("second demo run: %s/%s inserted %d updated %d; want 0 (nothing changed at the source)", s.Stream, s.Partition, s.Inserted, s.Updated)
		}
	}
	for _, s := range []string{"companies", "users", "invoices", "leads", "opportunities", "charges (3 parts)", "locations"} {
		if !strings.Contains(out, s) {
			t.Errorf("summary lacks %q:\n%s", s, out)
		}
	}
	if !strings.Contains(errOut, "embedded API simulator") || !strings.Contains(errOut, "stream done") {
		t.Errorf("logs should say where data came from and per-stream results:\n%s", errOut)
	}
	// query in every format, against what was synced.
	code, out, _ = syncer(t, "query", "SELECT count(*) AS n FROM companies", "--warehouse", dir+"/w.duckdb", "--format", "json")
	var rows []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 1 || rows[0]["n"] != float64(300) {
		t.Fatalf("query json: %d %q", code, out)
	}
	code, out, _ = syncer(t, "query", "lead_funnel", "--format", "csv", "--warehouse", dir+"/w.duckdb")
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || err != nil || strings.Join(recs[0], ",") != "tenant,status,leads,share,conversion_rate" || len(recs) < 2 {
		t.Fatalf("query csv: %d %v %q", code, err, out)
	}
	code, out, _ = syncer(t, "query", "company_overview", "--warehouse", dir+"/w.duckdb")
	if code != 0 || !strings.Contains(out, "(300 rows)") {
		t.Fatalf("query table: %d %q", code, out[:min(len(out), 300)])
	}
	code, out, _ = syncer(t, "status", "--warehouse", dir+"/w.duckdb")
	if code != 0 || !strings.Contains(out, "succeeded") || !strings.Contains(out, "rows per table") {
		t.Fatalf("status: %d %s", code, out)
	}
	code, out, _ = syncer(t, "export", "--warehouse", dir+"/w.duckdb", "--parquet-dir", dir+"/snap")
	files, _ := filepath.Glob(dir + "/snap/companies/*/*.parquet")
	if code != 0 || len(files) == 0 {
		t.Fatalf("export: %d %s, %d files", code, out, len(files))
	}
	if fi, _ := os.Stat(files[0]); fi.Mode().Perm() != 0o600 {
		t.Fatalf("parquet file mode %v, want owner-only", fi.Mode().Perm())
	}
}

func TestExitCodesAndErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{nil, exitUsage, ""},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"sync", "--bogus"}, exitUsage, "bogus"},
		{[]string{"sync", "--streams", "nope"}, exitUsage, `unknown stream "nope"`},
		{[]string{"sync", "--config", dir + "/missing.yaml"}, exitUsage, "does not exist"},
		{[]string{"query", "no_such_query", "--warehouse", dir + "/w.duckdb"}, exitUsage, "not a shipped query"},
		{[]string{"status", "--warehouse", dir + "/none.duckdb"}, exitFailed, "run `syncer sync` first"},
		{[]string{"sync", "--log-format", "xml"}, exitUsage, "--log-format"},
		{[]string{"serve", "--every", "soon"}, exitUsage, `"soon" is not a duration`},
	}
	for _, c := range cases {
		code, _, errOut := syncer(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.msg) {
			t.Errorf("syncer %v: exit %d (%q), want %d with %q", c.args, code, errOut, c.code, c.msg)
		}
	}
	for _, c := range commands() {
		if code, out, _ := syncer(t, c.name, "--help"); code != exitOK || !strings.Contains(out, "Usage: syncer "+c.name) {
			t.Errorf("%s --help: exit %d %q", c.name, code, out)
		}
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	s := startSim(t, apisim.Config{Seed: 1, Scale: 50, Profile: "fast"})
	setSecrets(t)
	dir := t.TempDir()
	p := writeConfig(t, dir, s, func(c string) string { return strings.Replace(c, "lead_company_id", "lead_compnay_id", 1) })
	code, _, errOut := syncer(t, "sync", "--config", p)
	if code != exitUsage || !strings.Contains(errOut, "config key lead_compnay_id") || !strings.Contains(errOut, "line") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	t.Setenv("TEST_HL_SECRET", "")
	os.Unsetenv("TEST_HL_SECRET")
	p = writeConfig(t, dir, s, nil)
	code, _, errOut = syncer(t, "check", "--config", p)
	if code != exitUsage || !strings.Contains(errOut, "sources.highlevel.client_secret") || !strings.Contains(errOut, "TEST_HL_SECRET") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// Every mistake in the config or the flags exits 2 with a message naming what is wrong and the fix.
func TestConfigAndFlagMistakesExitTwoNamingTheFix(t *testing.T) {
	s := startSim(t, apisim.Config{Seed: 1, Scale: 50, Profile: "fast"})
	setSecrets(t)
	dir := t.TempDir()
	cases := []struct {
		name  string
		edit  func(string) string // nil: the good config
		env   map[string]string   // set ("" = set but empty); "-" unsets
		args  []string            // after sync --config FILE
		wants []string
	}{
		{name: "missing file", args: []string{"--config", dir + "/nope.yaml"}, wants: []string{"nope.yaml does not exist", "--config path"}},
		{name: "invalid YAML", edit: func(c string) string { return c + "  : [\n" }, wants: []string{"not valid YAML", "line"}},
		{name: "bad duration", edit: func(c string) string { return "full_scan_every: 7x\n" + c },
			wants: []string{"config key full_scan_every", `"7x" is not a duration`, "7d"}},
		{name: "word for a number", edit: func(c string) string { return "batch_rows: lots\n" + c }, wants: []string{"config key batch_rows", "whole number"}},
		{name: "unset variable", env: map[string]string{"TEST_HL_SECRET": "-"},
			wants: []string{"config key sources.highlevel.client_secret", "TEST_HL_SECRET is not set"}},
		{name: "empty variable", env: map[string]string{"TEST_HL_SECRET": ""},
			wants: []string{"config key sources.highlevel.client_secret", "TEST_HL_SECRET is set but empty"}},
		{name: "concurrency 0", args: []string{"--concurrency", "0"}, wants: []string{"--concurrency 0", "1 or more"}},
		{name: "concurrency -3", args: []string{"--concurrency", "-3"}, wants: []string{"--concurrency -3"}},
		{name: "empty streams", args: []string{"--streams", ""}, wants: []string{"--streams is empty", "leave the flag out"}},
		{name: "stray comma in streams", args: []string{"--streams", "users,,leads"}, wants: []string{"an empty name"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
				if v == "-" {
					os.Unsetenv(k)
				}
			}
			p := writeConfig(t, t.TempDir(), s, c.edit)
			args := append([]string{"sync", "--config", p, "--progress", "never"}, c.args...)
			code, _, errOut := syncer(t, args...)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d: %s", code, exitUsage, errOut)
			}
			for _, w := range c.wants {
				if !strings.Contains(errOut, w) {
					t.Errorf("message lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}

// Relative paths in a config are relative to its folder, whatever the working directory.
func TestConfig_RelativePathsFollowTheConfigFile(t *testing.T) {
	s := startSim(t, apisim.Config{Seed: 1, Scale: 50, Profile: "fast"})
	setSecrets(t)
	dir := t.TempDir()
	p := writeConfig(t, dir, s, func(c string) string {
		c = strings.Replace(c, "warehouse: "+dir+"/w.duckdb", "warehouse: data/w.duckdb", 1)
		return strings.Replace(c, "parquet_dir: "+dir+"/parquet", "full_scan_every: 7d", 1)
	})
	t.Chdir(t.TempDir())
	code, out, errOut := syncer(t, "check", "--config", p)
	if code != exitOK || !strings.Contains(out, "warehouse "+filepath.Join(dir, "data/w.duckdb")+", parquet "+filepath.Join(dir, "data/parquet")) {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
}

func TestCheck_MasksSecretsAndReachesEveryEndpoint(t *testing.T) {
	s := startSim(t, apisim.Config{Seed: 1, Scale: 50, Profile: "fast"})
	setSecrets(t)
	p := writeConfig(t, t.TempDir(), s, nil)
	code, out, errOut := syncer(t, "check", "--config", p)
	if code != exitOK {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	if strings.Count(out, "ok   ") != 9 || !strings.Contains(out, "ok   appdirect leads fromDate unit (milliseconds, as configured)") || !strings.Contains(out, "scope ROLE_RESELLER_MANAGER") || !strings.Contains(out, "auth=client_credentials") {
		t.Fatalf("want 9 probes ok (the lead date unit among them), the scopes and the HighLevel auth mode in use:\n%s", out)
	}
	for _, secret := range []string{apisim.DemoClientSecret, apisim.DemoLeadPassword, apisim.DemoHLClientSecret} {
		if strings.Contains(out+errOut, secret) {
			t.Fatalf("check printed a secret")
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(p), "w.duckdb")); err == nil {
		t.Fatal("check wrote a warehouse")
	}
	// A wrong secret: exit 1 naming the failing endpoint.
	t.Setenv("TEST_AD_SECRET", "not-it")
	code, out, _ = syncer(t, "check", "--config", p)
	if code != exitFailed || !strings.Contains(out, "FAIL appdirect companies") || strings.Contains(out, "not-it") {
		t.Fatalf("wrong secret: exit %d\n%s", code, out)
	}
}

func TestSync_FailedStreamExitsOneOthersCommit(t *testing.T) {
	s := startSim(t, apisim.Config{Seed: 1, Scale: 200, Profile: "fast"})
	setSecrets(t)
	t.Setenv("TEST_LEAD_PASSWORD", "wrong")
	dir := t.TempDir()
	p := writeConfig(t, dir, s, nil)
	code, out, errOut := syncer(t, "sync", "--config", p, "--progress", "never", "--summary", "always")
	if code != exitFailed || !strings.Contains(out, "leads failed:") || !strings.Contains(errOut, "leads") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	_, out, _ = syncer(t, "query", "SELECT count(*) FROM users", "--warehouse", dir+"/w.duckdb", "--format", "csv")
	if !strings.Contains(out, "200") {
		t.Fatalf("users should be committed despite leads failing: %s", out)
	}
}

func TestQueries_ListsEveryShippedQuery(t *testing.T) {
	code, out, _ := syncer(t, "queries")
	for _, q := range []string{"revenue_by_month", "outstanding_invoices", "lead_funnel", "opportunity_pipeline", "charges_by_location_meter_day", "company_overview", "data_freshness"} {
		if code != 0 || !strings.Contains(out, q) {
			t.Errorf("queries lacks %s", q)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		if code, out, _ := syncer(t, arg); code != 0 || !strings.HasPrefix(out, "syncer ") || !strings.Contains(out, "duckdb-go") {
			t.Fatalf("%s: %d %q", arg, code, out)
		}
	}
}

// Off a terminal, stdout carries no human table unless asked; --summary-json - puts only JSON
// there, so a scheduler can parse it.
func TestSync_StdoutIsMachineReadableOffATerminal(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := syncer(t, "sync", "--warehouse", dir+"/w.duckdb", "--parquet-dir", "-", "--progress", "never",
		"--sim-scale", "50", "--summary-json", "-", "--log-format", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep runReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Status != "succeeded" {
		t.Fatalf("stdout is not the JSON summary (%v):\n%s", err, out)
	}
	var last map[string]any
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last["msg"] != "run finished" || last["run_id"] != rep.RunID {
		t.Fatalf("the last JSON log line should be the run finished event: %v %s", err, lines[len(lines)-1])
	}
}

// query renders JSON columns as JSON (keys in their stored order) and lists as JSON in every
// format, and JSON output keeps the query's column order.
func TestQuery_RendersJSONListsAndColumnOrder(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := syncer(t, "sync", "--warehouse", dir+"/w.duckdb", "--parquet-dir", "-", "--progress", "never", "--sim-scale", "20", "--streams", "users"); code != 0 {
		t.Fatal(errOut)
	}
	q := `SELECT 'z' AS zeta, '{"b":1,"a":[true,null]}'::JSON AS doc, ['x','y'] AS list, 1 AS alpha`
	_, out, _ := syncer(t, "query", q, "--warehouse", dir+"/w.duckdb", "--format", "json")
	if want := `{"zeta": "z", "doc": {"b":1,"a":[true,null]}, "list": ["x","y"], "alpha": 1}`; !strings.Contains(out, want) {
		t.Fatalf("json output:\n%s\nwant a row %s", out, want)
	}
	_, out, _ = syncer(t, "query", q, "--warehouse", dir+"/w.duckdb", "--format", "csv")
	if want := `z,"{""b"":1,""a"":[true,null]}","[""x"",""y""]",1`; !strings.Contains(out, want) {
		t.Fatalf("csv output:\n%s\nwant %s", out, want)
	}
}

// The demo sync never writes where a production config writes by default, and the read
// commands find the demo warehouse when it is the only one.
func TestSync_DemoWarehouseIsSeparateFromTheProductionDefault(t *testing.T) {
	t.Chdir(t.TempDir())
	if code, _, errOut := syncer(t, "sync", "--progress", "never", "--sim-scale", "20", "--streams", "users"); code != 0 {
		t.Fatal(errOut)
	}
	if _, err := os.Stat("data/demo/warehouse.duckdb"); err != nil {
		t.Fatalf("demo warehouse: %v", err)
	}
	if _, err := os.Stat("data/warehouse.duckdb"); err == nil {
		t.Fatal("the demo wrote the production default path")
	}
	if code, out, errOut := syncer(t, "status"); code != 0 || !strings.Contains(out, "users") {
		t.Fatalf("status: %d %s %s", code, out, errOut)
	}
}
