// Command syncer keeps a local DuckDB + Parquet warehouse of AppDirect and HighLevel data.
// main only parses, wires and maps errors to exit codes; each command lives in its own file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/marketsync/marketsync/load"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // a stream (or the command) failed; committed work is kept
	exitUsage  = 2 // bad flags, arguments or config
)

// usageError is a mistake in how syncer was called; it maps to exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"sync", "pull every stream into the warehouse (embedded simulator when no --config)", runSync},
		{"status", "show each stream's cursor, last run, rows and freshness", runStatus},
		{"runs", "show the run history (_sync_runs): per run and stream, status, rows, requests", runRuns},
		{"reset", "clear streams' rows, cursors and Parquet files so the next sync loads them again", runReset},
		{"query", "run a shipped query by name, or any SQL, against the warehouse", runQuery},
		{"queries", "list the shipped queries", runQueries},
		{"serve", "serve SQL over the PostgreSQL protocol while syncing on a schedule", runServe},
		{"export", "write a consistent Parquet snapshot of every table", runExport},
		{"lake", "maintain the Iceberg lake: compact, expire-snapshots, remove-orphans", runLake},
		{"check", "validate config and credentials and reach every endpoint, writing nothing", runCheck},
		{"auth", "authorize HighLevel (auth: refresh_token): print the authorize URL, store the tokens", runAuth},
		{"simulate", "serve the AppDirect + HighLevel API simulator", runSimulate},
		{"bench", "measure throughput, rate-budget use, incremental cost and memory; write BENCHMARKS.md", runBench},
		{"version", "print version information", runVersion},
	}
}

func main() {
	// Everything syncer creates (warehouse, WAL, Parquet) holds business data: owner-only.
	syscall.Umask(0o077)
	if len(os.Args) > 1 && os.Args[1] == "sync" {
		limitGoHeap()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || (args[0] == "help" && len(args) == 1) {
		printUsage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] == "help" {
		// syncer help CMD prints CMD's usage, as syncer CMD --help does.
		if len(args) > 2 {
			fmt.Fprintf(stderr, "syncer help: want one command name, got %q\n", args[1:])
			return exitUsage
		}
		if args[1] == "help" {
			printUsage(stdout)
			return exitOK
		}
		for _, c := range commands() {
			if c.name == args[1] {
				return run(ctx, []string{c.name, "--help"}, stdout, stderr)
			}
		}
		fmt.Fprintf(stderr, "syncer help: unknown command %q (commands: %s)\n", args[1], strings.Join(commandNames(), ", "))
		return exitUsage
	}
	if args[0] == "--version" || args[0] == "-version" {
		args = append([]string{"version"}, args[1:]...)
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		var ue *usageError
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.As(err, &ue), isConfigError(err), needsDecision(err):
			fmt.Fprintf(stderr, "syncer %s: %v\n", c.name, err)
			return exitUsage
		default:
			fmt.Fprintf(stderr, "syncer %s: %v\n", c.name, err)
			return exitFailed
		}
	}
	fmt.Fprintf(stderr, "syncer: unknown command %q (run `syncer --help`)\n", args[0])
	return exitUsage
}

// needsDecision reports an error no retry can fix: the warehouse holds another source's data,
// or a column whose type changed; the message names the reset (or other warehouse) to use.
func needsDecision(err error) bool {
	return errors.Is(err, load.ErrSourceMismatch) || errors.Is(err, load.ErrSchema)
}

func commandNames() []string {
	var out []string
	for _, c := range commands() {
		out = append(out, c.name)
	}
	return out
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "syncer: keep a local DuckDB + Parquet warehouse of AppDirect and HighLevel marketplace data (marketsync).")
	fmt.Fprintln(w, "\nUsage: syncer <command> [flags]   (syncer <command> --help for its flags)\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-9s %s\n", "help", "print a command's usage: syncer help CMD (the same as syncer CMD --help)")
	fmt.Fprintln(w, "\nExit codes: 0 success, 1 a stream or the command failed (committed work is kept), 2 usage or config error,")
	fmt.Fprintln(w, "or a warehouse that needs your decision (another source's data, a changed column type: the message names the fix).")
}

// newFlags returns a flag set that reports errors as usage errors and prints help on stdout.
func newFlags(name, synopsis string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: syncer %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	return nil
}

// defaultGoMemoryLimit is the Go heap's soft limit for `syncer sync` unless GOMEMLIMIT is set.
// It must stay above the live heap, or the collector runs without pause: at 96 MiB a sync of
// every stream (up to 310 MB live: six streams' batches in flight) spent 12-14 % of its CPU in
// GC and ~25 % more CPU than without a limit (issue 16). The run's in-flight budget
// (pipeline.DefaultInFlightBytes) now bounds the batches (live heap ~140 MB), and this limit is
// a ceiling above them, not the collector's pace: defaultGOGC is.
const defaultGoMemoryLimit = 192 << 20

// defaultGOGC paces the collector for `syncer sync` unless GOGC is set: the heap grows to 1.5
// times the live heap instead of 2 (a sync of 1M users peaked at 409 MB RSS, 447 MB with Go's
// default of 100, the CPU and the GC share, 1 %, the same).
const defaultGOGC = 50

func limitGoHeap() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultGoMemoryLimit)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGOGC)
	}
}
