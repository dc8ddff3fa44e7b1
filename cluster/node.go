package cluster

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/httpd"
	"github.com/telenotary/telenotary/cluster/internal/raftfix"
	"github.com/telenotary/telenotary/cluster/internal/raftlog"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"golang.org/x/mod/sumdb/note"
)

// Config configures a node. Start from DefaultConfig.
type Config struct {
	// ID names the node in the cluster; it never changes.
	ID string
	// DataDir holds the node's raft log, snapshots and notary log.
	DataDir string
	// RaftAddr is the address raft listens on (host:port); RaftAdvertise,
	// when set, is the one other nodes dial.
	RaftAddr, RaftAdvertise string
	// HTTPAddr is the address the API listens on; HTTPAdvertise is its base
	// URL for other nodes and clients (default http(s)://HTTPAddr).
	HTTPAddr, HTTPAdvertise string
	// Bootstrap makes this node the first of a new cluster whose log is
	// named Origin. A node with state ignores it.
	Bootstrap bool
	Origin    string
	// Join lists API base URLs of nodes of the cluster to join, with an
	// operator token.
	Join      []string
	JoinToken string
	// Signer signs this node's checkpoints.
	Signer note.Signer
	// VerifierKey is the signer's verifier key, published to the cluster.
	VerifierKey string
	// Tokens authorizes API requests; nil refuses every authenticated one.
	Tokens *auth.Tokens
	// TLS, when set, serves the API over TLS. ClientTLS is used to reach
	// other nodes' APIs (joining, forwarding).
	TLS, ClientTLS *tls.Config
	// RaftTLS runs raft over mutual TLS (see MutualTLS). It is required
	// unless InsecureRaft is set.
	RaftTLS *tls.Config
	// InsecureRaft allows raft without TLS, on loopback addresses only: a
	// development cluster on one machine.
	InsecureRaft bool
	// APIMaxConns and APIMaxConnsPerIP bound the API's open connections,
	// in all and from one address; APILimits bounds each client's
	// requests and event streams.
	APIMaxConns, APIMaxConnsPerIP int
	APILimits                     httpd.Limits
	// RaftHandshakeTimeout bounds how long a connection to the raft port
	// may take to finish its TLS handshake (without TLS, to send its first
	// byte) before the node drops it.
	RaftHandshakeTimeout time.Duration
	// UpstreamRaft runs hashicorp/raft as released, without the changes of
	// package raftfix (see cluster/DESIGN.md): for comparison only, since
	// the fault campaign forked such clusters.
	UpstreamRaft bool
	// Logger receives the node's logs; nil discards them.
	Logger *slog.Logger

	// Raft timing and log retention.
	HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout time.Duration
	SnapshotInterval                                      time.Duration
	SnapshotThreshold, TrailingLogs                       uint64
	// Group commit: entries per raft entry, raft applies in flight,
	// submissions that may wait, and how long an apply may take.
	MaxBatchEntries, MaxInFlight, QueueLength int
	ApplyTimeout                              time.Duration
	// Clock stamps batches; tests skew it.
	Clock func() time.Time
	// CommitTimeout bounds how long a submission waits to commit before
	// it is answered 503 no_quorum (it may still commit; a retry is safe).
	CommitTimeout time.Duration
	// MaxLag is how many raft entries a follower may be behind the
	// leader's commit index and still be ready.
	MaxLag uint64
	// MinFreeDisk is the room a node keeps free on its data directory's
	// file system: with less, it is not ready and a leader refuses writes.
	MinFreeDisk uint64
	// MaxClockSkew is how far a leader's clock may be from those of a
	// majority of the voters for it to stamp (see the time guard in
	// clock.go).
	MaxClockSkew time.Duration
	// ScrubRate is how many leaves a second the background scrub reads
	// and checks (see scrub.go); 0 turns it off.
	ScrubRate int
	// FollowerCommitDelay bounds how long a follower, when no new entry
	// flows, takes to learn that the leader has committed what it holds
	// (raft's CommitTimeout: the leader tells it every 1–2× this). A
	// follower signs a checkpoint only once it has applied it, so this is
	// the wait of a cosigned receipt when the cluster is quiet; each
	// period costs one small message to each follower.
	FollowerCommitDelay time.Duration
	// NoHeal keeps a node whose log is found damaged as it is (serving
	// nothing from its log) for an operator to inspect, instead of
	// rebuilding the log from its peers (see heal.go).
	NoHeal bool
	// Witnesses are the c2sp.org/tlog-witness witnesses the leader submits
	// each new checkpoint to; every node serves their verified
	// cosignatures on its checkpoints (see "Witnesses" in
	// cluster/DESIGN.md). Give every node the same list.
	Witnesses []Witness
	// WitnessTimeout bounds one add-checkpoint request (and a follower's
	// fetch of the leader's cosignatures); WitnessMaxBackoff bounds the
	// wait between tries at a witness that fails or refuses.
	WitnessTimeout, WitnessMaxBackoff time.Duration
	// WitnessInterval is the least time between the starts of two
	// requests to one witness (a resend after a 409 aside): the checkpoints
	// made meanwhile are not sent, the newest is. 0 sends each as soon as
	// the witness has answered the last.
	WitnessInterval time.Duration
	// WitnessPoll is how often a follower fetches the cosignatures the
	// leader holds.
	WitnessPoll time.Duration
}

