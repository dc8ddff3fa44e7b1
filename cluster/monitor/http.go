package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

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

// MaxAlertsBody bounds the body of GET /v1/alerts?brief=1 that
// [FetchAlerts] reads: the kept alerts without their checkpoints, whose
// messages are at most maxMessage bytes each.
const MaxAlertsBody = 8 << 20

// Handler serves the monitor's state: GET /metrics (the metrics of g, in
// Prometheus's format, when g is not nil) and GET /v1/alerts (an
// [AlertsResponse]; with ?brief=1 the alerts' checkpoints are left out,
// their evidence files named still).
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

// FetchAlerts asks a monitor serving [Monitor.Handler] at base for its
// alerts in brief (without the checkpoints), reading at most
// MaxAlertsBody bytes: for a console that shows them.
func FetchAlerts(ctx context.Context, client *http.Client, base string) (*AlertsResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/v1/alerts?brief=1", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("monitor %s answered %s", base, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxAlertsBody+1))
	if err != nil {
		return nil, fmt.Errorf("monitor %s: %w", base, err)
	}
	if len(body) > MaxAlertsBody {
		return nil, fmt.Errorf("monitor %s: its alerts are more than %d bytes", base, MaxAlertsBody)
	}
	var out AlertsResponse
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("monitor %s: not an answer of GET /v1/alerts: %w", base, err)
	}
	return &out, nil
}
