package main

import (
	"encoding/json"
	"fmt"
	"github.com/marketsync/marketsync/schemas"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/marketsync/marketsync/pipeline"
	"github.com/marketsync/marketsync/state"
)

// runReport is the machine-readable summary of a run: --summary-json and the closing
// `run finished` log event carry the same fields.
type runReport struct {
	RunID     string         `json:"run_id"`
	Status    string         `json:"status"` // succeeded | failed | cancelled | deferred
	Started   time.Time      `json:"started_at"`
	Ended     time.Time      `json:"ended_at"`
	Seconds   float64        `json:"duration_seconds"`
	Warehouse string         `json:"warehouse"`
	Error     string         `json:"error,omitempty"`
	Streams   []streamReport `json:"streams"`

	// ResumesAt, for a deferred run (a stream's daily budget ran low; exit 0), is when every
	// deferred stream's budget is back, at the latest.
	ResumesAt *time.Time `json:"resumes_at,omitempty"`
}

type streamReport struct {
	Tenant        string    `json:"tenant"`
	Stream        string    `json:"stream"`
	Partition     string    `json:"partition,omitempty"`
	Status        string    `json:"status"`
	FullScan      bool      `json:"full_scan"`
	Started       time.Time `json:"started_at"`
	Ended         time.Time `json:"ended_at"`
	Inserted      int64     `json:"inserted"`
	Updated       int64     `json:"updated"`
	Unchanged     int64     `json:"unchanged"`
	Deleted       int64     `json:"deleted"`
	Rejected      int64     `json:"rejected"`
	Rounded       int64     `json:"rounded"`
	Stale         int64     `json:"stale"`
	Pages         int64     `json:"pages"`
	Requests      int64     `json:"requests"`
	Retries       int64     `json:"retries"`
	Throttled     int64     `json:"throttled"`
	Bytes         int64     `json:"bytes"`
	WaitedSeconds float64   `json:"budget_wait_seconds"`
	Note          string    `json:"note,omitempty"`
	Error         string    `json:"error,omitempty"`

	ResumesAt *time.Time `json:"resumes_at,omitempty"` // deferred: when its budget is back, at the latest
}

func newRunReport(sum pipeline.Summary, warehouse string, runErr error, interrupted bool) runReport {
	rep := runReport{RunID: sum.RunID, Status: "succeeded", Started: sum.Started, Ended: sum.Ended,
		Seconds: sum.Ended.Sub(sum.Started).Seconds(), Warehouse: warehouse, Streams: []streamReport{}}
	switch {
	case interrupted:
		rep.Status = "cancelled"
	case runErr != nil:
		rep.Status = "failed"
	}
	if runErr != nil {
		rep.Error = runErr.Error()
	}
	for _, s := range sum.Streams {
		rep.Streams = append(rep.Streams, streamReport{Tenant: s.Tenant, Stream: s.Stream, Partition: s.Partition, Status: s.Status, FullScan: s.FullScan,
			Started: s.Started, Ended: s.Ended, Inserted: s.Inserted, Updated: s.Updated, Unchanged: s.Unchanged, Deleted: s.Deleted,
			Rejected: s.Rejected, Rounded: s.Rounded, Stale: s.Stale, Pages: s.Pages, Requests: s.Requests, Retries: s.Retries,
			Throttled: s.Throttled, Bytes: s.Bytes, WaitedSeconds: s.Waited.Seconds(), Note: s.Note, Error: s.Error})
		if s.Status == "deferred" {
			at := s.ResumesAt
			rep.Streams[len(rep.Streams)-1].ResumesAt = &at
			if rep.Status == "succeeded" {
				rep.Status = "deferred"
			}
			if rep.ResumesAt == nil || at.After(*rep.ResumesAt) {
				rep.ResumesAt = &at
			}
		}
	}
	return rep
}

// writeSummaryJSON writes the report to path ("-": stdout), atomically for a file.
func writeSummaryJSON(path string, rep runReport, stdout io.Writer) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err := stdout.Write(b)
		return err
	}
	return writeFileAtomic(path, b)
}

func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// logRunFinished emits the closing event a log pipeline alerts on. In JSON it carries every
// stream's report; in text, one line of totals (the per-stream lines are above it).
func logRunFinished(log *slog.Logger, rep runReport, format string) {
	args := []any{"run_id", rep.RunID, "status", rep.Status, "duration_seconds", rep.Seconds, "warehouse", rep.Warehouse, "error", rep.Error}
	if format == "json" {
		log.Info("run finished", append(args, "streams", rep.Streams)...)
		return
	}
	var t streamReport
	failed := 0
	for _, s := range rep.Streams {
		t.Inserted, t.Updated, t.Unchanged, t.Deleted, t.Rejected = t.Inserted+s.Inserted, t.Updated+s.Updated, t.Unchanged+s.Unchanged, t.Deleted+s.Deleted, t.Rejected+s.Rejected
		t.Requests, t.Retries, t.Throttled = t.Requests+s.Requests, t.Retries+s.Retries, t.Throttled+s.Throttled
		if s.Status != "succeeded" && s.Status != "skipped" {
			failed++
		}
	}
	log.Info("run finished", append(args, "stream_runs", len(rep.Streams), "not_succeeded", failed, "inserted", t.Inserted, "updated", t.Updated,
		"unchanged", t.Unchanged, "deleted", t.Deleted, "rejected", t.Rejected, "requests", t.Requests, "retries", t.Retries, "throttled", t.Throttled)...)
}

