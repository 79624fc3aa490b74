package lake

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
	"github.com/apache/iceberg-go/table/compaction"

	"github.com/marketsync/marketsync/schemas"
)

// CompactResult says what a compaction did to one table.
type CompactResult struct {
	Table string
	// Live data and delete files of the current snapshot, before and after.
	DataFilesBefore, DataFiles, DeleteFilesBefore, DeleteFiles int
	RewrittenFiles, AddedFiles                                 int
	BytesBefore, BytesAfter                                    int64
	Attempts                                                   int
	SnapshotID                                                 int64  // the compaction's snapshot; 0 if nothing was rewritten
	Skipped                                                    string // why nothing was rewritten
}

// Compact bin-packs the small data files of each partition of t's table into files of up to
// targetFileSize bytes (0: iceberg-go's default, 512 MB) with iceberg-go's compaction (the
// rewrite applies equality deletes and drops the ones no longer needed), as one snapshot. A
// partition needs at least two files to be rewritten. The rows are unchanged, and so is every
// cursor (the snapshot's ancestry still carries them). A commit that races a writer is
// re-planned and retried like a sync's commit.
func (w *Writer) Compact(ctx context.Context, t *schemas.Table, targetFileSize int64) (CompactResult, error) {
	res := CompactResult{Table: t.Name}
	cfg := compaction.DefaultConfig()
	if targetFileSize > 0 {
		cfg.TargetFileSizeBytes, cfg.MinFileSizeBytes, cfg.MaxFileSizeBytes = targetFileSize, targetFileSize*3/4, targetFileSize*9/5
	}
	cfg.MinInputFiles = 2
	err := w.retry(ctx, t, "compacting", func(attempt int) error {
		res.Attempts = attempt
		tbl, err := w.cat.LoadTable(ctx, w.Identifier(t))
		if errors.Is(err, catalog.ErrNoSuchTable) {
			res.Skipped = "no such table yet"
			return nil
		}
		if err != nil {
			return err
		}
		snap := tbl.CurrentSnapshot()
		if snap == nil {
			res.Skipped = "empty table"
			return nil
		}
		if res.DataFilesBefore, res.DeleteFilesBefore, err = liveFiles(ctx, tbl); err != nil {
			return err
		}
		plan, err := compaction.Analyze(ctx, tbl, cfg)
		if err != nil {
			return fmt.Errorf("planning the compaction: %w", err)
		}
		if len(plan.Groups) == 0 {
			res.DataFiles, res.DeleteFiles, res.Skipped = res.DataFilesBefore, res.DeleteFilesBefore, "no partition has two small files"
			return nil
		}
		groups := make([]table.CompactionTaskGroup, len(plan.Groups))
		rewritten := map[string]struct{}{}
		for i, g := range plan.Groups {
			groups[i] = table.CompactionTaskGroup{PartitionKey: g.PartitionKey, Tasks: g.Tasks, TotalSizeBytes: g.TotalSizeBytes}
			for _, task := range g.Tasks {
				rewritten[task.File.FilePath()] = struct{}{}
			}
		}
		fs, err := tbl.FS(ctx)
		if err != nil {
			return err
		}
		dead, err := compaction.CollectDeadEqualityDeletesWithSpecs(ctx, fs, tbl.Metadata(), snap, rewritten)
		if err != nil {
			return fmt.Errorf("finding the equality deletes the rewrite makes obsolete: %w", err)
		}
		tx := tbl.NewTransaction()
		r, err := tx.RewriteDataFiles(ctx, groups, table.RewriteDataFilesOptions{ExtraDeleteFilesToRemove: dead,
			SnapshotProps: iceberg.Properties{"marketsync.operation": "compact"}})
		if err != nil {
			return err
		}
		committed, err := tx.Commit(ctx)
		if err != nil {
			return err
		}
		res.RewrittenFiles, res.AddedFiles = r.RemovedDataFiles, r.AddedDataFiles
		res.BytesBefore, res.BytesAfter = r.BytesBefore, r.BytesAfter
		res.SnapshotID = committed.CurrentSnapshot().SnapshotID
		res.DataFiles, res.DeleteFiles, err = liveFiles(ctx, committed)
		return err
	})
	return res, err
}

