package monitor

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves the monitor's state: GET /metrics (the metrics of g, in
// Prometheus's format, when g is not nil) and GET /v1/alerts (an
// [AlertsResponse]; with ?brief=1, which monitorapi.FetchAlerts asks
// for, the alerts' checkpoints are left out, their evidence files named
// still).
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
		if r.URL.Query().Get("brief") == "1" {
			for i := range resp.Alerts {
				cps := slices.Clone(resp.Alerts[i].Checkpoints)
				for j := range cps {
					cps[j].Checkpoint = ""
				}
				resp.Alerts[i].Checkpoints = cps
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.Encode(resp)
	})
	return mux
}