// DefaultConfig returns the settings a production node starts from.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   time.Second,
		ElectionTimeout:    time.Second,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		// A snapshot is the log's head (a sync and a few hundred bytes,
		// whatever the log's size), so raft may take one often: its bolt
		// log holds about TrailingLogs plus the entries of one or two
		// intervals. A follower more than TrailingLogs entries behind
		// installs a snapshot, which fetches only the leaves it lacks.
		SnapshotInterval:    30 * time.Second,
		SnapshotThreshold:   1024,
		TrailingLogs:        2048,
		MaxBatchEntries:     8192,
		MaxInFlight:         1,
		QueueLength:         16384,
		ApplyTimeout:        10 * time.Second,
		Clock:               time.Now,
		MaxClockSkew:        time.Second,
		MaxLag:              10_000,
		CommitTimeout:       5 * time.Second,
		MinFreeDisk:         256 << 20,
		ScrubRate:           5_000,
		FollowerCommitDelay: 50 * time.Millisecond,
		WitnessTimeout:      10 * time.Second,
		WitnessMaxBackoff:   30 * time.Second,
		WitnessInterval:     time.Second,
		WitnessPoll:         time.Second,

		RaftHandshakeTimeout: 10 * time.Second,
		APIMaxConns:          8192,
		APIMaxConnsPerIP:     1024,
		APILimits:            httpd.DefaultLimits(),
	}
}

// Timeouts of the API server: a client must send its request line and
// headers within apiReadHeader and its body within apiRead, an answer may
// take apiWrite to write (the event stream lifts it), and a kept-alive
// connection may idle for apiIdle.
const (
	apiReadHeader = 10 * time.Second
	apiRead       = 60 * time.Second
	apiWrite      = 60 * time.Second
	apiIdle       = 2 * time.Minute
	apiMaxHeader  = 64 << 10
)

// Validate names the first field that cannot work.
func (c Config) Validate() error {
	switch {
	case c.ID == "" || strings.ContainsAny(c.ID, " /\\+\n"):
		return fmt.Errorf("ID %q: give a name without spaces, slashes or '+'", c.ID)
	case c.DataDir == "":
		return errors.New("DataDir is required")
	case c.RaftAddr == "":
		return errors.New("RaftAddr is required")
	case c.HTTPAddr == "":
		return errors.New("HTTPAddr is required")
	case c.Bootstrap && len(c.Join) > 0:
		return errors.New("Bootstrap and Join exclude each other: bootstrap the first node, join the others")
	case c.Signer == nil || c.VerifierKey == "":
		return errors.New("Signer and VerifierKey are required: each node signs checkpoints with its own key")
	case c.RaftHandshakeTimeout <= 0:
		return errors.New("RaftHandshakeTimeout must be positive")
	case c.APIMaxConns < 1 || c.APIMaxConnsPerIP < 1:
		return errors.New("APIMaxConns and APIMaxConnsPerIP must be positive")
	case c.MaxBatchEntries < 1 || c.MaxInFlight < 1 || c.QueueLength < 1:
		return errors.New("MaxBatchEntries, MaxInFlight and QueueLength must be positive")
	case c.Clock == nil:
		return errors.New("Clock is required")
	case c.MaxClockSkew <= 0:
		return errors.New("MaxClockSkew must be positive")
	case c.CommitTimeout <= 0:
		return errors.New("CommitTimeout must be positive")
	case c.ScrubRate < 0:
		return errors.New("ScrubRate must not be negative (0 turns the scrub off)")
	case c.FollowerCommitDelay < time.Millisecond:
		return errors.New("FollowerCommitDelay must be at least 1ms")
	case len(c.Witnesses) > 0 && (c.WitnessTimeout <= 0 || c.WitnessMaxBackoff <= 0 || c.WitnessPoll <= 0):
		return errors.New("WitnessTimeout, WitnessMaxBackoff and WitnessPoll must be positive")
	case c.WitnessInterval < 0:
		return errors.New("WitnessInterval must not be negative")
	}
	if err := validateWitnesses(c.Witnesses, c.Signer); err != nil {
		return err
	}
	if err := c.checkRaftSecurity(); err != nil {
		return err
	}
	if err := c.APILimits.Validate(); err != nil {
		return fmt.Errorf("APILimits: %w", err)
	}
	if c.Bootstrap {
		if err := notary.ValidateOrigin(c.Origin); err != nil {
			return fmt.Errorf("Origin: %w", err)
		}
	}
	if v, err := note.NewVerifier(c.VerifierKey); err != nil || v.Name() != c.Signer.Name() || v.KeyHash() != c.Signer.KeyHash() {
		return errors.New("VerifierKey is not the key of Signer")
	}
	return nil
}

