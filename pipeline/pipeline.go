// Package pipeline runs one sync: every selected stream (and every HighLevel location) extracts
// concurrently, transforms into Arrow batches, and hands them to the single warehouse writer,
// which commits each stream's cursor in the same transaction as its last rows.
package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/sync/errgroup"

	"github.com/marketsync/marketsync/extract"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/queries"
	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
	"github.com/marketsync/marketsync/transform"
)

// Reject policies for records whose values do not fit their columns.
const (
	RejectFail       = "fail"
	RejectQuarantine = "quarantine"
)

// Config is one run's settings.
type Config struct {
	AppDirect     *extract.AppDirectConfig // nil: AppDirect streams are skipped
	HighLevel     *extract.HighLevelConfig // nil: charges are skipped
	Streams       []string                 // empty: all
	FullRefresh   bool
	Warehouse     string
	ParquetDir    string // empty: no Parquet output
	BatchRows     int    // default 25,000
	Concurrency   int    // streams and locations in parallel; default 6
	Lookback      map[string]time.Duration
	FullScanEvery time.Duration // a full scan (which detects deletions) at least this often; default 7 days
	RejectPolicy  string
	Retry         extract.RetryPolicy
	HTTPTimeout   time.Duration
	Log           *slog.Logger
	Progress      func(Event) // optional; called from many goroutines
	Allocator     memory.Allocator
	// DuckDBMemoryLimit caps DuckDB's buffer pool (default 256MB): the warehouse lives on disk,
	// so a larger cache only grows the process with the data synced.
	DuckDBMemoryLimit string
}

