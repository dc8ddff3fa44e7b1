package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/session"
	"github.com/telenotary/telenotary/session/turnserver"
)

const signalSynopsis = `signal --cluster URL[,URL...] --cluster-token-file FILE --api-keys FILE [flags]

Runs the WebRTC signalling server: rooms, the WebSocket /v1/signal, the
browser client at /app/ and the verification page at /verify/. Session
records and prescriptions are notarized through the cluster; nothing of a
consultation is written to disk.`

// signalGCPercent is the signalling server's garbage collection target
// (GOGC), unless the environment sets one. Its live heap is mostly its
// connections' buffers, and a collection's mark over thousands of them
// delays the messages relayed meanwhile: collecting at 150% growth
// instead of Go's 100% took the relay p99 of 5,000 consultations (10,000
// participants) from 38-42 ms to 18 ms here, for 15% more memory
// (docs/BENCHMARKS.md).
const signalGCPercent = 150

// signalStopTimeout bounds the signalling server's shutdown.
const signalStopTimeout = 30 * time.Second

// runSignal parses the flags, builds the server's configuration, starts
// the server and its listener, waits for a signal to stop or for serving
// to fail, and shuts down.
func runSignal(ctx context.Context, env *environment, args []string) int {
	fail := func(err error) int { return usageError(env.stderr, "signal", err) }
	var f signalFlags
	if err := f.parse(env, args); err != nil {
		return fail(err)
	}
	cfg, srvTLS, turnCfg, err := f.config(env)
	if err != nil {
		return fail(err)
	}
	warnClearText(func(line string) { cfg.Logger.WarnContext(ctx, line) }, "--cluster", "cluster token", strings.Split(f.cluster, ","))
	// From here on the command line was sound: what fails is the run.
	failed := func(err error) int { return failure(env.stderr, "signal", err) }
	if env.getenv("GOGC") == "" {
		debug.SetGCPercent(signalGCPercent)
	}
	if f.debugAddr != "" {
		stopDebug, err := serveDebug(f.debugAddr)
		if err != nil {
			return failed(fmt.Errorf("--debug-addr: %w", err))
		}
		defer stopDebug()
	}
	if turnCfg != nil {
		ts, err := turnserver.Start(*turnCfg)
		if err != nil {
			return failed(err)
		}
		defer ts.Close()
		cfg.Logger.InfoContext(ctx, "TURN server started", "listeners", ts.Addrs(), "relay_ip", turnCfg.RelayIP.String(), "ice_servers", cfg.ICE.URLs)
	}
	s, err := startSignal(ctx, cfg, f.listen, srvTLS)
	if err != nil {
		return failed(err)
	}
	cfg.Logger.InfoContext(ctx, "signalling server started", "url", s.url, "app", s.url+"/app/", "cluster", f.cluster)
	select {
	case <-ctx.Done():
	case err := <-s.served:
		s.srv.Close(context.Background())
		return failed(err)
	}
	if err := s.shutdown(); err != nil {
		return failed(fmt.Errorf("shutdown: %w", err))
	}
	return exitOK
}

// signalFlags is the command line of telenotary signal.
type signalFlags struct {
	listen                    string
	cluster, clusterTokenFile string
	clusterCA                 string
	apiKeysFile               string
	tokenKeyFile              string
	webhook                   string
	webhookSecretFile         string
	origins                   string
	grace                     time.Duration
	tlsCert, tlsKey           string
	appIssuer                 string
	maxConns, maxConnsPerIP   int
	logLevel                  string
	logJSON                   bool
	receiptSignatures         string
	iceServers                string
	turnSecretFile            string
	turnListen, turnTLSListen string
	turnRelayIP               string
	turnRelayPorts            string
	turnUserQuota             int
	turnAllowPrivate          bool
	iceRelayOnly              bool
	instance                  string
	peers                     string
	debugAddr                 string
	peerCA                    string
	probeInterval             time.Duration
	receiptWitnesses          int
	receiptWitnessWait        time.Duration
}

