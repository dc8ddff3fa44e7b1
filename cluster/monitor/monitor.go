// Package monitor follows a notary log from outside, through the node API
// of each node it is given, and alerts on any sign that the log shows
// different histories to different people or breaks its rules:
//
//   - every checkpoint a node serves must open under the policy (trusted
//     signatures, the log's origin);
//   - any two checkpoints seen, from any nodes and across time, must be
//     consistent: the same root at the same size, and otherwise a
//     consistency proof (checked with tlog.CheckTree) that the smaller
//     tree is a prefix of the larger; larger trees are not dated earlier;
//   - each node's leaves, read incrementally from GET /v1/leaves, must be
//     well formed, stamped in non-decreasing order, and hash to the root
//     the node signed at that size.
//
// A fault is an [Alert]: logged, counted in Prometheus metrics, saved with
// its signed checkpoints as evidence files, and POSTed to a webhook.
//
// Memory is bounded by the number of nodes, not the log: for each node the
// monitor keeps its latest verified checkpoint and the right border of the
// tree of its leaves (O(log size) hashes), and across nodes the largest
// checkpoint that every other was found consistent with. That is enough to
// check every pair: each checkpoint accepted is a prefix of the largest at
// the time, and the largest only grows by consistent extension, so all the
// checkpoints ever accepted are prefixes of the current largest, and of one
// another.
package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"golang.org/x/mod/sumdb/tlog"
)

// Defaults of a Config.
const (
	DefaultInterval         = 10 * time.Second
	DefaultLeavesPerPoll    = 100_000
	DefaultWebhookTimeout   = 10 * time.Second
	DefaultRequestTimeout   = 30 * time.Second
	maxKeptAlerts           = 1000
	maxMessage              = 1024 // bytes of an alert's message
	maxNodes                = 64
	defaultMaxIdleConnsHost = 4
)

// Config configures a Monitor.
type Config struct {
	// Nodes are the API base URLs of the nodes to follow (1 to 64).
	Nodes []string
	// Policy opens every checkpoint: the trusted keys, how many must sign,
	// and the origin (empty: the origin of the first checkpoint seen).
	Policy notary.Policy
	// HTTPClient talks to the nodes and the webhook; nil means one with
	// keep-alive connections. Each request is bounded by RequestTimeout.
	HTTPClient *http.Client
	// Interval is the time between polls in Run (default 10s).
	Interval time.Duration
	// RequestTimeout bounds one request to a node (default 30s).
	RequestTimeout time.Duration
	// LeavesPerPoll bounds the leaves read from one node in one poll of
	// Run, so that catching up with a long log does not hold back the
	// checkpoint checks (default 100 000). PollOnce reads all it needs.
	LeavesPerPoll uint64
	// EvidenceDir, when set, receives a directory per alert with the
	// alert as JSON and its signed checkpoints, byte for byte.
	EvidenceDir string
	// Webhook, when set, receives each alert as a JSON POST.
	Webhook string
	// WebhookTimeout bounds one try of a webhook delivery (default 10s).
	WebhookTimeout time.Duration
	// Registerer receives the monitor's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Logger receives alerts (at ERROR) and the monitor's progress.
	Logger *slog.Logger
	// OnAlert, when set, is called with each alert once it is saved and
	// delivered.
	OnAlert func(Alert)
}

// Validate names the first field that cannot work.
func (c *Config) Validate() error {
	if len(c.Nodes) == 0 || len(c.Nodes) > maxNodes {
		return fmt.Errorf("Nodes: give 1 to %d node URLs, not %d", maxNodes, len(c.Nodes))
	}
	seen := map[string]bool{}
	for _, n := range c.Nodes {
		u, err := url.Parse(n)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("Nodes: %q is not an http or https base URL", n)
		}
		if seen[n] {
			return fmt.Errorf("Nodes: %q is given twice", n)
		}
		seen[n] = true
	}
	if err := c.Policy.Validate(); err != nil {
		return fmt.Errorf("Policy: %w", err)
	}
	if c.Webhook != "" {
		if u, err := url.Parse(c.Webhook); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("Webhook: %q is not an http or https URL", c.Webhook)
		}
	}
	if c.Interval < 0 || c.RequestTimeout < 0 || c.WebhookTimeout < 0 {
		return errors.New("Interval, RequestTimeout and WebhookTimeout must not be negative")
	}
	return nil
}

// seen is a verified checkpoint and the node that served it.
type seen struct {
	notary.SignedCheckpoint
	node string
}