// Node is one member of a notary cluster: raft, the state machine over the
// notary log, the batcher and the HTTP API.
type Node struct {
	cfg     Config
	logger  *slog.Logger
	raft    *raft.Raft
	fsm     *fsm
	batcher *batcher
	events  *hub
	metrics *metrics
	http    *http.Server
	httpLn  net.Listener
	forward *http.Client
	raftLog *raftlog.Store        // raft's log
	boltDB  *raftboltdb.BoltStore // raft's stable store (term, vote)
	// readTerm is the term in which a raft barrier last succeeded: from
	// then on the leader's commit index serves consistent reads.
	readTerm atomic.Uint64
	// logStore and snapshots watch raft's writes for failures.
	logStore  *watchedLogStore
	snapshots *watchedSnapshots
	trans     raft.Transport

	beats heartbeats           // the leader's view of its followers
	clock *clockGuard          // this node's clock against the others'; a leader stamps only while they agree
	watch *raftfix.LeaderWatch // as follower: notices a silent leader on time; nil if off
	ready atomic.Bool          // as leader: the barrier after the election has passed
	scrub scrubber             // the background scrub's progress
	// ledger is the node's log as the API reads it; witnessed holds the
	// witnesses' verified cosignatures (witness.go).
	ledger    ledger
	witnessed *witnessed
	cancel    context.CancelFunc
	wg        sync.WaitGroup // background goroutines

	wipe      atomic.Bool // on stop, remove what this start wrote to DataDir: it never joined
	closeOnce sync.Once
	closeErr  error
	done      chan struct{} // closed when the node has stopped
	stopErr   atomic.Pointer[error]
}

// New starts a node. It refuses, before changing anything, a data
// directory of another node or cluster or with damaged state, and a listen
// address in use.
func New(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cluster: config: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, logger: cfg.Logger.With("node", cfg.ID), beats: heartbeats{failed: map[string]time.Time{}}, done: make(chan struct{})}
	n.forward = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: cfg.ClientTLS, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second,
	}}
	// Listen first: a port in use fails before anything opens or is
	// written.
	var err error
	if n.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("cluster: API address %s: %w", cfg.HTTPAddr, err)
	}
	n.httpLn = httpapi.LimitListener(n.httpLn, cfg.APIMaxConns, cfg.APIMaxConnsPerIP)
	trans, err := n.transport(newHclog(n.logger, "raft"))
	if err != nil { // trans may be a typed nil: keep it out of n.trans
		n.httpLn.Close()
		return nil, fmt.Errorf("cluster: raft address %s: %w", cfg.RaftAddr, err)
	}
	n.trans = trans
	if !cfg.UpstreamRaft {
		n.trans = raftfix.NewTransport(trans)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		n.shutdownParts()
		n.httpLn.Close()
		return nil, fmt.Errorf("cluster: data directory: %w", err)
	}
	id, err := checkIdentity(ctx, n.cfg.DataDir, n.cfg.ID, n.remoteClusterIDIfJoining)
	if err != nil {
		n.shutdownParts()
		n.httpLn.Close()
		return nil, err
	}
	if n.cfg.HTTPAdvertise == "" {
		scheme := "http"
		if cfg.TLS != nil {
			scheme = "https"
		}
		n.cfg.HTTPAdvertise = scheme + "://" + n.httpLn.Addr().String()
	}
	if err := n.start(ctx, id); err != nil {
		n.httpLn.Close()
		n.shutdownParts()
		return nil, err
	}
	return n, nil
}