// define declares the flags on fs.
func (f *signalFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8443", "address to serve HTTP (or HTTPS with --tls-cert) on")
	fs.StringVar(&f.cluster, "cluster", "", "comma-separated API URLs of the notary cluster's nodes (required)")
	fs.StringVar(&f.clusterTokenFile, "cluster-token-file", "", "file (mode 0600) holding a submitter token of the cluster (required)")
	fs.StringVar(&f.clusterCA, "cluster-ca", "", "CA certificates (PEM) of the cluster's API certificates")
	fs.StringVar(&f.apiKeysFile, "api-keys", "", `API keys file (mode 0600): lines of "submitter KEY" (an app backend: create rooms) or "operator KEY" (list sessions) (required)`)
	fs.StringVar(&f.tokenKeyFile, "token-key-file", "", "file (mode 0600) holding the room-token signing key (32 bytes or more), to share with an app backend that signs its own tokens (default: a random key; tokens do not survive a restart)")
	fs.StringVar(&f.webhook, "webhook", "", "URL of the app backend that receives every receipt bundle")
	fs.StringVar(&f.webhookSecretFile, "webhook-secret-file", "", "file (mode 0600) holding the key (32 bytes or more) that signs webhook deliveries (required with --webhook)")
	fs.StringVar(&f.origins, "allowed-origins", "", "comma-separated web origins (host patterns) whose pages may open the WebSocket, besides this server's own")
	fs.DurationVar(&f.grace, "grace", 30*time.Second, "how long a participant whose connection dropped has to come back")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "certificate (PEM) to serve HTTPS")
	fs.StringVar(&f.tlsKey, "tls-key", "", "private key (PEM, mode 0600) of --tls-cert")
	fs.StringVar(&f.appIssuer, "app-token-issuer", "", "the iss claim of room tokens an app backend signs with --token-key-file (tokens of any other issuer but this server's are refused)")
	def := session.DefaultHTTPConfig()
	fs.IntVar(&f.maxConns, "max-conns", def.MaxConns, "connections held at once (a WebSocket is one; each room holds two)")
	fs.IntVar(&f.maxConnsPerIP, "max-conns-per-ip", def.MaxConnsPerIP, "connections held at once from one address")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&f.logJSON, "log-json", false, "log JSON lines instead of text")
	fs.StringVar(&f.iceServers, "ice-servers", "", "comma-separated STUN and TURN URLs given to every participant (stun:host:port, turns:host:443?transport=tcp); TURN ones with credentials made with --turn-secret-file")
	fs.StringVar(&f.turnSecretFile, "turn-secret-file", "", "file (mode 0600) holding the secret shared with the TURN servers (coturn: use-auth-secret, static-auth-secret), 16 bytes or more (required with a turn: URL)")
	fs.StringVar(&f.turnListen, "turn-listen", "", "run a TURN server in this process on this address, UDP and TCP (such as 0.0.0.0:3478)")
	fs.StringVar(&f.turnTLSListen, "turn-tls-listen", "", "run TURN over TLS on this address too (such as 0.0.0.0:443), with --tls-cert, for networks that let only 443 out")
	fs.StringVar(&f.turnRelayIP, "turn-relay-ip", "", "the public IP address of the TURN relays (default: the host of --turn-listen)")
	fs.StringVar(&f.turnRelayPorts, "turn-relay-ports", "49152-65535", "the ports relays take, LOW-HIGH")
	fs.IntVar(&f.turnUserQuota, "turn-user-quota", turnserver.DefaultMaxAllocationsPerUser, "relays one participant may hold at once")
	fs.BoolVar(&f.turnAllowPrivate, "turn-allow-private", false, "let relays reach loopback, private, link-local and shared (100.64.0.0/10) addresses (by default only public ones, so that nobody enters your network through them)")
	fs.StringVar(&f.instance, "instance", "", "this server's name in the rooms it lists (default: the host name); with --peers, its name in the group (1 to 64 of A-Z a-z 0-9 - _)")
	fs.StringVar(&f.peers, "peers", "", "the other signalling instances behind the same address, NAME=URL,... (each's --instance and base URL): joins are relayed to the instance holding the room, and the rooms of one that goes away are taken over by the others; needs --instance and the same --token-key-file on every instance")
	fs.StringVar(&f.debugAddr, "debug-addr", "", "serve Go's profiler (net/http/pprof) on this loopback address, such as 127.0.0.1:6061")
	fs.StringVar(&f.peerCA, "peer-ca", "", "with --peers: CA certificates (PEM) of the peers' https certificates")
	fs.DurationVar(&f.probeInterval, "probe-interval", session.DefaultConfig().ProbeInterval, "with --peers: how often each peer is asked whether it is up; one that does not answer within it is taken as gone")
	fs.BoolVar(&f.iceRelayOnly, "ice-relay-only", false, "have clients connect through the TURN relays only, so that neither participant learns the other's IP address (needs a TURN server)")
	fs.IntVar(&f.receiptWitnesses, "receipt-witnesses", 0, "wait until this many of the cluster's witnesses (telenotary node --witness) have cosigned a checkpoint covering each receipt, and deliver the receipt proven into it with their cosignatures (0: do not wait)")
	fs.DurationVar(&f.receiptWitnessWait, "receipt-witness-wait", session.DefaultConfig().ReceiptWitnessWait, "with --receipt-witnesses: how long a receipt waits for the witnesses before it is delivered without their cosignatures")
	fs.StringVar(&f.receiptSignatures, "receipt-signatures", notaryapi.SignaturesMajority, "nodes that sign the checkpoint of every receipt delivered: majority, so that verifiers can require a majority's signatures (--min-signatures) and trust no single node, or a number from 1")
}

