package monitor

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AlertsResponse is the body of the monitor's GET /v1/alerts.
type AlertsResponse struct {
	// Alerts are the alerts raised since the monitor started, oldest
	// first (the last 1000).
	Alerts []Alert `json:"alerts"`
	// Nodes are what the monitor knows of each node.
	Nodes []NodeState `json:"nodes"`
}

// Handler serves the monitor's state: GET /metrics (the metrics of g, in
// Prometheus's format, when g is not nil) and GET /v1/alerts (an
// [AlertsResponse]).
func (m *Monitor) Handler(g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	if g != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /v1/alerts", func(w http.ResponseWriter, r *http.Request) {
		resp := AlertsResponse{Alerts: m.Alerts(), Nodes: m.Nodes()}
		if resp.Alerts == nil {
			resp.Alerts = []Alert{}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.Encode(resp)
	})
	return mux
}
