package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/telenotary/telenotary/tui"
)

const consoleSynopsis = `console --nodes URL[,URL...] [--signal URL] [--token-file FILE] [--signal-key-file FILE] [flags]

The operator console: a full-screen dashboard of the cluster (nodes, roles,
indexes, lag), throughput and latency, a live feed of notarizations, the
live consultations of the signalling server, alerts, and verification of a
bundle file. With the operator token it can remove a node or move
leadership, after a confirmation. Keys: tab/shift-tab or 1-6 for tabs,
arrows or j/k to move, / to filter, p to pause the feed, ? for help, q to
quit.`

// consoleFlagOf is the flag of console that sets each field of tui.Config.
var consoleFlagOf = map[string]string{"Nodes": "--nodes", "Signal": "--signal", "Monitors": "--monitor", "PollInterval": "--poll", "FraudThreshold": "--fraud-threshold"}

func runConsole(ctx context.Context, env *environment, args []string) int {
	fs := newFlagSet(env, "console", consoleSynopsis)
	nodes := fs.String("nodes", "", "comma-separated API URLs of the cluster's nodes (required)")
	signalURL := fs.String("signal", "", "base URL of the signalling server, for the Sessions tab")
	monitors := fs.String("monitor", "", "comma-separated URLs of log monitors (telenotary monitor --metrics-addr) whose alerts the Alerts tab shows")
	tokenFile := fs.String("token-file", "", "file (mode 0600) holding the cluster's operator token, to remove a node or move leadership")
	signalKeyFile := fs.String("signal-key-file", "", "file (mode 0600) holding an operator API key of the signalling server (with --signal)")
	keysFile := fs.String("keys", "", "trusted verifier keys for the Verify tab (default: the keys the cluster publishes)")
	caFile := fs.String("tls-ca", "", "CA certificates (PEM) of the nodes' and the signalling server's certificates")
	poll := fs.Duration("poll", tui.DefaultPollInterval, "how often to ask each node for its status")
	fraud := fs.Int("fraud-threshold", tui.DefaultFraudThreshold, "refused dispenses and revocations a minute (a lost race for a fill aside) at which the Alerts tab raises possible fraud")
	fail := func(err error) int { return usageError(env.stderr, "console", err) }
	err := parseFlagsOnly(fs, env, args, "nodes")
	switch {
	case err != nil:
		return fail(err)
	case *signalKeyFile != "" && *signalURL == "":
		return fail(errors.New("--signal-key-file needs --signal"))
	case *poll < 100*time.Millisecond:
		return fail(errors.New("--poll must be at least 100ms"))
	case *fraud < 1:
		return fail(fmt.Errorf("--fraud-threshold must be at least 1, not %d", *fraud))
	}
	cfg := tui.Config{Nodes: strings.Split(*nodes, ","), Signal: *signalURL, PollInterval: *poll, FraudThreshold: *fraud}
	if *monitors != "" {
		cfg.Monitors = strings.Split(*monitors, ",")
	}
	if cfg.Token, err = optionalSecret(*tokenFile, "--token-file", ""); err != nil {
		return fail(err)
	}
	if cfg.SignalKey, err = optionalSecret(*signalKeyFile, "--signal-key-file", ""); err != nil {
		return fail(err)
	}
	if *keysFile != "" {
		if cfg.Keys, err = os.ReadFile(*keysFile); err != nil {
			return fail(fmt.Errorf("--keys: %w", err))
		}
	}
	tlsConfig, err := clientTLS(*caFile, "--tls-ca")
	if err != nil {
		return fail(err)
	}
	transport := &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second, TLSHandshakeTimeout: 5 * time.Second, TLSClientConfig: tlsConfig}
	cfg.HTTPClient = &http.Client{Transport: transport}
	// Before the console takes the screen: the warnings stay on the
	// terminal once it gives it back.
	warn := func(line string) { fmt.Fprintf(env.stderr, "telenotary console: warning: %s\n", line) }
	if cfg.Token != "" {
		warnClearText(warn, "--nodes", "operator token", cfg.Nodes)
	}
	if cfg.SignalKey != "" {
		warnClearText(warn, "--signal", "signalling server's API key", []string{cfg.Signal})
	}
	if err := cfg.Validate(); err != nil {
		// Name the flag, not the field of tui.Config.
		var ce *tui.ConfigError
		if errors.As(err, &ce) && consoleFlagOf[ce.Field] != "" {
			err = errors.New(ce.Named(consoleFlagOf[ce.Field]))
		}
		return fail(err)
	}
	if err := tui.Run(ctx, cfg); err != nil {
		return failure(env.stderr, "console", err)
	}
	return exitOK
}
