package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/filestore"
)

const nodeSynopsis = `node --id ID --data-dir DIR --signer-key FILE --tokens FILE
                 (--bootstrap --origin ORIGIN | --join URL[,URL...] --join-token-file FILE) [flags]

Runs one node of a notary cluster until interrupted; on SIGINT or SIGTERM a
leader hands leadership to another node before it stops.`

// testHooksEnv, set to 1, enables the node's test-only flags (see
// nodeFlags.define).
const testHooksEnv = "TELENOTARY_TEST_HOOKS"

// nodeStopTimeout bounds a node's shutdown.
const nodeStopTimeout = 30 * time.Second

// defaultMemoryLimitMiB is the node's default soft memory limit: its heap
// does not grow with the log, only with the requests in flight, and left
// alone the collector let it reach 130-290 MiB of RSS under load where a
// limit of 150 MiB held it near 120 (docs/BENCHMARKS.md).
const defaultMemoryLimitMiB = 150

// applyMemoryLimit sets the Go runtime's soft memory limit to mib MiB
// (none for 0) unless GOMEMLIMIT is set, and returns the limit in force in
// bytes (0 for none).
func applyMemoryLimit(mib uint64, getenv func(string) string) int64 {
	if getenv("GOMEMLIMIT") == "" {
		limit := int64(math.MaxInt64)
		if mib > 0 {
			limit = int64(min(mib, math.MaxInt64>>20)) << 20
		}
		debug.SetMemoryLimit(limit)
	}
	if limit := debug.SetMemoryLimit(-1); limit != math.MaxInt64 {
		return limit
	}
	return 0
}

// offHeapCheck is how often leaveRoomOffHeap looks at the store's memory.
const offHeapCheck = 5 * time.Second

// leaveRoomOffHeap keeps the Go runtime's soft memory limit at limit less
// what the log's store holds outside the Go heap (its index's memtables and
// filters, filestore.OffHeapBytes), which the runtime does not count, so
// that the node as a whole stays near limit as the index's filters grow
// with the log; never below half of limit. It adjusts the limit now and
// every offHeapCheck until the returned function is called.
func leaveRoomOffHeap(limit int64) (stop func()) {
	adjust := func() { debug.SetMemoryLimit(max(limit-filestore.OffHeapBytes(), limit/2)) }
	adjust()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(offHeapCheck)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				adjust()
			}
		}
	}()
	return func() { close(done) }
}

// runNode parses the flags, builds the node's configuration, starts the
// node (and the profiler, if asked), waits for a signal to stop or for the
// node to fail, and shuts it down.
func runNode(ctx context.Context, env *environment, args []string) int {
	fail := func(err error) int { return usageError(env.stderr, "node", err) }
	var f nodeFlags
	if err := f.parse(env, args); err != nil {
		return fail(err)
	}
	cfg, err := f.config(env)
	if err != nil {
		return fail(err)
	}
	warnClearText(func(line string) { cfg.Logger.WarnContext(ctx, line) }, "--join", "join token", cfg.Join)
	if limit := applyMemoryLimit(f.memoryLimitMiB, env.getenv); limit > 0 {
		cfg.Logger.DebugContext(ctx, "soft memory limit", "mib", limit>>20)
		if env.getenv("GOMEMLIMIT") == "" {
			defer leaveRoomOffHeap(limit)()
		}
	}
	// From here on the command line was sound: what fails is the run.
	failed := func(err error) int { return failure(env.stderr, "node", err) }
	node, err := f.start(ctx, cfg)
	if err != nil {
		return failed(err) // one line: a data directory refused says so alone
	}
	if line := f.firstStartFlags(); line != "" {
		cfg.Logger.WarnContext(ctx, line, "data_dir", f.dataDir)
	}
	if f.debugAddr != "" {
		stopDebug, err := serveDebug(f.debugAddr)
		if err != nil {
			node.Close(context.Background())
			return failed(fmt.Errorf("--debug-addr: %w", err))
		}
		defer stopDebug() // after the node: profile a slow shutdown too
	}
	select {
	case <-ctx.Done():
	case <-node.Done(): // it stopped on its own: say why and fail
		return failed(node.Err())
	}
	// Close stops in order: it hands over leadership, stops taking
	// requests, finishes what is in flight, then closes raft and the log.
	stopCtx, cancel := context.WithTimeout(context.Background(), nodeStopTimeout)
	defer cancel()
	if err := node.Close(stopCtx); err != nil {
		return failed(fmt.Errorf("shutdown: %w", err))
	}
	return exitOK
}