// DefaultLookback is how far before the cursor an incremental run re-reads, per stream: an
// overlap for clock skew and equal timestamps, and for streams the API filters by creation
// only, the window in which records still change (invoices get paid, leads convert,
// opportunities close).
var DefaultLookback = map[string]time.Duration{
	"users": 10 * time.Minute, "invoices": 30 * 24 * time.Hour, "leads": 30 * 24 * time.Hour,
	"opportunities": 30 * 24 * time.Hour, "charges": 24 * time.Hour,
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if len(c.Streams) == 0 {
		c.Streams = append([]string{}, schemas.Streams...)
	}
	if c.BatchRows == 0 {
		c.BatchRows = 25_000
	}
	if c.Concurrency == 0 {
		c.Concurrency = 6
	}
	if c.Lookback == nil {
		c.Lookback = map[string]time.Duration{}
	}
	for k, v := range DefaultLookback {
		if _, ok := c.Lookback[k]; !ok {
			c.Lookback[k] = v
		}
	}
	if c.FullScanEvery == 0 {
		c.FullScanEvery = 7 * 24 * time.Hour
	}
	if c.RejectPolicy == "" {
		c.RejectPolicy = RejectFail
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Allocator == nil {
		c.Allocator = memory.NewGoAllocator()
	}
	if c.DuckDBMemoryLimit == "" {
		c.DuckDBMemoryLimit = "256MB"
	}
}

// Event reports progress of one stream partition.
type Event struct {
	Stream, Partition string
	Rows, Pages       int64
	Done              bool
	Err               error
}

// Summary is what a run did.
type Summary struct {
	RunID   string
	Started time.Time
	Ended   time.Time
	Streams []state.StreamRun
}

// Failed returns the stream runs that failed.
func (s Summary) Failed() []state.StreamRun {
	var out []state.StreamRun
	for _, r := range s.Streams {
		if r.Status != "succeeded" {
			out = append(out, r)
		}
	}
	return out
}

// ErrStreamsFailed is returned (wrapped) when at least one stream failed; the others committed.
var ErrStreamsFailed = errors.New("some streams failed")

func newRunID(t time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

type run struct {
	cfg     Config
	id      string
	started time.Time
	db      *load.DuckDB
	writes  chan writeReq
	client  *extract.Client
	ad      *extract.AppDirect
	hl      *extract.HighLevel
	auth    *extract.Counters
	cursors map[string]state.Cursor

	mu      sync.Mutex
	results []state.StreamRun
}

type writeReq struct {
	w     load.Write
	task  *task
	reply chan error // nil: fire and forget (errors recorded on the task)
	short *bool      // set to Result.Short before reply
}

// task is one stream partition's run; the writer updates its counters.
type task struct {
	mu    sync.Mutex
	sr    state.StreamRun
	err   error // first write error
	stats extract.Counters
	rows  int64
}

func (t *task) fail(err error) {
	t.mu.Lock()
	if t.err == nil {
		t.err = err
	}
	t.mu.Unlock()
}

func (t *task) failed() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Run performs one sync. It returns the summary and, if any stream failed, an error wrapping
// ErrStreamsFailed (the streams that succeeded are committed). Errors before any stream starts
// (warehouse locked, schema incompatible) are returned as is.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	cfg.SetDefaults()
	started := time.Now().UTC()
	r := &run{cfg: cfg, id: newRunID(started), started: started, auth: &extract.Counters{}}
	sum := Summary{RunID: r.id, Started: started}
	db, err := load.Open(ctx, cfg.Warehouse)
	if err != nil {
		return sum, err
	}
	defer db.Close()
	r.db = db
	if err := db.SetMemoryLimit(ctx, cfg.DuckDBMemoryLimit); err != nil {
		return sum, err
	}
	tables, err := r.tables()
	if err != nil {
		return sum, err
	}
	// Every table exists even when a run selects a few streams, so the shipped views resolve.
	if err := db.Migrate(ctx, schemas.Tables); err != nil {
		return sum, err
	}
	if err := queries.Install(ctx, db.Conn()); err != nil {
		return sum, err
	}
	// Cursors are read once, before the writer starts: a read on the writer's connection in the
	// middle of its transaction would see uncommitted state.
	if r.cursors, err = db.Cursors(ctx); err != nil {
		return sum, err
	}
	r.client = extract.NewClient(cfg.Log, cfg.Retry, cfg.HTTPTimeout)
	defer r.client.CloseIdle()
	if cfg.AppDirect != nil {
		r.ad = extract.NewAppDirect(r.client, *cfg.AppDirect, r.auth)
	}
	if cfg.HighLevel != nil {
		r.hl = extract.NewHighLevel(r.client, *cfg.HighLevel, r.auth)
	}

	// The writer outlives cancellation: on SIGINT fetching stops, and what is queued commits.
	r.writes = make(chan writeReq, 2)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		r.writer(context.WithoutCancel(ctx))
	}()

	g := new(errgroup.Group) // no shared cancel: one stream failing must not stop the others
	g.SetLimit(cfg.Concurrency)
	for _, name := range cfg.Streams {
		switch name {
		case "charges":
			g.Go(func() error { r.charges(ctx); return nil })
		default:
			g.Go(func() error { r.stream(ctx, name, ""); return nil })
		}
	}
	_ = g.Wait()
	close(r.writes)
	<-writerDone

	if cfg.Log.Enabled(ctx, slog.LevelDebug) {
		db.LogMemory(ctx, cfg.Log)
	}
	sum.Ended = time.Now().UTC()
	sum.Streams = r.results
	for i := range sum.Streams {
		sum.Streams[i].Ended = sum.Ended
	}
	if err := db.RecordRuns(context.WithoutCancel(ctx), sum.Streams); err != nil {
		return sum, err
	}
	// Parquet is derived from committed data; an interrupted run skips it to exit quickly (the
	// previous snapshot stays intact and the next run writes a new one).
	if cfg.ParquetDir != "" && ctx.Err() == nil {
		if err := db.ExportParquet(ctx, cfg.ParquetDir, tables); err != nil {
			return sum, fmt.Errorf("writing parquet: %w", err)
		}
	}
	if failed := sum.Failed(); len(failed) > 0 {
		return sum, fmt.Errorf("%w: %d of %d stream runs (first: %s: %s)", ErrStreamsFailed, len(failed), len(sum.Streams), failed[0].Stream, failed[0].Error)
	}
	return sum, nil
}

func (r *run) tables() ([]*schemas.Table, error) {
	var out []*schemas.Table
	for _, name := range r.cfg.Streams {
		t, err := schemas.Lookup(name)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
		if name == "charges" {
			loc, _ := schemas.Lookup("locations")
			out = append(out, loc)
		}
	}
	return out, nil
}