func (s *seen) evidence() Evidence { return Evidence{Node: s.node, Checkpoint: string(s.Note)} }

// source is what the monitor knows of one node.
type source struct {
	url    string
	latest *seen // the node's latest checkpoint that opened under the policy
	tree   *tree // the node's leaves so far
	target *seen // the checkpoint the tree is being built up to
	// verified is the largest of the node's checkpoints whose root the
	// tree matched; its root.
	verified     uint64
	verifiedRoot notary.Hash
	// derived is tree.size(), for readers that do not hold the poll.
	derived uint64
	// stuck says why the tree stopped (a malformed leaf); "" while it grows.
	stuck string
	// lastErr is the last failure to reach or read the node.
	lastErr error
}

// Monitor follows the nodes of one log. Its methods are safe for
// concurrent use; polls run one at a time.
type Monitor struct {
	cfg     Config
	client  *notaryapi.Client
	log     *slog.Logger
	metrics *metrics

	poll sync.Mutex // held by a poll

	mu      sync.Mutex // guards all below
	sources []*source
	largest *seen
	raised  map[string]bool
	alerts  []Alert
	counts  map[Kind]int
}

// New returns a monitor for cfg.
func New(cfg Config) (*Monitor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.LeavesPerPoll == 0 {
		cfg.LeavesPerPoll = DefaultLeavesPerPoll
	}
	if cfg.WebhookTimeout == 0 {
		cfg.WebhookTimeout = DefaultWebhookTimeout
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: defaultMaxIdleConnsHost, IdleConnTimeout: 90 * time.Second}}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Monitor{cfg: cfg, log: cfg.Logger, raised: map[string]bool{}, counts: map[Kind]int{},
		client: notaryapi.NewClient(notaryapi.ClientConfig{Nodes: cfg.Nodes, HTTPClient: cfg.HTTPClient})}
	for _, n := range cfg.Nodes {
		m.sources = append(m.sources, &source{url: n, tree: newTree()})
	}
	m.metrics = newMetrics(cfg.Registerer, cfg.Nodes)
	return m, nil
}