// start opens the state and raft, then serves.
func (n *Node) start(ctx context.Context, id identity) error {
	hasState, err := n.openRaft(ctx, id)
	if err != nil {
		return err
	}
	n.serve(id, hasState)
	n.logger.InfoContext(ctx, "node started", "raft", n.trans.LocalAddr(), "api", n.cfg.HTTPAdvertise, "applied_index", n.fsm.applied.Load())
	return nil
}

// openRaft opens the FSM over the notary log, raft's log and snapshot
// stores, and raft itself, bootstrapping a new cluster if asked; it reports
// whether raft had state before.
func (n *Node) openRaft(ctx context.Context, id identity) (hasState bool, err error) {
	cfg := n.cfg // with HTTPAdvertise resolved
	if n.fsm, err = openFSM(cfg.DataDir, cfg.Signer, n.logger); err != nil {
		return false, fmt.Errorf("cluster: %w", err)
	}
	if g, _ := n.fsm.clusterInfo(); g != nil && id.ClusterID != "" && g.ClusterID != id.ClusterID {
		return false, fmt.Errorf("%w: %s records cluster %s but its log is of cluster %s", ErrCorruptState, identityName, id.ClusterID, g.ClusterID)
	}
	raftDir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		return false, err
	}
	hlog := raftLogger{newHclog(n.logger, "raft")}
	if n.raftLog, n.boltDB, err = openRaftStores(raftDir, n.logger); err != nil {
		return false, err
	}
	n.logStore = &watchedLogStore{LogStore: n.raftLog}
	logs, err := raft.NewLogCache(512, n.logStore)
	if err != nil {
		return false, err
	}
	files, err := raft.NewFileSnapshotStoreWithLogger(raftDir, 2, hlog)
	if err != nil {
		return false, fmt.Errorf("%w: raft snapshots: %v", ErrCorruptState, err)
	}
	n.snapshots = newWatchedSnapshots(files, filepath.Join(raftDir, "snapshots"))
	snaps := n.snapshots
	n.fsm.peerLeaves = n.snapshotLeaves
	if err := n.restoreInterrupted(ctx, snaps); err != nil {
		return false, fmt.Errorf("cluster: %w", err)
	}
	raftCfg := n.raftConfig(hlog)
	if err := raft.ValidateConfig(raftCfg); err != nil {
		return false, fmt.Errorf("cluster: raft config: %w", err)
	}
	if hasState, err = raft.HasExistingState(logs, n.boltDB, snaps); err != nil {
		return false, err
	}
	if cfg.Bootstrap && !hasState {
		conf := raft.Configuration{Servers: []raft.Server{{ID: raftCfg.LocalID, Address: n.trans.LocalAddr()}}}
		if err := raft.BootstrapCluster(raftCfg, logs, n.boltDB, snaps, n.trans, conf); err != nil {
			return false, fmt.Errorf("cluster: bootstrap: %w", err)
		}
	}
	// Everything the FSM calls is in place before raft starts its FSM
	// goroutine, which may apply at once.
	n.metrics = newMetrics(n)
	n.logStore.took = func(d time.Duration) { n.metrics.stage("append", d) }
	n.events = newHub(cfg.APILimits.AnonymousStreams + cfg.APILimits.OperatorStreams)
	n.fsm.onApply = func(a applied) {
		n.events.notarized(a)
		for reason, k := range a.Refused {
			n.metrics.lifecycleRefused.WithLabelValues(reason).Add(float64(k))
		}
	}
	n.fsm.onFail = n.stop
	if n.raft, err = raft.NewRaft(raftCfg, n.fsm, logs, n.boltDB, snaps, n.trans); err != nil {
		return false, fmt.Errorf("cluster: raft: %w", err)
	}
	if t, ok := n.trans.(*raftfix.Transport); ok {
		push := n.pushCommitted
		n.fsm.committed.Store(&push)
		// A leader's new entries go to the followers while it writes
		// them (raftfix.Transport.SendAhead).
		ahead := func(logs []*raft.Log) {
			if n.raft.State() == raft.Leader {
				n.metrics.sentAhead.Add(float64(t.SendAhead(logs)))
			}
		}
		n.logStore.ahead.Store(&ahead)
	}
	if !cfg.UpstreamRaft {
		n.watch = raftfix.NewLeaderWatch(n.raft, raftCfg)
		if st, ok := n.trans.(*raftfix.Transport); ok && n.watch != nil {
			st.SetWatch(n.watch)
		}
	}
	return hasState, nil
}