// writer is the only goroutine that writes to the warehouse. It owns (and releases) every batch
// it receives.
func (r *run) writer(ctx context.Context) {
	for req := range r.writes {
		var err error
		if prior := req.task.failed(); prior != nil {
			err = prior // the stream already failed: commit nothing more of it, above all no cursor
		} else {
			var res load.Result
			start := time.Now()
			res, err = r.db.Apply(ctx, req.w)
			var rows int64
			if req.w.Batch != nil {
				rows = req.w.Batch.NumRows()
			}
			r.cfg.Log.Debug("committed", "stream", req.w.Stream, "partition", req.w.Partition, "rows", rows,
				"cursor", req.w.Cursor != nil, "took", time.Since(start))
			if req.short != nil {
				*req.short = res.Short
			}
			if err == nil {
				req.task.mu.Lock()
				req.task.sr.Inserted += res.Inserted
				req.task.sr.Updated += res.Updated
				req.task.sr.Deleted += res.Deleted
				req.task.sr.Rejected += res.Rejected
				req.task.sr.Stale += res.Stale
				req.task.mu.Unlock()
			} else {
				req.task.fail(err)
			}
		}
		if req.w.Batch != nil {
			req.w.Batch.Release()
		}
		if req.reply != nil {
			req.reply <- err
		}
	}
}

func (r *run) finish(t *task, err error) {
	t.mu.Lock()
	sr := t.sr
	t.mu.Unlock()
	if err == nil {
		err = t.failed()
	}
	sr.Requests, sr.Retries, sr.Throttled = t.stats.Requests.Load(), t.stats.Retries.Load(), t.stats.Throttled.Load()
	sr.Bytes = t.stats.Bytes.Load()
	switch {
	case err == nil:
		sr.Status = "succeeded"
	case errors.Is(err, context.Canceled):
		sr.Status, sr.Error = "cancelled", "cancelled before completion; committed batches are kept and the cursor did not move"
	default:
		sr.Status, sr.Error = "failed", err.Error()
	}
	log := r.cfg.Log.With("stream", sr.Stream)
	if sr.Partition != "" {
		log = log.With("partition", sr.Partition)
	}
	if err != nil {
		log.Error("stream failed", "error", err, "inserted", sr.Inserted, "updated", sr.Updated)
	} else {
		log.Info("stream done", "inserted", sr.Inserted, "updated", sr.Updated, "deleted", sr.Deleted, "pages", sr.Pages,
			"requests", sr.Requests, "retries", sr.Retries, "throttled", sr.Throttled, "full_scan", sr.FullScan)
	}
	if r.cfg.Progress != nil {
		r.cfg.Progress(Event{Stream: sr.Stream, Partition: sr.Partition, Rows: sr.Inserted + sr.Updated, Pages: sr.Pages, Done: true, Err: err})
	}
	r.mu.Lock()
	r.results = append(r.results, sr)
	r.mu.Unlock()
}

// charges syncs installed locations, then each location's charges under its own budget.
func (r *run) charges(ctx context.Context) {
	if r.hl == nil {
		t := &task{sr: state.StreamRun{RunID: r.id, Stream: "charges", Started: time.Now().UTC()}}
		r.finish(t, errors.New("no highlevel source is configured"))
		return
	}
	var ids []string
	r.stream(ctx, "locations", "", func(ctx context.Context, stats *extract.Counters, emit extract.Emit) (extract.Outcome, error) {
		var out extract.Outcome
		var err error
		ids, out, err = r.hl.Locations(ctx, stats, emit)
		return out, err
	})
	if len(ids) == 0 {
		return
	}
	g := new(errgroup.Group)
	g.SetLimit(r.cfg.Concurrency)
	for _, id := range ids {
		g.Go(func() error { r.stream(ctx, "charges", id); return nil })
	}
	_ = g.Wait()
}

type listFunc func(ctx context.Context, stats *extract.Counters, emit extract.Emit) (extract.Outcome, error)

