package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/config"
	"github.com/marketsync/marketsync/extract"
	"github.com/marketsync/marketsync/lake"
	"github.com/marketsync/marketsync/lake/shard"
	"github.com/marketsync/marketsync/pipeline"
	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/state"
)

// The embedded demo: the simulator's realistic profile (documented rate limits), sped up so the
// default run finishes in seconds while still pacing requests like the real APIs.
const (
	demoSpeed = 25
	demoScale = 2000
)

func runSync(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sync", "sync [--config FILE] [flags]", stdout)
	cfgPath := fs.String("config", "", "YAML config `file`; without it, sync from the embedded simulator")
	streams := fs.String("streams", "", "comma-separated streams to sync (default all: "+strings.Join(schemas.Streams, ",")+")")
	full := fs.Bool("full-refresh", false, "ignore cursors: full scans of every stream (also detects deletions)")
	warehouse := fs.String("warehouse", "", "DuckDB warehouse `path` (default "+config.DefaultWarehouse+"; the demo: "+demoWarehouse+")")
	parquetDir := fs.String("parquet-dir", "", "Parquet output `dir` (default "+config.DefaultParquetDir+"; the demo: "+demoParquetDir+"; \"-\" for none)")
	conc := fs.Int("concurrency", 0, "streams and locations synced in parallel (default 6)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	reject := fs.String("reject-policy", "", "values that do not fit their column: fail (the stream) or quarantine (into _rejected)")
	progress := fs.String("progress", "auto", "live progress: auto (on a terminal), always, never")
	simScale := fs.Int("sim-scale", demoScale, "embedded simulator: rows per stream")
	simSeed := fs.Int64("sim-seed", 42, "embedded simulator: data seed")
	simAddr := fs.String("sim-addr", "127.0.0.1:0", "embedded simulator: listen `address` (default any free loopback port)")
	simStart := fs.String("sim-start", "now", "embedded simulator: its clock's `time` (RFC 3339, or now: data dated up to today)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to `file` (for go tool pprof)")
	shardFlag := fs.String("shard", "", "take shard `I/N` of the work (streams and HighLevel locations), e.g. $JOB_COMPLETION_INDEX/4")
	summaryJSON := fs.String("summary-json", "", "write the run's summary as JSON to `file` (\"-\": stdout)")
	summaryMode := fs.String("summary", "auto", "the human summary table on stdout: auto (when stdout is a terminal), always, never")
	metricsFile := fs.String("metrics-file", "", "write the run's metrics in the Prometheus text format to `file` (node_exporter textfile collector)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	// Logs and the live status line share stderr: each log line clears the status line first
	// and redraws it after, so they never glue together.
	sw := &statusWriter{w: stderr}
	log, err := newLogger(sw, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	pc := pipeline.Config{Log: log, FullRefresh: *full, Concurrency: *conc}
	var file *config.File
	if *cfgPath != "" {
		if file, err = config.Load(*cfgPath); err != nil {
			return err
		}
	} else {
		start, err := parseSimStart(*simStart)
		if err != nil {
			return err
		}
		sim, err := apisim.New(apisim.Config{Seed: *simSeed, Scale: *simScale, Profile: "realistic", Speed: demoSpeed, Start: start})
		if err != nil {
			return usagef("%v", err)
		}
		if err := sim.Start(*simAddr); err != nil {
			return err
		}
		defer sim.Close()
		file = demoConfig(sim)
		demo := "the embedded simulator (demo data)"
		pc.SourceIdentity = map[string]string{"appdirect": demo, "highlevel": demo}
		log.Info("no --config: syncing from the embedded API simulator", "url", sim.URL(), "rows_per_stream", *simScale)
	}
	applyFile(&pc, file)
	if file.Lake != nil {
		lw, err := lake.Open(ctx, lake.FromConfig(file.Lake))
		if err != nil {
			return fmt.Errorf("opening the lake destination: %w", err)
		}
		defer lw.Close()
		pc.Lake = lw
	}
	if *warehouse != "" {
		pc.Warehouse = *warehouse
	}
	switch *parquetDir {
	case "":
	case "-":
		pc.ParquetDir = ""
	default:
		pc.ParquetDir = *parquetDir
	}
	if *streams != "" {
		pc.Streams = nil
		for _, s := range strings.Split(*streams, ",") {
			s = strings.TrimSpace(s)
			if _, err := schemas.Lookup(s); err != nil || s == "locations" {
				return usagef("--streams: unknown stream %q (streams: %s)", s, strings.Join(schemas.Streams, ", "))
			}
			pc.Streams = append(pc.Streams, s)
		}
	}
	if *reject != "" {
		if *reject != pipeline.RejectFail && *reject != pipeline.RejectQuarantine {
			return usagef("--reject-policy %q: want fail or quarantine", *reject)
		}
		pc.RejectPolicy = *reject
	}
	if *shardFlag != "" {
		sp, err := shard.Parse(*shardFlag)
		if err != nil {
			return usagef("--shard: %v", err)
		}
		pc.Shard = &sp
	}
	if *summaryMode != "auto" && *summaryMode != "always" && *summaryMode != "never" {
		return usagef("--summary %q: want auto, always or never", *summaryMode)
	}
	table := *summaryMode == "always" || (*summaryMode == "auto" && isTerminal(stdout) && *summaryJSON != "-")
	live := *progress == "always" || (*progress == "auto" && isTerminal(stderr))
	if *progress != "auto" && *progress != "always" && *progress != "never" {
		return usagef("--progress %q: want auto, always or never", *progress)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	pr := newProgressReporter(sw, log, live)
	pc.Progress = pr.event
	stopProgress := pr.run(ctx)
	sum, err := pipeline.Run(ctx, pc)
	stopProgress()
	if sum.Ended.IsZero() {
		sum.Ended = time.Now().UTC()
	}
	rep := newRunReport(sum, pc.Warehouse, err, ctx.Err() != nil)
	logRunFinished(log, rep)
	if lw, ok := pc.Lake.(*lake.Writer); ok {
		// Lost optimistic-concurrency races (re-applied): how contended the lake's tables are.
		log.Info("lake commits", "snapshots", lw.Commits(), "conflicts", lw.Conflicts())
	}
	if *summaryJSON != "" {
		if werr := writeSummaryJSON(*summaryJSON, rep, stdout); werr != nil {
			return werr
		}
	}
	if *metricsFile != "" {
		if werr := writeMetricsFile(*metricsFile, rep); werr != nil {
			return werr
		}
	}
	if table && len(sum.Streams) > 0 {
		printSummary(stdout, sum)
		fmt.Fprintf(stdout, "\nwarehouse: %s", pc.Warehouse)
		if pc.ParquetDir != "" {
			fmt.Fprintf(stdout, "   parquet: %s", pc.ParquetDir)
		}
		fmt.Fprintln(stdout)
	}
	if ctx.Err() != nil && err != nil {
		return fmt.Errorf("interrupted: committed batches are kept; the next run resumes from the saved cursors: %w", err)
	}
	if errors.Is(err, pipeline.ErrStreamsFailed) {
		return err
	}
	return err
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// demoConfig points both sources at the embedded simulator with its demo credentials.
func demoConfig(sim *apisim.Server) *config.File {
	f := &config.File{Sources: config.Sources{
		AppDirect: &config.AppDirect{BaseURL: sim.URL(), ClientID: apisim.DemoClientID, ClientSecret: apisim.DemoClientSecret,
			LeadUsername: apisim.DemoLeadUser, LeadPassword: apisim.DemoLeadPassword, LeadCompanyID: "6b4bd452-895d-4098-aa56-e6046b238e0f",
			RatePerSecond: 4 * demoSpeed, CompaniesRate: 5 * demoSpeed},
		HighLevel: &config.HighLevel{BaseURL: sim.URL(), ClientID: apisim.DemoHLClientID, ClientSecret: apisim.DemoHLClientSecret,
			CompanyID: apisim.DemoHLCompanyID, AppID: apisim.DemoHLAppID, Interval: 10 * time.Second / demoSpeed},
	}}
	f.Warehouse, f.ParquetDir = demoWarehouse, demoParquetDir
	f.SetDefaults()
	return f
}

// applyFile maps the config file onto the pipeline's config.
func applyFile(pc *pipeline.Config, f *config.File) {
	pc.Warehouse, pc.ParquetDir = f.Warehouse, f.ParquetDir
	pc.Streams = f.Streams
	if f.Concurrency > 0 && pc.Concurrency == 0 {
		pc.Concurrency = f.Concurrency
	}
	pc.BatchRows, pc.RejectPolicy, pc.FullScanEvery, pc.Lookback = f.BatchRows, f.RejectPolicy, f.FullScanEvery, f.Lookback
	if ad := f.Sources.AppDirect; ad != nil {
		pc.AppDirect = &extract.AppDirectConfig{BaseURL: strings.TrimRight(ad.BaseURL, "/"), ClientID: ad.ClientID, ClientSecret: ad.ClientSecret,
			LeadUsername: ad.LeadUsername, LeadPassword: ad.LeadPassword, LeadCompanyID: ad.LeadCompanyID, LeadContext: ad.LeadContext,
			PageSize: ad.PageSize, RatePerSecond: ad.RatePerSecond, CompaniesRate: ad.CompaniesRate}
	}
	if hl := f.Sources.HighLevel; hl != nil {
		pc.HighLevel = &extract.HighLevelConfig{BaseURL: strings.TrimRight(hl.BaseURL, "/"), ClientID: hl.ClientID, ClientSecret: hl.ClientSecret,
			CompanyID: hl.CompanyID, AppID: hl.AppID, PageSize: hl.PageSize, Burst: hl.Burst, Interval: hl.Interval, DailyFloor: hl.DailyFloor}
	}
}

// progressReporter shows live progress: a status line on a terminal, periodic log lines off one.
type progressReporter struct {
	w     *statusWriter
	log   *slog.Logger
	live  bool
	mu    sync.Mutex
	rows  map[string]int64
	pages map[string]int64
	done  map[string]bool
	start time.Time
}

func newProgressReporter(w *statusWriter, log *slog.Logger, live bool) *progressReporter {
	return &progressReporter{w: w, log: log, live: live, rows: map[string]int64{}, pages: map[string]int64{}, done: map[string]bool{}, start: time.Now()}
}

func (p *progressReporter) event(e pipeline.Event) {
	key := e.Stream
	if e.Partition != "" {
		key += "/" + e.Partition
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !e.Done {
		p.rows[key], p.pages[key] = e.Rows, e.Pages
	}
	p.done[key] = e.Done
}

func (p *progressReporter) line() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	per := map[string]int64{}
	var total int64
	for k, v := range p.rows {
		s, _, _ := strings.Cut(k, "/")
		per[s] += v
		total += v
	}
	names := make([]string, 0, len(per))
	for k := range per {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %d", n, per[n]))
	}
	el := time.Since(p.start).Seconds()
	return fmt.Sprintf("%s | %d rows, %.0f rows/s, %.0fs", strings.Join(parts, " · "), total, float64(total)/max(el, 0.001), el)
}

func (p *progressReporter) run(ctx context.Context) (stop func()) {
	interval := 10 * time.Second
	if p.live {
		interval = 200 * time.Millisecond
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				if p.live {
					p.w.finish(p.line())
				}
				return
			case <-ctx.Done():
				// keep reporting until the run returns: the writer is still committing
				select {
				case <-done:
					return
				case <-t.C:
				}
			case <-t.C:
				if p.live {
					p.w.status(p.line())
				} else {
					p.log.Info("progress", "status", p.line())
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func printSummary(w io.Writer, sum pipeline.Summary) {
	type agg struct {
		state.StreamRun
		parts, failed int
	}
	byStream := map[string]*agg{}
	var order []string
	for _, r := range sum.Streams {
		a := byStream[r.Stream]
		if a == nil {
			a = &agg{StreamRun: state.StreamRun{Stream: r.Stream, Status: "succeeded"}}
			byStream[r.Stream] = a
			order = append(order, r.Stream)
		}
		a.parts++
		a.Inserted += r.Inserted
		a.Updated += r.Updated
		a.Unchanged += r.Unchanged
		a.Deleted += r.Deleted
		a.Rejected += r.Rejected
		a.Rounded += r.Rounded
		a.Stale += r.Stale
		a.Pages += r.Pages
		a.Requests += r.Requests
		a.Retries += r.Retries
		a.Throttled += r.Throttled
		a.FullScan = a.FullScan || r.FullScan
		if r.Status != "succeeded" {
			a.failed++
			a.Status = r.Status
			if a.Error == "" {
				a.Error = r.Error
			}
		}
	}
	sort.Strings(order)
	fmt.Fprintf(w, "\nrun %s finished in %s\n\n", sum.RunID, sum.Ended.Sub(sum.Started).Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	// rounded and stale are rare: their columns appear only when a stream has some.
	var valueNotes bool
	for _, a := range byStream {
		valueNotes = valueNotes || a.Rounded > 0 || a.Stale > 0
	}
	head := "stream\tstatus\tmode\tinserted\tupdated\tunchanged\tdeleted\trejected\t"
	if valueNotes {
		head += "rounded\tstale\t"
	}
	fmt.Fprintln(tw, head+"requests\tretries\t429s\t")
	for _, n := range order {
		a := byStream[n]
		mode := "incremental"
		if a.FullScan {
			mode = "full"
		}
		name := a.Stream
		if a.parts > 1 {
			name = fmt.Sprintf("%s (%d parts)", a.Stream, a.parts)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t", name, a.Status, mode, a.Inserted, a.Updated, a.Unchanged, a.Deleted, a.Rejected)
		if valueNotes {
			fmt.Fprintf(tw, "%d\t%d\t", a.Rounded, a.Stale)
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t\n", a.Requests, a.Retries, a.Throttled)
	}
	tw.Flush()
	for _, r := range sum.Streams {
		if r.Note != "" {
			name := r.Stream
			if r.Partition != "" {
				name += " " + r.Partition
			}
			fmt.Fprintf(w, "\n%s: %s\n", name, r.Note)
		}
	}
	for _, n := range order {
		if a := byStream[n]; a.Stale > 0 {
			fmt.Fprintf(w, "\n%s: %d rows kept their previous version because the new one was quarantined (see _rejected; the rows have _stale_since set)\n", a.Stream, a.Stale)
		}
	}
	for _, n := range order {
		if a := byStream[n]; a.Error != "" {
			fmt.Fprintf(w, "\n%s failed: %s\n", a.Stream, a.Error)
		}
	}
}

// parseSimStart reads a simulator clock start: "now" is today's start (UTC) on the wall clock,
// so demo invoices age into every bucket of the shipped views and every run of the day sees
// the same data; anything else is RFC 3339.
func parseSimStart(v string) (time.Time, error) {
	if v == "now" || v == "" {
		return time.Now().UTC().Truncate(24 * time.Hour), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, usagef("--sim-start %q: want now or an RFC 3339 time such as 2026-06-01T00:00:00Z", v)
	}
	return t.UTC(), nil
}

// statusWriter serializes log lines and the live status line on one terminal.
type statusWriter struct {
	mu   sync.Mutex
	w    io.Writer
	line string // the status line on screen, "" if none
}

// Write writes log output above the status line.
func (s *statusWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.line != "" {
		fmt.Fprint(s.w, "\r\033[K")
	}
	n, err := s.w.Write(b)
	if s.line != "" {
		fmt.Fprint(s.w, s.line)
	}
	return n, err
}

// status replaces the status line.
func (s *statusWriter) status(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, "\r\033[K%s", line)
	s.line = line
}

// finish leaves the last status line on screen and ends it.
func (s *statusWriter) finish(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, "\r\033[K%s\n", line)
	s.line = ""
}
