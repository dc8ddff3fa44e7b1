package cluster

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
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
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/filestore"
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
	Tokens *Tokens
	// TLS, when set, serves the API over TLS. ClientTLS is used to reach
	// other nodes' APIs (joining, forwarding).
	TLS, ClientTLS *tls.Config
	// RaftTLS, when set, runs raft over mutual TLS (see newTLSStreamLayer).
	RaftTLS *tls.Config
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
}

// DefaultConfig returns the settings a production node starts from.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   time.Second,
		ElectionTimeout:    time.Second,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		SnapshotInterval:   2 * time.Minute,
		SnapshotThreshold:  8192,
		TrailingLogs:       10240,
		MaxBatchEntries:    8192,
		MaxInFlight:        1,
		QueueLength:        16384,
		ApplyTimeout:       10 * time.Second,
		Clock:              time.Now,
	}
}

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
	case c.MaxBatchEntries < 1 || c.MaxInFlight < 1 || c.QueueLength < 1:
		return errors.New("MaxBatchEntries, MaxInFlight and QueueLength must be positive")
	case c.Clock == nil:
		return errors.New("Clock is required")
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
	boltDB  *raftboltdb.BoltStore
	trans   raft.Transport

	beats  heartbeats   // the leader's view of its followers
	watch  *leaderWatch // as follower: notices a silent leader on time; nil if off
	ready  atomic.Bool  // as leader: the barrier after the election has passed
	cancel context.CancelFunc
	wg     sync.WaitGroup // background goroutines

	closeOnce sync.Once
	closeErr  error
	done      chan struct{} // closed when the node has stopped
	stopErr   atomic.Pointer[error]
}

// identity is what a data directory records about its owner.
type identity struct {
	NodeID    string `json:"node_id"`
	ClusterID string `json:"cluster_id,omitempty"`
}

const identityName = "node.json"

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
	trans, err := n.transport(newHclog(n.logger, "raft"))
	if err != nil { // trans may be a typed nil: keep it out of n.trans
		n.httpLn.Close()
		return nil, fmt.Errorf("cluster: raft address %s: %w", cfg.RaftAddr, err)
	}
	n.trans = newSafeTransport(trans)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		n.shutdownParts()
		n.httpLn.Close()
		return nil, fmt.Errorf("cluster: data directory: %w", err)
	}
	id, err := n.checkIdentity(ctx)
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

// checkIdentity reads or creates node.json and, for a node with state that
// joins, checks that the cluster it joins is its own.
func (n *Node) checkIdentity(ctx context.Context) (identity, error) {
	path := filepath.Join(n.cfg.DataDir, identityName)
	var id identity
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		entries, _ := os.ReadDir(n.cfg.DataDir)
		if len(entries) > 0 {
			return id, fmt.Errorf("%w: %s is not empty and has no %s; give an empty directory or the node's own", ErrCorruptState, n.cfg.DataDir, identityName)
		}
		id = identity{NodeID: n.cfg.ID}
		b, _ := json.Marshal(id)
		if err := filestore.WriteFileDurably(path, b); err != nil {
			return id, fmt.Errorf("cluster: %w", err)
		}
		return id, nil
	case err != nil:
		return id, fmt.Errorf("cluster: %w", err)
	}
	if err := json.Unmarshal(b, &id); err != nil {
		return id, fmt.Errorf("%w: %s: %v", ErrCorruptState, path, err)
	}
	if id.NodeID != n.cfg.ID {
		return id, fmt.Errorf("%w: %s belongs to node %q, not %q", ErrCorruptState, n.cfg.DataDir, id.NodeID, n.cfg.ID)
	}
	if id.ClusterID != "" && len(n.cfg.Join) > 0 {
		if theirs, err := n.remoteClusterID(ctx); err == nil && theirs != "" && theirs != id.ClusterID {
			return id, fmt.Errorf("%w: %s belongs to cluster %s, but %s is cluster %s", ErrCorruptState, n.cfg.DataDir, id.ClusterID, strings.Join(n.cfg.Join, ","), theirs)
		}
	}
	return id, nil
}