// nodeFlags is the command line of telenotary node.
type nodeFlags struct {
	id, dataDir                                      string
	raftAddr, raftAdvertise, httpAddr, httpAdvertise string
	bootstrap                                        bool
	origin                                           string
	join, joinTokenFile                              string
	signerKey, tokensFile                            string
	tlsCert, tlsKey, tlsCA                           string
	raftCert, raftKey, raftCA                        string
	insecureRaft                                     bool
	maxClockSkew                                     time.Duration
	minFreeDiskMiB                                   uint64
	memoryLimitMiB                                   uint64
	scrubRate                                        int
	noHeal                                           bool
	followerCommitDelay                              time.Duration
	logLevel                                         string
	logJSON                                          bool
	debugAddr                                        string
	witnesses                                        witnessFlag
	witnessInterval                                  time.Duration
	snapshotInterval                                 time.Duration
	snapshotThreshold, trailingLogs                  uint64
	resumes                                          bool          // the data directory holds this node's state
	clockOffset                                      time.Duration // test hook
}

// define declares the flags on fs.
func (f *nodeFlags) define(env *environment, fs *flag.FlagSet) {
	fs.StringVar(&f.id, "id", "", "this node's name in the cluster; never changes (required)")
	fs.StringVar(&f.dataDir, "data-dir", "", "directory of the node's raft log, snapshots and notary log (required)")
	fs.StringVar(&f.raftAddr, "raft-addr", "127.0.0.1:7000", "address raft listens on")
	fs.StringVar(&f.raftAdvertise, "raft-advertise", "", "address other nodes dial for raft (default: --raft-addr)")
	fs.StringVar(&f.httpAddr, "http-addr", "127.0.0.1:8080", "address the HTTP API listens on")
	fs.StringVar(&f.httpAdvertise, "http-advertise", "", "base URL of this node's API for clients and other nodes (default: http(s)://--http-addr)")
	fs.BoolVar(&f.bootstrap, "bootstrap", false, "start a new cluster with this node as its first member")
	fs.StringVar(&f.origin, "origin", "", "with --bootstrap: the log's name in every checkpoint, such as notary.example.org/telehealth")
	fs.StringVar(&f.join, "join", "", "comma-separated API URLs of nodes of the cluster to join")
	fs.StringVar(&f.joinTokenFile, "join-token-file", "", `file (mode 0600) holding a "join" token of the cluster to join (an operator token works too, but the node keeps this file)`)
	fs.StringVar(&f.signerKey, "signer-key", "", "this node's signer key file (mode 0600), from telenotary keygen (required)")
	fs.StringVar(&f.tokensFile, "tokens", "", `bearer tokens file (mode 0600): lines of "submitter TOKEN", "join TOKEN", "operator TOKEN" or "pharmacy TOKEN" (required)`)
	fs.StringVar(&f.tlsCert, "tls-cert", "", "certificate (PEM) to serve the API over TLS")
	fs.StringVar(&f.tlsKey, "tls-key", "", "private key (PEM, mode 0600) of --tls-cert")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "CA certificates (PEM) that sign the other nodes' API certificates")
	fs.StringVar(&f.raftCert, "raft-tls-cert", "", "certificate (PEM) of this node for mutual TLS between nodes")
	fs.StringVar(&f.raftKey, "raft-tls-key", "", "private key (PEM, mode 0600) of --raft-tls-cert")
	fs.StringVar(&f.raftCA, "raft-tls-ca", "", "CA certificates (PEM) that sign every node's --raft-tls-cert")
	fs.BoolVar(&f.insecureRaft, "insecure-raft", false, "run raft without TLS: only for a development cluster whose --raft-addr is on loopback")
	fs.Uint64Var(&f.memoryLimitMiB, "memory-limit", defaultMemoryLimitMiB, "MiB of soft limit on the Go runtime's memory (heap and stacks): near it the garbage collector works harder rather than let the node grow; 0 for none; the GOMEMLIMIT environment variable, when set, wins")
	fs.Uint64Var(&f.minFreeDiskMiB, "min-free-disk", cluster.DefaultConfig().MinFreeDisk>>20, "MiB this node keeps free on its data directory's disk: with less, it is not ready and as leader refuses writes before one fails halfway")
	fs.IntVar(&f.scrubRate, "scrub-rate", cluster.DefaultConfig().ScrubRate, "leaves a second the background scrub reads again and checks against their hashes (a pass over the whole log, then the snapshots); 0 turns it off")
	fs.DurationVar(&f.followerCommitDelay, "follower-commit-delay", cluster.DefaultConfig().FollowerCommitDelay, "when no write follows, how long followers may take to learn what the leader committed: a cosigned receipt (?signatures=, the signalling server's default) waits for it on a quiet cluster; shorter costs CPU on every node when idle (at least 1ms)")
	fs.BoolVar(&f.noHeal, "no-heal", false, "keep a node whose log is found damaged as it is, serving nothing from its log, for inspection; by default it rebuilds the log from its peers")
	fs.DurationVar(&f.maxClockSkew, "max-clock-skew", cluster.DefaultConfig().MaxClockSkew, "how far this node's clock may be from those of a majority of the cluster for it to stamp receipts as leader; beyond it, it refuses writes and raises an alert")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&f.logJSON, "log-json", false, "log JSON lines instead of text")
	fs.Var(&f.witnesses, "witness", `a witness (c2sp.org/tlog-witness) the leader submits each checkpoint to, as URL=VKEY: its submission URL (add-checkpoint is under it) and its cosignature/v1 verifier key (telenotary witness --print-key); repeat the flag for several (in the environment, separate them with spaces); give every node the same`)
	def := cluster.DefaultConfig()
	fs.DurationVar(&f.snapshotInterval, "snapshot-interval", def.SnapshotInterval, "how often raft checks whether to snapshot (a snapshot records the log's head: a sync and a few hundred bytes)")
	fs.Uint64Var(&f.snapshotThreshold, "snapshot-threshold", def.SnapshotThreshold, "raft entries since the last snapshot that make the next check take one")
	fs.Uint64Var(&f.trailingLogs, "trailing-logs", def.TrailingLogs, "raft entries kept after a snapshot; a follower further behind installs a snapshot, fetching the leaves it lacks from its peers")
	fs.DurationVar(&f.witnessInterval, "witness-interval", cluster.DefaultConfig().WitnessInterval, "the least time between two checkpoints the leader sends one witness (the newest is sent; 0: each as soon as the witness has answered the last)")
	fs.StringVar(&f.debugAddr, "debug-addr", "", "serve Go's profiler (net/http/pprof) on this loopback address, such as 127.0.0.1:6060")
	// Test hooks exist only when TELENOTARY_TEST_HOOKS=1: without it the
	// flags are unknown, so no production node can run with them.
	if env.getenv(testHooksEnv) == "1" {
		fs.DurationVar(&f.clockOffset, "test-clock-offset", 0, "TEST ONLY: add this to the clock that stamps batches (skews the leader's clock in e2e fault campaigns)")
	}
}

