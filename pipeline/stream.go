package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/marketsync/marketsync/extract"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
	"github.com/marketsync/marketsync/transform"
)

type listFunc func(ctx context.Context, stats *extract.Counters, emit extract.Emit) (extract.Outcome, error)

// stream runs one stream partition: plan, scan, verify, and commit the cursor (and deletions,
// after a verified full scan) in one transaction. list nil: the stream's declared lister.
func (r *run) stream(ctx context.Context, name, partition string, list listFunc) {
	t := &task{sr: state.StreamRun{RunID: r.id, Tenant: r.tenant, Stream: name, Partition: partition, Started: time.Now().UTC()}}
	table, err := schemas.Lookup(name)
	if err != nil {
		r.finish(t, err)
		return
	}
	cur, found := r.cursors[name+"\x00"+partition] // this tenant's
	p := plan(planInput{HasCursor: table.Cursor != "", Found: found, Cursor: cur, FullRefresh: r.cfg.FullRefresh,
		FullScanEvery: r.cfg.FullScanEvery, Lookback: r.cfg.Lookback[name], Now: time.Now()})
	t.sr.FullScan = p.Mode == Full
	r.cfg.Log.Debug("plan", "tenant", r.tenant, "stream", name, "partition", partition, "mode", p.Mode, "since", p.Since, "reason", p.Reason)
	if list == nil {
		if list, err = r.lister(table, partition, p.Since, nil); err != nil {
			r.finish(t, err)
			return
		}
	}
	b := transform.NewBatcher(table, r.cfg.Allocator, transform.Meta{RunID: r.id, SyncedAt: r.started.UnixMicro(), Tenant: r.tenant})
	defer b.Release()
	sc := &scan{r: r, t: t, table: table, partition: partition, b: b, base: cur, checkpoint: table.SortedByCursor}
	defer sc.releaseHeld()
	if p.Mode != Full {
		sc.maxCursor = cur.Value
	}
	if p.Mode == Full {
		err = r.fullScan(ctx, sc, cur, found, list)
	} else {
		err = r.incremental(ctx, sc, p, cur, list)
	}
	t.mu.Lock()
	t.sr.Rounded = b.Rounded()
	t.mu.Unlock()
	r.finish(t, err)
}