// start opens the state, raft and the API.
func (n *Node) start(ctx context.Context, id identity) error {
	cfg := n.cfg // with HTTPAdvertise resolved
	var err error
	if n.fsm, err = openFSM(cfg.DataDir, cfg.Signer, n.logger); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	if g, _ := n.fsm.clusterInfo(); g != nil && id.ClusterID != "" && g.ClusterID != id.ClusterID {
		return fmt.Errorf("%w: %s records cluster %s but its log is of cluster %s", ErrCorruptState, identityName, id.ClusterID, g.ClusterID)
	}
	raftDir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		return err
	}
	hlog := newHclog(n.logger, "raft")
	if n.boltDB, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(raftDir, "raft.db")}); err != nil {
		return fmt.Errorf("%w: raft log: %v", ErrCorruptState, err)
	}
	logs, err := raft.NewLogCache(512, n.boltDB)
	if err != nil {
		return err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, 2, hlog)
	if err != nil {
		return fmt.Errorf("%w: raft snapshots: %v", ErrCorruptState, err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hlog
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout
	rc.SnapshotInterval, rc.SnapshotThreshold, rc.TrailingLogs = cfg.SnapshotInterval, cfg.SnapshotThreshold, cfg.TrailingLogs
	// No buffered apply channel: the batcher batches already, and a future
	// left in raft's buffer when it shuts down is never answered.
	rc.BatchApplyCh = false
	rc.MaxAppendEntries = 256
	rc.NoSnapshotRestoreOnStart = true // the FSM is durable: it resumes from its own applied index
	if err := raft.ValidateConfig(rc); err != nil {
		return fmt.Errorf("cluster: raft config: %w", err)
	}
	hasState, err := raft.HasExistingState(logs, n.boltDB, snaps)
	if err != nil {
		return err
	}
	if cfg.Bootstrap {
		if !hasState {
			conf := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: n.trans.LocalAddr()}}}
			if err := raft.BootstrapCluster(rc, logs, n.boltDB, snaps, n.trans, conf); err != nil {
				return fmt.Errorf("cluster: bootstrap: %w", err)
			}
		}
	}
	if n.raft, err = raft.NewRaft(rc, n.fsm, logs, n.boltDB, snaps, n.trans); err != nil {
		return fmt.Errorf("cluster: raft: %w", err)
	}
	n.fsm.onFail = n.stop
	n.metrics = newMetrics(n)
	n.events = newHub()
	n.fsm.onApply = n.events.notarized
	n.batcher = newBatcher(n.raft, n.fsm, cfg)
	n.batcher.observe = n.metrics.batch
	bg, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.goFunc(func() { n.batcher.run(bg) })
	n.goFunc(func() { n.events.run(bg) })
	n.goFunc(func() { n.watchLeadership(bg) })
	n.goFunc(func() { n.watchCluster(bg) })
	if n.watch = newLeaderWatch(n.raft, rc); n.watch != nil {
		if st, ok := n.trans.(*safeTransport); ok {
			st.watch.Store(n.watch)
		}
		n.goFunc(func() {
			if err := n.watch.run(bg); err != nil {
				n.logger.Warn("leader watch stopped; raft's own heartbeat timer remains", "error", err)
			}
		})
	}
	n.http = &http.Server{Handler: n.routes(), TLSConfig: cfg.TLS, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(n.logger.Handler(), slog.LevelWarn)}
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
	n.logger.Info("node started", "raft", n.trans.LocalAddr(), "api", cfg.HTTPAdvertise, "applied_index", n.fsm.applied.Load())
	return nil
}

