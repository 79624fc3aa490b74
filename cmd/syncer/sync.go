package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/config"
	"github.com/marketsync/marketsync/extract"
	"github.com/marketsync/marketsync/lake"
	"github.com/marketsync/marketsync/lake/shard"
	"github.com/marketsync/marketsync/load"
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
	streams := fs.String("streams", "", "comma-separated streams to sync (default all: "+strings.Join(schemas.Streams, ",")+"), of every tenant")
	tenantsFlag := fs.String("tenants", "", "comma-separated tenants of the config's tenants: list to sync (default all)")
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
	memProfile := fs.String("memprofile", "", "write a heap profile of the run, taken when the Go heap was largest, to `file` (for go tool pprof)")
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
	set := setFlags(fs)
	if set["concurrency"] && *conc < 1 {
		return usagef("--concurrency %d: want 1 or more (streams and locations synced in parallel; default 6)", *conc)
	}
	if set["streams"] && strings.TrimSpace(*streams) == "" {
		return usagef("--streams is empty: name at least one stream (%s), or leave the flag out to sync all", strings.Join(schemas.Streams, ","))
	}
	// Logs and the live view share stderr: while the view is shown, log lines go through it,
	// which prints them above the stream lines, never into one.
	sink := &logSink{w: stderr}
	log, err := newLogger(sink, *logFormat, *logLevel)
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
		sim, err := apisim.New(apisim.Config{Seed: *simSeed, Scale: *simScale, Profile: "realistic", Speed: demoSpeed, Start: start, LinkBase: apisim.DemoLinkBase})
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
		if pc.Streams, err = parseStreams(*streams); err != nil {
			return err
		}
	}
	if set["tenants"] {
		if err := selectTenants(&pc, file, *tenantsFlag); err != nil {
			return err
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
	if *memProfile != "" {
		p := startHeapPeakProfiler()
		defer func() {
			if err := p.writeTo(*memProfile); err != nil {
				log.Warn("writing the heap profile", "file", *memProfile, "error", err)
			}
		}()
	}
	pr := newProgressReporter(log, !live)
	pc.Progress = pr.event
	var view *liveView
	if live {
		view = newLiveView(stderr, terminalWidth(stderr), sink, !isTerminal(stderr))
		pc.Progress = func(e pipeline.Event) { pr.event(e); view.event(e) }
	}
	// While it runs, this process answers status, runs, query and export of others (holder.go).
	// A warehouse that cannot even be opened fails the run, which is still reported (summary,
	// metrics) like any other failure.
	var sum pipeline.Summary
	hold, err := startHolder(ctx, pc.Warehouse, "sync", log)
	if err == nil {
		defer hold.close()
		if len(pc.Streams) > 0 {
			hold.syncing(pc.Streams)
		} else {
			hold.syncing(schemas.Streams)
		}
		stopProgress := pr.run(ctx)
		sum, err = pipeline.Run(ctx, pc)
		stopProgress()
	} else {
		sum.Started = time.Now().UTC()
	}
	if view != nil {
		view.stop()
	}
	if sum.Ended.IsZero() {
		sum.Ended = time.Now().UTC()
	}
	// A fix by reset names the command for the warehouse and Parquet folder this run used.
	var fix *load.FixByReset
	if errors.As(err, &fix) {
		where := []string{"--config", *cfgPath}
		if *cfgPath == "" || *warehouse != "" {
			where = append(where, "--warehouse", pc.Warehouse)
		}
		if *cfgPath == "" || *parquetDir != "" {
			where = append(where, "--parquet-dir", cmp.Or(pc.ParquetDir, "-"))
		}
		if *cfgPath == "" {
			where = where[2:]
		}
		fix.Command = load.ResetCommand(fix.Streams, where...)
	}
	rep := newRunReport(sum, pc.Warehouse, err, ctx.Err() != nil)
	logRunFinished(log, rep, *logFormat)
	if lw, ok := pc.Lake.(*lake.Writer); ok {
		// Lost optimistic-concurrency races (re-applied): how contended the lake's tables are.
		log.Info("lake commits", "snapshots", lw.Commits(), "conflicts", lw.Conflicts())
		if m := lw.Migrated(); len(m) > 0 {
			log.Info("lake tables written before tenants were in the lake now have the tenant column (every row tenant default, cursors kept)", "tables", strings.Join(m, ","))
		}
	}
	if *summaryJSON != "" {
		if werr := writeSummaryJSON(*summaryJSON, rep, stdout); werr != nil {
			return werr
		}
	}
	if *metricsFile != "" {
		if werr := writeMetricsFile(*metricsFile, rep, sum.LastSuccess); werr != nil {
			return werr
		}
	}
	if table && len(sum.Streams) > 0 {
		printSummary(stdout, sum, terminalWidth(stdout))
		// Paths are printed whole (to be copied), each on its line.
		fmt.Fprintf(stdout, "\nwarehouse: %s\n", pc.Warehouse)
		if pc.ParquetDir != "" {
			fmt.Fprintf(stdout, "parquet:   %s\n", pc.ParquetDir)
		}
	}
	if ctx.Err() != nil && err != nil {
		return interruptedError(sum, err)
	}
	return err
}

// interruptedError says what a run stopped by SIGINT or SIGTERM left: how many stream runs
// stopped (their committed batches kept) and, apart, any that had failed on their own.
func interruptedError(sum pipeline.Summary, err error) error {
	if !errors.Is(err, pipeline.ErrStreamsFailed) {
		return fmt.Errorf("interrupted: committed batches are kept; the next run resumes from the saved cursors: %w", err)
	}
	stopped := 0
	var failed []state.StreamRun
	for _, s := range sum.Streams {
		switch s.Status {
		case "cancelled":
			stopped++
		case "failed":
			failed = append(failed, s)
		}
	}
	msg := fmt.Sprintf("interrupted: %d of %d stream runs stopped before completion; committed batches are kept and the next run resumes from the saved cursors",
		stopped, len(sum.Streams))
	if len(failed) > 0 {
		msg += fmt.Sprintf("; %d failed (first: %s: %s)", len(failed), failed[0].Stream, failed[0].Error)
	}
	return errors.New(msg)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// terminalWidth is w's width in columns if it is a terminal, else 80.
func terminalWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
			return cols
		}
	}
	return 80
}