// listOnce runs the listing; on failure the rows fetched so far commit (they are good data),
// never a cursor.
func (r *run) listOnce(ctx context.Context, sc *scan, list listFunc) (extract.Outcome, error) {
	out, err := sc.list(ctx, list)
	sc.t.mu.Lock()
	sc.t.sr.Pages += int64(out.Pages)
	sc.t.mu.Unlock()
	if err != nil {
		if w := sc.pending(); w.Batch != nil || len(w.Rejected) > 0 {
			if _, cerr := r.commit(sc.t, w); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
	}
	return out, err
}

// incremental lists from the plan's lower bound. If the listing moved while it was paged, a
// row may have been skipped, so the window is listed once more; if it moves again the cursor
// stays where it was (the rows read are committed) rather than pass a row that may be unseen.
func (r *run) incremental(ctx context.Context, sc *scan, p Plan, cur state.Cursor, list listFunc) error {
	for attempt := 1; ; attempt++ {
		out, err := r.listOnce(ctx, sc, list)
		if err != nil {
			return err
		}
		sc.t.note(out.Notice)
		if out.Drift && attempt == 1 {
			r.cfg.Log.Info("listing changed while paging; listing the window again before the cursor moves",
				"stream", sc.table.Name, "partition", sc.partition)
			continue
		}
		left, err := r.sweep(ctx, sc)
		if err != nil {
			return err
		}
		w := sc.pending()
		next := cur
		next.Value = max(cur.Value, sc.maxCursor)
		if at := serverStart(sc.table, out); at > 0 {
			next.Value = max(cur.Value, at)
		}
		if left > 0 {
			next.Rescan = true
			sc.t.note(fmt.Sprintf("%d rows left a status the run re-reads (e.g. an invoice no longer UNPAID): marked _stale_since; the next run's full scan re-reads them", left))
		}
		if out.Drift {
			next = cur
			sc.t.note("cursor not advanced: the listing kept changing while it was paged")
		}
		if p.Mode == Resume && !out.Drift {
			next.Loaded = true // the first load is in; the next run's full scan verifies it
		}
		w.Cursor = &next
		_, err = r.commit(sc.t, w)
		return err
	}
}

// fullScan lists everything, then lets the verifier judge whether rows it did not see are
// gone. An unproven scan with deletion candidates is repeated once: two scans listing the same
// keys prove it.
func (r *run) fullScan(ctx context.Context, sc *scan, cur state.Cursor, found bool, list listFunc) error {
	var first *transform.Digest
	for attempt := 1; ; attempt++ {
		sc.b.ResetDigest()
		inserted := sc.t.inserted()
		out, err := r.listOnce(ctx, sc, list)
		if err != nil {
			return err
		}
		if _, err := r.commit(sc.t, sc.pending()); err != nil {
			return err
		}
		w := load.Write{Table: sc.table, Stream: sc.table.Name, Partition: sc.partition, RunID: r.id, Tenant: r.tenant}
		q := factsQuery{scanID: r.id}
		if sc.table.Partition != "" {
			q.partitionCol, q.partitionValue = sc.table.Partition, sc.partition
		}
		facts, err := r.scanFacts(sc.t, w, q)
		if err != nil {
			return err
		}
		digest := sc.b.Digest()
		v := verify(scanEvidence{Outcome: out, Facts: facts, Quarantined: sc.quarantined, Inserted: sc.t.inserted() - inserted,
			PrevDigest: cur.KeyDigest, FirstSync: !found, RepeatAgrees: first != nil && *first == digest && !out.Drift})
		if !v.Verified && out.Complete && facts.Candidates > 0 && attempt == 1 {
			r.cfg.Log.Info("full scan did not prove which rows are gone; scanning again", "stream", sc.table.Name,
				"partition", sc.partition, "why", v.Why)
			first = &digest
			continue
		}
		next := cur
		next.Value = sc.maxCursor
		if at := serverStart(sc.table, out); at > 0 && out.Complete {
			next.Value = at
		}
		if out.Complete {
			next.KeyDigest = facts.KeyDigest
		}
		if v.Verified {
			next.LastFullScan, next.Loaded = time.Now().UTC(), false
		}
		if v.MarkDeletes {
			w.Deletes = &load.DeleteScope{RunID: r.id, At: r.started, PartitionCol: q.partitionCol, PartitionValue: q.partitionValue}
		}
		sc.t.note(v.Why)
		w.Cursor = &next
		_, err = r.commit(sc.t, w)
		return err
	}
}

// serverStart is the cursor (µs) a listing of a table whose rows may carry no cursor value
// earns: the server's clock when it answered the first page, if the listing did not move while
// paged. Every row changed after that instant is in the next window (the lookback absorbs the
// Date header's one-second resolution); 0 when the table keeps the highest value seen.
func serverStart(t *schemas.Table, out extract.Outcome) int64 {
	if !t.CursorFromServerClock || out.Drift || out.ServerStart.IsZero() {
		return 0
	}
	return out.ServerStart.UnixMicro()
}

// sweep re-lists the records of the table's non-terminal statuses, whatever their age, so a
// change after the lookback window (an invoice paid 45 days later) is not missed. Sweep rows
// are upserted but never move the cursor: they are not in cursor order.
func (r *run) sweep(ctx context.Context, sc *scan) (left int64, err error) {
	res := resources[sc.table.Resource]
	if len(sc.table.Sweeps) == 0 || res.sweep == nil {
		return 0, nil
	}
	if _, err := r.commit(sc.t, sc.pending()); err != nil { // the listing's rows, with their cursor values
		return 0, err
	}
	complete := true
	cursor, checkpoint := sc.maxCursor, sc.checkpoint
	sc.checkpoint = false
	defer func() { sc.checkpoint = checkpoint }()
	for _, status := range sc.table.Sweeps {
		out, err := r.listOnce(ctx, sc, res.sweep(r, status))
		if err != nil {
			return 0, fmt.Errorf("re-reading %s in status %s: %w", sc.table.Name, status, err)
		}
		if out.Drift {
			complete = false
			sc.t.note(fmt.Sprintf("the %s sweep changed while it was paged: some %s rows may be re-read next run", status, sc.table.Name))
		}
	}
	w := sc.pending()
	sc.maxCursor = cursor
	if complete { // rows in a swept status that no sweep listed have left it
		w.LeftStatus = &load.StatusScope{Column: sc.table.SweepColumn, Values: sc.table.Sweeps, RunID: r.id}
	}
	res2, err := r.commit(sc.t, w)
	return res2.LeftStatus, err
}