func (n *Node) goFunc(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// transport makes raft's network layer: TCP, or mutual TLS.
func (n *Node) transport(hlog hclog.Logger) (raft.Transport, error) {
	var adv net.Addr
	if n.cfg.RaftAdvertise != "" {
		a, err := net.ResolveTCPAddr("tcp", n.cfg.RaftAdvertise)
		if err != nil {
			return nil, err
		}
		adv = a
	}
	if n.cfg.RaftTLS == nil {
		return raft.NewTCPTransportWithLogger(n.cfg.RaftAddr, adv, 5, 10*time.Second, hlog)
	}
	stream, err := newTLSStreamLayer(n.cfg.RaftAddr, adv, n.cfg.RaftTLS)
	if err != nil {
		return nil, err
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: stream, MaxPool: 5, Timeout: 10 * time.Second, Logger: hlog}), nil
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
			n.logger.Info(msg, args...)
		}
		isLeader := n.raft.State() == raft.Leader
		if isLeader && !n.ready.Load() {
			if err := n.raft.Barrier(n.cfg.ApplyTimeout).Error(); err != nil {
				n.logger.Warn("barrier after election failed", "error", err)
			} else if err := n.ensureGenesis(); err != nil {
				n.logger.Warn("cannot record the cluster's genesis", "error", err)
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
		if err := n.raft.Apply(encodeJSONCommand(cmdGenesis, g), n.cfg.ApplyTimeout).Error(); err != nil {
			return err
		}
		g, _ = n.fsm.clusterInfo()
	}
	if err := n.recordClusterID(g.ClusterID); err != nil {
		return err
	}
	self := n.self()
	for _, m := range members {
		if m == self {
			return nil
		}
	}
	return n.raft.Apply(encodeJSONCommand(cmdMember, self), n.cfg.ApplyTimeout).Error()
}

// self is this node as a member.
func (n *Node) self() Member {
	return Member{ID: n.cfg.ID, RaftAddr: string(n.trans.LocalAddr()), HTTPAddr: n.cfg.HTTPAdvertise, VerifierKey: n.cfg.VerifierKey}
}

// recordClusterID writes the cluster's id into node.json once known.
func (n *Node) recordClusterID(clusterID string) error {
	path := filepath.Join(n.cfg.DataDir, identityName)
	b, _ := json.Marshal(identity{NodeID: n.cfg.ID, ClusterID: clusterID})
	if old, err := os.ReadFile(path); err == nil && string(old) == string(b) {
		return nil
	}
	return filestore.WriteFileDurably(path, b)
}

// Close stops the node gracefully: a leader first hands leadership to
// another voter, then the API stops taking requests, queued submissions
// fail, raft shuts down and the log is synced and closed. It is safe to
// call more than once.
func (n *Node) Close(ctx context.Context) error {
	n.closeOnce.Do(func() {
		if n.raft != nil && n.raft.State() == raft.Leader && n.otherVoters() > 0 {
			if err := n.raft.LeadershipTransfer().Error(); err != nil {
				n.logger.Warn("leadership transfer before shutdown failed", "error", err)
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
			n.logger.Info("node stopped")
		case <-ctx.Done():
			n.closeErr = fmt.Errorf("%w: shutdown did not finish in time: %w", ErrClosed, ctx.Err())
			n.logger.Error("node shutdown timed out", "error", n.closeErr)
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
	if n.boltDB != nil {
		errs = append(errs, n.boltDB.Close())
	}
	return errors.Join(errs...)
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

// Ready reports whether the node can serve submissions: it knows a leader
// and the cluster's identity, and if it leads, has applied all before it.
func (n *Node) Ready() bool {
	if n.raft.State() == raft.Leader {
		return n.ready.Load() // set once the barrier after the election passed
	}
	_, leader := n.raft.LeaderWithID()
	g, _ := n.fsm.clusterInfo()
	return leader != "" && g != nil
}

// HTTPAddr returns the API's listening address (useful with port 0).
func (n *Node) HTTPAddr() string { return n.httpLn.Addr().String() }

// RaftAddr returns raft's advertised address.
func (n *Node) RaftAddr() string { return string(n.trans.LocalAddr()) }