// Run polls every Interval until ctx ends, and returns ctx's error. With
// stop set, it returns sooner, with nil, after a poll that raised an
// alert for which stop is true.
func (m *Monitor) Run(ctx context.Context, stop func(Alert) bool) error {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		rep := m.poll1(ctx, m.cfg.LeavesPerPoll)
		if stop != nil && slices.ContainsFunc(rep.Alerts, stop) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Report is what one poll found.
type Report struct {
	// Alerts are the alerts this poll raised.
	Alerts []Alert
	// Unchecked maps the nodes the poll could not check fully (not
	// reached, an answer that is not one) to why.
	Unchecked map[string]error
}

// PollOnce polls every node once and reads each node's leaves up to its
// latest checkpoint, however many that takes.
func (m *Monitor) PollOnce(ctx context.Context) Report {
	return m.poll1(ctx, 0)
}

// poll1 is one poll, reading at most budget leaves a node (0: no bound).
func (m *Monitor) poll1(ctx context.Context, budget uint64) Report {
	m.poll.Lock()
	defer m.poll.Unlock()
	rep := Report{Unchecked: map[string]error{}}
	fail := func(s *source, err error) {
		if ctx.Err() == nil {
			m.log.WarnContext(ctx, "monitor: node not checked", "node", s.url, "error", err)
		}
		m.metrics.errors.WithLabelValues(s.url).Inc()
		m.mu.Lock()
		s.lastErr = err
		m.mu.Unlock()
		rep.Unchecked[s.url] = err
	}
	// Fetch every node's checkpoint at once, so that they are of one
	// moment, then check them one by one.
	notes := make([][]byte, len(m.sources))
	errs := make([]error, len(m.sources))
	var wg sync.WaitGroup
	for i, s := range m.sources {
		wg.Go(func() {
			rctx, cancel := context.WithTimeout(ctx, m.cfg.RequestTimeout)
			defer cancel()
			notes[i], errs[i] = m.client.LatestCheckpointOf(rctx, s.url, m.cfg.Policy.MinSignatures)
		})
	}
	wg.Wait()
	for i, s := range m.sources {
		if errs[i] != nil {
			fail(s, fmt.Errorf("checkpoint: %w", errs[i]))
			continue
		}
		if err := m.observe(ctx, s, notes[i], &rep); err != nil {
			fail(s, err)
			continue
		}
		if err := m.derive(ctx, s, budget, &rep); err != nil {
			fail(s, err)
			continue
		}
		m.mu.Lock()
		s.lastErr = nil
		m.mu.Unlock()
	}
	m.metrics.polls.Inc()
	if len(rep.Unchecked) == 0 {
		m.metrics.lastPoll.SetToCurrentTime()
	}
	return rep
}

// observe opens a node's checkpoint and checks it against the largest one
// seen; it returns an error when it could not tell.
func (m *Monitor) observe(ctx context.Context, s *source, note []byte, rep *Report) error {
	sc, err := notary.OpenCheckpoint(note, m.policy())
	if err != nil {
		kind := KindBadCheckpoint
		if errors.Is(err, notary.ErrSignatureInvalid) {
			kind = KindBadSignature
		}
		m.raise(ctx, rep, Alert{Kind: kind, Nodes: []string{s.url},
			Message:     fmt.Sprintf("%s served a checkpoint the policy refuses: %v", s.url, err),
			Checkpoints: []Evidence{{Node: s.url, Checkpoint: string(note)}}})
		return nil
	}
	cur := &seen{SignedCheckpoint: sc, node: s.url}
	m.metrics.size.WithLabelValues(s.url).Set(float64(sc.Size))
	m.mu.Lock()
	largest, prev := m.largest, s.latest
	if largest == nil {
		m.largest, s.latest = cur, cur
		if m.cfg.Policy.Origin == "" {
			m.cfg.Policy.Origin = sc.Origin // every later checkpoint must be of this log
		}
	}
	m.mu.Unlock()
	if largest == nil || sameBody(cur, largest) || (prev != nil && sameBody(cur, prev)) {
		m.mu.Lock()
		s.latest = cur
		m.mu.Unlock()
		return nil
	}
	ok, err := m.consistent(ctx, cur, largest, rep)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// A node's own fork is still its own: its leaves are checked against
	// it. The largest only moves on by consistent extension.
	s.latest = cur
	if ok && cur.Size > m.largest.Size {
		m.largest = cur
	}
	return nil
}

// policy is the policy checkpoints open under now.
func (m *Monitor) policy() notary.Policy {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg.Policy
}

// sameBody reports whether two checkpoints state the same thing (their
// signatures may differ).
func sameBody(a, b *seen) bool { return a.Checkpoint == b.Checkpoint }

// consistent checks two verified checkpoints against each other, raising
// the alerts of what it finds; ok is false when they cannot both be true.
// It returns an error when no node could answer for them.
func (m *Monitor) consistent(ctx context.Context, a, b *seen, rep *Report) (ok bool, err error) {
	small, large := a, b
	if a.Size > b.Size {
		small, large = b, a
	}
	split := func(why string) {
		m.raise(ctx, rep, Alert{Kind: KindSplitView, Nodes: nodesOf(small, large),
			Message:     fmt.Sprintf("split view: %s's checkpoint of size %d (root %s) and %s's of size %d (root %s) cannot both be true: %s", small.node, small.Size, small.Root, large.node, large.Size, large.Root, why),
			Checkpoints: []Evidence{small.evidence(), large.evidence()}})
	}
	switch {
	case small.Size == large.Size:
		if small.Root != large.Root {
			split("the same size with different roots")
			return false, nil
		}
	case small.Size == 0:
		if small.Root != notary.EmptyRoot() {
			split("an empty tree whose root is not the empty root")
			return false, nil
		}
	default:
		verdict, err := m.prove(ctx, small, large)
		if err != nil {
			return false, err
		}
		if verdict != "" {
			split(verdict)
			return false, nil
		}
	}
	if small.Size < large.Size && large.Timestamp < small.Timestamp {
		m.raise(ctx, rep, Alert{Kind: KindTimeBackwards, Nodes: nodesOf(small, large),
			Message:     fmt.Sprintf("%s's checkpoint of size %d is dated %d ms, before the %d ms of %s's checkpoint of size %d", large.node, large.Size, large.Timestamp, small.Timestamp, small.node, small.Size),
			Checkpoints: []Evidence{small.evidence(), large.evidence()}})
	}
	return true, nil
}

// prove asks for a consistency proof from small to large, first of the node
// that signed large, then of every node whose latest checkpoint is at least
// as large. verdict is "" when a proof verifies, and says why the two
// cannot both be true when every node that answered gave a proof that does
// not verify; err is set when no node answered.
func (m *Monitor) prove(ctx context.Context, small, large *seen) (verdict string, err error) {
	asked := []string{large.node}
	m.mu.Lock()
	for _, s := range m.sources {
		if s.url != large.node && s.latest != nil && s.latest.Size >= large.Size {
			asked = append(asked, s.url)
		}
	}
	m.mu.Unlock()
	var failed []string
	var errs []error
	for _, node := range asked {
		rctx, cancel := context.WithTimeout(ctx, m.cfg.RequestTimeout)
		p, err := m.client.ConsistencyProofOf(rctx, node, small.Size, large.Size)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", node, err))
			continue
		}
		if p.From != small.Size || p.Size != large.Size {
			errs = append(errs, fmt.Errorf("%s answered a proof from %d to %d, not from %d to %d", node, p.From, p.Size, small.Size, large.Size))
			continue
		}
		proof := make(tlog.TreeProof, len(p.Proof))
		for i, h := range p.Proof {
			proof[i] = tlog.Hash(h)
		}
		if tlog.CheckTree(proof, int64(large.Size), tlog.Hash(large.Root), int64(small.Size), tlog.Hash(small.Root)) == nil {
			return "", nil
		}
		failed = append(failed, node)
	}
	if len(failed) > 0 {
		return fmt.Sprintf("the consistency proof from size %d to %d of %v does not verify", small.Size, large.Size, failed), nil
	}
	return "", fmt.Errorf("no node proved size %d consistent with size %d: %w", small.Size, large.Size, errors.Join(errs...))
}

