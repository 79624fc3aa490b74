package serve

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HTTPHandler serves /healthz (200 and the syncs' status as JSON while the process serves: a
// failed sync is reported, not fatal, as the warehouse still answers) and /metrics (Prometheus
// text format) from reg.
func HTTPHandler(reg *prometheus.Registry, status func() SyncStatus) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		st := SyncStatus{}
		if status != nil {
			st = status()
		}
		w.Header().Set("Content-Type", "application/json")
		body := struct {
			Status string     `json:"status"`
			Syncs  SyncStatus `json:"syncs"`
		}{Status: "ok", Syncs: st}
		_ = json.NewEncoder(w).Encode(body)
	})
	return mux
}
