package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/marketsync/marketsync/config"
	"github.com/marketsync/marketsync/lake"
	"github.com/marketsync/marketsync/schemas"
)

const lakeUsage = "lake compact|expire-snapshots|remove-orphans --config FILE [flags]"

// runLake runs the lake's table maintenance: syncer lake compact | expire-snapshots.
func runLake(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintf(stdout, "Usage: syncer %s\n\n  compact            rewrite each partition's small files into few large ones\n  expire-snapshots   remove old snapshots and the files only they reference\n  remove-orphans     remove old files no snapshot or metadata references (failed or killed writers')\n", lakeUsage)
			return nil
		}
		return usagef("want a subcommand: syncer %s", lakeUsage)
	}
	switch args[0] {
	case "compact":
		return runLakeCompact(ctx, args[1:], stdout)
	case "expire-snapshots":
		return runLakeExpire(ctx, args[1:], stdout)
	case "remove-orphans":
		return runLakeRemoveOrphans(ctx, args[1:], stdout)
	}
	return usagef("unknown lake subcommand %q: want compact, expire-snapshots or remove-orphans", args[0])
}

// openLake opens the lake of a config file, and resolves --table (empty: every table).
func openLake(ctx context.Context, cfgPath, only string) (*lake.Writer, []*schemas.Table, error) {
	if cfgPath == "" {
		return nil, nil, usagef("--config is required: the lake is the config file's lake: section")
	}
	tables := schemas.Tables
	if only != "" {
		t, err := schemas.Lookup(only)
		if err != nil {
			return nil, nil, usagef("--table: %v", err)
		}
		tables = []*schemas.Table{t}
	}
	f, err := config.Load(cfgPath)
	if err != nil {
		return nil, nil, err
	}
	if f.Lake == nil {
		return nil, nil, usagef("%s has no lake: section (see the README's lake section)", cfgPath)
	}
	w, err := lake.Open(ctx, lake.FromConfig(f.Lake))
	if err != nil {
		return nil, nil, fmt.Errorf("opening the lake: %w", err)
	}
	return w, tables, nil
}

func runLakeCompact(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("lake compact", "lake compact --config FILE [--table NAME] [--target-file-size BYTES]", stdout)
	cfgPath := fs.String("config", "", "YAML config `file` with a lake: section")
	only := fs.String("table", "", "compact only this `table` (default: every table)")
	target := fs.Int64("target-file-size", 0, "target data file size in `bytes` (default: Iceberg's 512 MB)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *target < 0 {
		return usagef("--target-file-size %d: want a positive number of bytes", *target)
	}
	return eachLakeTable(ctx, *cfgPath, *only, stdout, func(w *lake.Writer, t *schemas.Table) (string, error) {
		r, err := w.Compact(ctx, t, *target)
		switch {
		case err != nil:
			return "", err
		case r.SnapshotID == 0:
			return "unchanged: " + r.Skipped, nil
		}
		return fmt.Sprintf("data files %d -> %d, delete files %d -> %d, %d -> %d bytes rewritten",
			r.DataFilesBefore, r.DataFiles, r.DeleteFilesBefore, r.DeleteFiles, r.BytesBefore, r.BytesAfter), nil
	})
}