// liveFiles counts the data and delete files the current snapshot's scan reads.
func liveFiles(ctx context.Context, tbl *table.Table) (data, deletes int, err error) {
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		return 0, 0, err
	}
	seen := map[string]bool{}
	for _, task := range tasks {
		if !seen[task.File.FilePath()] {
			seen[task.File.FilePath()] = true
			data++
		}
		for _, d := range append(append(append([]iceberg.DataFile{}, task.DeleteFiles...), task.EqualityDeleteFiles...), task.DeletionVectorFiles...) {
			if !seen[d.FilePath()] {
				seen[d.FilePath()] = true
				deletes++
			}
		}
	}
	return data, deletes, nil
}

// ExpireResult says what an expiry did to one table.
type ExpireResult struct {
	Table                  string
	SnapshotsBefore, After int
	// CursorsCarried counts the cursors copied into a new current snapshot so expiry keeps them.
	CursorsCarried int
}

// ExpireSnapshots removes the snapshots of t's table older than olderThan, keeping at least the
// retainLast newest (at least 1; the current snapshot is always kept), and deletes the files
// only they referenced (iceberg-go's expire-snapshots). Readers lose time travel to them.
//
// Cursors live in the summaries of the snapshots that committed them: before expiring, every
// cursor the current snapshot does not carry itself is copied into a new, empty current
// snapshot, so no stream partition loses its cursor (which would cost a full scan).
func (w *Writer) ExpireSnapshots(ctx context.Context, t *schemas.Table, olderThan time.Duration, retainLast int) (ExpireResult, error) {
	res := ExpireResult{Table: t.Name}
	if retainLast < 1 {
		return res, fmt.Errorf("lake: expire-snapshots: retain-last %d: at least 1 (the current snapshot) is always kept", retainLast)
	}
	if olderThan < 0 {
		return res, fmt.Errorf("lake: expire-snapshots: older-than %s is negative", olderThan)
	}
	err := w.retry(ctx, t, "carrying the cursors forward in", func(int) error {
		res.CursorsCarried = 0
		tbl, err := w.cat.LoadTable(ctx, w.Identifier(t))
		if err != nil {
			return err
		}
		cur := tbl.CurrentSnapshot()
		if cur == nil {
			return nil
		}
		res.SnapshotsBefore = len(tbl.Metadata().Snapshots())
		var own iceberg.Properties
		if cur.Summary != nil {
			own = cur.Summary.Properties
		}
		props := iceberg.Properties{"marketsync.operation": "carry-cursors"}
		for k, v := range cursorProps(tbl) { // every tenant's
			props[k] = v
			if own[k] != v {
				res.CursorsCarried++
			}
		}
		if res.CursorsCarried == 0 {
			return nil // the current snapshot carries every cursor
		}
		tx := tbl.NewTransaction()
		if err := tx.AddFiles(ctx, nil, props, false); err != nil {
			return err
		}
		_, err = tx.Commit(ctx)
		return err
	})
	if err != nil || res.SnapshotsBefore == 0 {
		return res, err
	}
	err = w.retry(ctx, t, "expiring the snapshots of", func(int) error {
		tbl, err := w.cat.LoadTable(ctx, w.Identifier(t))
		if err != nil {
			return err
		}
		tx := tbl.NewTransaction()
		if err := tx.ExpireSnapshots(table.WithOlderThan(olderThan), table.WithRetainLast(retainLast)); err != nil {
			return err
		}
		committed, err := tx.Commit(ctx)
		if err != nil {
			return err
		}
		res.After = len(committed.Metadata().Snapshots())
		return nil
	})
	return res, err
}

// retry runs op until it succeeds, fails other than by a lost race, or MaxAttempts is reached.
func (w *Writer) retry(ctx context.Context, t *schemas.Table, what string, op func(attempt int) error) error {
	var last error
	for attempt := 1; attempt <= w.maxAttempts; attempt++ {
		err := op(attempt)
		if err == nil {
			return nil
		}
		if !isConflict(err) {
			return fmt.Errorf("lake: %s %s: %w", what, t.Name, err)
		}
		last = err
		w.conflicts.Add(1)
		wait := time.Duration(min(25<<attempt, 2000)) * time.Millisecond
		select {
		case <-ctx.Done():
			return fmt.Errorf("lake: %s %s: %w", what, t.Name, context.Cause(ctx))
		case <-time.After(wait/2 + rand.N(wait/2+1)):
		}
	}
	return fmt.Errorf("lake: %s %s: %w after %d attempts (last: %v)", what, t.Name, ErrConflict, w.maxAttempts, last)
}
