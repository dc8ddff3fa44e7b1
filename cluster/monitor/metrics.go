package monitor

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the monitor's Prometheus metrics.
type metrics struct {
	alerts         *prometheus.CounterVec
	size           *prometheus.GaugeVec
	verified       *prometheus.GaugeVec
	leaves         *prometheus.CounterVec
	errors         *prometheus.CounterVec
	deliveryErrors *prometheus.CounterVec
	polls          prometheus.Counter
	lastPoll       prometheus.Gauge
}

// newMetrics makes the metrics and registers them with reg (none when
// reg is nil), with every label value present from the start so that a
// rate() of an alert that never fired is 0, not absent.
func newMetrics(reg prometheus.Registerer, nodes []string) *metrics {
	m := &metrics{
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telenotary_monitor_alerts_total",
			Help: "Alerts raised, by kind (split-view, root-mismatch, timestamp-backwards, malformed-leaf, bad-signature, bad-checkpoint)."}, []string{"kind"}),
		size: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "telenotary_monitor_checkpoint_size",
			Help: "Size of each node's latest checkpoint that opened under the policy."}, []string{"node"}),
		verified: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "telenotary_monitor_verified_size",
			Help: "Largest size at which the node's leaves hashed to the root it signed."}, []string{"node"}),
		leaves: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telenotary_monitor_leaves_read_total",
			Help: "Leaves read from each node and checked."}, []string{"node"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telenotary_monitor_node_errors_total",
			Help: "Polls that could not check a node fully (unreachable, or an answer that is not one)."}, []string{"node"}),
		deliveryErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telenotary_monitor_delivery_errors_total",
			Help: "Alerts whose evidence could not be saved or whose webhook delivery failed."}, []string{"to"}),
		polls: prometheus.NewCounter(prometheus.CounterOpts{Name: "telenotary_monitor_polls_total",
			Help: "Polls of all the nodes."}),
		lastPoll: prometheus.NewGauge(prometheus.GaugeOpts{Name: "telenotary_monitor_last_complete_poll_timestamp_seconds",
			Help: "When a poll last checked every node fully (Unix seconds)."}),
	}
	for _, k := range Kinds {
		m.alerts.WithLabelValues(string(k))
	}
	for _, n := range nodes {
		m.errors.WithLabelValues(n)
		m.leaves.WithLabelValues(n)
	}
	for _, to := range []string{"evidence", "webhook"} {
		m.deliveryErrors.WithLabelValues(to)
	}
	if reg != nil {
		reg.MustRegister(m.alerts, m.size, m.verified, m.leaves, m.errors, m.deliveryErrors, m.polls, m.lastPoll)
	}
	return m
}
