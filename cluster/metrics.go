package cluster

import (
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/telenotary/telenotary/cluster/notaryapi"
)

// metrics are the node's Prometheus metrics, plus recent samples for the
// status endpoint's percentiles.
type metrics struct {
	registry      *prometheus.Registry
	forwarded     *prometheus.CounterVec // batches and entries a follower forwarded
	receipts      prometheus.Counter
	latency       prometheus.Histogram
	batchEntries  prometheus.Histogram
	batchLatency  prometheus.Histogram
	leaderChanges prometheus.Counter
	sentAhead     prometheus.Counter       // writes a leader sent to a follower while writing them itself
	stages        *prometheus.HistogramVec // the write path's stages (stages.go)
	witness       *witnessMetrics
	// lifecycleRefused counts the dispenses and revocations the log's
	// rules refused, by reason.
	lifecycleRefused *prometheus.CounterVec
	// cosignatures counts the followers' signatures a leader gathered,
	// by how they came (stream or request), and those it refused.
	cosignatures *prometheus.CounterVec

	mu      sync.Mutex // guards the samples
	lat     ring       // seconds per notarize request
	batches ring       // entries per raft batch
	total   uint64     // receipts issued
}

// ring keeps the last samples of something.
type ring struct {
	v    [1024]float64
	n    int
	next int
}

func (r *ring) add(x float64) {
	r.v[r.next] = x
	r.next = (r.next + 1) % len(r.v)
	r.n = min(r.n+1, len(r.v))
}

// quantile returns the q-quantile of the samples, 0 with none.
func (r *ring) quantile(q float64) float64 {
	if r.n == 0 {
		return 0
	}
	s := slices.Clone(r.v[:r.n])
	slices.Sort(s)
	return s[min(int(q*float64(len(s))), len(s)-1)]
}

func (r *ring) mean() float64 {
	if r.n == 0 {
		return 0
	}
	sum := 0.0
	for _, x := range r.v[:r.n] {
		sum += x
	}
	return sum / float64(r.n)
}

func newMetrics(n *Node) *metrics {
	m := &metrics{registry: prometheus.NewRegistry()}
	m.receipts = prometheus.NewCounter(prometheus.CounterOpts{Name: "telenotary_receipts_total", Help: "Receipts issued by this node for new submissions."})
	m.forwarded = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telenotary_forwarded_total", Help: "Single submissions a follower forwarded to the leader as batches: batches and entries."}, []string{"what"})
	m.registry.MustRegister(m.forwarded)
	m.lifecycleRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telenotary_lifecycle_refused_total",
		Help: "Dispenses and revocations the log's rules refused (applied on this node), by reason."}, []string{"reason"})
	m.registry.MustRegister(m.lifecycleRefused)
	m.cosignatures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telenotary_cosignatures_total",
		Help: "Other nodes' signatures this node gathered as leader for cosigned receipts, by how they came: from a follower's checkpoint stream or asked for; refused: one that did not verify with the member's key over this node's checkpoint."}, []string{"via"})
	m.registry.MustRegister(m.cosignatures)
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "telenotary_notarize_seconds", Help: "Time from a submission's arrival to its receipt.",
		Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16)})
	m.batchEntries = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "telenotary_batch_entries", Help: "Entries per raft entry proposed by the batcher.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 8)})
	m.batchLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "telenotary_batch_commit_seconds", Help: "Time from proposing a batch to its being applied.",
		Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16)})
	m.stages = newStageHistogram()
	m.registry.MustRegister(m.stages)
	m.sentAhead = prometheus.NewCounter(prometheus.CounterOpts{Name: "telenotary_raft_sent_ahead_total",
		Help: "Raft writes this node, leading, sent to a follower while writing them to its own log, counted once per follower."})
	m.registry.MustRegister(m.sentAhead)
	m.leaderChanges = prometheus.NewCounter(prometheus.CounterOpts{Name: "telenotary_leader_changes_total", Help: "Leader changes this node observed."})
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	m.witness = newWitnessMetrics(m.registry)
	m.registry.MustRegister(m.receipts, m.latency, m.batchEntries, m.batchLatency, m.leaderChanges,
		gauge("telenotary_log_size", "Leaves in this node's log.", func() float64 {
			if cp := n.fsm.checkpoint.Load(); cp != nil {
				return float64(cp.Size)
			}
			return 0
		}),
		gauge("telenotary_raft_leader", "1 when this node is the leader.", func() float64 {
			if n.raft.State() == raft.Leader {
				return 1
			}
			return 0
		}),
		gauge("telenotary_raft_term", "Current raft term.", func() float64 { return float64(n.raft.CurrentTerm()) }),
		gauge("telenotary_clock_agrees", "1 when this node's clock agrees with a majority of the cluster's (a leader stamps only then).", func() float64 {
			if n.clock != nil && n.clock.check(0) == nil {
				return 1
			}
			return 0
		}),
		gauge("telenotary_log_time_ahead_seconds", "How far the log's newest timestamp is ahead of this node's clock (0 when it is not).", func() float64 {
			return max(0, time.UnixMilli(n.fsm.lastTime.Load()).Sub(n.cfg.Clock()).Seconds())
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "telenotary_fsm_refused_commands_total",
			Help: "Raft commands this node's state machine refused as malformed or invalid (each is logged); any is an alert."},
			func() float64 { return float64(n.fsm.refused.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "telenotary_scrub_leaves_total",
			Help: "Leaves the background scrub has read and checked."},
			func() float64 { return float64(n.scrub.total.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "telenotary_heals_total",
			Help: "Damaged logs this node rebuilt from its peers."},
			func() float64 { return float64(n.scrub.heals.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "telenotary_snapshot_leaves_fetched_total",
			Help: "Leaves this node fetched from its peers to install raft snapshots."},
			func() float64 { return float64(n.fsm.fetched.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "telenotary_scrub_passes_total",
			Help: "Passes of the background scrub over the whole log."},
			func() float64 { return float64(n.scrub.passes.Load()) }),
		gauge("telenotary_scrub_last_pass_timestamp_seconds", "When the last scrub pass completed (0 before the first).", func() float64 {
			return float64(n.scrub.lastPass.Load()) / 1000
		}),
		gauge("telenotary_raft_commit_index", "Raft commit index.", func() float64 { return float64(n.raft.CommitIndex()) }),
		gauge("telenotary_raft_applied_index", "Raft entries applied to the log.", func() float64 { return float64(n.fsm.applied.Load()) }),
		gauge("telenotary_ready", "1 when the node serves submissions.", func() float64 {
			if n.Ready() {
				return 1
			}
			return 0
		}),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// notarized records a request answered with receipts.
func (m *metrics) notarized(receipts int, took time.Duration) {
	m.receipts.Add(float64(receipts))
	m.latency.Observe(took.Seconds())
	m.mu.Lock()
	m.lat.add(took.Seconds())
	m.total += uint64(receipts)
	m.mu.Unlock()
}

// batch records a raft batch the batcher proposed.
func (m *metrics) batch(entries int, took time.Duration) {
	m.batchEntries.Observe(float64(entries))
	m.batchLatency.Observe(took.Seconds())
	m.mu.Lock()
	m.batches.add(float64(entries))
	m.mu.Unlock()
}

// snapshot returns the recent figures for the status endpoint.
func (m *metrics) snapshot() notaryapi.BatchStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return notaryapi.BatchStats{
		Receipts:         m.total,
		MeanBatchEntries: m.batches.mean(),
		P50Millis:        1000 * m.lat.quantile(0.5),
		P99Millis:        1000 * m.lat.quantile(0.99),
	}
}
