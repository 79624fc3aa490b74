package serve

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the serve process's Prometheus metrics. A nil *Metrics records nothing.
type Metrics struct {
	Registry         *prometheus.Registry
	connections      prometheus.Gauge
	connectionsTotal prometheus.Counter
	authFailures     prometheus.Counter
	queries          *prometheus.CounterVec
	latency          prometheus.Histogram
}

// NewMetrics creates the SQL server's metrics in reg.
func NewMetrics(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		Registry: reg,
		connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "marketsync_serve_connections",
			Help: "Open client connections."}),
		connectionsTotal: prometheus.NewCounter(prometheus.CounterOpts{Name: "marketsync_serve_connections_total",
			Help: "Client connections accepted and authenticated."}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "marketsync_serve_connections_refused_total",
			Help: "Client connections refused at startup (authentication, TLS)."}),
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "marketsync_serve_queries_total",
			Help: "Statements executed, by result: ok, error, or refused (a write or privileged operation)."}, []string{"result"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "marketsync_serve_query_duration_seconds",
			Help: "Time from a statement's start to its last row sent.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18)}),
	}
	reg.MustRegister(m.connections, m.connectionsTotal, m.authFailures, m.queries, m.latency)
	return m
}

func (m *Metrics) query(d time.Duration, err error) {
	if m == nil {
		return
	}
	if err == nil {
		m.queries.WithLabelValues("ok").Inc()
		m.latency.Observe(d.Seconds())
		return
	}
	var pe *pgError
	if errors.As(err, &pe) && (pe.code == "25006" || pe.code == "42501") {
		m.queries.WithLabelValues("refused").Inc()
		return
	}
	m.queries.WithLabelValues("error").Inc()
}
