package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/notary"
)

const nodeSynopsis = `node --id ID --data-dir DIR --signer-key FILE --tokens FILE
                 (--bootstrap --origin ORIGIN | --join URL[,URL...] --join-token-file FILE) [flags]

Runs one node of a notary cluster until interrupted; on SIGINT or SIGTERM a
leader hands leadership to another node before it stops.`

// testHooksEnv, set to 1, enables the node's test-only flags (see runNode).
const testHooksEnv = "TELENOTARY_TEST_HOOKS"

func runNode(ctx context.Context, env *environment, args []string) int {
	fs := newFlagSet(env, "node", nodeSynopsis)
	id := fs.String("id", "", "this node's name in the cluster; never changes (required)")
	dataDir := fs.String("data-dir", "", "directory of the node's raft log, snapshots and notary log (required)")
	raftAddr := fs.String("raft-addr", "127.0.0.1:7000", "address raft listens on")
	raftAdvertise := fs.String("raft-advertise", "", "address other nodes dial for raft (default: --raft-addr)")
	httpAddr := fs.String("http-addr", "127.0.0.1:8080", "address the HTTP API listens on")
	httpAdvertise := fs.String("http-advertise", "", "base URL of this node's API for clients and other nodes (default: http(s)://--http-addr)")
	bootstrap := fs.Bool("bootstrap", false, "start a new cluster with this node as its first member")
	origin := fs.String("origin", "", "with --bootstrap: the log's name in every checkpoint, such as notary.example.org/telehealth")
	join := fs.String("join", "", "comma-separated API URLs of nodes of the cluster to join")
	joinTokenFile := fs.String("join-token-file", "", "file holding an operator token of the cluster to join")
	signerKey := fs.String("signer-key", "", "this node's signer key file, from telenotary keygen (required)")
	tokensFile := fs.String("tokens", "", `bearer tokens file: lines of "submitter TOKEN" or "operator TOKEN" (required)`)
	tlsCert := fs.String("tls-cert", "", "certificate (PEM) to serve the API over TLS")
	tlsKey := fs.String("tls-key", "", "private key (PEM) of --tls-cert")
	tlsCA := fs.String("tls-ca", "", "CA certificates (PEM) that sign the other nodes' API certificates")
	raftCert := fs.String("raft-tls-cert", "", "certificate (PEM) of this node for mutual TLS between nodes")
	raftKey := fs.String("raft-tls-key", "", "private key (PEM) of --raft-tls-cert")
	raftCA := fs.String("raft-tls-ca", "", "CA certificates (PEM) that sign every node's --raft-tls-cert")
	insecureRaft := fs.Bool("insecure-raft", false, "run raft without TLS: only for a development cluster whose --raft-addr is on loopback")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logJSON := fs.Bool("log-json", false, "log JSON lines instead of text")
	debugAddr := fs.String("debug-addr", "", "serve Go's profiler (net/http/pprof) on this address; keep it private")
	// Test hooks exist only when TELENOTARY_TEST_HOOKS=1: without it the
	// flags are unknown, so no production node can run with them.
	var clockOffset *time.Duration
	if env.getenv(testHooksEnv) == "1" {
		clockOffset = fs.Duration("test-clock-offset", 0, "TEST ONLY: add this to the clock that stamps batches (skews the leader's clock in e2e fault campaigns)")
	}
	pos, err := parseFlags(fs, env, args)
	if err != nil {
		return usageError(env.stderr, "node", err)
	}
	fail := func(err error) int {
		fmt.Fprintf(env.stderr, "telenotary node: %v\n", err)
		return exitUsage
	}
	if len(pos) > 0 {
		return fail(fmt.Errorf("unexpected argument %q", pos[0]))
	}
	for name, v := range map[string]string{"--id": *id, "--data-dir": *dataDir, "--signer-key": *signerKey, "--tokens": *tokensFile} {
		if v == "" {
			return fail(fmt.Errorf("%s is required (see telenotary node --help)", name))
		}
	}
	if !*bootstrap && *join == "" {
		if _, err := os.Stat(*dataDir + "/node.json"); err != nil {
			return fail(errors.New("a new node needs --bootstrap (the first node of a cluster) or --join URL (the others)"))
		}
	}

	cfg := cluster.DefaultConfig()
	cfg.ID, cfg.DataDir = *id, *dataDir
	cfg.RaftAddr, cfg.RaftAdvertise, cfg.HTTPAddr, cfg.HTTPAdvertise = *raftAddr, *raftAdvertise, *httpAddr, *httpAdvertise
	cfg.Bootstrap, cfg.Origin = *bootstrap, *origin
	if clockOffset != nil && *clockOffset != 0 {
		offset := *clockOffset
		cfg.Clock = func() time.Time { return time.Now().Add(offset) }
	}
	if *join != "" {
		cfg.Join = strings.Split(*join, ",")
		if *joinTokenFile == "" {
			return fail(errors.New("--join needs --join-token-file with an operator token of that cluster"))
		}
		tok, err := os.ReadFile(*joinTokenFile)
		if err != nil {
			return fail(fmt.Errorf("--join-token-file: %w", err))
		}
		cfg.JoinToken = strings.TrimSpace(string(tok))
	}
	skey, err := os.ReadFile(*signerKey)
	if err != nil {
		return fail(fmt.Errorf("--signer-key: %w (make one with telenotary keygen --name NAME)", err))
	}
	if cfg.Signer, cfg.VerifierKey, err = notary.NewSigner(string(skey)); err != nil {
		return fail(fmt.Errorf("--signer-key %s: %w (make one with telenotary keygen)", *signerKey, err))
	}
	tok, err := os.ReadFile(*tokensFile)
	if err != nil {
		return fail(fmt.Errorf("--tokens: %w", err))
	}
	if cfg.Tokens, err = auth.ParseTokens(tok); err != nil {
		return fail(fmt.Errorf("--tokens %s: %w", *tokensFile, err))
	}
	if cfg.TLS, cfg.ClientTLS, err = apiTLS(*tlsCert, *tlsKey, *tlsCA); err != nil {
		return fail(err)
	}
	if cfg.RaftTLS, err = raftTLS(*raftCert, *raftKey, *raftCA); err != nil {
		return fail(err)
	}
	cfg.InsecureRaft = *insecureRaft
	if cfg.Logger, err = newLogger(env.stderr, *logLevel, *logJSON); err != nil {
		return fail(err)
	}

	node, err := cluster.New(ctx, cfg)
	switch {
	case errors.Is(err, cluster.ErrRaftTLSRequired):
		return fail(errors.New("raft needs mutual TLS: give --raft-tls-cert, --raft-tls-key and --raft-tls-ca (or --insecure-raft for a development cluster on loopback)"))
	case errors.Is(err, cluster.ErrInsecureRaftOffLoopback):
		return fail(fmt.Errorf("--insecure-raft is for loopback addresses only (--raft-addr %s, --raft-advertise %q): configure --raft-tls-cert, --raft-tls-key and --raft-tls-ca", *raftAddr, *raftAdvertise))
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return fail(fmt.Errorf("%w (another process listens there: stop it, or choose another --http-addr or --raft-addr)", err))
	}
	if err != nil {
		return fail(err)
	}
	if *debugAddr != "" {
		stop, err := serveDebug(*debugAddr)
		if err != nil {
			node.Close(context.Background())
			return fail(fmt.Errorf("--debug-addr: %w", err))
		}
		defer stop()
	}
	select {
	case <-ctx.Done():
	case <-node.Done(): // it stopped on its own: say why and fail
		return fail(node.Err())
	}
	// Stop in order: hand over leadership, stop taking requests, finish
	// what is in flight, then close raft and the log.
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := node.Close(stopCtx); err != nil {
		return fail(fmt.Errorf("shutdown: %w", err))
	}
	return exitOK
}

// apiTLS loads the API's server TLS and the client TLS for reaching other
// nodes' APIs.
func apiTLS(certFile, keyFile, caFile string) (server, client *tls.Config, err error) {
	if (certFile == "") != (keyFile == "") {
		return nil, nil, errors.New("--tls-cert and --tls-key go together")
	}
	if caFile != "" {
		pool, err := loadCA(caFile, "--tls-ca")
		if err != nil {
			return nil, nil, err
		}
		client = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		server = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return server, client, nil
}

// raftTLS loads mutual TLS for raft: every node presents a certificate
// signed by the CA, and accepts only such peers.
func raftTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" && caFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" || caFile == "" {
		return nil, errors.New("--raft-tls-cert, --raft-tls-key and --raft-tls-ca go together")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--raft-tls-cert/--raft-tls-key: %w", err)
	}
	pool, err := loadCA(caFile, "--raft-tls-ca")
	if err != nil {
		return nil, err
	}
	return cluster.MutualTLS(cert, pool), nil
}

func loadCA(path, flagName string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s %s: no PEM certificate in it", flagName, path)
	}
	return pool, nil
}

// serveDebug serves the profiler until stop is called.
func serveDebug(addr string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return func() { srv.Close() }, nil
}
