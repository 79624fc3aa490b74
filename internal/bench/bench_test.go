package bench

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestSmoke runs every in-process measure at a tiny scale so the harness keeps working; it
// asserts the report's shape, never timings.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("smoke bench skipped in -short")
	}
	skipUnderRace(t) // it checks the harness, not concurrency; under -race its syncs take minutes
	rep, err := Run(context.Background(), Options{Rows: 2000, BigRows: 5000, Dir: t.TempDir(), Command: "smoke", Quick: true})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := rep.Write(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Transform: lead pages", "Loader: first load", "Loader: one 25k-row upsert", "CloudQuery", "End to end", "read_json",
		"Rate budget", "Incremental cost", "Parquet: a run in which 1 table", "load average"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if n := strings.Count(buf.String(), "\n| "); n < 10 {
		t.Errorf("report has %d rows", n)
	}
	for _, r := range rep.Rows {
		if strings.HasPrefix(r.Measure, "Parquet: a run") && r.Verdict != "met" {
			t.Errorf("one changed table: %s / %s (%s)", r.Ours, r.Baseline, r.Verdict)
		}
	}
}

// The generated part of BENCHMARKS.md is replaced; what lies outside the markers stays.
func TestSpliceKeepsHandWrittenSections(t *testing.T) {
	rep := &Report{Command: "syncer bench", Rows: []Row{{Measure: "new figure"}}}
	old := "intro kept\n" + BeginMarker + "\n# old\n| old figure |\n" + EndMarker + "\n\n## Lake: Iceberg commits\nhand-written\n"
	got, err := rep.Splice([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	if !strings.HasPrefix(s, "intro kept\n"+BeginMarker+"\n# marketsync benchmarks") || !strings.HasSuffix(s, EndMarker+"\n\n## Lake: Iceberg commits\nhand-written\n") ||
		strings.Contains(s, "old figure") || !strings.Contains(s, "| new figure |") {
		t.Fatalf("spliced file:\n%s", s)
	}
	if _, err := rep.Splice([]byte("# hand-written only\n")); err == nil || !strings.Contains(err.Error(), BeginMarker) {
		t.Fatalf("a file without markers: %v", err)
	}
	fresh, err := rep.Splice(nil)
	if err != nil || !strings.HasPrefix(string(fresh), BeginMarker) || !strings.HasSuffix(string(fresh), EndMarker+"\n") {
		t.Fatalf("a new file: %v\n%s", err, fresh)
	}
}

// go test -tags duckdb_arrow -bench . -cpu 1 ./internal/bench : the transform measures alone.
func benchInputs(b *testing.B) (pages, recs [][]byte, size int64) {
	pages, err := leadPages(40)
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range pages {
		size += int64(len(p))
		recs = append(recs, splitContent(p)...)
	}
	return pages, recs, size
}

func runPass(b *testing.B, size int64, pass func() error) {
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := pass(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTransformRecords(b *testing.B) {
	pages, recs, size := benchInputs(b)
	records, _, _ := transformBenchmarks(pages, recs)
	runPass(b, size, records)
}

func BenchmarkTransformPages(b *testing.B) {
	pages, recs, size := benchInputs(b)
	_, withSplit, _ := transformBenchmarks(pages, recs)
	runPass(b, size, withSplit)
}

func BenchmarkEncodingJSON(b *testing.B) {
	pages, recs, size := benchInputs(b)
	_, _, stdlib := transformBenchmarks(pages, recs)
	runPass(b, size, stdlib)
}

// The transform row names the figure by the measuring thread's CPU time next to the wall-clock
// one (on Linux, where it is measured), for the measure and its encoding/json baseline.
func TestTransformRowNamesThreadCPUFigure(t *testing.T) {
	skipUnderRace(t) // timings under -race mean nothing; the row's shape is checked without it
	rep, err := Run(context.Background(), Options{Rows: 5000, BigRows: 12_000, Dir: t.TempDir(), Command: "smoke", Quick: true, Only: []string{"transform"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 1 || !strings.HasPrefix(rep.Rows[0].Measure, "Transform: lead pages") {
		t.Fatalf("rows: %+v", rep.Rows)
	}
	var cpu, base float64
	notes := rep.Rows[0].Notes
	i := strings.Index(notes, "CPU time (steadier on a shared machine): ")
	if i < 0 {
		t.Fatalf("notes lack the CPU-time figure: %s", notes)
	}
	if _, err := fmt.Sscanf(notes[i:], "CPU time (steadier on a shared machine): %f MB/s, encoding/json %f MB/s", &cpu, &base); err != nil || cpu <= 0 || base <= 0 {
		t.Fatalf("CPU-time figures %v / %v (%v) in: %s", cpu, base, err, notes)
	}
	t.Logf("%s: %s (%s); %s", rep.Rows[0].Ours, rep.Rows[0].Baseline, rep.Rows[0].Ratio, notes)
}
