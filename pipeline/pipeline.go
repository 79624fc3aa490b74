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
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/sync/errgroup"

	"github.com/marketsync/marketsync/extract"
	"github.com/marketsync/marketsync/lake/shard"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/queries"
	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
)

// DefaultDuckDBMemoryLimit is a sync's DuckDB buffer pool. With 256MB a sync of 1M users peaked
// at 482 MB RSS against 380 MB with 128MB, and was no faster (issue 16): the pool mostly caches
// the table's blocks, which the page cache holds anyway.
const DefaultDuckDBMemoryLimit = "128MB"

// DefaultInFlightBytes is Config.InFlightBytes's default: with no bound, a sync of every
// stream held up to ~260 MB of batches (six streams building 25,000-row batches of 10-20 MB
// each, more queued for the writer), above the Go heap's soft limit, and the collector ran
// without pause (issue 16).
const DefaultInFlightBytes = 48 << 20

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
	// Lake, if set, receives every committed write too (an Apache Iceberg destination), in the
	// same order and before DuckDB, with the cursor in the same snapshot.
	Lake Lake
	// Shard, if set, takes a deterministic share of the work: the unpartitioned streams and the
	// partitions (HighLevel locations) it owns, so N processes with shards 0..N-1 of N cover
	// everything exactly once (each into its own warehouse, or a shared lake).
	Shard *shard.Spec
	// SourceIdentity names, per source ("appdirect", "highlevel"), the account or server its
	// data comes from; default: the base URL (and HighLevel company and app). A warehouse
	// refuses data of a source from another identity than it holds.
	SourceIdentity map[string]string
	// DuckDBMemoryLimit caps DuckDB's buffer pool (default DefaultDuckDBMemoryLimit): the
	// warehouse lives on disk, so a larger cache only grows the process with the data synced.
	DuckDBMemoryLimit string
	// InFlightBytes bounds the records held in batches not yet committed, summed over every
	// stream and tenant of the run, in bytes of their JSON (default DefaultInFlightBytes; an
	// Arrow batch takes about 1.2 times its records' JSON). A stream that would pass it sends
	// the rows it holds as a smaller batch and waits for the writer to commit.
	InFlightBytes int64

	// Tenants, if set, are the tenants to sync, each with its own sources (so its own budgets),
	// cursors, source claims and tenant column value; AppDirect, HighLevel and SourceIdentity
	// are then unused. Empty: one tenant, schemas.DefaultTenant, of AppDirect and HighLevel.
	Tenants []Tenant

	parquetWritten func(table string) // tests: called after each table's Parquet files are written
}

// Tenant is one tenant of a run: an AppDirect marketplace and/or a HighLevel agency.
type Tenant struct {
	Name           string // schemas.DefaultTenant, or a config's tenants[].name
	AppDirect      *extract.AppDirectConfig
	HighLevel      *extract.HighLevelConfig
	SourceIdentity map[string]string // as Config.SourceIdentity
}

// tenants returns the run's tenants: Tenants, or the default tenant of AppDirect and HighLevel.
func (c *Config) tenants() []Tenant {
	if len(c.Tenants) > 0 {
		return c.Tenants
	}
	return []Tenant{{Name: schemas.DefaultTenant, AppDirect: c.AppDirect, HighLevel: c.HighLevel, SourceIdentity: c.SourceIdentity}}
}

// DefaultLookback is how far before the cursor an incremental run re-reads, per stream, as each
// table declares it: an overlap for clock skew and equal timestamps, and for streams the API
// filters by creation only, the window in which records still change.
var DefaultLookback = func() map[string]time.Duration {
	m := map[string]time.Duration{}
	for _, t := range schemas.Tables {
		if t.Lookback > 0 {
			m[t.Name] = t.Lookback
		}
	}
	return m
}()

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if len(c.Streams) == 0 {
		c.Streams = append([]string{}, schemas.Streams...)
	}
	if c.BatchRows == 0 {
		c.BatchRows = 25_000
	}
	if c.InFlightBytes == 0 {
		c.InFlightBytes = DefaultInFlightBytes
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
		c.DuckDBMemoryLimit = DefaultDuckDBMemoryLimit
	}
}

