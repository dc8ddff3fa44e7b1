package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/telenotary/telenotary/cluster/monitor"
	"github.com/telenotary/telenotary/notary"
)

const monitorSynopsis = `monitor --nodes URL[,URL...] --keys FILE [flags]

Follows a notary log from outside, through the API of each node given, and
raises an alert on any fault: a split view (two checkpoints signed under the
policy that cannot both be true), a node's leaves that do not hash to the
root it signed, a timestamp going backwards, a malformed leaf, a checkpoint
with a bad signature or that the policy refuses. An alert is logged at
ERROR, counted in --metrics-addr's /metrics, saved with its signed
checkpoints in --evidence-dir, and POSTed as JSON to --webhook.

Exit status: 0 no fault (with --once: every node checked); 1 the run
failed (with --once: a node could not be checked, and no fault was found);
2 a usage error; 3 a split view (with --once, --exit-on-split-view or
--exit-on-alert); 4 another fault (with --once or --exit-on-alert).`

// Exit codes of telenotary monitor besides the common ones.
const (
	exitSplitView = 3 // a split view was found
	exitFault     = 4 // another fault was found
)

// monitorStopTimeout bounds the shutdown of the metrics server.
const monitorStopTimeout = 5 * time.Second

// maxKeysFile bounds the keys file.
const maxKeysFile = 1 << 20

// monitorFlags is the command line of telenotary monitor.
type monitorFlags struct {
	nodes, keys, origin           string
	minSigs                       int
	interval, timeout             time.Duration
	leavesPerPoll                 uint64
	once, exitOnSplit, exitOnAny  bool
	evidenceDir, webhook, metrics string
	caFile                        string
	logLevel                      string
	logJSON                       bool
}

func (f *monitorFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&f.nodes, "nodes", "", "comma-separated API URLs of the nodes to follow (required)")
	fs.StringVar(&f.keys, "keys", "", "file of trusted verifier keys, as GET /v1/keys serves it (required)")
	fs.IntVar(&f.minSigs, "min-signatures", 1, "how many distinct trusted keys must sign each checkpoint (asked of the nodes with ?signatures=K)")
	fs.StringVar(&f.origin, "origin", "", "the log's origin (default: that of the first checkpoint seen)")
	fs.DurationVar(&f.interval, "interval", monitor.DefaultInterval, "time between polls")
	fs.DurationVar(&f.timeout, "timeout", monitor.DefaultRequestTimeout, "bound on one request to a node")
	fs.Uint64Var(&f.leavesPerPoll, "leaves-per-poll", monitor.DefaultLeavesPerPoll, "most leaves read from one node in one poll (not with --once, which reads all)")
	fs.BoolVar(&f.once, "once", false, "poll every node once, read all their leaves, and exit with the status of what was found")
	fs.BoolVar(&f.exitOnSplit, "exit-on-split-view", false, "stop at the first split view, with status 3")
	fs.BoolVar(&f.exitOnAny, "exit-on-alert", false, "stop at the first alert of any kind, with status 3 (split view) or 4")
	fs.StringVar(&f.evidenceDir, "evidence-dir", "", "directory receiving a directory per alert: alert.json and the signed checkpoints (created if missing)")
	fs.StringVar(&f.webhook, "webhook", "", "URL that receives each alert as a JSON POST")
	fs.StringVar(&f.metrics, "metrics-addr", "", "address to serve GET /metrics and GET /v1/alerts on, such as 127.0.0.1:9464")
	fs.StringVar(&f.caFile, "tls-ca", "", "CA certificates (PEM) of the nodes' and the webhook's certificates")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&f.logJSON, "log-json", false, "log JSON lines instead of text")
}

