package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/marketsync/marketsync/config"
	"github.com/marketsync/marketsync/internal/control"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
)

func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("export", "export [--warehouse PATH] [--parquet-dir DIR]", stdout)
	cfgPath := fs.String("config", "", "YAML config `file` (for its paths)")
	warehouse := fs.String("warehouse", "", "DuckDB warehouse `path`")
	dir := fs.String("parquet-dir", "", "output `dir` (default "+config.DefaultParquetDir+")")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	path, err := warehousePath(*warehouse, *cfgPath)
	if err != nil {
		return err
	}
	if *dir == "" {
		*dir = config.DefaultParquetDir
		if *cfgPath != "" {
			f, err := config.LoadDeferringSecrets(*cfgPath) // reading needs no secret
			if err != nil {
				return err
			}
			*dir = f.ParquetDir
		}
	}
	if err := fileExists(path); err != nil {
		return err
	}
	// One connection reads every table in one process while it holds the lock: a snapshot no
	// sync can change underneath.
	db, err := load.Open(ctx, path)
	if errors.Is(err, load.ErrLocked) {
		// A sync (or serve) holds the file: it exports from its last committed snapshot, after
		// its own Parquet writes if it is making them (never at the same time).
		abs, aerr := filepath.Abs(*dir)
		if aerr != nil {
			return fmt.Errorf("resolving --parquet-dir: %w", aerr)
		}
		if err := viaHolder(ctx, path, err, control.Request{Cmd: "export", Dir: abs}, false, stdout, stderr); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "exported %d tables from %s to %s\n", len(schemas.Tables), path, *dir)
		return nil
	}
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.ExportParquet(ctx, *dir, schemas.Tables, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "exported %d tables from %s to %s\n", len(schemas.Tables), path, *dir)
	return nil
}
