package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/marketsync/marketsync/internal/bench"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", "bench [--rows N] [--big-rows N] [--out BENCHMARKS.md]", stdout)
	rows := fs.Int("rows", 1_000_000, "rows per stream for end to end, loader and the small memory run")
	big := fs.Int("big-rows", 10_000_000, "rows for the large memory run and the simulator scale check")
	out := fs.String("out", "BENCHMARKS.md", "report `file` (\"-\" for stdout)")
	dir := fs.String("dir", "", "scratch `dir` (default: a temporary directory, removed afterwards)")
	cpu := fs.Bool("profile", true, "record CPU profiles and include their top entries")
	only := fs.String("only", "", "comma-separated measures to run (transform, loader, end to end, rate budget, incremental, memory, simulator)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *rows < 1000 || *big < *rows {
		return usagef("want --rows >= 1000 and --big-rows >= --rows")
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
		Command: "syncer bench " + strings.Join(args, " "), Only: splitList(*only)})
	if err != nil {
		return err
	}
	w := stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	if err := rep.Write(w); err != nil {
		return err
	}
	if *out != "-" {
		fmt.Fprintf(stdout, "wrote %s\n", *out)
	}
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