// parse reads the command line and the environment.
func (f *signalFlags) parse(env *environment, args []string) error {
	fs := newFlagSet(env, "signal", signalSynopsis)
	f.define(fs)
	if err := parseFlagsOnly(fs, env, args, "cluster", "cluster-token-file", "api-keys"); err != nil {
		return err
	}
	if f.webhook != "" && f.webhookSecretFile == "" {
		return errors.New("--webhook needs --webhook-secret-file")
	}
	if _, err := parseSignatures(f.receiptSignatures, "--receipt-signatures"); err != nil {
		return err
	}
	switch {
	case f.receiptWitnesses < 0:
		return fmt.Errorf("--receipt-witnesses %d: give a number of witnesses, or 0 not to wait", f.receiptWitnesses)
	case f.receiptWitnessWait <= 0:
		return fmt.Errorf("--receipt-witness-wait %v: it must be above 0", f.receiptWitnessWait)
	case f.peers != "" && f.instance == "":
		return errors.New("--peers needs --instance: this instance's name in the group, as the others list it")
	case f.peers != "" && f.tokenKeyFile == "":
		return errors.New("--peers needs --token-key-file: every instance of a group must check the others' tokens and tickets with the same key")
	case f.probeInterval <= 0:
		return fmt.Errorf("--probe-interval %v: it must be above 0", f.probeInterval)
	}
	if f.debugAddr != "" {
		return checkDebugAddr(f.debugAddr)
	}
	return nil
}