// parse reads the command line and the environment, and checks what can
// be checked without reading a file.
func (f *nodeFlags) parse(env *environment, args []string) error {
	fs := newFlagSet(env, "node", nodeSynopsis)
	f.define(env, fs)
	if err := parseFlagsOnly(fs, env, args, "id", "data-dir", "signer-key", "tokens"); err != nil {
		return err
	}
	switch {
	case f.maxClockSkew <= 0:
		return fmt.Errorf("--max-clock-skew %v: it must be above 0", f.maxClockSkew)
	case f.scrubRate < 0:
		return fmt.Errorf("--scrub-rate %d: give leaves a second, or 0 to turn the scrub off", f.scrubRate)
	case f.followerCommitDelay < time.Millisecond:
		return fmt.Errorf("--follower-commit-delay %v: give at least 1ms", f.followerCommitDelay)
	case f.witnessInterval < 0:
		return fmt.Errorf("--witness-interval %v: it must not be negative", f.witnessInterval)
	case f.snapshotInterval < 10*time.Millisecond:
		return fmt.Errorf("--snapshot-interval %v: give at least 10ms", f.snapshotInterval)
	case f.snapshotThreshold == 0:
		return errors.New("--snapshot-threshold 0: give at least 1 entry")
	case f.trailingLogs == 0:
		return errors.New("--trailing-logs 0: keep at least 1 entry")
	case f.join != "" && f.joinTokenFile == "":
		return errors.New("--join needs --join-token-file with a join token of that cluster")
	case f.debugAddr != "":
		if err := checkDebugAddr(f.debugAddr); err != nil {
			return err
		}
	}
	if err := f.witnesses.parse(); err != nil {
		return err
	}
	_, err := os.Stat(filepath.Join(f.dataDir, "node.json"))
	f.resumes = err == nil
	if !f.bootstrap && f.join == "" && !f.resumes {
		return errors.New("a new node needs --bootstrap (the first node of a cluster) or --join URL (the others)")
	}
	return nil
}

// firstStartFlags returns the warning for --bootstrap or --join given to a
// node that resumes from its data directory, where they do nothing (or, for
// --join, only check that the nodes named are of its cluster); "" if there
// is none. They are not refused: a service's environment may keep them
// after the first start.
func (f *nodeFlags) firstStartFlags() string {
	switch {
	case !f.resumes:
		return ""
	case f.bootstrap:
		return "--bootstrap is ignored: this node has state in its data directory and resumes from it (--bootstrap and --origin count only at a new cluster's first start; remove them)"
	case f.join != "":
		return "--join is not needed: this node has state in its data directory and resumes from it (it only checks that the nodes named are of its cluster; remove --join after the first start)"
	}
	return ""
}

