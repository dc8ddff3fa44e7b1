package cluster

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/telenotary/telenotary/cluster/notaryapi"
)

// newStageHistogram is the write path's stages' timings
// (notaryapi.WriteStages), for `telenotary bench notarize --trace` to break
// a request's latency down.
func newStageHistogram() *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: notaryapi.WriteStageMetric,
		Help:    "Time each stage of the write path took on this node (notaryapi.WriteStages says what each covers).",
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 18)}, []string{"stage"})
	for _, s := range notaryapi.WriteStages {
		h.WithLabelValues(s.Name) // every stage shows, at 0 before its first
	}
	return h
}

// stage records that a stage of the write path took d.
func (m *metrics) stage(name string, d time.Duration) {
	m.stages.WithLabelValues(name).Observe(d.Seconds())
}