// raftConfig is raft's configuration for this node.
func (n *Node) raftConfig(hlog hclog.Logger) *raft.Config {
	raftCfg := raft.DefaultConfig()
	raftCfg.LocalID = raft.ServerID(n.cfg.ID)
	raftCfg.Logger = hlog
	raftCfg.HeartbeatTimeout, raftCfg.ElectionTimeout, raftCfg.LeaderLeaseTimeout = n.cfg.HeartbeatTimeout, n.cfg.ElectionTimeout, n.cfg.LeaderLeaseTimeout
	raftCfg.SnapshotInterval, raftCfg.SnapshotThreshold, raftCfg.TrailingLogs = n.cfg.SnapshotInterval, n.cfg.SnapshotThreshold, n.cfg.TrailingLogs
	// No buffered apply channel: the batcher batches already, and a future
	// left in raft's buffer when it shuts down is never answered.
	raftCfg.BatchApplyCh = false
	raftCfg.MaxAppendEntries = 256
	raftCfg.CommitTimeout = n.cfg.FollowerCommitDelay
	raftCfg.NoSnapshotRestoreOnStart = true // the FSM is durable: it resumes from its own applied index
	return raftCfg
}

// serve starts the node's goroutines: the batcher, the event hub, the
// watches of leadership and of the cluster, the leader watch, the API, and
// joining. Each stops when the node does (shutdownParts waits for them).
func (n *Node) serve(id identity, hasState bool) {
	cfg := n.cfg
	n.clock = &clockGuard{now: cfg.Clock, bound: cfg.MaxClockSkew, client: n.forward}
	n.batcher = newBatcher(n.raft, n.fsm, cfg)
	n.batcher.observe = n.metrics.batch
	n.batcher.stage = n.metrics.stage
	n.batcher.admit = n.admit
	n.batcher.cosign = n.cosignAt
	bg, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.goFunc(func() { n.batcher.run(bg) })
	n.goFunc(func() { n.events.run(bg) })
	n.goFunc(func() { n.watchLeadership(bg) })
	n.goFunc(func() { n.watchCluster(bg) })
	n.goFunc(func() { n.watchClock(bg) })
	if n.cfg.ScrubRate > 0 {
		n.goFunc(func() { n.scrubLoop(bg) })
	}
	if !n.cfg.NoHeal {
		n.goFunc(func() { n.healLoop(bg) })
	}
	if n.watch != nil {
		n.goFunc(func() {
			if err := n.watch.Run(bg); err != nil {
				n.logger.Warn("leader watch stopped; raft's own heartbeat timer remains", "error", err)
			}
		})
	}
	n.ledger = ledger{fsm: n.fsm, self: cfg.ID, client: n.forward, cosigns: newCosignCache(), pushCommit: n.pushCommit,
		streams: newCosignStreams(n.forward), counted: func(via string) { n.metrics.cosignatures.WithLabelValues(via).Inc() }}
	n.witnessed = newWitnessed(cfg.Witnesses, n.metrics.witness)
	n.runWitnesses(bg)
	var witnesses httpd.Witnesses
	if len(cfg.Witnesses) > 0 {
		witnesses = n.witnessed
	}
	stopping := make(chan struct{})
	handler := httpd.New(httpd.Config{
		Cluster: n, Ledger: n.ledger, Witnesses: witnesses,
		Tokens: cfg.Tokens, Forward: n.forward, ForwardTLS: cfg.ClientTLS, Logger: n.logger, Limits: cfg.APILimits,
		Forwarded: func(entries int) {
			n.metrics.forwarded.WithLabelValues("batches").Inc()
			n.metrics.forwarded.WithLabelValues("entries").Add(float64(entries))
		},
		Metrics:  promhttp.HandlerFor(n.metrics.registry, promhttp.HandlerOpts{}),
		Stage:    n.metrics.stage,
		Stopping: stopping,
	})
	if cfg.TLS != nil {
		handler = httpapi.HSTS(handler)
	}
	n.http = &http.Server{Handler: handler, TLSConfig: cfg.TLS,
		ReadHeaderTimeout: apiReadHeader, ReadTimeout: apiRead, WriteTimeout: apiWrite, IdleTimeout: apiIdle, MaxHeaderBytes: apiMaxHeader,
		ErrorLog: slog.NewLogLogger(n.logger.Handler(), slog.LevelWarn)}
	// Shutdown waits for the handlers to return: end the streams.
	n.http.RegisterOnShutdown(sync.OnceFunc(func() {
		n.events.close()
		close(stopping)
	}))
	n.goFunc(func() {
		var err error
		if cfg.TLS != nil {
			err = n.http.ServeTLS(n.httpLn, "", "")
		} else {
			err = n.http.Serve(n.httpLn)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			n.logger.Error("API server stopped", "error", err)
		}
	})
	switch {
	case len(cfg.Join) > 0 && !hasState:
		n.goFunc(func() { n.joinLoop(bg, id) })
	case len(cfg.Join) > 0:
		// A member restarting: it is in the cluster already, but if the
		// nodes it was told to join turn out to be another cluster, the
		// configuration is wrong and the node stops.
		n.goFunc(func() { n.verifyJoinTargets(bg, id) })
	}
}