// config builds the server's configuration and its TLS (nil: plain
// HTTP): it makes the logger, reads the key and token files and loads the
// TLS material.
func (f *signalFlags) config(env *environment) (session.Config, *tls.Config, *turnserver.Config, error) {
	cfg := session.DefaultConfig()
	var err error
	if cfg.Logger, err = newLogger(env.stderr, f.logLevel, f.logJSON); err != nil {
		return cfg, nil, nil, err
	}
	cfg.Grace = f.grace
	cfg.ReceiptWitnesses, cfg.ReceiptWitnessWait = f.receiptWitnesses, f.receiptWitnessWait
	if cfg.ReceiptSignatures, err = parseSignatures(f.receiptSignatures, "--receipt-signatures"); err != nil {
		return cfg, nil, nil, err
	}
	if cfg.Notary, err = f.notaryClient(); err != nil {
		return cfg, nil, nil, err
	}
	keys, err := readPrivate(f.apiKeysFile, "--api-keys")
	if err != nil {
		return cfg, nil, nil, err
	}
	if cfg.APIKeys, err = auth.ParseTokens(keys); err != nil {
		return cfg, nil, nil, fmt.Errorf("--api-keys %s: %w", f.apiKeysFile, err)
	}
	tokenKey := make([]byte, 32)
	if f.tokenKeyFile != "" {
		if tokenKey, err = readSecret(f.tokenKeyFile, "--token-key-file", session.MinTokenKey); err != nil {
			return cfg, nil, nil, err
		}
	} else {
		rand.Read(tokenKey)
	}
	if cfg.TokenKey, err = session.NewTokenKey(tokenKey, f.appIssuer); err != nil {
		return cfg, nil, nil, err
	}
	cfg.HTTP.MaxConns, cfg.HTTP.MaxConnsPerIP = f.maxConns, f.maxConnsPerIP
	if f.webhook != "" {
		secret, err := readSecret(f.webhookSecretFile, "--webhook-secret-file", session.MinTokenKey)
		if err != nil {
			return cfg, nil, nil, err
		}
		cfg.Webhook.URL, cfg.Webhook.Secret = f.webhook, secret
	}
	if f.origins != "" {
		cfg.OriginPatterns = strings.Split(f.origins, ",")
	}
	srvTLS, _, err := apiTLS(f.tlsCert, f.tlsKey, "")
	if err != nil {
		return cfg, nil, nil, err
	}
	if f.iceServers != "" {
		cfg.ICE.URLs = strings.Split(f.iceServers, ",")
	}
	if f.turnSecretFile != "" {
		if cfg.ICE.TURNSecret, err = readSecret(f.turnSecretFile, "--turn-secret-file", 16); err != nil {
			return cfg, nil, nil, err
		}
	}
	cfg.ICE.RelayOnly = f.iceRelayOnly
	if f.instance != "" {
		cfg.Instance = f.instance
	}
	if f.peers != "" {
		if cfg.Peers, err = session.ParsePeers(f.peers); err != nil {
			return cfg, nil, nil, fmt.Errorf("--peers: %w", err)
		}
		peerTLS, err := clientTLS(f.peerCA, "--peer-ca")
		if err != nil {
			return cfg, nil, nil, err
		}
		cfg.PeerClient = &http.Client{Transport: &http.Transport{TLSClientConfig: peerTLS, MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}}
		cfg.ProbeInterval = f.probeInterval
	}
	turnCfg, err := f.embeddedTURN(&cfg, srvTLS)
	if err != nil {
		return cfg, nil, nil, err
	}
	if err := cfg.ICE.Validate(); err != nil {
		return cfg, nil, nil, fmt.Errorf("--ice-servers, --turn-secret-file: %w", err)
	}
	// What the flags say is checked before anything starts: a problem with
	// it is a usage error, not a failure of the run.
	return cfg, srvTLS, turnCfg, cfg.Validate()
}