// demoConfig points both sources at the embedded simulator with its demo credentials.
func demoConfig(sim *apisim.Server) *config.File {
	f := &config.File{Sources: config.Sources{
		AppDirect: &config.AppDirect{BaseURL: sim.URL(), ClientID: apisim.DemoClientID, ClientSecret: apisim.DemoClientSecret,
			LeadUsername: apisim.DemoLeadUser, LeadPassword: apisim.DemoLeadPassword, LeadCompanyID: "6b4bd452-895d-4098-aa56-e6046b238e0f",
			RatePerSecond: 4 * demoSpeed, CompaniesRate: 5 * demoSpeed},
		HighLevel: &config.HighLevel{BaseURL: sim.URL(), ClientID: apisim.DemoHLClientID, ClientSecret: apisim.DemoHLClientSecret,
			CompanyID: apisim.DemoHLCompanyID, AppID: apisim.DemoHLAppID, Interval: config.Duration(10 * time.Second / demoSpeed)},
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
	pc.BatchRows, pc.RejectPolicy, pc.FullScanEvery = f.BatchRows, f.RejectPolicy, f.FullScanEvery.Std()
	if f.Lookback != nil {
		pc.Lookback = map[string]time.Duration{}
		for k, v := range f.Lookback {
			pc.Lookback[k] = v.Std()
		}
	}
	if len(f.Tenants) == 0 {
		pc.AppDirect, pc.HighLevel = sourcesOf(f.Sources)
		return
	}
	for _, tn := range f.Tenants {
		ad, hl := sourcesOf(tn.Sources)
		pc.Tenants = append(pc.Tenants, pipeline.Tenant{Name: tn.Name, AppDirect: ad, HighLevel: hl})
	}
}

// selectTenants keeps the tenants --tenants names (in the config's order). A config without a
// tenants list has one tenant, default.
func selectTenants(pc *pipeline.Config, f *config.File, list string) error {
	var names []string
	for _, tn := range f.TenantList() {
		names = append(names, tn.Name)
	}
	want := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !slices.Contains(names, n) {
			return usagef("--tenants: no tenant %q in the config; its tenants are %s", n, strings.Join(names, ", "))
		}
		want[n] = true
	}
	if len(want) == 0 {
		return usagef("--tenants is empty: name at least one of %s, or leave the flag out to sync all", strings.Join(names, ", "))
	}
	if len(f.Tenants) == 0 {
		return nil // the one default tenant
	}
	pc.Tenants = slices.DeleteFunc(pc.Tenants, func(t pipeline.Tenant) bool { return !want[t.Name] })
	return nil
}

// sourcesOf maps a sources section onto the extractors' configs (nil: not configured).
func sourcesOf(s config.Sources) (ad *extract.AppDirectConfig, hl *extract.HighLevelConfig) {
	if a := s.AppDirect; a != nil {
		ad = &extract.AppDirectConfig{BaseURL: strings.TrimRight(a.BaseURL, "/"), ClientID: a.ClientID, ClientSecret: a.ClientSecret,
			LeadUsername: a.LeadUsername, LeadPassword: a.LeadPassword, LeadCompanyID: a.LeadCompanyID, LeadContext: a.LeadContext,
			LeadFromDateUnit: a.LeadFromDateUnit, API: a.API, ResellerContext: a.ResellerContext,
			PageSize: a.PageSize, RatePerSecond: a.RatePerSecond, CompaniesRate: a.CompaniesRate}
	}
	if h := s.HighLevel; h != nil {
		hl = &extract.HighLevelConfig{BaseURL: strings.TrimRight(h.BaseURL, "/"), ClientID: h.ClientID, ClientSecret: h.ClientSecret,
			CompanyID: h.CompanyID, AppID: h.AppID, Auth: h.Auth, TokenFile: h.TokenFile, PrivateToken: h.PrivateToken,
			PageSize: h.PageSize, Burst: h.Burst, Interval: h.Interval.Std(), DailyFloor: h.DailyFloor}
	}
	return ad, hl
}

// tenantStream names a stream for people: the default tenant's as the stream, another tenant's
// as tenant/stream.
func tenantStream(tenant, stream string) string {
	if tenant == "" || tenant == schemas.DefaultTenant {
		return stream
	}
	return tenant + "/" + stream
}

// progressReporter logs progress every 10 s when no live view shows it.
type progressReporter struct {
	log   *slog.Logger
	logs  bool
	mu    sync.Mutex
	rows  map[string]int64
	pages map[string]int64
	done  map[string]bool
	start time.Time
}

func newProgressReporter(log *slog.Logger, logs bool) *progressReporter {
	return &progressReporter{log: log, logs: logs, rows: map[string]int64{}, pages: map[string]int64{}, done: map[string]bool{}, start: time.Now()}
}

func (p *progressReporter) event(e pipeline.Event) {
	key := tenantStream(e.Tenant, e.Stream)
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
	if !p.logs {
		return func() {}
	}
	interval := 10 * time.Second
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
				return
			case <-ctx.Done():
				// keep reporting until the run returns: the writer is still committing
				select {
				case <-done:
					return
				case <-t.C:
				}
			case <-t.C:
				p.log.Info("progress", "status", p.line())
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// printSummary prints the run's table: one wide table when it fits width columns, else two
// narrower ones (rows, then requests) that fit 80, else a block of wrapped lines per stream.
func printSummary(w io.Writer, sum pipeline.Summary, width int) {
	type agg struct {
		state.StreamRun
		parts, failed int
	}
	byStream := map[string]*agg{}
	var order []string
	for _, r := range sum.Streams {
		key := tenantStream(r.Tenant, r.Stream)
		a := byStream[key]
		if a == nil {
			a = &agg{StreamRun: state.StreamRun{Stream: key, Status: "succeeded"}}
			byStream[key] = a
			order = append(order, key)
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
		a.Waited += r.Waited
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
	fmt.Fprintf(w, "\n%s\n\n", wrap(fmt.Sprintf("run %s finished in %s", sum.RunID, sum.Ended.Sub(sum.Started).Round(time.Millisecond)), width))
	// rounded and stale are rare: their columns appear only when a stream has some.
	var valueNotes bool
	for _, a := range byStream {
		valueNotes = valueNotes || a.Rounded > 0 || a.Stale > 0
	}
	name := func(a *agg) string {
		if a.parts > 1 {
			return fmt.Sprintf("%s (%d parts)", a.Stream, a.parts)
		}
		return a.Stream
	}
	mode := func(a *agg) string {
		if a.FullScan {
			return "full"
		}
		return "incremental"
	}
	table := func(head string, row func(a *agg) string) string {
		var b strings.Builder
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, head)
		for _, n := range order {
			fmt.Fprintln(tw, row(byStream[n]))
		}
		tw.Flush()
		return b.String()
	}
	head := "stream\tstatus\tmode\tinserted\tupdated\tunchanged\tdeleted\trejected\t"
	if valueNotes {
		head += "rounded\tstale\t"
	}
	wide := table(head+"requests\tretries\t429s\t", func(a *agg) string {
		r := fmt.Sprintf("%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t", name(a), a.Status, mode(a), a.Inserted, a.Updated, a.Unchanged, a.Deleted, a.Rejected)
		if valueNotes {
			r += fmt.Sprintf("%d\t%d\t", a.Rounded, a.Stale)
		}
		return r + fmt.Sprintf("%d\t%d\t%d\t", a.Requests, a.Retries, a.Throttled)
	})
	rowsTable := table("stream\tstatus\tinserted\tupdated\tunchanged\tdeleted\trejected\t", func(a *agg) string {
		return fmt.Sprintf("%s\t%s\t%d\t%d\t%d\t%d\t%d\t", name(a), a.Status, a.Inserted, a.Updated, a.Unchanged, a.Deleted, a.Rejected)
	})
	requestsTable := table("stream\tmode\tpages\trequests\tretries\t429s\tbudget wait\t", func(a *agg) string {
		return fmt.Sprintf("%s\t%s\t%d\t%d\t%d\t%d\t%s\t", name(a), mode(a), a.Pages, a.Requests, a.Retries, a.Throttled, a.Waited.Round(100*time.Millisecond))
	})
	narrow := widest(wide) > width
	switch {
	case !narrow:
		fmt.Fprint(w, wide)
	case max(widest(rowsTable), widest(requestsTable)) <= width:
		fmt.Fprint(w, rowsTable+"\n"+requestsTable)
	default: // narrower still: a block per stream, its lines wrapped
		for i, n := range order {
			a := byStream[n]
			if i > 0 {
				fmt.Fprintln(w)
			}
			fmt.Fprintln(w, wrap(fmt.Sprintf("%s: %s, %s", name(a), a.Status, mode(a)), width))
			fmt.Fprintln(w, fields(width, fmt.Sprintf("inserted %d", a.Inserted), fmt.Sprintf("updated %d", a.Updated), fmt.Sprintf("unchanged %d", a.Unchanged),
				fmt.Sprintf("deleted %d", a.Deleted), fmt.Sprintf("rejected %d", a.Rejected)))
			fmt.Fprintln(w, fields(width, fmt.Sprintf("pages %d", a.Pages), fmt.Sprintf("requests %d", a.Requests), fmt.Sprintf("retries %d", a.Retries),
				fmt.Sprintf("429s %d", a.Throttled), "budget wait "+a.Waited.Round(100*time.Millisecond).String()))
		}
	}
	for _, r := range sum.Streams {
		if r.Note != "" {
			name := tenantStream(r.Tenant, r.Stream)
			if r.Partition != "" {
				name += " " + r.Partition
			}
			fmt.Fprintf(w, "\n%s\n", wrap(name+": "+r.Note, width))
		}
	}
	for _, n := range order {
		if a := byStream[n]; narrow && a.Rounded > 0 {
			fmt.Fprintf(w, "\n%s\n", wrap(fmt.Sprintf("%s: %d values were rounded to fit their column", a.Stream, a.Rounded), width))
		}
	}
	for _, n := range order {
		if a := byStream[n]; a.Stale > 0 {
			fmt.Fprintf(w, "\n%s\n", wrap(fmt.Sprintf("%s: %d rows kept their previous version because the new one was quarantined (see _rejected; the rows have _stale_since set)", a.Stream, a.Stale), width))
		}
	}
	for _, n := range order {
		if a := byStream[n]; a.Error != "" {
			fmt.Fprintf(w, "\n%s\n", wrap(a.Stream+" failed: "+a.Error, width))
		}
	}
}

// wrap breaks s into lines of at most width runes at spaces (a longer word gets its own line).
func wrap(s string, width int) string {
	var b strings.Builder
	n := 0
	for i, word := range strings.Fields(s) {
		l := utf8.RuneCountInString(word)
		switch {
		case i == 0:
		case n+1+l > width:
			b.WriteString("\n")
			n = 0
		default:
			b.WriteString(" ")
			n++
		}
		b.WriteString(word)
		n += l
	}
	return b.String()
}

// fields lays out "name value" items indented by two spaces, two spaces apart, starting a new
// line before an item that would pass width.
func fields(width int, items ...string) string {
	var b strings.Builder
	n := 0
	for _, it := range items {
		l := utf8.RuneCountInString(it)
		if n > 0 && n+2+l > width {
			b.WriteString("\n")
			n = 0
		}
		b.WriteString("  ")
		b.WriteString(it)
		n += 2 + l
	}
	return b.String()
}

// widest is the width of s's longest line, in runes.
func widest(s string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		n = max(n, utf8.RuneCountInString(l))
	}
	return n
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
