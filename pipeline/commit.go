package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/marketsync/marketsync/lake"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
)

// commitReq is one request to the committer: apply a write, or (facts != nil) report what a
// scan wrote. Requests are served in the order they are sent, so a facts request sees every
// write its stream sent before it.
type commitReq struct {
	w     load.Write
	task  *task
	facts *factsQuery
	reply chan commitReply // nil: fire and forget (errors are recorded on the task)
}

type factsQuery struct {
	scanID, partitionCol, partitionValue string
}

type commitReply struct {
	res   load.Result
	facts load.ScanFacts
	err   error
}

// committer is the only goroutine that writes to the warehouse. It owns (and releases) every
// batch it receives, and adds what each write changed to its task's counters.
func (r *run) committer(ctx context.Context) {
	for req := range r.commits {
		var rep commitReply
		switch {
		case req.task.failed() != nil:
			rep.err = req.task.failed() // the stream already failed: commit nothing more of it, above all no cursor
		case req.facts != nil:
			f := req.facts
			rep.facts, rep.err = r.db.ScanFacts(ctx, req.w.Table, req.w.Tenant, req.w.Stream, r.id, f.scanID, f.partitionCol, f.partitionValue)
		default:
			start := time.Now()
			// The lake commits first: DuckDB's cursor then never runs ahead of the lake's, and a
			// DuckDB failure after it only means an idempotent re-upsert next run.
			if rep.err = r.commitLake(ctx, req.w); rep.err == nil {
				rep.res, rep.err = r.db.Apply(ctx, req.w)
			}
			var rows int64
			if req.w.Batch != nil {
				rows = req.w.Batch.NumRows()
			}
			r.cfg.Log.Debug("committed", "tenant", req.w.Tenant, "stream", req.w.Stream, "partition", req.w.Partition, "rows", rows,
				"cursor", req.w.Cursor != nil, "took", time.Since(start))
			if rep.err == nil {
				req.task.add(rep.res)
				if req.w.Cursor != nil {
					req.task.cursorCommitted(*req.w.Cursor)
				}
			}
		}
		if rep.err != nil {
			req.task.fail(rep.err)
		}
		if req.w.Batch != nil {
			req.w.Batch.Release()
			r.inflight.released(req.w.Batch)
		}
		if req.reply != nil {
			req.reply <- rep
		}
	}
}

// commit hands a write to the committer and waits for it. The send does not select on ctx:
// the committer drains until every stream has returned, so a queued batch still commits.
func (r *run) commit(t *task, w load.Write) (load.Result, error) {
	reply := make(chan commitReply, 1)
	r.commits <- commitReq{w: w, task: t, reply: reply}
	rep := <-reply
	return rep.res, rep.err
}

// commitAsync hands a write over without waiting; a failure shows on the task.
func (r *run) commitAsync(t *task, w load.Write) error {
	r.commits <- commitReq{w: w, task: t}
	return t.failed()
}

// scanFacts asks the committer what a scan wrote, after everything it sent before.
func (r *run) scanFacts(t *task, w load.Write, q factsQuery) (load.ScanFacts, error) {
	reply := make(chan commitReply, 1)
	r.commits <- commitReq{w: w, task: t, facts: &q, reply: reply}
	rep := <-reply
	return rep.facts, rep.err
}

// Lake is the part of *lake.Writer the committer uses.
type Lake interface {
	Commit(ctx context.Context, c lake.Commit) (lake.Result, error)
	// Cursors and ReadRows serve cursorsFromLake: the lake is the system of record of a
	// lake-configured run's cursors.
	// Both are of one tenant.
	Cursors(ctx context.Context, t *schemas.Table, tenant string) (map[string]state.Cursor, error)
	ReadRows(ctx context.Context, t *schemas.Table, tenant, partition string, fn func(arrow.RecordBatch) error) error
}

// commitLake writes w to the lake destination, if one is configured, as one snapshot with its
// cursor, scoped to w's tenant. Quarantined records stay in DuckDB's _rejected only.
func (r *run) commitLake(ctx context.Context, w load.Write) error {
	if r.cfg.Lake == nil || (w.Batch == nil && w.Cursor == nil && w.Deletes == nil) {
		return nil
	}
	c := lake.Commit{Table: w.Table, Cursor: w.Cursor, Stream: w.Stream, Partition: w.Partition, Tenant: w.Tenant}
	if w.Batch != nil {
		c.Batches = []arrow.RecordBatch{w.Batch}
	}
	if d := w.Deletes; d != nil {
		c.DeleteUnseen = &lake.DeleteScope{RunID: d.RunID, PartitionCol: d.PartitionCol, PartitionValue: d.PartitionValue, At: d.At}
	}
	if _, err := r.cfg.Lake.Commit(ctx, c); err != nil {
		return fmt.Errorf("lake: %w", err)
	}
	return nil
}
