package bench

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/pipeline"
	"github.com/marketsync/marketsync/schemas"
)

// parquetFiles maps each Parquet file under dir (relative path) to its modification time.
func parquetFiles(dir string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(p, ".parquet") {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = info.ModTime()
		return nil
	})
	return out, err
}

// benchParquet: the Parquet work of a run in which one table (invoices) of all changed. The
// simulator changes every stream when its clock moves, so the changed run syncs invoices alone
// and the export then runs over every table with the run's start, as a sync's does: the other
// tables must cost no file, and invoices only the partitions holding changed rows.
func benchParquet(ctx context.Context, o Options, rep *Report) error {
	rows := min(o.Rows, 100_000)
	sim, err := startSim(apisim.Config{Seed: 3, Scale: rows, Locations: 4, Profile: "fast"})
	if err != nil {
		return err
	}
	defer sim.Close()
	dir := filepath.Join(o.Dir, "parquet-one")
	cfg := syncConfig(sim, 0, dir, o.Log)
	if _, err := pipeline.Run(ctx, cfg); err != nil {
		return err
	}
	before, err := parquetFiles(cfg.ParquetDir)
	if err != nil {
		return err
	}
	time.Sleep(20 * time.Millisecond) // a rewritten file's mtime must differ from its first
	sim.Advance(2 * time.Hour)
	one := cfg
	one.Streams, one.ParquetDir = []string{"invoices"}, ""
	sum, err := pipeline.Run(ctx, one)
	if err != nil {
		return err
	}
	db, err := load.Open(ctx, cfg.Warehouse)
	if err != nil {
		return err
	}
	defer db.Close()
	inv, _ := schemas.Lookup("invoices")
	// The partitions of invoices holding a row this run wrote, deleted or marked stale.
	expr := fmt.Sprintf("coalesce(year(%s AT TIME ZONE 'UTC'), 0)", load.Quote(inv.Created))
	if inv.Partition != "" {
		expr = load.Quote(inv.Partition)
	}
	var changedParts int
	if err := db.Conn().QueryRowContext(ctx, fmt.Sprintf("SELECT count(DISTINCT %s) FROM invoices WHERE _synced_at >= $1 OR _deleted_at >= $1 OR _stale_since >= $1", expr), sum.Started).Scan(&changedParts); err != nil {
		return err
	}
	start := time.Now()
	if err := db.ExportParquet(ctx, cfg.ParquetDir, schemas.Tables, &sum.Started); err != nil {
		return err
	}
	incT := time.Since(start)
	written := db.ParquetPartitionsWritten
	after, err := parquetFiles(cfg.ParquetDir)
	if err != nil {
		return err
	}
	perTable := map[string]int{}
	for f, m := range after {
		if old, ok := before[f]; !ok || !old.Equal(m) {
			perTable[strings.SplitN(f, string(filepath.Separator), 2)[0]]++
		}
	}
	var others []string
	for t, n := range perTable {
		if t != "invoices" {
			others = append(others, fmt.Sprintf("%s %d", t, n))
		}
	}
	sort.Strings(others)
	// The same export from scratch, for its cost.
	start = time.Now()
	if err := db.ExportParquet(ctx, filepath.Join(o.Dir, "parquet-full"), schemas.Tables, nil); err != nil {
		return err
	}
	fullT := time.Since(start)
	full := db.ParquetPartitionsWritten - written
	ok := len(others) == 0 && perTable["invoices"] == changedParts && written == changedParts
	otherText := "none"
	if len(others) > 0 {
		otherText = strings.Join(others, ", ")
	}
	rep.add(Row{Measure: fmt.Sprintf("Parquet: a run in which 1 table of %d changed (invoices, %d rows per stream)", len(schemas.Tables), rows),
		Ours:     fmt.Sprintf("%d partition files written (invoices %d; other tables: %s), %.2f s", written, perTable["invoices"], otherText, incT.Seconds()),
		Baseline: fmt.Sprintf("rewriting everything: %d files, %.2f s; invoices partitions holding a changed row: %d", full, fullT.Seconds(), changedParts),
		Ratio:    fmt.Sprintf("files %d/%d", written, full), Goal: "only that table's changed partitions rewritten", Verdict: verdict(ok),
		Notes: fmt.Sprintf("%d files before the run; the simulator changes every stream when its clock moves, so the changed run syncs invoices alone and the export runs over all %d tables with the run's start, as a sync's does; each file is written beside its name and renamed over it",
			len(before), len(schemas.Tables))})
	return nil
}