// identities returns the identity of every configured source.
func (c *Config) identities() map[string]string {
	out := map[string]string{}
	if ad := c.AppDirect; ad != nil {
		// The marketplace family keeps the bare base URL (what warehouses already record). A
		// reseller's view is a subset of the marketplace's (its companies, users, opportunities),
		// so a warehouse filled through one family refuses the other, even on the same
		// marketplace: a full scan through the narrower view would soft-delete what only the
		// wider one lists. Two reseller views are the same source only with the same context and
		// the same reseller company.
		out["appdirect"] = strings.TrimRight(ad.BaseURL, "/")
		if ad.API == extract.APIReseller {
			ctx := ad.ResellerContext
			if ctx == "" {
				ctx = "RESELLER_MANAGER"
			}
			out["appdirect"] = fmt.Sprintf("AppReseller API (context %s, reseller company %s) at %s", ctx, ad.LeadCompanyID, strings.TrimRight(ad.BaseURL, "/"))
		}
	}
	if c.HighLevel != nil {
		out["highlevel"] = fmt.Sprintf("company %s, app %s at %s", c.HighLevel.CompanyID, c.HighLevel.AppID, strings.TrimRight(c.HighLevel.BaseURL, "/"))
	}
	for k, v := range c.SourceIdentity {
		if _, ok := out[k]; ok {
			out[k] = v
		}
	}
	return out
}

// Event reports progress of one stream partition.
type Event struct {
	Tenant            string // schemas.DefaultTenant without a tenants list
	Stream, Partition string
	Rows, Pages       int64
	// Listed and Total are the current listing's rows so far and the server's total for it
	// (0: not given), for an ETA; Waited is the time spent waiting on rate budgets so far.
	Listed, Total int64
	Waited        time.Duration
	Done          bool
	Err           error
}

// Summary is what a run did.
type Summary struct {
	RunID   string
	Started time.Time
	Ended   time.Time
	Streams []state.StreamRun
	// ParquetPartitions is how many Parquet partition files the run rewrote (only changed ones).
	ParquetPartitions int
	// LastSuccess is, per stream partition the warehouse has a history of, when it last
	// succeeded (this run included), read from _sync_runs after the run was recorded. nil when
	// the run stopped before it could read the warehouse (empty: no success yet).
	LastSuccess []state.LastSuccess
}

