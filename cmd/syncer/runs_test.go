package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/marketsync/marketsync/apisim"
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