// nodesOf lists the nodes of two checkpoints, once each.
func nodesOf(a, b *seen) []string {
	if a.node == b.node {
		return []string{a.node}
	}
	return []string{a.node, b.node}
}

// derive reads a node's new leaves, at most budget of them (0: no bound),
// building its tree towards its latest checkpoint, and checks each leaf and
// the root at the checkpoint's size.
func (m *Monitor) derive(ctx context.Context, s *source, budget uint64, rep *Report) error {
	m.mu.Lock()
	if s.target == nil && s.latest != nil && s.latest.Size >= s.tree.size() {
		s.target = s.latest
	}
	target, stuck := s.target, s.stuck
	m.mu.Unlock()
	if target == nil || stuck != "" {
		return nil
	}
	read := uint64(0)
	for s.tree.size() < target.Size && (budget == 0 || read < budget) {
		next := s.tree.size()
		count := min(uint64(notaryapi.MaxLeavesPage), target.Size-next)
		if budget != 0 {
			count = min(count, budget-read)
		}
		rctx, cancel := context.WithTimeout(ctx, m.cfg.RequestTimeout)
		body, err := m.client.LeavesPageOf(rctx, s.url, next, count)
		cancel()
		if err != nil {
			return fmt.Errorf("leaves from %d: %w", next, err)
		}
		leaves, err := ParseLeaves(body, next, count)
		var le *LeafError
		if errors.As(err, &le) {
			m.mu.Lock()
			s.stuck = fmt.Sprintf("leaf %d is malformed", le.Index)
			m.mu.Unlock()
			idx := le.Index
			m.raise(ctx, rep, Alert{Kind: KindMalformedLeaf, Nodes: []string{s.url}, Index: &idx,
				Message:     fmt.Sprintf("%s served a malformed leaf %d (%v); its tree is not followed further", s.url, le.Index, le.Err),
				Checkpoints: []Evidence{target.evidence()}})
			return nil
		}
		if err != nil {
			return fmt.Errorf("leaves from %d: %w", next, err)
		}
		for i, lf := range leaves {
			index := next + uint64(i)
			if index > 0 && lf.Timestamp < s.tree.lastTime {
				m.raise(ctx, rep, Alert{Kind: KindTimeBackwards, Nodes: []string{s.url}, Index: &index,
					Message:     fmt.Sprintf("%s's leaf %d is stamped %d ms, before the %d ms of leaf %d", s.url, index, lf.Timestamp, s.tree.lastTime, index-1),
					Checkpoints: []Evidence{target.evidence()}})
			}
			if err := s.tree.append(lf); err != nil {
				return fmt.Errorf("leaf %d: %w", index, err)
			}
		}
		read += uint64(len(leaves))
		m.mu.Lock()
		s.derived = s.tree.size()
		m.mu.Unlock()
		m.metrics.leaves.WithLabelValues(s.url).Add(float64(len(leaves)))
	}
	if s.tree.size() < target.Size {
		return nil // the budget ran out: go on at the next poll
	}
	root, err := s.tree.root()
	if err != nil {
		return err
	}
	switch {
	case root != target.Root:
		size := target.Size
		m.raise(ctx, rep, Alert{Kind: KindRootMismatch, Nodes: []string{s.url},
			Message:     fmt.Sprintf("%s's leaves hash to root %s at size %d, but it signed root %s", s.url, root, size, target.Root),
			Checkpoints: []Evidence{target.evidence()}})
	case target.Size > 0 && target.Timestamp < s.tree.lastTime:
		index := target.Size - 1
		m.raise(ctx, rep, Alert{Kind: KindTimeBackwards, Nodes: []string{s.url}, Index: &index,
			Message:     fmt.Sprintf("%s's checkpoint of size %d is dated %d ms, before its leaf %d stamped %d ms", s.url, target.Size, target.Timestamp, index, s.tree.lastTime),
			Checkpoints: []Evidence{target.evidence()}})
	default:
		m.mu.Lock()
		s.verified, s.verifiedRoot = target.Size, root
		m.mu.Unlock()
		m.metrics.verified.WithLabelValues(s.url).Set(float64(target.Size))
	}
	m.mu.Lock()
	s.target = nil
	m.mu.Unlock()
	return nil
}

