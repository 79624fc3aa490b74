package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"

	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/pipeline"
	"github.com/marketsync/marketsync/state"
)

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// In a terminal (a pseudo-terminal of 80 columns), sync shows one live line per active stream,
// prints every log line whole on its own line above them, and ends with a summary that fits.
func TestLive_TerminalViewKeepsLogLinesWholeAndFitsTheWidth(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(binary(t), "sync", "--warehouse", filepath.Join(dir, "w.duckdb"), "--parquet-dir", "-", "--sim-scale", "3000")
	cmd.Dir = dir
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 80, Rows: 40})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, err = io.Copy(&out, f) // until the process exits: then reading the pty fails with EIO
	if err != nil && !errors.Is(err, syscall.EIO) {
		t.Fatal(err)
	}
	f.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sync in a terminal: %v\n%s", err, out.String())
	}
	raw := out.String()

	// Live lines: a stream's name, rows, rows/s, pages.
	live := regexp.MustCompile(`(?m)(?:^|\x1b\[J)(companies|users|invoices|leads|opportunities|events|locations|charges \S+) +\d+ rows +\d+/s +\d+ pages`)
	if m := live.FindAllString(raw, -1); len(m) < 3 {
		t.Fatalf("%d live lines; want the view drawn several times:\n%q", len(m), raw)
	}
	if !regexp.MustCompile(` pages  ETA \d+(m\d+)?s`).MatchString(raw) {
		t.Errorf("no live line shows an ETA, though AppDirect listings give their total")
	}
	for _, l := range regexp.MustCompile(`[^\r\n]* rows +\d+/s +\d+ pages[^\r\n]*`).FindAllString(raw, -1) {
		if n := utf8.RuneCountInString(ansi.ReplaceAllString(l, "")); n > 80 {
			t.Errorf("a live line is %d columns wide, the terminal 80: %q", n, l)
		}
	}

	// Every log line starts a line (after a newline, or after the view cleared its lines) and
	// runs to its newline with no status text or cursor movement inside.
	logs := 0
	for i := 0; ; {
		j := strings.Index(raw[i:], "time=")
		if j < 0 {
			break
		}
		start := i + j
		before := raw[:start]
		if !(before == "" || strings.HasSuffix(before, "\n") || strings.HasSuffix(before, "\x1b[J")) {
			t.Errorf("a log line is glued to what precedes it: %q", raw[max(0, start-80):min(len(raw), start+80)])
		}
		end := strings.Index(raw[start:], "\n")
		if end < 0 {
			t.Fatalf("a log line never ends: %q", raw[start:])
		}
		line := strings.TrimSuffix(raw[start:start+end], "\r")
		if strings.ContainsAny(line, "\x1b\r") || !regexp.MustCompile(`^time=\S+ level=[A-Z]+ msg=`).MatchString(line) {
			t.Errorf("a log line is interleaved with the view: %q", line)
		}
		if strings.Contains(line, `msg="stream done"`) {
			logs++
		}
		i = start + end
	}
	db, err := load.OpenReadOnly(context.Background(), filepath.Join(dir, "w.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	var parts int
	if err := db.QueryRow(`SELECT count(*) FROM _sync_runs WHERE status = 'succeeded'`).Scan(&parts); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if logs != parts || parts < 8 {
		t.Errorf("%d \"stream done\" log lines for %d stream partitions: a log line was lost", logs, parts)
	}

	// The summary fits the terminal.
	k := strings.LastIndex(raw, "\nrun ")
	if k < 0 {
		t.Fatalf("no summary:\n%q", raw)
	}
	summary := ansi.ReplaceAllString(raw[k:], "")
	for _, l := range strings.Split(strings.ReplaceAll(summary, "\r\n", "\n"), "\n") {
		if label, path, ok := strings.Cut(l, ": "); ok && (label == "warehouse" || label == "parquet") && !strings.Contains(strings.TrimSpace(path), " ") {
			continue // a path is printed whole, to be copied
		}
		if n := utf8.RuneCountInString(l); n > 80 {
			t.Errorf("a summary line is %d columns wide, the terminal 80: %q", n, l)
		}
	}
	if !strings.Contains(summary, "inserted") || !strings.Contains(summary, "requests") {
		t.Errorf("summary lacks its tables:\n%s", summary)
	}
}

// Off a terminal the run writes nothing but log lines: no cursor movement, no live lines.
func TestLive_OffATerminalOnlyLogs(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(binary(t), "sync", "--warehouse", filepath.Join(dir, "w.duckdb"), "--parquet-dir", "-", "--sim-scale", "200")
	cmd.Stdout, cmd.Stderr, cmd.Dir = &stdout, &stderr, dir
	cmd.Env = append(os.Environ(), "TERM=xterm")
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout off a terminal: %q; want nothing", stdout.String())
	}
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if strings.ContainsAny(l, "\x1b\r") || !strings.HasPrefix(l, "time=") {
			t.Errorf("stderr off a terminal has a line that is not a log line: %q", l)
		}
	}
}

func TestFitWidthAndWrap(t *testing.T) {
	if got := fitWidth("charges RQfz5QVNvoooK8YvyHAk", 20); got != "charges RQfz5QVNvoo…" {
		t.Errorf("fitWidth: %q", got)
	}
	if got := wrap("users failed: a b ccccccccccccc dd", 10); got != "users\nfailed: a\nb\nccccccccccccc\ndd" {
		t.Errorf("wrap: %q", got)
	}
}

// The summary is one table on a wide terminal, two that fit 80 columns on a narrower one, and
// wrapped blocks below that; every line fits (paths aside).
func TestPrintSummary_AdaptsToTheWidth(t *testing.T) {
	now := time.Now()
	sum := pipeline.Summary{RunID: "20260101T000000Z-abcdef", Started: now.Add(-time.Minute), Ended: now}
	for _, s := range []state.StreamRun{
		{Stream: "charges", Partition: "RQfz5QVNvoooK8YvyHAk", Status: "succeeded", Inserted: 1234567, Unchanged: 12, Requests: 5000, Retries: 3, Throttled: 2, Rounded: 4},
		{Stream: "charges", Partition: "l5wOdkcAPjTtfWSEfWC8", Status: "failed", Error: strings.Repeat("a long error message ", 10)},
		{Stream: "opportunities", Status: "succeeded", FullScan: true, Updated: 99, Deleted: 1, Rejected: 7, Pages: 120, Requests: 121, Waited: 1500 * time.Millisecond},
	} {
		sum.Streams = append(sum.Streams, s)
	}
	for _, tc := range []struct {
		width int
		want  string // a line only this layout has
	}{
		{200, "requests  retries  429s"},
		{80, "budget wait"},
		{50, "charges (2 parts): failed, incremental"},
		{30, "  inserted 1234567"},
	} {
		var b bytes.Buffer
		printSummary(&b, sum, tc.width)
		if !strings.Contains(b.String(), tc.want) {
			t.Errorf("width %d: no %q in\n%s", tc.width, tc.want, b.String())
		}
		for _, l := range strings.Split(b.String(), "\n") {
			if n := utf8.RuneCountInString(l); n > tc.width {
				t.Errorf("width %d: a line of %d: %q", tc.width, n, l)
			}
		}
		for _, v := range []string{"1234567", "5000", "99", "121"} {
			if !strings.Contains(b.String(), v) {
				t.Errorf("width %d: the summary lost %s:\n%s", tc.width, v, b.String())
			}
		}
	}
}