func (n *Node) goFunc(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// transport makes raft's network layer: TCP with mutual TLS, or plain TCP
// on loopback (see streamLayer).
func (n *Node) transport(hlog hclog.Logger) (raft.Transport, error) {
	var adv net.Addr
	if n.cfg.RaftAdvertise != "" {
		a, err := net.ResolveTCPAddr("tcp", n.cfg.RaftAdvertise)
		if err != nil {
			return nil, err
		}
		adv = a
	}
	stream, err := newStreamLayer(n.cfg.RaftAddr, adv, n.cfg.RaftTLS, n.cfg.RaftHandshakeTimeout)
	if err != nil {
		return nil, err
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: stream, MaxPool: 5, Timeout: 10 * time.Second, Logger: transportLogger{hlog}}), nil
}

// watchLeadership readies the node: a new leader first applies everything
// its predecessors committed (a barrier), so the state it stamps and reads
// is current, and a new cluster's first leader writes the genesis.
func (n *Node) watchLeadership(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var progress catchUp
	for {
		if msg, args := progress.observe(time.Now(), n.raft.AppliedIndex(), n.raft.CommitIndex()); msg != "" {
			n.logger.InfoContext(ctx, msg, args...)
		}
		isLeader := n.raft.State() == raft.Leader
		if isLeader && !n.ready.Load() {
			if err := n.raft.Barrier(n.cfg.ApplyTimeout).Error(); err != nil {
				n.logger.WarnContext(ctx, "barrier after election failed", "error", err)
			} else if err := n.ensureGenesis(); err != nil {
				n.logger.WarnContext(ctx, "cannot record the cluster's genesis", "error", err)
			} else {
				n.ready.Store(true)
			}
		} else if !isLeader {
			n.ready.Store(false) // a leader-to-be must pass the barrier again
		}
		select {
		case <-ctx.Done():
			return
		case <-n.raft.LeaderCh():
			n.ready.Store(false)
		case <-tick.C:
		}
	}
}

// ensureGenesis, on the leader, records the cluster's identity if the log
// has none yet, and this node as a member if it is missing.
func (n *Node) ensureGenesis() error {
	g, members := n.fsm.clusterInfo()
	if g == nil {
		if !n.cfg.Bootstrap {
			return errors.New("the cluster has no genesis and this node was not started with Bootstrap")
		}
		var raw [16]byte
		rand.Read(raw[:])
		g = &genesis{ClusterID: hex.EncodeToString(raw[:]), Origin: n.cfg.Origin}
		if err := n.propose(encodeJSONCommand(cmdGenesis, g)); err != nil {
			return err
		}
		g, _ = n.fsm.clusterInfo()
	}
	if err := recordClusterID(n.cfg.DataDir, n.cfg.ID, g.ClusterID); err != nil {
		return err
	}
	self := n.self()
	for _, m := range members {
		if m.Member == self {
			return nil
		}
	}
	proof, err := proveMember(n.cfg.Signer, g.ClusterID, self)
	if err != nil {
		return err
	}
	return n.propose(encodeJSONCommand(cmdMember, memberCommand{Member: self, KeyProof: proof}))
}

