package main

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/load"
)

// SIGINT and SIGTERM are not failures: the real binary, with JSON logs, logs each stream it
// stopped as a WARN "stream stopped" naming what it committed and where its cursor is (equal
// to the summary and to _sync_state), logs nothing at ERROR, and exits 1 as the README's exit
// codes say, its last line saying how many stream runs stopped.
func TestSignals_StoppedStreamsAreLoggedWithWhatTheyKeptNotAsFailures(t *testing.T) {
	bin := binary(t)
	// Scale 4000 (was 20000): at 16 requests a second the sync still runs for minutes; the
	// test fails if no stream run was cancelled.
	s := startSim(t, apisim.Config{Seed: 3, Scale: 4000, Profile: "realistic", Speed: 4})
	setSecrets(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, s, func(c string) string {
		return strings.Replace(c, "lead_company_id: c-1", "lead_company_id: c-1\n    rate_per_second: 16\n    companies_rate_per_second: 20", 1) + "batch_rows: 500\n"
	})
	wh := filepath.Join(dir, "w.duckdb")
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		summary := filepath.Join(dir, "summary-"+sig.String()+".json")
		cmd := exec.Command(bin, "sync", "--config", cfg, "--progress", "never", "--log-format", "json", "--log-level", "debug", "--summary-json", summary)
		stderr := &lockedBuffer{}
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(stderr.String(), `"msg":"committed"`) && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		_ = cmd.Process.Signal(sig)
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitFailed {
			t.Fatalf("%v: %v, want exit 1\n%s", sig, err, stderr.String())
		}
		b, err := os.ReadFile(summary)
		if err != nil {
			t.Fatal(err)
		}
		var rep runReport
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Status != "cancelled" {
			t.Fatalf("%v: run status %s, want cancelled", sig, rep.Status)
		}

		type record struct {
			Level, Msg, Stream, Partition, Cursor, Committed string
			Inserted, Updated                                int64
			CursorMoved                                      bool `json:"cursor_moved"`
		}
		stopped := map[string]record{}
		var last string
		sc := bufio.NewScanner(strings.NewReader(stderr.String()))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "{") {
				last = line // main's closing error line is not a log record
				continue
			}
			var head struct{ Level, Msg string }
			if err := json.Unmarshal([]byte(line), &head); err != nil {
				t.Fatalf("%v: a log line is not JSON: %v\n%s", sig, err, line)
			}
			if head.Level == "ERROR" {
				t.Errorf("%v: an ERROR record after a signal: %s", sig, line)
			}
			if head.Msg == "stream stopped" {
				var r record
				if err := json.Unmarshal([]byte(line), &r); err != nil {
					t.Fatalf("%v: %v\n%s", sig, err, line)
				}
				if r.Level != "WARN" {
					t.Errorf("%v: %s at %s, want WARN", sig, line, r.Level)
				}
				stopped[r.Stream+"/"+r.Partition] = r
			}
		}
		if !strings.Contains(last, "stream runs stopped before completion") || strings.Contains(last, "failed") {
			t.Errorf("%v: the closing line %q should say how many stream runs stopped, and not that they failed", sig, last)
		}

		db, err := load.OpenReadOnly(t.Context(), wh)
		if err != nil {
			t.Fatal(err)
		}
		cancelled := 0
		for _, st := range rep.Streams {
			key := st.Stream + "/" + st.Partition
			r, logged := stopped[key]
			if st.Status != "cancelled" {
				if logged {
					t.Errorf("%v: %s logged as stopped, its status is %s", sig, key, st.Status)
				}
				continue
			}
			cancelled++
			if !logged {
				t.Errorf("%v: %s was cancelled and not logged as stopped", sig, key)
				continue
			}
			var stored sql.NullInt64
			err := db.QueryRowContext(t.Context(), `SELECT CAST(json_extract(cursor, '$.value_us') AS BIGINT) FROM _sync_state WHERE stream = ? AND partition = ?`,
				st.Stream, st.Partition).Scan(&stored)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				t.Fatal(err)
			}
			want := ""
			if stored.Valid && stored.Int64 != 0 {
				want = time.UnixMicro(stored.Int64).UTC().Format(time.RFC3339Nano)
			}
			// A stream's cursor survives a second run that stopped before moving it: the log
			// names this run's move only, the stored one may be older.
			if r.CursorMoved && r.Cursor != want {
				t.Errorf("%v: %s logged its cursor at %q, _sync_state holds %q", sig, key, r.Cursor, want)
			}
			if r.Inserted != st.Inserted || r.Updated != st.Updated || !strings.Contains(st.Error, r.Committed) {
				t.Errorf("%v: %s logged %d inserted, %d updated (%q); the summary: %d, %d (%q)", sig, key, r.Inserted, r.Updated, r.Committed,
					st.Inserted, st.Updated, st.Error)
			}
		}
		db.Close()
		if cancelled == 0 || len(stopped) != cancelled {
			t.Fatalf("%v: %d stream runs cancelled, %d logged as stopped: want some, all logged\n%s", sig, cancelled, len(stopped), stderr.String())
		}
	}
}
