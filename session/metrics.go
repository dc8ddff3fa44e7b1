package session

import "github.com/prometheus/client_golang/prometheus"

// metrics are the server's Prometheus metrics.
type metrics struct {
	rooms           prometheus.Gauge
	connections     prometheus.Gauge
	joins           prometheus.Counter
	messages        prometheus.Counter
	errors          *prometheus.CounterVec
	notarizations   *prometheus.CounterVec
	witnessed       *prometheus.CounterVec
	notarizeSeconds prometheus.Histogram
	webhooks        *prometheus.CounterVec
	mismatches      prometheus.Counter
	unheld          prometheus.Gauge
	holders         *prometheus.CounterVec
	relayed         prometheus.Gauge
	instancesUp     prometheus.Gauge
	takeovers       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, usedTokens, undelivered func() int) *metrics {
	m := &metrics{
		rooms:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "telenotary_signal_rooms", Help: "Rooms held (waiting, active or ending)."}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "telenotary_signal_connections", Help: "Open WebSocket connections."}),
		joins:       prometheus.NewCounter(prometheus.CounterOpts{Name: "telenotary_signal_joins_total", Help: "Successful joins, reconnections included."}),
		messages:    prometheus.NewCounter(prometheus.CounterOpts{Name: "telenotary_signal_messages_total", Help: "Messages received from clients."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telenotary_signal_errors_total", Help: "Error messages sent to clients, by code."},
			[]string{"code"}),
		notarizations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telenotary_signal_notarizations_total", Help: "Notarizations by kind and result (ok, error)."},
			[]string{"kind", "result"}),
		witnessed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telenotary_signal_receipt_witnesses_total", Help: "Receipts waited on for witness cosignatures (ReceiptWitnesses), by result (cosigned; timeout or refused, by a cluster with fewer witnesses: delivered without them)."},
			[]string{"result"}),
		notarizeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "telenotary_signal_notarize_seconds", Help: "Time to get a receipt from the cluster.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telenotary_signal_webhooks_total", Help: "Webhook events by outcome (delivered, failed: held for the app, dropped: lost)."},
			[]string{"result"}),
		unheld: prometheus.NewGauge(prometheus.GaugeOpts{Name: "telenotary_signal_unheld_bundles", Help: "Notarized prescriptions whose bundle neither the patient's app nor the webhook has taken yet (the physician's receipt waits)."}),
		holders: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telenotary_signal_bundle_holders_total", Help: "Prescription bundles by their first holder (patient, webhook; server: neither by the session's end)."},
			[]string{"holder"}),
		relayed:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "telenotary_signal_relayed_connections", Help: "WebSocket connections relayed to the instance of the group that holds their room."}),
		instancesUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "telenotary_signal_instances_up", Help: "Instances of the group that answer, this one included (1 when alone)."}),
		takeovers:   prometheus.NewCounter(prometheus.CounterOpts{Name: "telenotary_signal_takeovers_total", Help: "Rooms taken over from an instance of the group that went away (a session continued, the interrupted one's end notarized)."}),
		mismatches:  prometheus.NewCounter(prometheus.CounterOpts{Name: "telenotary_signal_fingerprint_mismatches_total", Help: "DTLS fingerprints reported that the other side's SDP did not announce."}),
	}
	used := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "telenotary_signal_used_tokens", Help: "Join tokens remembered as used (each until it expires)."},
		func() float64 { return float64(usedTokens()) })
	held := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "telenotary_signal_undelivered", Help: "Webhook events the app's backend did not take, held until it fetches them (GET /v1/undelivered)."},
		func() float64 { return float64(undelivered()) })
	reg.MustRegister(used, held, m.rooms, m.connections, m.joins, m.messages, m.errors, m.notarizations, m.witnessed, m.notarizeSeconds, m.webhooks, m.mismatches, m.unheld, m.holders, m.relayed, m.instancesUp, m.takeovers)
	return m
}
