package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestSmoke runs every in-process measure at a tiny scale so the harness keeps working; it
// asserts the report's shape, never timings.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("smoke bench skipped in -short")
	}
	if raceEnabled {
		// It checks the harness, not concurrency, and under the race detector its sync loads
		// take minutes: .ci/run runs it without -race.
		t.Skip("smoke bench runs without -race (see .ci/run)")
	}
	rep, err := Run(context.Background(), Options{Rows: 5000, BigRows: 5000, Dir: t.TempDir(), Command: "smoke"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := rep.Write(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Transform", "Loader: upsert", "End to end", "read_json", "Rate budget", "Incremental cost"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if n := strings.Count(buf.String(), "\n| "); n < 8 {
		t.Errorf("report has %d rows", n)
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
