package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/marketsync/marketsync/config"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
)

func runReset(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlags("reset", "reset [--streams a,b] [--tenants a,b] --yes [--warehouse PATH | --config FILE] [--parquet-dir DIR]", stdout)
	cfgPath := fs.String("config", "", "YAML config `file` (for its warehouse and parquet paths)")
	warehouse := fs.String("warehouse", "", "DuckDB warehouse `path`")
	parquetDir := fs.String("parquet-dir", "", "the warehouse's Parquet output `dir` (default: the config's, or the default one beside the default warehouse)")
	streams := fs.String("streams", "", "comma-separated streams to clear (default all: "+strings.Join(schemas.Streams, ",")+")")
	tenantsFlag := fs.String("tenants", "", "comma-separated tenants whose rows and cursors to clear (default every tenant); the other tenants' stay as they are")
	yes := fs.Bool("yes", false, "really delete; without it, print what would be deleted and change nothing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	selected := schemas.Streams
	if setFlags(fs)["streams"] {
		if strings.TrimSpace(*streams) == "" {
			return usagef("--streams is empty: name the streams to clear (%s), or leave the flag out to clear all", strings.Join(schemas.Streams, ","))
		}
		var err error
		if selected, err = parseStreams(*streams); err != nil {
			return err
		}
	}
	var tenants []string
	if setFlags(fs)["tenants"] {
		for _, n := range strings.Split(*tenantsFlag, ",") {
			if n = strings.TrimSpace(n); n != "" && !slices.Contains(tenants, n) {
				tenants = append(tenants, n)
			}
		}
		if len(tenants) == 0 {
			return usagef("--tenants is empty: name the tenants to clear, or leave the flag out to clear every tenant")
		}
	}
	tables, err := load.ResetTables(selected)
	if err != nil {
		return err
	}
	var file *config.File
	if *cfgPath != "" {
		if file, err = config.Load(*cfgPath); err != nil {
			return err
		}
	}
	path, err := warehousePath(*warehouse, *cfgPath)
	if err != nil {
		return err
	}
	if err := fileExists(path); err != nil {
		return err
	}
	pqDir := resetParquetDir(*parquetDir, path, file)
	// serve owns the warehouse for as long as it runs: a reset must wait for it to stop.
	if sdb, serr := openServeDB(ctx, path); serr == nil {
		sdb.Close()
		return fmt.Errorf("a running syncer serve holds %s (its address is in %s beside it): stop it (SIGTERM), run the reset, then start it again",
			path, serveAddrFile)
	}

	preTenant, err := isPreTenant(ctx, path)
	if err != nil {
		return err
	}
	if len(tenants) > 0 && !preTenant {
		if err := checkResetTenants(ctx, path, file, tenants); err != nil {
			return err
		}
	}
	if len(tenants) > 0 && preTenant && (len(tenants) > 1 || tenants[0] != schemas.DefaultTenant) {
		return usagef("--tenants: %s was written by a marketsync build before tenants: it holds the tenant %s only", path, schemas.DefaultTenant)
	}
	if !*yes {
		if preTenant {
			// A preview only reads: it cannot count a file the next write upgrades first.
			return usagef("%s was written by a marketsync build before tenants, so a preview cannot count it: "+
				"run the reset with --yes (it upgrades the file first, as a sync would), or `syncer sync` once and preview again", path)
		}
		db, err := load.OpenReadOnly(ctx, path)
		if err != nil {
			return err
		}
		defer db.Close()
		rep, err := load.PreviewReset(ctx, db, tables, tenants...)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "syncer reset would delete from %s:\n\n", path)
		printReset(stdout, rep, pqDir, file)
		return usagef("nothing was deleted: run again with --yes to delete the above")
	}
	db, err := load.Open(ctx, path)
	if err != nil {
		return err
	}
	defer db.Close()
	// Parquet files are counted before and deleted after the commit: they derive from DuckDB,
	// so a failure after it leaves files that `syncer export` or the next sync rewrites.
	files := parquetFiles(pqDir, tables)
	rep, err := db.Reset(ctx, tables, tenants...)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "syncer reset deleted from %s:\n\n", path)
	printResetWith(stdout, rep, pqDir, files, file)
	if len(tenants) > 0 {
		// Parquet files hold every tenant's rows: rewrite the tables' files from what committed
		// (the other tenants' rows), where the warehouse has an export.
		if err := rewriteParquet(ctx, db, pqDir, tables); err != nil {
			return fmt.Errorf("the warehouse was reset, but rewriting its Parquet files failed (run `syncer export` to rewrite them from the warehouse): %w", err)
		}
		fmt.Fprintf(stdout, "\nthe next `syncer sync` loads %s of %s from the source again (a full scan)\n", strings.Join(selected, ", "), strings.Join(tenants, ", "))
		return nil
	}
	var errs []error
	for _, t := range tables {
		if pqDir == "" {
			break
		}
		if err := removeParquet(filepath.Join(pqDir, t.Name)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("the warehouse was reset, but removing its Parquet files failed (run `syncer export` to rewrite them from the warehouse): %w", err)
	}
	fmt.Fprintf(stdout, "\nthe next `syncer sync` loads %s from the source again (a full scan)\n", strings.Join(selected, ", "))
	return nil
}

// isPreTenant says whether the warehouse at path predates tenants (no sync of a build with
// tenants has upgraded it yet).
func isPreTenant(ctx context.Context, path string) (bool, error) {
	db, err := load.OpenReadOnly(ctx, path)
	if err != nil {
		return false, err
	}
	defer db.Close()
	return !hasColumn(ctx, db, "_sync_state", "tenant"), nil
}