// config builds the node's configuration: it reads the key and token
// files, loads the TLS material and makes the logger.
func (f *nodeFlags) config(env *environment) (cluster.Config, error) {
	cfg := cluster.DefaultConfig()
	cfg.ID, cfg.DataDir = f.id, f.dataDir
	cfg.RaftAddr, cfg.RaftAdvertise, cfg.HTTPAddr, cfg.HTTPAdvertise = f.raftAddr, f.raftAdvertise, f.httpAddr, f.httpAdvertise
	cfg.Bootstrap, cfg.Origin = f.bootstrap, f.origin
	cfg.InsecureRaft, cfg.MaxClockSkew, cfg.MinFreeDisk = f.insecureRaft, f.maxClockSkew, f.minFreeDiskMiB<<20
	cfg.ScrubRate, cfg.NoHeal, cfg.FollowerCommitDelay = f.scrubRate, f.noHeal, f.followerCommitDelay
	cfg.Witnesses, cfg.WitnessInterval = f.witnesses.parsed, f.witnessInterval
	cfg.SnapshotInterval, cfg.SnapshotThreshold, cfg.TrailingLogs = f.snapshotInterval, f.snapshotThreshold, f.trailingLogs
	if offset := f.clockOffset; offset != 0 {
		cfg.Clock = func() time.Time { return time.Now().Add(offset) }
	}
	if f.join != "" {
		cfg.Join = strings.Split(f.join, ",")
		tok, err := readSecret(f.joinTokenFile, "--join-token-file", 1)
		if err != nil {
			return cfg, err
		}
		cfg.JoinToken = string(tok)
	}
	skey, err := readSecret(f.signerKey, "--signer-key", 1)
	if errors.Is(err, errNotPrivate) {
		return cfg, err
	}
	if err != nil {
		return cfg, fmt.Errorf("%w (make one with telenotary keygen --name NAME)", err)
	}
	if cfg.Signer, cfg.VerifierKey, err = notary.NewSigner(string(skey)); err != nil {
		return cfg, fmt.Errorf("--signer-key %s: %w (make one with telenotary keygen)", f.signerKey, err)
	}
	tok, err := readPrivate(f.tokensFile, "--tokens")
	if err != nil {
		return cfg, err
	}
	if cfg.Tokens, err = auth.ParseTokens(tok); err != nil {
		return cfg, fmt.Errorf("--tokens %s: %w", f.tokensFile, err)
	}
	if cfg.TLS, cfg.ClientTLS, err = apiTLS(f.tlsCert, f.tlsKey, f.tlsCA); err != nil {
		return cfg, err
	}
	if cfg.RaftTLS, err = raftTLS(f.raftCert, f.raftKey, f.raftCA); err != nil {
		return cfg, err
	}
	cfg.Logger, err = newLogger(env.stderr, f.logLevel, f.logJSON)
	return cfg, err
}

// start starts the node, and words the refusals a flag can fix in terms
// of the flags.
func (f *nodeFlags) start(ctx context.Context, cfg cluster.Config) (*cluster.Node, error) {
	node, err := cluster.New(ctx, cfg)
	switch {
	case err == nil:
		return node, nil
	case errors.Is(err, cluster.ErrRaftTLSRequired):
		return nil, errors.New("raft needs mutual TLS: give --raft-tls-cert, --raft-tls-key and --raft-tls-ca (or --insecure-raft for a development cluster on loopback)")
	case errors.Is(err, cluster.ErrInsecureRaftOffLoopback):
		return nil, fmt.Errorf("--insecure-raft is for loopback addresses only (--raft-addr %s, --raft-advertise %q): configure --raft-tls-cert, --raft-tls-key and --raft-tls-ca", f.raftAddr, f.raftAdvertise)
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("%w (another process listens there: stop it, or choose another --http-addr or --raft-addr)", err)
	}
	return nil, err
}

// witnessFlag is the repeated --witness URL=VKEY; an environment value
// holds several, separated by spaces. Set only collects; parse checks.
type witnessFlag struct {
	specs  []string
	parsed []cluster.Witness
}

func (w *witnessFlag) String() string { return strings.Join(w.specs, " ") }

func (w *witnessFlag) Set(v string) error {
	w.specs = append(w.specs, strings.Fields(v)...)
	return nil
}

// parse checks every --witness given, naming the first bad one.
func (w *witnessFlag) parse() error {
	w.parsed = w.parsed[:0]
	seen := map[string]bool{}
	for _, spec := range w.specs {
		p, err := cluster.ParseWitness(spec)
		if err != nil {
			return fmt.Errorf("--witness %q: %w", spec, err)
		}
		if seen[p.Verifier.Name()] {
			return fmt.Errorf("--witness %q: a witness named %q is given twice", spec, p.Verifier.Name())
		}
		seen[p.Verifier.Name()] = true
		w.parsed = append(w.parsed, p)
	}
	return nil
}