// propose applies a command through raft (this node must lead) and returns
// why it failed: raft's error, or the FSM's refusal.
func (n *Node) propose(cmd []byte) error {
	f := n.raft.Apply(cmd, n.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		return raftError(err)
	}
	if r, ok := f.Response().(*applyResult); ok && r.err != nil {
		return r.err
	}
	return nil
}

// self is this node as a member.
func (n *Node) self() notaryapi.Member {
	return notaryapi.Member{ID: n.cfg.ID, RaftAddr: string(n.trans.LocalAddr()), HTTPAddr: n.cfg.HTTPAdvertise, VerifierKey: n.cfg.VerifierKey}
}

// Close stops the node gracefully: a leader first hands leadership to
// another voter, then the API stops taking requests, queued submissions
// fail, raft shuts down and the log is synced and closed. It is safe to
// call more than once.
func (n *Node) Close(ctx context.Context) error {
	n.closeOnce.Do(func() {
		if n.raft != nil && n.raft.State() == raft.Leader && n.otherVoters() > 0 {
			if err := n.raft.LeadershipTransfer().Error(); err != nil {
				n.logger.WarnContext(ctx, "leadership transfer before shutdown failed", "error", err)
			}
		}
		if n.http != nil {
			n.http.Shutdown(ctx)
		}
		// Raft and the log close in the background so that a part that
		// hangs cannot hold the caller past its deadline.
		finished := make(chan error, 1)
		go func() { finished <- n.shutdownParts() }()
		select {
		case n.closeErr = <-finished:
			n.logger.InfoContext(ctx, "node stopped")
		case <-ctx.Done():
			n.closeErr = fmt.Errorf("%w: shutdown did not finish in time: %w", ErrClosed, ctx.Err())
			n.logger.ErrorContext(ctx, "node shutdown timed out", "error", n.closeErr)
		}
		close(n.done)
	})
	return n.closeErr
}

// stop closes the node from within, for a reason it cannot go on with;
// Err returns the reason once Done is closed.
func (n *Node) stop(reason error) {
	if n.stopErr.CompareAndSwap(nil, &reason) {
		n.logger.Error("node stopping", "error", reason)
		go n.Close(context.Background())
	}
}

// Done is closed when the node has stopped, by Close or on its own.
func (n *Node) Done() <-chan struct{} { return n.done }

// Err returns why the node stopped on its own, or nil.
func (n *Node) Err() error {
	if p := n.stopErr.Load(); p != nil {
		return *p
	}
	return nil
}

// shutdownParts stops whatever start got to open, in reverse order.
func (n *Node) shutdownParts() error {
	var errs []error
	if n.cancel != nil {
		n.cancel()
	}
	if n.ledger.streams != nil {
		n.ledger.streams.close()
	}
	if n.fsm != nil {
		n.fsm.stopWaiting() // raft's shutdown waits for the FSM
	}
	if n.raft != nil {
		errs = append(errs, n.raft.Shutdown().Error())
	}
	n.wg.Wait()
	if n.trans != nil {
		if c, ok := n.trans.(interface{ Close() error }); ok {
			c.Close()
		}
	}
	if n.fsm != nil {
		errs = append(errs, n.fsm.close())
	}
	if n.raftLog != nil {
		errs = append(errs, n.raftLog.Close())
	}
	if n.boltDB != nil {
		errs = append(errs, n.boltDB.Close())
	}
	if n.wipe.Load() {
		errs = append(errs, emptyDir(n.cfg.DataDir))
		n.logger.Info("removed what this node wrote to its data directory: it never joined", "dir", n.cfg.DataDir)
	}
	return errors.Join(errs...)
}

// emptyDir removes everything in dir, keeping dir itself.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// otherVoters counts the voters besides this node.
func (n *Node) otherVoters() int {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return 0
	}
	count := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter && s.ID != raft.ServerID(n.cfg.ID) {
			count++
		}
	}
	return count
}

// Ready reports whether the node can do its job now (see NotReady).
func (n *Node) Ready() bool { return n.notReady() == nil }

// NotReady says why the node cannot do its job now, or nil: see the
// conditions in health.go.
func (n *Node) NotReady() error { return n.notReady() }

// HTTPAddr returns the API's listening address (useful with port 0).
func (n *Node) HTTPAddr() string { return n.httpLn.Addr().String() }

// RaftAddr returns raft's advertised address.
func (n *Node) RaftAddr() string { return string(n.trans.LocalAddr()) }
