package lake

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/marketsync/marketsync/schemas"
)

// DefaultOrphanAge is how old an unreferenced file must be before RemoveOrphans removes it: a
// writer's data files and manifests are on storage before its commit references them, so a
// younger file may belong to a commit still in flight (Iceberg's and Spark's default, 3 days).
const DefaultOrphanAge = 72 * time.Hour

// OrphanFile is a file under a table's location that no table metadata references.
type OrphanFile struct {
	Path  string
	Bytes int64
}

// OrphanResult says what RemoveOrphans found (and removed) under one table's location.
type OrphanResult struct {
	Table    string
	Location string
	Orphans  []OrphanFile // sorted by path
	Bytes    int64
	Removed  int // 0 on a dry run
	Skipped  string
}

// RemoveOrphans lists the files under t's table location and removes those older than
// olderThan that are referenced neither by any live snapshot (its manifest list, manifests,
// data and delete files) nor as a metadata file (the current one, those of the metadata log,
// statistics files). Such files are left by failed or conflicting commit attempts and by killed
// writers: nothing reads them. With dryRun nothing is removed and the result lists what would
// be. It uses iceberg-go's orphan cleanup (the algorithm of Iceberg's DeleteOrphanFiles action)
// over the table's file IO, so it works on local folders and on S3 listings alike.
func (w *Writer) RemoveOrphans(ctx context.Context, t *schemas.Table, olderThan time.Duration, dryRun bool) (OrphanResult, error) {
	res := OrphanResult{Table: t.Name}
	if olderThan < 0 {
		return res, fmt.Errorf("lake: remove-orphans: older-than %s is negative", olderThan)
	}
	tbl, err := w.cat.LoadTable(ctx, w.Identifier(t))
	if errors.Is(err, catalog.ErrNoSuchTable) {
		res.Skipped = "no such table yet"
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("lake: remove-orphans: loading table %s: %w", t.Name, err)
	}
	res.Location = tbl.Location()
	plan, err := tbl.PlanOrphanFiles(ctx, table.WithFilesOlderThan(olderThan))
	if err != nil {
		return res, fmt.Errorf("lake: remove-orphans: listing the files of %s under %s: %w", t.Name, res.Location, err)
	}
	for _, f := range plan.OrphanFiles() {
		res.Orphans = append(res.Orphans, OrphanFile{Path: f.Path, Bytes: f.SizeBytes})
	}
	slices.SortFunc(res.Orphans, func(a, b OrphanFile) int { return strings.Compare(a.Path, b.Path) })
	res.Bytes = plan.TotalSizeBytes()
	if dryRun || len(res.Orphans) == 0 {
		return res, nil
	}
	done, err := tbl.ExecuteOrphanCleanup(ctx, plan)
	res.Removed = len(done.DeletedFiles)
	if err != nil {
		return res, fmt.Errorf("lake: remove-orphans: removing the unreferenced files of %s (%d of %d removed): %w", t.Name, res.Removed, len(res.Orphans), err)
	}
	return res, nil
}