// stream runs one stream partition: decide full or incremental, extract, batch, and commit the
// cursor (and deletions, after a complete full scan) with the last batch.
func (r *run) stream(ctx context.Context, name, partition string, override ...listFunc) {
	t := &task{sr: state.StreamRun{RunID: r.id, Stream: name, Partition: partition, Started: time.Now().UTC()}}
	table, err := schemas.Lookup(name)
	if err != nil {
		r.finish(t, err)
		return
	}
	cur, synced, err := r.readCursor(ctx, name, partition)
	if err != nil {
		r.finish(t, err)
		return
	}
	p := plan(planInput{HasCursor: table.Cursor != "", Found: synced, Cursor: cur, FullRefresh: r.cfg.FullRefresh,
		FullScanEvery: r.cfg.FullScanEvery, Lookback: r.cfg.Lookback[name], Now: time.Now()})
	full, resuming, since := p.Mode == Full, p.Mode == Resume, p.Since
	t.sr.FullScan = full
	r.cfg.Log.Debug("plan", "stream", name, "partition", partition, "mode", p.Mode, "since", since, "reason", p.Reason)

	list, err := r.lister(name, partition, since, override)
	if err != nil {
		r.finish(t, err)
		return
	}
	b := transform.NewBatcher(table, r.cfg.Allocator, transform.Meta{RunID: r.id, SyncedAt: r.started.UnixMicro()})
	defer b.Release()
	maxCursor := int64(0)
	if !full {
		maxCursor = cur.Value
	}
	var rejected []load.Rejected
	var lastShort bool
	send := func(final *load.Write) error {
		w := load.Write{Table: table, Stream: name, Partition: partition, RunID: r.id, Rejected: rejected}
		if rec := b.Flush(); rec != nil {
			maxCursor = max(maxCursor, maxOf(rec, table.Cursor))
			w.Batch = rec
		}
		rejected = nil
		var reply chan error
		if final == nil && table.SortedByCursor && w.Batch != nil && maxCursor > 0 {
			// A checkpoint: pages arrive in listing order, ascending by the cursor column, so
			// every row up to maxCursor is in this or an earlier (committed) batch. A crash now
			// resumes from here instead of from the start; full-scan marks are left alone.
			w.Cursor = &state.Cursor{Value: maxCursor, LastFullScan: cur.LastFullScan}
		}
		if final != nil {
			w.Cursor, w.CursorIfShort, w.Deletes = final.Cursor, final.CursorIfShort, final.Deletes
			for _, c := range []*state.Cursor{w.Cursor, w.CursorIfShort} {
				if c != nil {
					c.Value = max(c.Value, maxCursor)
				}
			}
			reply = make(chan error, 1)
		}
		if w.Batch == nil && w.Cursor == nil && len(w.Rejected) == 0 && w.Deletes == nil {
			return nil
		}
		// Hand-over: the writer owns the batch from here. The send does not select on ctx: the
		// writer drains until every stream has returned, so a queued batch still commits.
		req := writeReq{w: w, task: t, reply: reply}
		if reply != nil {
			req.short = &lastShort // written by the writer before it replies: the reply orders it
		}
		r.writes <- req
		if reply != nil {
			return <-reply
		}
		return t.failed()
	}
	sendFinal := func(final *load.Write) (short bool, err error) {
		lastShort = false
		err = send(final)
		return lastShort, err
	}
	var rows, pages, quarantined int64
	emit := func(ctx context.Context, p extract.Page) error {
		for _, rec := range p.Records {
			err := b.Add(rec)
			if errors.Is(err, transform.ErrDuplicateKey) {
				if err := send(nil); err != nil {
					return err
				}
				err = b.Add(rec)
			}
			var fe *transform.FieldError
			if errors.As(err, &fe) && r.cfg.RejectPolicy == RejectQuarantine {
				rejected = append(rejected, load.Rejected{Stream: name, RecordID: fe.RecordID, Field: fe.Field,
					Value: fe.Value, Error: fe.Err.Error(), Record: append([]byte(nil), rec...)})
				quarantined++
				continue
			}
			if err != nil {
				return err
			}
			rows++
		}
		pages++
		if r.cfg.Progress != nil {
			r.cfg.Progress(Event{Stream: name, Partition: partition, Rows: rows, Pages: pages})
		}
		if b.Len() >= r.cfg.BatchRows {
			return send(nil)
		}
		return ctx.Err()
	}
	// A full scan can miss rows when the listing changes while it is paged: a row deleted on an
	// earlier page shifts a live row across a page boundary, and a balanced insert leaves the
	// totals unchanged. Marking rows absent from such a scan as deleted would lose live data.
	// So deletions are marked only after two consecutive scans listed the same keys (equal
	// digests); the scans repeat up to maxScans times, and otherwise nothing is marked. A
	// stream's first sync has nothing to delete and needs one clean scan (no drift, not short).
	// Upserts make the repeats harmless.
	const maxScans = 4
	var prev *transform.Digest
	for attempt := 1; ; attempt++ {
		quarantined = 0
		b.ResetDigest()
		scanID := r.id
		if attempt > 1 {
			scanID = fmt.Sprintf("%s.%d", r.id, attempt)
			if err := send(nil); err != nil { // rows of the previous scan keep its id
				r.finish(t, err)
				return
			}
		}
		b.SetRunID(scanID)
		out, err := list(ctx, &t.stats, emit)
		t.sr.Pages += int64(out.Pages)
		if err != nil {
			// Rows fetched so far are good data: commit them, but never the cursor.
			if serr := send(nil); serr != nil {
				err = errors.Join(err, serr)
			}
			r.finish(t, err)
			return
		}
		digest := b.Digest()
		verified := !synced || (prev != nil && *prev == digest)
		if full && (out.Drift || !verified) && attempt < maxScans {
			if out.Drift {
				r.cfg.Log.Info("listing changed while paging; scanning again", "stream", name, "partition", partition)
			}
			prev = &digest
			continue
		}
		next := state.Cursor{Value: maxCursor, LastFullScan: cur.LastFullScan}
		if resuming && !full {
			next.LastFullScan = r.started // the interrupted first load is now complete
		}
		final := &load.Write{Cursor: &next}
		if full && out.Complete && verified {
			shortCur := next
			final.CursorIfShort = &shortCur
			next.LastFullScan = time.Now().UTC()
			expect := out.Total
			if expect > 0 {
				expect -= int(quarantined) // quarantined records are listed but not loaded
			}
			final.Deletes = &load.DeleteScope{RunID: scanID, At: r.started, ExpectRows: expect}
			if table.Partition != "" {
				final.Deletes.PartitionCol, final.Deletes.PartitionValue = table.Partition, partition
			}
		} else if full {
			r.cfg.Log.Warn("listing kept changing while paging; deletions are not marked this run", "stream", name, "partition", partition)
		}
		short, err := sendFinal(final)
		if err != nil || !short || attempt >= maxScans {
			if short {
				r.cfg.Log.Warn("full scan kept missing rows that moved while paging; deletions are not marked this run", "stream", name, "partition", partition)
			}
			r.finish(t, err)
			return
		}
		prev = nil
		r.cfg.Log.Info("full scan missed rows that moved while paging; scanning again", "stream", name, "partition", partition)
	}
}

