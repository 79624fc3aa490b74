package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/marketsync/marketsync/config"
	"github.com/marketsync/marketsync/internal/control"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
)

func isConfigError(err error) bool {
	var ce *config.Error
	return errors.As(err, &ce)
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "info", "":
		lv = slog.LevelInfo
	case "warn":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		return nil, usagef("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format %q: want text or json", format)
}

// warehouseFlag resolves the warehouse path: the flag, else the config's, else the default.
func warehousePath(flagVal, configPath string) (string, error) {
	if flagVal != "" {
		return flagVal, nil
	}
	if configPath != "" {
		f, err := config.LoadDeferringSecrets(configPath) // reading needs no secret
		if err != nil {
			return "", err
		}
		return f.Warehouse, nil
	}
	// Without a config, the demo warehouse is the one there is, unless a production one exists
	// at the default path.
	if _, err := os.Stat(config.DefaultWarehouse); err != nil {
		if _, err := os.Stat(demoWarehouse); err == nil {
			return demoWarehouse, nil
		}
	}
	return config.DefaultWarehouse, nil
}

// The demo sync (no --config) writes here, never where a production config writes by default,
// so demo rows can never mix with real ones.
const (
	demoWarehouse  = "./data/demo/warehouse.duckdb"
	demoParquetDir = "./data/demo/parquet"
)

// readWarehouse resolves the warehouse path (flag, config, default) and runs local on it opened
// read-only. While another process holds the file (a sync, syncer serve), req runs in that
// process instead, through its control socket, and prints the same output (note: say on
// stderr what the holder is doing).
func readWarehouse(ctx context.Context, flagVal, configPath string, req control.Request, note bool, stdout, stderr io.Writer, local func(*sql.DB) error) error {
	path, err := warehousePath(flagVal, configPath)
	if err != nil {
		return err
	}
	// A holder that is exiting has removed its socket but may hold the file a moment longer
	// (DuckDB checkpoints as it closes, and reads in flight finish first): a read then asks again
	// for a few seconds rather than failing with "no control socket" at the end of a sync.
	deadline := time.Now().Add(holderExitWait)
	for {
		db, err := load.OpenReadOnly(ctx, path)
		if errors.Is(err, load.ErrLocked) {
			herr := viaHolder(ctx, path, err, req, note, stdout, stderr)
			if errors.Is(herr, errHolderGone) && time.Now().Before(deadline) {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(100 * time.Millisecond):
				}
				continue
			}
			return herr
		}
		if err != nil {
			return err
		}
		defer db.Close()
		return local(db)
	}
}

// holderExitWait is how long a read waits for a locked warehouse without a control socket
// to be released (the holder exiting) before it reports the lock.
const holderExitWait = 8 * time.Second

func fileExists(p string) error {
	if _, err := os.Stat(p); err != nil {
		return fmt.Errorf("warehouse %s does not exist yet: run `syncer sync` first", p)
	}
	return nil
}

// setFlags returns the names of the flags given on the command line.
func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// parseStreams reads a --streams list: comma-separated declared stream names, at least one.
func parseStreams(v string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, usagef("--streams %q: an empty name (a stray comma?); streams are %s", v, strings.Join(schemas.Streams, ", "))
		}
		if !slices.Contains(schemas.Streams, s) {
			return nil, usagef("--streams: unknown stream %q (streams: %s)", s, strings.Join(schemas.Streams, ", "))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}
