package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/marketsync/marketsync/extract"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
	"github.com/marketsync/marketsync/transform"
)

// scan turns one listing into Arrow batches and hands them to the committer. For listings
// sorted by the cursor column it also checkpoints: every committed batch carries the cursor it
// reaches, so a crash resumes from there.
type scan struct {
	r         *run
	t         *task
	table     *schemas.Table
	partition string
	b         *transform.Batcher
	base      state.Cursor // the cursor the run started from; checkpoints keep its other fields
	// checkpoint: write the cursor with each batch (listing sorted ascending by the cursor).
	checkpoint bool

	maxCursor   int64
	rejected    []load.Rejected
	quarantined int64 // records quarantined in this listing
	rows, pages int64
	// held: the bytes of the run's in-flight budget the batch being built holds (its
	// records' JSON).
	held int64
}

// list runs one listing through the batcher; batches are sent as they fill.
func (s *scan) list(ctx context.Context, list listFunc) (extract.Outcome, error) {
	s.quarantined = 0
	return list(ctx, &s.t.stats, s.emit)
}

func (s *scan) emit(ctx context.Context, p extract.Page) error {
	if err := s.reserve(ctx, p); err != nil {
		return err
	}
	for _, rec := range p.Records {
		err := s.b.Add(rec)
		if errors.Is(err, transform.ErrDuplicateKey) {
			if err := s.send(); err != nil {
				return err
			}
			err = s.b.Add(rec)
		}
		var fe *transform.FieldError
		if errors.As(err, &fe) && s.r.cfg.RejectPolicy == RejectQuarantine {
			s.rejected = append(s.rejected, load.Rejected{Stream: s.table.Name, RecordID: fe.RecordID, Field: fe.Field,
				Value: fe.Value, Error: fe.Err.Error(), Record: append([]byte(nil), rec...)})
			s.quarantined++
			continue
		}
		if err != nil {
			return err
		}
		s.rows++
	}
	s.pages++
	if s.r.cfg.Progress != nil {
		s.r.cfg.Progress(Event{Tenant: s.r.tenant, Stream: s.table.Name, Partition: s.partition, Rows: s.rows, Pages: s.pages,
			Listed: int64(p.Listed), Total: int64(p.Total), Waited: time.Duration(s.t.stats.Waited.Load())})
	}
	if s.b.Len() >= s.r.cfg.BatchRows {
		return s.send()
	}
	return ctx.Err()
}

// pending takes the rows (and quarantined records) not yet sent as one write.
func (s *scan) pending() load.Write {
	w := load.Write{Table: s.table, Stream: s.table.Name, Partition: s.partition, RunID: s.r.id, Rejected: s.rejected, Tenant: s.r.tenant}
	s.rejected = nil
	if rec := s.b.Flush(); rec != nil {
		s.maxCursor = max(s.maxCursor, maxOf(rec, s.table.Cursor))
		w.Batch = rec
	}
	s.r.inflight.hand(w.Batch, s.held) // no batch: the bytes return now
	s.held = 0
	return w
}

// reserve takes the in-flight bytes of a page's records before they are added. When the run's
// budget is spent, the rows this scan holds are sent first (a smaller batch), so that what it
// waits for is only other batches' commits.
func (s *scan) reserve(ctx context.Context, p extract.Page) error {
	var n int64
	for _, rec := range p.Records {
		n += int64(len(rec))
	}
	if n == 0 {
		return nil
	}
	got, ok := s.r.inflight.take(n)
	if !ok {
		if s.b.Len() > 0 {
			if err := s.send(); err != nil {
				return err
			}
		}
		var err error
		if got, err = s.r.inflight.wait(ctx, n); err != nil {
			return err
		}
	}
	s.held += got
	return nil
}

// releaseHeld returns the bytes of rows never sent (the stream ends without sending them).
func (s *scan) releaseHeld() {
	s.r.inflight.give(s.held)
	s.held = 0
}

// send hands the pending rows to the committer without waiting, with a checkpoint if the
// listing's order allows one.
func (s *scan) send() error {
	w := s.pending()
	if w.Batch == nil && len(w.Rejected) == 0 {
		return s.t.failed()
	}
	if s.checkpoint && w.Batch != nil && s.maxCursor > 0 {
		// Pages arrive in listing order, ascending by the cursor column, so every row up to
		// maxCursor is in this or an earlier batch.
		c := s.base
		c.Value = s.maxCursor
		w.Cursor = &c
	}
	return s.r.commitAsync(s.t, w)
}

// maxOf returns the largest value of a timestamp column in rec (0 if none or no column).
func maxOf(rec arrow.RecordBatch, col string) int64 {
	if col == "" {
		return 0
	}
	idx := rec.Schema().FieldIndices(col)
	if len(idx) == 0 {
		return 0
	}
	a, ok := rec.Column(idx[0]).(*array.Timestamp)
	if !ok {
		return 0
	}
	var m int64
	for i := 0; i < a.Len(); i++ {
		if a.IsValid(i) {
			m = max(m, int64(a.Value(i)))
		}
	}
	return m
}