func (r *run) readCursor(_ context.Context, name, partition string) (state.Cursor, bool, error) {
	c, ok := r.cursors[name+"\x00"+partition]
	return c, ok, nil
}

func (r *run) lister(name, partition string, since time.Time, override []listFunc) (listFunc, error) {
	if len(override) > 0 {
		return override[0], nil
	}
	if name == "charges" {
		return func(ctx context.Context, st *extract.Counters, emit extract.Emit) (extract.Outcome, error) {
			return r.hl.Charges(ctx, partition, since, st, emit)
		}, nil
	}
	if r.ad == nil {
		return nil, errors.New("no appdirect source is configured")
	}
	switch name {
	case "companies":
		return func(ctx context.Context, st *extract.Counters, emit extract.Emit) (extract.Outcome, error) {
			return r.ad.Companies(ctx, st, emit)
		}, nil
	case "users":
		return func(ctx context.Context, st *extract.Counters, emit extract.Emit) (extract.Outcome, error) {
			return r.ad.Users(ctx, since, st, emit)
		}, nil
	case "invoices":
		return func(ctx context.Context, st *extract.Counters, emit extract.Emit) (extract.Outcome, error) {
			return r.ad.Invoices(ctx, since, st, emit)
		}, nil
	case "leads":
		return func(ctx context.Context, st *extract.Counters, emit extract.Emit) (extract.Outcome, error) {
			return r.ad.Leads(ctx, since, st, emit)
		}, nil
	case "opportunities":
		return func(ctx context.Context, st *extract.Counters, emit extract.Emit) (extract.Outcome, error) {
			return r.ad.Opportunities(ctx, since, st, emit)
		}, nil
	}
	return nil, fmt.Errorf("unknown stream %q", name)
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
