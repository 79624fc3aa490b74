package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/marketsync/marketsync/internal/bench"
)

// syncer bench rewrites only the generated part of its report file, and refuses a file
// without the markers instead of dropping its hand-written sections.
func TestBench_RewritesOnlyItsPart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a measure")
	}
	skipUnderRace(t) // a real transform measure: CPU-bound for seconds, 10x that under -race
	dir := t.TempDir()
	out := filepath.Join(dir, "BENCHMARKS.md")
	hand := "\n## Lake: Iceberg commits\nhand-written\n"
	if err := os.WriteFile(out, []byte(bench.BeginMarker+"\nold figures\n"+bench.EndMarker+"\n"+hand), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	args := []string{"--quick", "--only", "transform", "--profile=false", "--dir", dir, "--out", out}
	if err := runBench(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatal(err, stderr.String())
	}
	b, _ := os.ReadFile(out)
	if s := string(b); strings.Contains(s, "old figures") || !strings.Contains(s, "| Transform: lead pages") || !strings.HasSuffix(s, bench.EndMarker+"\n"+hand) {
		t.Fatalf("report file:\n%s", s)
	}
	bare := filepath.Join(dir, "bare.md")
	if err := os.WriteFile(bare, []byte("# only hand-written\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	err := runBench(context.Background(), []string{"--quick", "--only", "transform", "--profile=false", "--dir", dir, "--out", bare}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), bare) || !strings.Contains(err.Error(), bench.BeginMarker) {
		t.Fatalf("a file without markers: %v", err)
	}
	if stderr.Len() != 0 {
		t.Fatalf("a file without markers is refused before the measures run; they logged:\n%s", stderr.String())
	}
	if b, _ := os.ReadFile(bare); string(b) != "# only hand-written\n" {
		t.Fatalf("the file without markers was changed:\n%s", b)
	}
}
