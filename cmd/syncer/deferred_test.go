package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/marketsync/marketsync/apisim"
)

// A HighLevel location whose daily budget runs low stops that location as `deferred`, not
// `failed`: exit 0, with the time it resumes in the summary, the JSON summary, _sync_runs and
// syncer status; what it fetched is committed and its cursor is never ahead of it. Once the
// budget's day has passed, the next run finishes and the warehouse equals the source.
func TestSync_DailyBudgetStopIsDeferredNotFailed(t *testing.T) {
	// Speed 20000: the simulator's day lasts 4.3 s and its 10 s burst window 0.5 ms.
	s := startSim(t, apisim.Config{Seed: 6, Scale: 150, Locations: 2, Profile: "realistic", Speed: 20000, HLDaily: 20})
	setSecrets(t)
	dir := t.TempDir()
	wh := filepath.Join(dir, "w.duckdb")
	withFloor := func(floor string) func(string) string {
		return func(c string) string {
			return strings.Replace(c, "app_id: "+apisim.DemoHLAppID, "app_id: "+apisim.DemoHLAppID+"\n    page_size: 5\n    daily_floor: "+floor, 1)
		}
	}
	p := writeConfig(t, dir, s, withFloor("10"))
	before := time.Now()
	code, out, errOut := syncer(t, "sync", "--config", p, "--streams", "charges", "--progress", "never", "--summary", "always",
		"--summary-json", dir+"/summary.json")
	if code != exitOK {
		t.Fatalf("a daily-budget stop: exit %d, want 0:\n%s\n%s", code, out, errOut)
	}
	var rep runReport
	if b, err := os.ReadFile(dir + "/summary.json"); err != nil || json.Unmarshal(b, &rep) != nil {
		t.Fatalf("summary json: %v %s", err, b)
	}
	if rep.Status != "deferred" || rep.ResumesAt == nil {
		t.Fatalf("run status %q resumes %v, want deferred with a time", rep.Status, rep.ResumesAt)
	}
	deferred := 0
	for _, st := range rep.Streams {
		if st.Stream != "charges" {
			continue
		}
		if st.Status != "deferred" || st.ResumesAt == nil || st.Error != "" || !strings.Contains(st.Note, "daily request budget") {
			t.Errorf("charges %s: %+v, want deferred with a resume time and a note, no error", st.Partition, st)
			continue
		}
		deferred++
		if d := st.ResumesAt.Sub(before); d < 24*time.Hour-time.Minute || d > 24*time.Hour+time.Minute {
			t.Errorf("charges %s resumes %v after the run started, want the budget's day (24 h)", st.Partition, d)
		}
		if st.Inserted == 0 || st.Throttled > 0 {
			t.Errorf("charges %s: %d inserted, %d 429s: want the rows fetched before the floor, and no request refused",
				st.Partition, st.Inserted, st.Throttled)
		}
	}
	if deferred != 2 {
		t.Fatalf("%d deferred charges partitions, want 2", deferred)
	}
	if !strings.Contains(out, "deferred") || !strings.Contains(out, "resumes after") {
		t.Errorf("summary table does not say deferred and when it resumes:\n%s", out)
	}
	// _sync_runs and status carry it; each cursor is at most where the committed rows end.
	if n := queryInt(t, wh, "SELECT count(*) FROM _sync_runs WHERE stream = 'charges' AND status = 'deferred' AND resumes_at > now() + INTERVAL 23 HOUR"); n != 2 {
		t.Fatalf("%d deferred charges rows with resumes_at in _sync_runs, want 2", n)
	}
	if n := queryInt(t, wh, `SELECT count(*) FROM _sync_state s WHERE s.stream = 'charges' AND CAST(json_extract(s.cursor, '$.value_us') AS BIGINT) >
		(SELECT coalesce(max(epoch_us(updated_at)), 0) FROM charges c WHERE c.location_id = s.partition)`); n != 0 {
		t.Fatalf("%d charges cursors ahead of their committed rows", n)
	}
	code, out, _ = syncer(t, "status", "--warehouse", wh, "--format", "json")
	var status []map[string]any
	if err := json.Unmarshal([]byte(out), &status); code != exitOK || err != nil {
		t.Fatalf("status: exit %d %v\n%s", code, err, out)
	}
	for _, r := range status {
		if r["stream"] == "charges" && (r["last_status"] != "deferred" || r["resumes_at"] == nil) {
			t.Errorf("status row %v: want deferred with resumes_at", r)
		}
	}
	// The budget's day passes (4.3 s here); with a lower floor the budget now covers the rest.
	time.Sleep(time.Until(before.Add(5 * time.Second)))
	p = writeConfig(t, dir, s, withFloor("1"))
	if code, out, errOut := syncer(t, "sync", "--config", p, "--streams", "charges", "--progress", "never", "--summary", "always"); code != exitOK ||
		strings.Contains(out, "deferred") {
		t.Fatalf("the run after the budget's day: exit %d\n%s\n%s", code, out, errOut)
	}
	compareWarehouse(t, wh, s, "charges")
}