// writeMetricsFile writes the run's metrics in the Prometheus text format, for node_exporter's
// textfile collector (written to a temporary file and renamed, as that collector expects). The
// file is replaced each run, so it also carries what a failed run cannot: every stream
// partition's last success, from the warehouse's history (last). last nil (the run stopped
// before it read the warehouse): the previous file's last successes are carried over.
func writeMetricsFile(path string, rep runReport, last []state.LastSuccess) error {
	if last == nil {
		last = previousLastSuccesses(path)
	}
	reg := prometheus.NewRegistry()
	labels := []string{"tenant", "stream", "partition"}
	gauge := func(name, help string) *prometheus.GaugeVec {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
		reg.MustRegister(g)
		return g
	}
	rows := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "marketsync_last_run_rows", Help: "Rows of the last run by outcome."},
		append(labels, "outcome"))
	reg.MustRegister(rows)
	requests := gauge("marketsync_last_run_requests", "HTTP requests of the last run.")
	retries := gauge("marketsync_last_run_retries", "Retried attempts of the last run (network errors included).")
	throttled := gauge("marketsync_last_run_throttled", "429 answers in the last run.")
	waited := gauge("marketsync_last_run_budget_wait_seconds", "Time spent waiting on rate budgets in the last run.")
	success := gauge("marketsync_last_run_success", "1 if the stream partition succeeded (or was skipped) in the last run, else 0.")
	duration := gauge("marketsync_last_run_stream_duration_seconds", "Duration of the stream partition in the last run.")
	for _, s := range rep.Streams {
		l := prometheus.Labels{"tenant": s.Tenant, "stream": s.Stream, "partition": s.Partition}
		for outcome, n := range map[string]int64{"inserted": s.Inserted, "updated": s.Updated, "unchanged": s.Unchanged,
			"deleted": s.Deleted, "rejected": s.Rejected, "rounded": s.Rounded, "stale": s.Stale} {
			rows.With(prometheus.Labels{"tenant": s.Tenant, "stream": s.Stream, "partition": s.Partition, "outcome": outcome}).Set(float64(n))
		}
		requests.With(l).Set(float64(s.Requests))
		retries.With(l).Set(float64(s.Retries))
		throttled.With(l).Set(float64(s.Throttled))
		waited.With(l).Set(s.WaitedSeconds)
		ok := 0.0
		if s.Status == "succeeded" || s.Status == "skipped" {
			ok = 1
		}
		success.With(l).Set(ok)
		duration.With(l).Set(s.Ended.Sub(s.Started).Seconds())
	}
	lastSuccess := gauge(lastSuccessMetric, "When the stream partition's last succeeded run ended (Unix time), from the warehouse's history.")
	for _, l := range last {
		lastSuccess.With(prometheus.Labels{"tenant": tenantOrDefault(l.Tenant), "stream": l.Stream, "partition": l.Partition}).Set(float64(l.At.UnixMicro()) / 1e6)
	}
	run := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "marketsync_last_run_timestamp_seconds",
		Help: "When the last run ended (Unix time), by its status."}, []string{"status"})
	reg.MustRegister(run)
	run.With(prometheus.Labels{"status": rep.Status}).Set(float64(rep.Ended.Unix()))
	runDuration := prometheus.NewGauge(prometheus.GaugeOpts{Name: "marketsync_last_run_duration_seconds",
		Help: "Wall time of the last run, its Parquet files included."})
	reg.MustRegister(runDuration)
	runDuration.Set(rep.Seconds)
	if err := prometheus.WriteToTextfile(path, reg); err != nil {
		return fmt.Errorf("writing metrics file %s: %w", path, err)
	}
	return nil
}

const lastSuccessMetric = "marketsync_last_success_timestamp_seconds"

// previousLastSuccesses reads the last successes of an earlier metrics file at path (none if it
// is missing or does not parse).
func previousLastSuccesses(path string) []state.LastSuccess {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(f)
	if err != nil {
		return nil
	}
	var out []state.LastSuccess
	for _, m := range fams[lastSuccessMetric].GetMetric() {
		l := state.LastSuccess{At: time.UnixMicro(int64(math.Round(m.GetGauge().GetValue() * 1e6))).UTC()}
		for _, lp := range m.GetLabel() {
			switch lp.GetName() {
			case "tenant":
				l.Tenant = lp.GetValue()
			case "stream":
				l.Stream = lp.GetValue()
			case "partition":
				l.Partition = lp.GetValue()
			}
		}
		out = append(out, l)
	}
	return out
}

// tenantOrDefault names the tenant of a last success carried over from a metrics file written
// before tenants existed.
func tenantOrDefault(t string) string {
	if t == "" {
		return schemas.DefaultTenant
	}
	return t
}
