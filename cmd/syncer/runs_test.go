package main

import (
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/load"
)

// syncer runs shows the history of _sync_runs, newest run first, one row per run and stream.
func TestRuns_ShowsTheHistoryNewestFirst(t *testing.T) {
	s := startSim(t, apisim.Config{Seed: 2, Scale: 30, Profile: "fast"})
	setSecrets(t)
	dir := t.TempDir()
	p := writeConfig(t, dir, s, nil)
	wh := filepath.Join(dir, "w.duckdb")
	for i := 0; i < 2; i++ {
		if code, _, errOut := syncer(t, "sync", "--config", p, "--streams", "users,charges", "--progress", "never"); code != exitOK {
			t.Fatalf("sync %d: exit %d: %s", i, code, errOut)
		}
	}
	code, out, errOut := syncer(t, "runs", "--warehouse", wh, "--format", "json")
	if code != exitOK {
		t.Fatalf("runs: exit %d: %s", code, errOut)
	}
	var rows []struct {
		RunID    string `json:"run_id"`
		Started  string `json:"started_at"`
		Stream   string `json:"stream"`
		Parts    int64  `json:"parts"`
		Status   string `json:"status"`
		Mode     string `json:"mode"`
		Inserted int64  `json:"inserted"`
		Requests int64  `json:"requests"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("runs json: %v\n%s", err, out)
	}
	// 2 runs x (users, charges with its 3 locations summed, locations).
	if len(rows) != 6 {
		t.Fatalf("%d rows, want 6:\n%s", len(rows), out)
	}
	// Run ids sort by second only (their suffix is random): order is by start time.
	newest, oldest := rows[0].RunID, rows[5].RunID
	if newest == oldest || rows[0].Started < rows[5].Started {
		t.Fatalf("runs not newest first: %s (%s) then %s (%s)", newest, rows[0].Started, oldest, rows[5].Started)
	}
	want := map[string][2]int64{} // stream -> inserted in the newest, oldest run
	for _, r := range rows {
		if r.Status != "succeeded" || r.Requests == 0 {
			t.Errorf("row %+v: want succeeded with requests", r)
		}
		v := want[r.Stream]
		if r.RunID == newest {
			v[0] = r.Inserted
		} else {
			v[1] = r.Inserted
		}
		want[r.Stream] = v
		if r.Stream == "charges" && r.Parts != 3 {
			t.Errorf("charges: %d parts, want one per location (3)", r.Parts)
		}
	}
	if want["users"] != [2]int64{0, 30} {
		t.Errorf("users inserted (newest, oldest) = %v, want [0 30]", want["users"])
	}
	code, out, _ = syncer(t, "runs", "--warehouse", wh, "--last", "1", "--stream", "users", "--format", "csv")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != exitOK || len(lines) != 2 || !strings.Contains(lines[1], newest+",users,") {
		t.Fatalf("runs --last 1 --stream users: exit %d\n%s", code, out)
	}
	code, out, _ = syncer(t, "runs", "--warehouse", wh)
	if lines := strings.Split(out, "\n"); code != exitOK || len(lines) < 8 || !strings.HasPrefix(lines[1], newest+"  charges") ||
		!strings.HasPrefix(lines[6], oldest+"  users") || !strings.Contains(lines[0], "detail") {
		t.Fatalf("runs table, newest first: exit %d\n%s", code, out)
	}
	for _, c := range []struct{ args []string }{{[]string{"--last", "0"}}, {[]string{"--stream", "nope"}}} {
		if code, _, _ := syncer(t, append([]string{"runs", "--warehouse", wh}, c.args...)...); code != exitUsage {
			t.Errorf("runs %v: exit %d, want %d", c.args, code, exitUsage)
		}
	}
}

// syncer help CMD prints CMD's usage like CMD --help; an unknown CMD exits 2.
func TestHelp_PrintsACommandsUsage(t *testing.T) {
	for _, c := range commands() {
		code, out, _ := syncer(t, "help", c.name)
		_, want, _ := syncer(t, c.name, "--help")
		if code != exitOK || out != want || !strings.Contains(out, "Usage: syncer "+c.name) {
			t.Errorf("help %s: exit %d\n%s\nwant\n%s", c.name, code, out, want)
		}
	}
	if code, out, _ := syncer(t, "help"); code != exitOK || !strings.Contains(out, "Commands:") || !strings.Contains(out, "help CMD") {
		t.Errorf("help: exit %d %s", code, out)
	}
	if code, _, errOut := syncer(t, "help", "frobnicate"); code != exitUsage || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("help frobnicate: exit %d %s", code, errOut)
	}
}

// syncer runs --format json carries every counter of the run's JSON summary under the same
// names, per stream (a stream's partitions summed), and csv the same columns: a run under
// throttling and server errors (so retries and 429s are not all zero) is compared field by
// field with its --summary-json.
func TestRuns_JSONCarriesEverySummaryField(t *testing.T) {
	setSecrets(t)
	sim := startSim(t, apisim.Config{Seed: 6, Scale: 150, Profile: "fast", Faults: apisim.Faults{Throttle: 0.1, ServerError: 0.05}})
	dir := t.TempDir()
	cfg := writeConfig(t, dir, sim, func(c string) string {
		return strings.ReplaceAll(c, "    base_url:", "    page_size: 25\n    base_url:")
	})
	t.Setenv("TEST_LEAD_PASSWORD", "wrong") // leads fails: its error is carried too
	code, rep, errOut := syncReport(t, "--config", cfg, "--streams", "users,invoices,leads,charges", "--parquet-dir", "-")
	if code != exitFailed {
		t.Fatalf("exit %d, want 1 (leads fails)\n%s", code, errOut)
	}
	type row struct {
		RunID         string     `json:"run_id"`
		Stream        string     `json:"stream"`
		Status        string     `json:"status"`
		Inserted      int64      `json:"inserted"`
		Updated       int64      `json:"updated"`
		Unchanged     int64      `json:"unchanged"`
		Deleted       int64      `json:"deleted"`
		Rejected      int64      `json:"rejected"`
		Rounded       int64      `json:"rounded"`
		Stale         int64      `json:"stale"`
		Pages         int64      `json:"pages"`
		Requests      int64      `json:"requests"`
		Retries       int64      `json:"retries"`
		Throttled     int64      `json:"throttled"`
		Bytes         int64      `json:"bytes"`
		WaitedSeconds float64    `json:"budget_wait_seconds"`
		ResumesAt     *time.Time `json:"resumes_at"`
		Note          *string    `json:"note"`
		Error         *string    `json:"error"`
	}
	want := map[string]*row{}
	var retries, throttled int64
	for _, s := range rep.Streams {
		w := want[s.Stream]
		if w == nil {
			w = &row{RunID: rep.RunID, Stream: s.Stream, Status: s.Status}
			want[s.Stream] = w
		}
		w.Inserted += s.Inserted
		w.Updated += s.Updated
		w.Unchanged += s.Unchanged
		w.Deleted += s.Deleted
		w.Rejected += s.Rejected
		w.Rounded += s.Rounded
		w.Stale += s.Stale
		w.Pages += s.Pages
		w.Requests += s.Requests
		w.Retries += s.Retries
		w.Throttled += s.Throttled
		w.Bytes += s.Bytes
		w.WaitedSeconds += s.WaitedSeconds
		if s.Note != "" {
			w.Note = &s.Note
		}
		if s.Error != "" {
			w.Error = &s.Error
		}
		retries += s.Retries
		throttled += s.Throttled
	}
	if retries == 0 || throttled == 0 {
		t.Fatalf("%d retries, %d 429s: the faults did not happen and the test proves little", retries, throttled)
	}
	code, out, errOut := syncer(t, "runs", "--warehouse", filepath.Join(dir, "w.duckdb"), "--format", "json")
	if code != exitOK {
		t.Fatalf("runs: exit %d: %s", code, errOut)
	}
	var rows []row
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("runs json: %v\n%s", err, out)
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, the summary has %d streams:\n%s", len(rows), len(want), out)
	}
	str := func(p *string) string {
		if p == nil {
			return "<null>"
		}
		return *p
	}
	for _, g := range rows {
		w := want[g.Stream]
		if w == nil {
			t.Errorf("runs lists %s, which the summary does not", g.Stream)
			continue
		}
		if math.Abs(g.WaitedSeconds-w.WaitedSeconds) > 1e-5 {
			t.Errorf("%s: budget_wait_seconds %v, the summary %v", g.Stream, g.WaitedSeconds, w.WaitedSeconds)
		}
		if str(g.Note) != str(w.Note) || str(g.Error) != str(w.Error) {
			t.Errorf("%s: note %q, error %q; the summary: %q, %q", g.Stream, str(g.Note), str(g.Error), str(w.Note), str(w.Error))
		}
		gc, wc := g, *w
		gc.WaitedSeconds, wc.WaitedSeconds, gc.Note, wc.Note, gc.Error, wc.Error = 0, 0, nil, nil, nil, nil
		if gc != wc {
			t.Errorf("%s:\nruns:    %+v\nsummary: %+v", g.Stream, gc, wc)
		}
	}
	code, out, _ = syncer(t, "runs", "--warehouse", filepath.Join(dir, "w.duckdb"), "--format", "csv")
	header, err := csv.NewReader(strings.NewReader(out)).Read()
	if err != nil {
		t.Fatalf("runs --format csv: %v\n%s", err, out)
	}
	for _, col := range []string{"pages", "rounded", "stale", "bytes", "budget_wait_seconds", "requests", "retries", "throttled", "resumes_at", "note", "error"} {
		if code != exitOK || !slices.Contains(header, col) {
			t.Errorf("runs --format csv: exit %d, no column %s in %v", code, col, header)
		}
	}
}

// The commands that only read the warehouse (status, runs, query, export) take --config for
// its paths and need none of its secrets' variables; sync still needs them all.
func TestReadCommands_WithConfigNeedNoSecrets(t *testing.T) {
	s := startSim(t, apisim.Config{Seed: 2, Scale: 20, Profile: "fast"})
	setSecrets(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, s, nil)
	if code, _, errOut := syncer(t, "sync", "--config", cfg, "--streams", "users", "--progress", "never"); code != exitOK {
		t.Fatalf("sync: exit %d: %s", code, errOut)
	}
	for _, v := range []string{"TEST_AD_SECRET", "TEST_LEAD_PASSWORD", "TEST_HL_SECRET"} {
		t.Setenv(v, "") // restores them when the test ends
		os.Unsetenv(v)
	}
	for _, args := range [][]string{
		{"status", "--config", cfg},
		{"runs", "--config", cfg, "--format", "json"},
		{"query", "SELECT count(*) AS n FROM users", "--config", cfg, "--format", "csv"},
		{"export", "--config", cfg, "--parquet-dir", filepath.Join(dir, "export")},
	} {
		if code, out, errOut := syncer(t, args...); code != exitOK {
			t.Errorf("%s without the secrets' variables: exit %d\n%s%s", args[0], code, out, errOut)
		} else if args[0] == "query" && !strings.Contains(out, "20") {
			t.Errorf("query: %s", out)
		}
	}
	if code, _, errOut := syncer(t, "sync", "--config", cfg, "--progress", "never"); code != exitUsage || !strings.Contains(errOut, "TEST_AD_SECRET is not set") {
		t.Errorf("sync without the secrets: exit %d, want 2 naming TEST_AD_SECRET: %s", code, errOut)
	}
}

// A warehouse last written by a build that did not store bytes and budget wait still lists
// its runs, with those two null, until a sync adds the columns.
func TestRuns_AWarehouseWithoutTheNewColumnsStillLists(t *testing.T) {
	s := startSim(t, apisim.Config{Seed: 2, Scale: 10, Profile: "fast"})
	setSecrets(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, s, nil)
	wh := filepath.Join(dir, "w.duckdb")
	if code, _, errOut := syncer(t, "sync", "--config", cfg, "--streams", "users", "--progress", "never"); code != exitOK {
		t.Fatalf("sync: exit %d: %s", code, errOut)
	}
	db, err := load.Open(t.Context(), wh)
	if err != nil {
		t.Fatal(err)
	}
	for _, col := range []string{"bytes", "budget_wait_seconds"} {
		if _, err := db.Conn().ExecContext(t.Context(), "ALTER TABLE _sync_runs DROP COLUMN "+col); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	code, out, errOut := syncer(t, "runs", "--warehouse", wh, "--format", "json")
	var rows []struct {
		Stream string   `json:"stream"`
		Bytes  *int64   `json:"bytes"`
		Wait   *float64 `json:"budget_wait_seconds"`
	}
	if code != exitOK || json.Unmarshal([]byte(out), &rows) != nil || len(rows) == 0 || rows[0].Bytes != nil || rows[0].Wait != nil {
		t.Fatalf("runs on an older warehouse: exit %d %s\n%s", code, out, errOut)
	}
}
