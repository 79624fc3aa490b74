package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/marketsync/marketsync/internal/bench"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", "bench [--quick] [--rows N] [--big-rows N] [--out BENCHMARKS.md]", stdout)
	quick := fs.Bool("quick", false, "a run of about a minute at 20,000 / 100,000 rows (checks the harness; the figures mean little)")
	rows := fs.Int("rows", 1_000_000, "rows per stream for end to end, loader and the small memory run")
	big := fs.Int("big-rows", 10_000_000, "rows for the large loader and memory runs and the simulator scale check")
	out := fs.String("out", "BENCHMARKS.md", "report `file` (\"-\" for stdout)")
	dir := fs.String("dir", "", "scratch `dir` (default: a temporary directory, removed afterwards)")
	cpu := fs.Bool("profile", true, "record CPU profiles and include their top entries")
	only := fs.String("only", "", "comma-separated measures to run (transform, loader, end to end, rate budget, incremental, parquet, memory, simulator)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["rows"] {
			*rows = 20_000
		}
		if !set["big-rows"] {
			*big = 100_000
		}
	}
	if *rows < 1000 || *big < *rows {
		return usagef("want --rows >= 1000 and --big-rows >= --rows")
	}
	// A report file the measures could not be written into is refused before they run (minutes
	// at the default sizes), not after.
	if *out != "-" {
		existing, err := os.ReadFile(*out)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("reading %s: %w", *out, err)
		}
		if err := bench.CheckMarkers(existing); err != nil {
			return fmt.Errorf("%s: %w", *out, err)
		}
	}
	log, _ := newLogger(stderr, "text", "info")
	scratch := *dir
	if scratch == "" {
		d, err := os.MkdirTemp("", "marketsync-bench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		scratch = d
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	rep, err := bench.Run(ctx, bench.Options{Rows: *rows, BigRows: *big, Bin: bin, Dir: scratch, Log: log, CPUProfile: *cpu,
		Command: "syncer bench " + strings.Join(args, " "), Only: splitList(*only), Quick: *quick})
	if err != nil {
		return err
	}
	if *out == "-" {
		return rep.Write(stdout)
	}
	// Only the generated part of the file is rewritten: hand-maintained sections stay.
	existing, err := os.ReadFile(*out)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading %s: %w", *out, err)
	}
	text, err := rep.Splice(existing)
	if err != nil {
		return fmt.Errorf("%s: %w", *out, err)
	}
	if err := os.WriteFile(*out, text, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (its generated part)\n", *out)
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
