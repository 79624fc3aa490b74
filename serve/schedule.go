package serve

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/marketsync/marketsync/pipeline"
)

// Schedule says when syncs run: every Every, or at the times of a 5-field cron expression.
type Schedule struct {
	Every time.Duration
	Cron  string
}

// next returns the first run time after t.
func (s Schedule) next(t time.Time, spec cron.Schedule) time.Time {
	if spec != nil {
		return spec.Next(t)
	}
	return t.Add(s.Every)
}

// ParseCron validates a standard 5-field cron expression ("*/15 * * * *").
func ParseCron(expr string) error {
	_, err := cron.ParseStandard(expr)
	return err
}

// Scheduler runs syncs on a schedule, one at a time: a run due while the previous one is still
// going is skipped and counted. The first run starts at once.
type Scheduler struct {
	Schedule Schedule
	// Run performs one sync (pipeline.Run with the serve process's warehouse).
	Run func(ctx context.Context) (pipeline.Summary, error)
	Log *slog.Logger
	// Metrics, when set, receives the sync counters.
	Metrics *SyncMetrics

	mu      sync.Mutex
	running bool
	last    SyncStatus
	wg      sync.WaitGroup
	cancel  context.CancelFunc
	now     func() time.Time
}

// SyncStatus is what /healthz reports of the syncs.
type SyncStatus struct {
	Running     bool      `json:"running"`
	Runs        int64     `json:"runs"`
	Skipped     int64     `json:"skipped"`
	Failed      int64     `json:"failed"`
	LastStarted time.Time `json:"last_started,omitzero"`
	LastEnded   time.Time `json:"last_ended,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastRunID   string    `json:"last_run_id,omitempty"`
}

// Start begins the schedule; it returns at once. Stop ends it.
func (s *Scheduler) Start(ctx context.Context) error {
	var spec cron.Schedule
	if s.Schedule.Cron != "" {
		var err error
		if spec, err = cron.ParseStandard(s.Schedule.Cron); err != nil {
			return err
		}
	} else if s.Schedule.Every <= 0 {
		return errors.New("serve: a schedule needs a positive interval or a cron expression")
	}
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.trigger(ctx)
		next := s.Schedule.next(s.now(), spec)
		for {
			t := time.NewTimer(time.Until(next))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			s.trigger(ctx)
			next = s.Schedule.next(s.now(), spec)
		}
	}()
	return nil
}

// trigger starts a run unless one is running, in which case the due run is skipped.
func (s *Scheduler) trigger(ctx context.Context) {
	s.mu.Lock()
	if s.running {
		s.last.Skipped++
		s.mu.Unlock()
		s.Metrics.skipped()
		s.Log.Warn("sync skipped: the previous sync is still running (consider a longer interval)")
		return
	}
	s.running = true
	s.last.Running = true
	s.last.LastStarted = time.Now().UTC()
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		start := time.Now()
		sum, err := s.Run(ctx)
		d := time.Since(start)
		s.mu.Lock()
		s.running = false
		s.last.Running = false
		s.last.Runs++
		s.last.LastEnded = time.Now().UTC()
		s.last.LastRunID = sum.RunID
		if err != nil {
			s.last.Failed++
			s.last.LastError = err.Error()
		} else {
			s.last.LastError = ""
			s.last.LastSuccess = s.last.LastEnded
		}
		s.mu.Unlock()
		s.Metrics.ran(sum, d, err)
		if err != nil {
			s.Log.Error("sync failed", "run_id", sum.RunID, "duration", d.Round(time.Millisecond), "error", err)
		} else {
			s.Log.Info("sync done", "run_id", sum.RunID, "duration", d.Round(time.Millisecond), "streams", len(sum.Streams))
		}
	}()
}

// Status returns the syncs' state.
func (s *Scheduler) Status() SyncStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Stop cancels the schedule and the running sync (which commits what it holds, as on SIGINT)
// and waits for it to return. It is safe to call more than once.
func (s *Scheduler) Stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

// SyncMetrics are the counters of the scheduled syncs. A nil *SyncMetrics records nothing.
type SyncMetrics struct {
	runs        *prometheus.CounterVec
	duration    prometheus.Histogram
	lastSuccess prometheus.Gauge
	rows        *prometheus.CounterVec
	requests    *prometheus.CounterVec
}

// NewSyncMetrics registers the sync metrics in reg.
func NewSyncMetrics(reg *prometheus.Registry) *SyncMetrics {
	m := &SyncMetrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "marketsync_syncs_total",
			Help: "Scheduled syncs by result: succeeded, failed (a stream or the run failed) or skipped (the previous one was still running)."}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "marketsync_sync_duration_seconds",
			Help: "Duration of scheduled syncs.", Buckets: prometheus.ExponentialBuckets(0.5, 2, 14)}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "marketsync_sync_last_success_timestamp_seconds",
			Help: "Unix time of the last sync whose every stream succeeded."}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "marketsync_sync_rows_total",
			Help: "Rows written by syncs, per tenant, stream and change (inserted, updated, deleted, rejected)."}, []string{"tenant", "stream", "change"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "marketsync_sync_requests_total",
			Help: "API requests made by syncs, per tenant, stream and kind (requests, retries, throttled)."}, []string{"tenant", "stream", "kind"}),
	}
	for _, r := range []string{"succeeded", "failed", "skipped"} {
		m.runs.WithLabelValues(r)
	}
	reg.MustRegister(m.runs, m.duration, m.lastSuccess, m.rows, m.requests)
	return m
}

func (m *SyncMetrics) skipped() {
	if m != nil {
		m.runs.WithLabelValues("skipped").Inc()
	}
}

func (m *SyncMetrics) ran(sum pipeline.Summary, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.duration.Observe(d.Seconds())
	if err != nil {
		m.runs.WithLabelValues("failed").Inc()
	} else {
		m.runs.WithLabelValues("succeeded").Inc()
		m.lastSuccess.SetToCurrentTime()
	}
	for _, r := range sum.Streams {
		m.rows.WithLabelValues(r.Tenant, r.Stream, "inserted").Add(float64(r.Inserted))
		m.rows.WithLabelValues(r.Tenant, r.Stream, "updated").Add(float64(r.Updated))
		m.rows.WithLabelValues(r.Tenant, r.Stream, "deleted").Add(float64(r.Deleted))
		m.rows.WithLabelValues(r.Tenant, r.Stream, "rejected").Add(float64(r.Rejected))
		m.requests.WithLabelValues(r.Tenant, r.Stream, "requests").Add(float64(r.Requests))
		m.requests.WithLabelValues(r.Tenant, r.Stream, "retries").Add(float64(r.Retries))
		m.requests.WithLabelValues(r.Tenant, r.Stream, "throttled").Add(float64(r.Throttled))
	}
}