// Failed returns the stream runs that failed.
func (s Summary) Failed() []state.StreamRun {
	var out []state.StreamRun
	for _, r := range s.Streams {
		if r.Status != "succeeded" && r.Status != "skipped" && r.Status != "deferred" {
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
	commits chan commitReq
	client  *extract.Client
	ad      *extract.AppDirect
	hl      *extract.HighLevel
	auth    *extract.Counters
	cursors map[string]state.Cursor // this tenant's, by stream + "\x00" + partition
	// tenant is whose streams this run syncs: Run makes one run per tenant, sharing the
	// warehouse, the committer, the HTTP client and the outcomes; each has its own extractors
	// (so its own budgets), cursors and config sources.
	tenant string
	out    *outcomes
	// inflight is the budget of record bytes in batches not yet committed
	// (Config.InFlightBytes), shared by every stream and tenant of the run.
	inflight *inflight
}

// outcomes collects the stream runs of every tenant.
type outcomes struct {
	mu      sync.Mutex
	results []state.StreamRun
}

func (o *outcomes) add(sr state.StreamRun) {
	o.mu.Lock()
	o.results = append(o.results, sr)
	o.mu.Unlock()
}

// task is one stream partition's run; the committer adds what each write changed.
type task struct {
	mu     sync.Mutex
	sr     state.StreamRun
	err    error // first write error
	stats  extract.Counters
	cursor *state.Cursor // the last cursor committed for the task, if any
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

func (t *task) add(res load.Result) {
	t.mu.Lock()
	t.sr.Inserted += res.Inserted
	t.sr.Updated += res.Updated
	t.sr.Unchanged += res.Unchanged
	t.sr.Deleted += res.Deleted
	t.sr.Rejected += res.Rejected
	t.sr.Stale += res.Stale
	t.mu.Unlock()
}

// cursorCommitted records a cursor the committer wrote for the task.
func (t *task) cursorCommitted(c state.Cursor) {
	t.mu.Lock()
	t.cursor = &c
	t.mu.Unlock()
}

func (t *task) cursorAt() *state.Cursor {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cursor
}

// committedSoFar says what a stream that did not finish kept, for its error line.
func committedSoFar(sr state.StreamRun, cur *state.Cursor) string {
	s := fmt.Sprintf("committed: %d inserted, %d updated", sr.Inserted, sr.Updated)
	if cur == nil {
		return s + "; the cursor did not move (the next run starts where this one did)"
	}
	if cur.Value == 0 {
		return s + "; the cursor was written without a position"
	}
	return s + "; the cursor moved to " + cur.Time().Format(time.RFC3339) + " (the next run resumes there)"
}

func (t *task) inserted() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sr.Inserted
}

// note records a guarantee the run could not give ("" is ignored).
func (t *task) note(s string) {
	if s == "" {
		return
	}
	t.mu.Lock()
	if t.sr.Note != "" {
		t.sr.Note += "; "
	}
	t.sr.Note += s
	t.mu.Unlock()
}

// Run performs one sync. It returns the summary and, if any stream failed, an error wrapping
// ErrStreamsFailed (the streams that succeeded are committed). Errors before any stream starts
// (warehouse locked, schema incompatible) are returned as is.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	cfg.SetDefaults()
	started := time.Now().UTC()
	r := &run{cfg: cfg, id: newRunID(started), started: started, auth: &extract.Counters{}, out: &outcomes{}}
	sum := Summary{RunID: r.id, Started: started}
	tenants := cfg.tenants()
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
	r.client = extract.NewClient(cfg.Log, cfg.Retry, cfg.HTTPTimeout)
	defer r.client.CloseIdle()
	r.commits = make(chan commitReq, 2)
	r.inflight = newInflight(cfg.InFlightBytes)
	var runs []*run
	for _, tn := range tenants {
		tr := &run{cfg: cfg, id: r.id, started: started, db: db, commits: r.commits, inflight: r.inflight, client: r.client, auth: &extract.Counters{}, tenant: tn.Name, out: r.out}
		tr.cfg.AppDirect, tr.cfg.HighLevel, tr.cfg.SourceIdentity = tn.AppDirect, tn.HighLevel, tn.SourceIdentity
		if tn.Name != schemas.DefaultTenant {
			tr.cfg.Log = cfg.Log.With("tenant", tn.Name)
		}
		if err := db.ClaimTenantSources(ctx, tn.Name, tr.cfg.identities()); err != nil {
			return sum, err
		}
		// Cursors are read once, before the writer starts: a read on the writer's connection in
		// the middle of its transaction would see uncommitted state.
		if tr.cursors, err = db.TenantCursors(ctx, tn.Name); err != nil {
			return sum, err
		}
		if cfg.Lake != nil {
			if err := tr.cursorsFromLake(ctx, tables); err != nil {
				return sum, err
			}
		}
		if tn.AppDirect != nil {
			tr.ad = extract.NewAppDirect(r.client, *tn.AppDirect, tr.auth)
		}
		if tn.HighLevel != nil {
			tr.hl = extract.NewHighLevel(r.client, *tn.HighLevel, tr.auth)
		}
		runs = append(runs, tr)
	}

	// The committer outlives cancellation: on SIGINT fetching stops, and what is queued commits.
	committerDone := make(chan struct{})
	go func() {
		defer close(committerDone)
		r.committer(context.WithoutCancel(ctx))
	}()

	g := new(errgroup.Group) // no shared cancel: one stream failing must not stop the others
	g.SetLimit(cfg.Concurrency)
	for _, name := range cfg.Streams {
		t, _ := schemas.Lookup(name) // r.tables checked every name
		// Tenants interleaved: each draws on its own budgets.
		for _, tr := range runs {
			g.Go(func() error { tr.syncStream(ctx, t); return nil })
		}
	}
	_ = g.Wait()
	close(r.commits)
	<-committerDone

	if cfg.Log.Enabled(ctx, slog.LevelDebug) {
		db.LogMemory(ctx, cfg.Log)
	}
	sum.Streams = r.out.results
	// Parquet is derived from committed data; an interrupted run skips it to exit quickly (the
	// previous snapshot stays intact and the next run writes a new one). A stream run ends when
	// its table's files are written, so the history's times and durations include them.
	var parquetErr error
	if cfg.ParquetDir != "" && ctx.Err() == nil {
		parquetErr = r.exportParquet(ctx, tables, sum.Streams)
		sum.ParquetPartitions = db.ParquetPartitionsWritten
	}
	// The history is recorded even when Parquet failed: the streams' rows and cursors are in.
	if err := db.RecordRuns(context.WithoutCancel(ctx), sum.Streams); err != nil {
		sum.Ended = time.Now().UTC()
		return sum, errors.Join(parquetErr, err)
	}
	sum.LastSuccess, err = db.LastSuccesses(context.WithoutCancel(ctx))
	sum.Ended = time.Now().UTC()
	if err != nil || parquetErr != nil {
		return sum, errors.Join(parquetErr, err)
	}
	if failed := sum.Failed(); len(failed) > 0 {
		first := failed[0].Stream
		if failed[0].Tenant != schemas.DefaultTenant {
			first = "tenant " + failed[0].Tenant + " " + first
		}
		return sum, fmt.Errorf("%w: %d of %d stream runs (first: %s: %s)", ErrStreamsFailed, len(failed), len(sum.Streams), first, failed[0].Error)
	}
	return sum, nil
}

// exportParquet writes the Parquet files of the run's tables, one table at a time, and ends
// each stream run (skipped ones aside) when its table's files are written: its rows are not
// delivered before. On a failure, the stream runs not yet written end then.
func (r *run) exportParquet(ctx context.Context, tables []*schemas.Table, runs []state.StreamRun) error {
	written := map[string]time.Time{}
	var err error
	for _, t := range tables {
		if _, ok := written[t.Name]; ok {
			continue
		}
		if err = r.db.ExportParquet(ctx, r.cfg.ParquetDir, []*schemas.Table{t}, &r.started); err != nil {
			err = fmt.Errorf("writing parquet: %w", err)
			break
		}
		if r.cfg.parquetWritten != nil {
			r.cfg.parquetWritten(t.Name)
		}
		written[t.Name] = time.Now().UTC()
	}
	now := time.Now().UTC()
	for i := range runs {
		if runs[i].Status == "skipped" {
			continue
		}
		if at, ok := written[runs[i].Stream]; ok {
			runs[i].Ended = at
		} else {
			runs[i].Ended = now
		}
	}
	return err
}

func (r *run) tables() ([]*schemas.Table, error) {
	var out []*schemas.Table
	for _, name := range r.cfg.Streams {
		t, err := schemas.Lookup(name)
		if err != nil {
			return nil, err
		}
		if t.PartitionedBy != "" {
			parent, err := schemas.Lookup(t.PartitionedBy)
			if err != nil {
				return nil, err
			}
			out = append(out, parent)
		}
		out = append(out, t)
	}
	return out, nil
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
	sr.Waited = time.Duration(t.stats.Waited.Load())
	var daily *extract.DailyBudgetError
	switch {
	case err == nil:
		sr.Status = "succeeded"
	case errors.As(err, &daily):
		// Not a failure: the budget is spent for today, the committed rows and cursor stand,
		// and the next run after ResumesAt continues from there.
		sr.Status, sr.ResumesAt = "deferred", daily.ResumesAt.UTC()
		note := daily.Error() + "; " + committedSoFar(sr, t.cursorAt())
		if sr.Note != "" {
			note = sr.Note + "; " + note
		}
		sr.Note = note
		err = nil
	case errors.Is(err, context.Canceled):
		sr.Status, sr.Error = "cancelled", "cancelled before completion; "+committedSoFar(sr, t.cursorAt())
	default:
		sr.Status, sr.Error = "failed", err.Error()
		if sr.Inserted+sr.Updated > 0 || t.cursorAt() != nil {
			sr.Error += " (" + committedSoFar(sr, t.cursorAt()) + ")"
		}
	}
	sr.Ended = time.Now().UTC()
	log := r.cfg.Log.With("stream", sr.Stream)
	if sr.Partition != "" {
		log = log.With("partition", sr.Partition)
	}
	switch {
	case sr.Status == "cancelled":
		// Not a fault: the run was asked to stop (SIGINT, SIGTERM). What the stream kept and
		// where the next run starts is the news.
		cursor, moved := "", false
		if c := t.cursorAt(); c != nil && c.Value != 0 {
			cursor, moved = c.Time().Format(time.RFC3339Nano), true
		}
		log.Warn("stream stopped", "committed", committedSoFar(sr, t.cursorAt()), "inserted", sr.Inserted, "updated", sr.Updated,
			"unchanged", sr.Unchanged, "deleted", sr.Deleted, "pages", sr.Pages, "requests", sr.Requests, "retries", sr.Retries,
			"cursor_moved", moved, "cursor", cursor)
	case err != nil:
		log.Error("stream failed", "error", err, "inserted", sr.Inserted, "updated", sr.Updated)
	case sr.Status == "deferred":
		log.Warn("stream deferred: its daily request budget ran low", "resumes_at", sr.ResumesAt, "inserted", sr.Inserted,
			"updated", sr.Updated, "requests", sr.Requests)
	default:
		log.Info("stream done", "inserted", sr.Inserted, "updated", sr.Updated, "deleted", sr.Deleted, "pages", sr.Pages,
			"requests", sr.Requests, "retries", sr.Retries, "throttled", sr.Throttled, "full_scan", sr.FullScan)
	}
	if sr.Note != "" {
		log.Warn("guarantee not given this run", "note", sr.Note)
	}
	if r.cfg.Progress != nil {
		r.cfg.Progress(Event{Tenant: sr.Tenant, Stream: sr.Stream, Partition: sr.Partition, Rows: sr.Inserted + sr.Updated, Pages: sr.Pages, Waited: sr.Waited, Done: true, Err: err})
	}
	r.out.add(sr)
}

// syncStream syncs one selected stream: a stream partitioned by another first syncs that one
// (e.g. locations), then each of its partitions concurrently, each under its own budget.
func (r *run) syncStream(ctx context.Context, t *schemas.Table) {
	if !r.configured(t) {
		where := "sources." + t.Source
		if r.tenant != schemas.DefaultTenant {
			where = fmt.Sprintf("a %s source to tenant %s", t.Source, r.tenant)
		}
		r.skip(t.Name, fmt.Sprintf("skipped: no %s source is configured (add %s to the config)", t.Source, where))
		return
	}
	if why := r.unavailable(t); why != "" {
		r.skip(t.Name, why)
		return
	}
	if t.PartitionedBy == "" {
		if r.owns(t.Name) {
			r.stream(ctx, t.Name, "", nil)
		}
		return
	}
	parent, _ := schemas.Lookup(t.PartitionedBy) // r.tables checked it
	var ids []string
	list, err := r.lister(parent, "", time.Time{}, &ids)
	if err != nil {
		r.skip(t.Name, err.Error())
		return
	}
	if r.owns(parent.Name) {
		r.stream(ctx, parent.Name, "", list)
	} else {
		// Another shard writes the parent's rows: two writers' full scans of one lake table
		// would each mark the rows the other just wrote as unseen. This one only needs its
		// partitions.
		if _, err := list(ctx, &extract.Counters{}, func(context.Context, extract.Page) error { return nil }); err != nil {
			r.skip(t.Name, fmt.Sprintf("listing %s to find this shard's partitions: %v", parent.Name, err))
			return
		}
	}
	g := new(errgroup.Group)
	g.SetLimit(r.cfg.Concurrency)
	for _, id := range ids {
		if r.owns(t.Name + "/" + id) {
			g.Go(func() error { r.stream(ctx, t.Name, id, nil); return nil })
		}
	}
	_ = g.Wait()
}

// owns reports whether this process's shard owns a unit of work (every unit when unsharded). A
// unit is a stream, or a stream partition ("charges/<location>"), of one tenant: the default
// tenant's keys are the bare unit (as before tenants existed), another tenant's are prefixed
// "<tenant>/", so each tenant's units spread over the shards independently.
func (r *run) owns(key string) bool {
	if r.tenant != "" && r.tenant != schemas.DefaultTenant {
		key = r.tenant + "/" + key
	}
	return r.cfg.Shard == nil || r.cfg.Shard.Owns(key)
}

// skip records a stream that did not run, and why.
func (r *run) skip(name, why string) {
	now := time.Now().UTC()
	r.out.add(state.StreamRun{RunID: r.id, Tenant: r.tenant, Stream: name, Started: now, Ended: now, Status: "skipped", Note: why})
	r.cfg.Log.Info("stream skipped", "stream", name, "reason", why) // a choice of the config, not a fault
}