func runLakeExpire(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("lake expire-snapshots", "lake expire-snapshots --config FILE [--table NAME] [--older-than 5d] [--retain-last 1]", stdout)
	cfgPath := fs.String("config", "", "YAML config `file` with a lake: section")
	only := fs.String("table", "", "expire only this `table`'s snapshots (default: every table)")
	older := fs.String("older-than", "5d", "expire snapshots older than this `age` (Go duration or days, e.g. 36h, 7d; 0 for all but the retained)")
	retain := fs.Int("retain-last", 1, "always keep this `many` newest snapshots (at least 1)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	age, err := config.ParseDuration(*older)
	if err != nil || age < 0 {
		return usagef("--older-than %q: want an age such as 36h or 7d (0 for all but the retained)", *older)
	}
	if *retain < 1 {
		return usagef("--retain-last %d: want at least 1 (the current snapshot is always kept)", *retain)
	}
	return eachLakeTable(ctx, *cfgPath, *only, stdout, func(w *lake.Writer, t *schemas.Table) (string, error) {
		r, err := w.ExpireSnapshots(ctx, t, age, *retain)
		switch {
		case err != nil:
			return "", err
		case r.SnapshotsBefore == 0:
			return "no snapshots", nil
		}
		return fmt.Sprintf("snapshots %d -> %d (%d cursors carried into the current snapshot)", r.SnapshotsBefore, r.After, r.CursorsCarried), nil
	})
}

// minOrphanAge is the youngest --older-than accepted without --no-writer-running: a writer's
// files are on storage before its commit references them (like Spark's 24-hour guard).
const minOrphanAge = 24 * time.Hour

func runLakeRemoveOrphans(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("lake remove-orphans", "lake remove-orphans --config FILE [--table NAME] [--older-than 3d] [--dry-run] [--no-writer-running]", stdout)
	cfgPath := fs.String("config", "", "YAML config `file` with a lake: section")
	only := fs.String("table", "", "clean only this `table`'s location (default: every table)")
	older := fs.String("older-than", "3d", "remove unreferenced files older than this `age` (Go duration or days); younger ones may belong to a commit in flight")
	dry := fs.Bool("dry-run", false, "list the files that would be removed, and remove nothing")
	noWriter := fs.Bool("no-writer-running", false, "allow --older-than under 24h: you know no sync or maintenance is writing to the lake")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	age, err := config.ParseDuration(*older)
	if err != nil || age < 0 {
		return usagef("--older-than %q: want an age such as 3d or 72h", *older)
	}
	if age < minOrphanAge && !*noWriter {
		return usagef("--older-than %s is under 24h: a sync's files are written before its commit references them, so a younger file may be a commit in flight; stop every writer and add --no-writer-running, or use at least 24h", *older)
	}
	return eachLakeTable(ctx, *cfgPath, *only, stdout, func(w *lake.Writer, t *schemas.Table) (string, error) {
		r, err := w.RemoveOrphans(ctx, t, age, *dry)
		switch {
		case err != nil:
			return "", err
		case r.Skipped != "":
			return r.Skipped, nil
		case len(r.Orphans) == 0:
			return fmt.Sprintf("no unreferenced file older than %s", *older), nil
		}
		var b strings.Builder
		if *dry {
			fmt.Fprintf(&b, "would remove %d unreferenced files older than %s, %d bytes (dry run):", len(r.Orphans), *older, r.Bytes)
		} else {
			fmt.Fprintf(&b, "removed %d unreferenced files older than %s, %d bytes:", r.Removed, *older, r.Bytes)
		}
		for _, o := range r.Orphans {
			fmt.Fprintf(&b, "\n  %s", o.Path)
		}
		return b.String(), nil
	})
}

// eachLakeTable opens the lake of the config and runs do on each selected table, printing one
// line per table; a table that fails does not stop the others, and every failure is returned.
func eachLakeTable(ctx context.Context, cfgPath, only string, stdout io.Writer, do func(*lake.Writer, *schemas.Table) (string, error)) error {
	w, tables, err := openLake(ctx, cfgPath, only)
	if err != nil {
		return err
	}
	defer w.Close()
	var errs []error
	for _, t := range tables {
		msg, err := do(w, t)
		if err != nil {
			errs = append(errs, err)
			msg = fmt.Sprintf("failed: %v", err)
		}
		fmt.Fprintf(stdout, "%-14s %s\n", t.Name, msg)
	}
	return errors.Join(errs...)
}

// checkLake prints the lake section as syncer check sees it, never a secret nor its length,
// and probes a REST or Postgres catalog (a SQLite catalog file is only said to exist or not:
// opening it would create it). It returns the probe's error.
func checkLake(ctx context.Context, l *config.Lake, stdout io.Writer) error {
	uri := l.URI
	if u, err := url.Parse(uri); err == nil && u.User != nil {
		uri = u.Redacted() // a Postgres DSN's password
	}
	line := fmt.Sprintf("lake: catalog %s %s warehouse %s namespace %s upsert %s", l.Catalog, uri, l.Warehouse, l.Namespace, l.Upsert)
	switch {
	case l.Credential != "":
		line += " credential " + config.Mask(l.Credential)
	case l.Token != "":
		line += " token " + config.Mask(l.Token)
	}
	if l.S3Endpoint != "" {
		line += " s3_endpoint " + l.S3Endpoint
	}
	if l.S3AccessKeyID != "" {
		line += " s3_access_key_id " + l.S3AccessKeyID + " s3_secret_access_key " + config.Mask(l.S3SecretAccessKey)
	}
	fmt.Fprintln(stdout, line)
	if l.Catalog == "sql" && !strings.HasPrefix(l.URI, "postgres") {
		file, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(l.URI, "sqlite:"), "file:"), "?")
		if _, err := os.Stat(file); err != nil {
			fmt.Fprintf(stdout, "skip lake catalog: %s does not exist yet (the first sync creates it)\n", file)
		} else {
			fmt.Fprintf(stdout, "skip lake catalog: SQLite file %s exists (not opened)\n", file)
		}
		return nil
	}
	ok, err := lake.Probe(ctx, lake.FromConfig(l))
	switch {
	case err != nil:
		fmt.Fprintf(stdout, "FAIL lake catalog: %v\n", err)
		return err
	case ok:
		fmt.Fprintf(stdout, "ok   lake catalog (namespace %s exists)\n", l.Namespace)
	default:
		fmt.Fprintf(stdout, "ok   lake catalog (namespace %s not created yet: the first sync creates it)\n", l.Namespace)
	}
	return nil
}