// raise records a new alert, logs it, counts it, saves its evidence and
// delivers it to the webhook. An alert of a kind already raised for the
// same nodes is only logged, at WARN: the first is the evidence, and the
// alerts kept are bounded by kinds and nodes, not by the log.
func (m *Monitor) raise(ctx context.Context, rep *Report, a Alert) {
	a.Time = time.Now().UTC()
	if len(a.Message) > maxMessage {
		a.Message = strings.ToValidUTF8(a.Message[:maxMessage], "") + "..."
	}
	key := alertKey(&a)
	m.mu.Lock()
	if m.raised[key] {
		m.mu.Unlock()
		m.log.WarnContext(ctx, "monitor: seen again (raised before): "+a.Message, "kind", a.Kind, "nodes", a.Nodes)
		return
	}
	m.raised[key] = true
	m.counts[a.Kind]++
	m.mu.Unlock()
	m.metrics.alerts.WithLabelValues(string(a.Kind)).Inc()
	if m.cfg.EvidenceDir != "" {
		if err := saveEvidence(m.cfg.EvidenceDir, &a); err != nil {
			m.metrics.deliveryErrors.WithLabelValues("evidence").Inc()
			m.log.ErrorContext(ctx, "monitor: cannot save evidence", "kind", a.Kind, "error", err)
		}
	}
	m.log.ErrorContext(ctx, "monitor: ALERT "+a.Message, "kind", a.Kind, "nodes", a.Nodes, "evidence", a.Dir)
	if m.cfg.Webhook != "" {
		if err := postWebhook(ctx, m.cfg.HTTPClient, m.cfg.Webhook, &a, m.cfg.WebhookTimeout); err != nil {
			m.metrics.deliveryErrors.WithLabelValues("webhook").Inc()
			m.log.ErrorContext(ctx, "monitor: cannot deliver alert to the webhook", "kind", a.Kind, "error", err)
		}
	}
	m.mu.Lock()
	m.alerts = append(m.alerts, a)
	if len(m.alerts) > maxKeptAlerts {
		m.alerts = slices.Delete(m.alerts, 0, len(m.alerts)-maxKeptAlerts)
	}
	m.mu.Unlock()
	rep.Alerts = append(rep.Alerts, a)
	if m.cfg.OnAlert != nil {
		m.cfg.OnAlert(a)
	}
}

// Alerts returns the alerts raised so far, oldest first (the last 1000).
func (m *Monitor) Alerts() []Alert {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.alerts)
}

// Nodes returns the state of every node, in the order of Config.Nodes.
func (m *Monitor) Nodes() []NodeState {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]NodeState, len(m.sources))
	for i, s := range m.sources {
		st := NodeState{Node: s.url, Derived: s.derived, Verified: s.verified, VerifiedRoot: s.verifiedRoot, Stuck: s.stuck}
		if s.latest != nil {
			st.Size, st.Root, st.Timestamp = s.latest.Size, s.latest.Root, s.latest.Timestamp
		}
		if s.lastErr != nil {
			st.Error = s.lastErr.Error()
		}
		out[i] = st
	}
	return out
}