// runMonitor parses the flags, polls the nodes once or until interrupted,
// and exits with the status of what it found.
func runMonitor(ctx context.Context, env *environment, args []string) int {
	fail := func(err error) int { return usageError(env.stderr, "monitor", err) }
	var f monitorFlags
	fs := newFlagSet(env, "monitor", monitorSynopsis)
	f.define(fs)
	if err := parseFlagsOnly(fs, env, args, "nodes", "keys"); err != nil {
		return fail(err)
	}
	cfg, err := f.config(env)
	if err != nil {
		return fail(err)
	}
	// From here on the command line was sound: what fails is the run.
	failed := func(err error) int { return failure(env.stderr, "monitor", err) }
	if f.evidenceDir != "" {
		if err := os.MkdirAll(f.evidenceDir, 0o755); err != nil {
			return failed(fmt.Errorf("--evidence-dir: %w", err))
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg.Registerer = reg
	m, err := monitor.New(cfg)
	if err != nil {
		return fail(err)
	}
	if f.metrics != "" {
		stop, err := serveMonitor(ctx, cfg.Logger, f.metrics, m.Handler(reg))
		if err != nil {
			return failed(err)
		}
		defer stop()
	}
	cfg.Logger.InfoContext(ctx, "monitor started", "nodes", len(cfg.Nodes), "min_signatures", cfg.Policy.MinSignatures, "once", f.once)
	if f.once {
		rep := m.PollOnce(ctx)
		if code := alertStatus(rep.Alerts, func(monitor.Alert) bool { return true }); code != exitOK {
			return code
		}
		if len(rep.Unchecked) > 0 {
			var lines []string
			for node, err := range rep.Unchecked {
				lines = append(lines, fmt.Sprintf("%s: %v", node, err))
			}
			slices.Sort(lines)
			return failed(fmt.Errorf("no fault found, but %d of %d nodes were not checked:\n  %s", len(rep.Unchecked), len(cfg.Nodes), strings.Join(lines, "\n  ")))
		}
		for _, st := range m.Nodes() {
			fmt.Fprintf(env.stdout, "%s: size %d, leaves checked to %d, root %s\n", st.Node, st.Size, st.Verified, st.VerifiedRoot)
		}
		return exitOK
	}
	var stop func(monitor.Alert) bool
	switch {
	case f.exitOnAny:
		stop = func(monitor.Alert) bool { return true }
	case f.exitOnSplit:
		stop = func(a monitor.Alert) bool { return a.Kind == monitor.KindSplitView }
	}
	if err := m.Run(ctx, stop); err != nil && ctx.Err() == nil {
		return failed(err)
	}
	if stop != nil {
		return alertStatus(m.Alerts(), stop)
	}
	return exitOK
}

// alertStatus is the exit status of the alerts for which stop holds: 3
// when one is a split view, else 4 when there is one, else 0.
func alertStatus(alerts []monitor.Alert, stop func(monitor.Alert) bool) int {
	code := exitOK
	for _, a := range alerts {
		switch {
		case !stop(a):
		case a.Kind == monitor.KindSplitView:
			return exitSplitView
		default:
			code = exitFault
		}
	}
	return code
}

// config builds the monitor's configuration from the flags; its errors
// are usage errors.
func (f *monitorFlags) config(env *environment) (monitor.Config, error) {
	var cfg monitor.Config
	for _, n := range strings.Split(f.nodes, ",") {
		if n = strings.TrimRight(strings.TrimSpace(n), "/"); n != "" {
			cfg.Nodes = append(cfg.Nodes, n)
		}
	}
	keyText, err := readInput(f.keys, "keys file")
	if err != nil {
		return cfg, fmt.Errorf("--keys: %w", err)
	}
	if len(keyText) > maxKeysFile {
		return cfg, fmt.Errorf("--keys %s: more than %d bytes", f.keys, maxKeysFile)
	}
	verifiers, err := notary.ParseVerifierKeys(keyText)
	if err != nil {
		return cfg, fmt.Errorf("--keys %s: %w", f.keys, err)
	}
	cfg.Policy = notary.Policy{Verifiers: verifiers, MinSignatures: f.minSigs, Origin: f.origin}
	switch {
	case f.minSigs < 1 || f.minSigs > len(verifiers):
		return cfg, fmt.Errorf("--min-signatures must be from 1 to the %d keys of --keys, not %d", len(verifiers), f.minSigs)
	case f.interval < 100*time.Millisecond:
		return cfg, errors.New("--interval must be at least 100ms")
	case f.timeout < 100*time.Millisecond:
		return cfg, errors.New("--timeout must be at least 100ms")
	case f.leavesPerPoll < 1:
		return cfg, errors.New("--leaves-per-poll must be at least 1")
	case f.once && (f.exitOnSplit || f.exitOnAny):
		return cfg, errors.New("--once exits after one poll: --exit-on-split-view and --exit-on-alert are for a monitor that keeps running")
	}
	if f.origin != "" {
		if err := notary.ValidateOrigin(f.origin); err != nil {
			return cfg, fmt.Errorf("--origin: %w", err)
		}
	}
	cfg.Interval, cfg.RequestTimeout, cfg.LeavesPerPoll = f.interval, f.timeout, f.leavesPerPoll
	cfg.EvidenceDir, cfg.Webhook = f.evidenceDir, f.webhook
	tlsConfig, err := clientTLS(f.caFile, "--tls-ca")
	if err != nil {
		return cfg, err
	}
	cfg.HTTPClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second,
		ResponseHeaderTimeout: f.timeout, TLSHandshakeTimeout: 10 * time.Second, TLSClientConfig: tlsConfig}}
	if cfg.Logger, err = newLogger(env.stderr, f.logLevel, f.logJSON); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, monitorFlagError(err)
	}
	return cfg, nil
}

// monitorFlagError names the flag of a field of monitor.Config.
func monitorFlagError(err error) error {
	msg := err.Error()
	for field, flagName := range map[string]string{"Nodes: ": "--nodes: ", "Webhook: ": "--webhook: ", "Policy: ": "--keys, --min-signatures or --origin: "} {
		if rest, ok := strings.CutPrefix(msg, field); ok {
			return errors.New(flagName + rest)
		}
	}
	return err
}

// serveMonitor serves h on addr until stop is called.
func serveMonitor(ctx context.Context, logger *slog.Logger, addr string, h http.Handler) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: %w (is another server on that port?)", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go srv.Serve(ln)
	logger.InfoContext(ctx, "monitor serving metrics and alerts", "url", "http://"+ln.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), monitorStopTimeout)
		defer cancel()
		srv.Shutdown(sctx)
	}, nil
}