// checkResetTenants refuses a tenant that neither the warehouse nor the config knows: a
// mistyped name must not pass for a reset that deleted nothing.
func checkResetTenants(ctx context.Context, path string, file *config.File, tenants []string) error {
	db, err := load.OpenReadOnly(ctx, path)
	if err != nil {
		return err
	}
	defer db.Close()
	known, err := load.KnownTenants(ctx, db)
	if err != nil {
		return err
	}
	if file != nil {
		for _, t := range file.TenantList() {
			if !slices.Contains(known, t.Name) {
				known = append(known, t.Name)
			}
		}
	}
	slices.Sort(known)
	for _, n := range tenants {
		if !slices.Contains(known, n) {
			return usagef("--tenants: no tenant %q in %s; its tenants are %s", n, path, strings.Join(known, ", "))
		}
	}
	return nil
}

// rewriteParquet rewrites the Parquet files of the tables that have an export under pqDir.
func rewriteParquet(ctx context.Context, db *load.DuckDB, pqDir string, tables []*schemas.Table) error {
	if pqDir == "" {
		return nil
	}
	var have []*schemas.Table
	for _, t := range tables {
		if _, err := os.Stat(filepath.Join(pqDir, t.Name)); err == nil {
			have = append(have, t)
		}
	}
	if len(have) == 0 {
		return nil
	}
	return db.ExportParquet(ctx, pqDir, have, nil)
}

// removeParquet deletes the Parquet files under dir (and the export's marker beside them) and
// the folders they leave empty, and nothing else: a mistyped --parquet-dir must never cost a user's other files.
func removeParquet(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil
		case err != nil:
			return err
		case d.IsDir():
			dirs = append(dirs, p)
		case (strings.HasSuffix(d.Name(), ".parquet") || d.Name() == load.ExportedMarker) && d.Type().IsRegular():
			return os.Remove(p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- { // deepest first; a folder still holding files stays
		if entries, rerr := os.ReadDir(dirs[i]); rerr == nil && len(entries) == 0 {
			_ = os.Remove(dirs[i])
		}
	}
	return err
}

// resetParquetDir is the Parquet output of the warehouse at path, when it is known: the flag,
// the config's, or the default beside the default (or demo) warehouse. "" when unknown: a
// reset never deletes files of a folder it cannot tie to the warehouse.
func resetParquetDir(flagVal, path string, file *config.File) string {
	switch {
	case flagVal == "-":
		return ""
	case flagVal != "":
		return flagVal
	case file != nil:
		return file.ParquetDir
	case filepath.Clean(path) == filepath.Clean(config.DefaultWarehouse):
		return config.DefaultParquetDir
	case filepath.Clean(path) == filepath.Clean(demoWarehouse):
		return demoParquetDir
	}
	return ""
}

// parquetFiles counts the Parquet files of each table under dir.
func parquetFiles(dir string, tables []*schemas.Table) map[string]int {
	out := map[string]int{}
	if dir == "" {
		return out
	}
	for _, t := range tables {
		_ = filepath.WalkDir(filepath.Join(dir, t.Name), func(_ string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(d.Name(), ".parquet") {
				out[t.Name]++
			}
			return nil // a missing folder counts 0
		})
	}
	return out
}

func printReset(w io.Writer, rep load.ResetReport, pqDir string, file *config.File) {
	printResetWith(w, rep, pqDir, parquetFiles(pqDir, tablesOf(rep)), file)
}

func tablesOf(rep load.ResetReport) []*schemas.Table {
	var out []*schemas.Table
	for _, r := range rep.Tables {
		if t, err := schemas.Lookup(r.Table); err == nil {
			out = append(out, t)
		}
	}
	return out
}

func printResetWith(w io.Writer, rep load.ResetReport, pqDir string, files map[string]int, file *config.File) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if len(rep.Tenants) > 0 {
		fmt.Fprintf(w, "of tenants %s only (the other tenants' rows and cursors are kept):\n\n", strings.Join(rep.Tenants, ", "))
	}
	fmt.Fprintln(tw, "table\trows\trejected\tcursors\tparquet files\t")
	for _, r := range rep.Tables {
		pf := fmt.Sprint(files[r.Table])
		if pqDir == "" {
			pf = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t\n", r.Table, r.Rows, r.Rejected, r.Cursors, pf)
	}
	tw.Flush()
	if len(rep.Released) > 0 {
		var names []string
		for _, c := range rep.Released {
			names = append(names, fmt.Sprintf("%s of tenant %s (%s)", c.Source, c.Tenant, c.Identity))
		}
		sort.Strings(names)
		fmt.Fprintf(w, "\nsource claims released (no stream of the source keeps data): %s\n", strings.Join(names, "; "))
	}
	switch {
	case pqDir != "" && len(rep.Tenants) > 0:
		fmt.Fprintf(w, "\nParquet: the tables' files under %s are rewritten with the other tenants' rows\n", pqDir)
	case pqDir == "":
		fmt.Fprintln(w, "\nParquet: not touched (its folder is not known for this warehouse: pass --parquet-dir DIR, or --config)")
	default:
		fmt.Fprintf(w, "\nParquet: the tables' folders under %s\n", pqDir)
	}
	fmt.Fprintln(w, "run history (_sync_runs) is kept")
	switch {
	case file != nil && file.Lake != nil:
		fmt.Fprintf(w, "the lake (%s, namespace %s) is not touched: its tables keep their rows; the next sync upserts into them\n", file.Lake.Warehouse, file.Lake.Namespace)
	case file == nil:
		fmt.Fprintln(w, "a lake destination (lake: section), if you use one, is not touched")
	}
}
