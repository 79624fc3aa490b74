package serve

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/marketsync/marketsync/pipeline"
	"github.com/marketsync/marketsync/state"
)

// TestHTTP_HealthzAndMetrics: /healthz reports the syncs, /metrics has the connection, query
// and sync metrics in Prometheus text format.
func TestHTTP_HealthzAndMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	sm := NewSyncMetrics(reg)
	sm.ran(pipeline.Summary{RunID: "r1", Streams: []state.StreamRun{{Tenant: "default", Stream: "users", Inserted: 5, Requests: 2}}}, 0, nil)
	sm.skipped()
	_, _, addr := startServer(t, t.TempDir(), func(c *Config) { c.Metrics = NewMetrics(reg) })
	c := connect(t, addr)
	if _, err := drain(context.Background(), c, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	_, _ = drain(context.Background(), c, "DELETE FROM users")
	ts := httptest.NewServer(HTTPHandler(reg, func() SyncStatus { return SyncStatus{Runs: 1, Skipped: 1, LastRunID: "r1"} }))
	defer ts.Close()
	get := func(path string) string {
		res, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, res.StatusCode, b)
		}
		return string(b)
	}
	var h struct {
		Status string
		Syncs  SyncStatus
	}
	if err := json.Unmarshal([]byte(get("/healthz")), &h); err != nil || h.Status != "ok" || h.Syncs.Runs != 1 || h.Syncs.Skipped != 1 {
		t.Fatalf("healthz: %+v %v", h, err)
	}
	m := get("/metrics")
	for _, want := range []string{
		"marketsync_serve_connections 1", "marketsync_serve_connections_total 1", `marketsync_serve_queries_total{result="ok"}`,
		`marketsync_serve_queries_total{result="refused"} 1`, "marketsync_serve_query_duration_seconds_bucket",
		`marketsync_syncs_total{result="succeeded"} 1`, `marketsync_syncs_total{result="skipped"} 1`,
		`marketsync_sync_rows_total{change="inserted",stream="users",tenant="default"} 5`, "marketsync_sync_last_success_timestamp_seconds",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