// embeddedTURN is the configuration of the TURN server the flags ask for
// (nil: none). Its secret is --turn-secret-file's or, without one, a
// random one (the server and its credentials live in this process); when
// --ice-servers names no TURN server, clients are given this one's
// turn: URLs at the relay IP.
func (f *signalFlags) embeddedTURN(cfg *session.Config, srvTLS *tls.Config) (*turnserver.Config, error) {
	if f.turnListen == "" && f.turnTLSListen == "" {
		return nil, nil
	}
	tc := &turnserver.Config{Listen: f.turnListen, TLSListen: f.turnTLSListen, Realm: turnserver.DefaultRealm,
		MaxAllocationsPerUser: f.turnUserQuota, AllowPrivatePeers: f.turnAllowPrivate, Logger: cfg.Logger}
	if f.turnTLSListen != "" {
		if srvTLS == nil {
			return nil, errors.New("--turn-tls-listen needs --tls-cert and --tls-key: TURN over TLS uses the server's certificate")
		}
		tc.TLS = srvTLS
	}
	relayIP := f.turnRelayIP
	if relayIP == "" {
		host, _, _ := net.SplitHostPort(cmp.Or(f.turnListen, f.turnTLSListen))
		relayIP = host
	}
	if tc.RelayIP = net.ParseIP(relayIP); tc.RelayIP == nil || tc.RelayIP.IsUnspecified() {
		return nil, fmt.Errorf("--turn-relay-ip %q: the public IP address clients reach relays at is required when --turn-listen has no specific one", relayIP)
	}
	low, high, ok := strings.Cut(f.turnRelayPorts, "-")
	lo, err1 := strconv.ParseUint(low, 10, 16)
	hi, err2 := strconv.ParseUint(high, 10, 16)
	if !ok || err1 != nil || err2 != nil || lo == 0 || hi < lo {
		return nil, fmt.Errorf("--turn-relay-ports %q: want LOW-HIGH, ports from 1 to 65535, such as 49152-65535", f.turnRelayPorts)
	}
	tc.MinPort, tc.MaxPort = uint16(lo), uint16(hi)
	if len(cfg.ICE.TURNSecret) == 0 {
		cfg.ICE.TURNSecret = make([]byte, 32)
		rand.Read(cfg.ICE.TURNSecret)
	}
	tc.Secret = cfg.ICE.TURNSecret
	named := false
	for _, u := range cfg.ICE.URLs {
		named = named || strings.HasPrefix(u, "turn")
	}
	if !named {
		if f.turnListen == "" {
			return nil, errors.New("--turn-tls-listen: name it in --ice-servers as turns:<host name of the certificate>:<port>?transport=tcp, so that clients check the certificate")
		}
		_, port, err := net.SplitHostPort(f.turnListen)
		if err != nil {
			return nil, fmt.Errorf("--turn-listen %q: %w", f.turnListen, err)
		}
		at := net.JoinHostPort(tc.RelayIP.String(), port)
		cfg.ICE.URLs = append(cfg.ICE.URLs, "turn:"+at+"?transport=udp", "turn:"+at+"?transport=tcp")
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	tc.Registerer = cfg.Registerer
	return tc, nil
}

// notaryClient is the server's client of the cluster, with its submitter
// token.
func (f *signalFlags) notaryClient() (*notaryapi.Client, error) {
	token, err := readSecret(f.clusterTokenFile, "--cluster-token-file", 1)
	if err != nil {
		return nil, err
	}
	tlsConfig, err := clientTLS(f.clusterCA, "--cluster-ca")
	if err != nil {
		return nil, err
	}
	cc := notaryapi.ClientConfig{Nodes: strings.Split(f.cluster, ","), Token: string(token)}
	if tlsConfig != nil {
		cc.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	}
	return notaryapi.NewClient(cc), nil
}

// signalServer is a running signalling server and its HTTP server.
type signalServer struct {
	srv    *session.Server
	url    string
	served chan error // the end of serving
}

// startSignal starts the signalling server and serves it on listen.
func startSignal(ctx context.Context, cfg session.Config, listen string, srvTLS *tls.Config) (*signalServer, error) {
	// The server outlives the signal to stop: shutdown ends its sessions
	// gracefully.
	srv, err := session.NewServer(context.WithoutCancel(ctx), cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		srv.Close(context.Background())
		return nil, fmt.Errorf("--listen %s: %w (is another server on that port?)", listen, err)
	}
	s := &signalServer{srv: srv, served: make(chan error, 1)}
	scheme := "http"
	if srvTLS != nil {
		scheme = "https"
	}
	s.url = scheme + "://" + ln.Addr().String()
	// Serve applies the connection caps and timeouts of cfg.HTTP, and
	// HSTS over TLS; Close stops it.
	go func() { s.served <- srv.Serve(ln, srvTLS) }()
	return s, nil
}

// shutdown ends the sessions first, so that their end records are
// notarized while the apps are still connected to hear of it, then stops
// serving.
func (s *signalServer) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), signalStopTimeout)
	defer cancel()
	err := s.srv.Close(ctx)
	<-s.served
	return err
}
