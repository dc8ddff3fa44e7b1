// Package sessiontest starts what the signalling server's tests need: a
// real one-node notary cluster on loopback TCP with its data in a
// temporary directory, and a signalling server in front of it.
package sessiontest

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/torchwood"
	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/witness"
	"github.com/telenotary/telenotary/session"
	"github.com/telenotary/telenotary/session/signalapi"
	"golang.org/x/mod/sumdb/note"
)

// Test credentials.
const (
	Origin        = "sessiontest.example/log"
	AppKey        = "app-key-0123456789abcdef"
	OperatorKey   = "operator-key-0123456789abcdef"
	clusterToken  = "cluster-submitter-0123456789"
	clusterTokens = "submitter " + clusterToken + "\n"
	apiKeysFile   = "submitter " + AppKey + "\noperator " + OperatorKey + "\n"
)

// Notary is a running one-node cluster.
type Notary struct {
	Node    *cluster.Node
	Client  *notaryapi.Client
	URL     string
	DataDir string
	// Keys is the cluster's keys file text; Policy trusts it.
	Keys   []byte
	Policy notary.Policy
}

// StartNotary starts a one-node cluster and waits until it leads. It is
// closed when the test ends.
func StartNotary(t testing.TB) *Notary {
	t.Helper()
	return startNotary(t, nil)
}

// StartWitnessedNotary starts a one-node cluster that submits its
// checkpoints to a real witness (package notary/witness) served on
// loopback, or, when down, to a witness URL where nothing listens. It
// returns the witness's cosignature verifier.
func StartWitnessedNotary(t testing.TB, down bool) (*Notary, *torchwood.CosignatureVerifier) {
	t.Helper()
	wkey, _, err := note.GenerateKey(rand.Reader, "witness.sessiontest.example")
	if err != nil {
		t.Fatal(err)
	}
	wsigner, err := witness.NewSigner(wkey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	n := startNotary(t, func(cfg *cluster.Config) {
		if down {
			ln.Close()
		} else {
			v, err := note.NewVerifier(cfg.VerifierKey)
			if err != nil {
				t.Fatal(err)
			}
			w, err := witness.New(witness.Config{Dir: t.TempDir(), Signer: wsigner, Logs: []witness.Log{{Origin: Origin, Verifiers: []note.Verifier{v}}}})
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: w}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close(); w.Close() })
		}
		spec, err := cluster.ParseWitness(url + "=" + wsigner.Verifier().String())
		if err != nil {
			t.Fatal(err)
		}
		cfg.Witnesses = []cluster.Witness{spec}
		cfg.WitnessInterval, cfg.WitnessMaxBackoff = 0, 200*time.Millisecond
	})
	return n, wsigner.Verifier()
}

func startNotary(t testing.TB, configure func(*cluster.Config)) *Notary {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "notary-1")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.ParseTokens([]byte(clusterTokens))
	if err != nil {
		t.Fatal(err)
	}
	cfg := cluster.DefaultConfig()
	cfg.ID = "notary-1"
	cfg.DataDir = filepath.Join(t.TempDir(), "notary-1")
	cfg.RaftAddr, cfg.HTTPAddr, cfg.InsecureRaft = "127.0.0.1:0", "127.0.0.1:0", true
	cfg.Signer, cfg.VerifierKey = signer, vkey
	cfg.Tokens = tokens
	cfg.Bootstrap, cfg.Origin = true, Origin
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
	cfg.Logger = Logger(t)
	if configure != nil {
		configure(&cfg)
	}
	n, err := cluster.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start notary: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	WaitFor(t, "the notary to lead", n.Ready)
	url := "http://" + n.HTTPAddr()
	keys := []byte(vkey + "\n")
	verifiers, err := notary.ParseVerifierKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	return &Notary{
		Node: n, URL: url, DataDir: cfg.DataDir, Keys: keys,
		Client: notaryapi.NewClient(notaryapi.ClientConfig{Nodes: []string{url}, Token: clusterToken}),
		Policy: notary.Policy{Verifiers: verifiers, MinSignatures: 1, Origin: Origin},
	}
}

// Signal is a running signalling server.
type Signal struct {
	Server *session.Server
	// HTTP serves it (StartSignal); nil when the server serves itself
	// (ServeSignal).
	HTTP     *httptest.Server
	TokenKey *session.TokenKey
	// URL is the server's base URL; WS its WebSocket URL.
	URL, WS string
}

// Client returns an API client of the server with the key (AppKey,
// OperatorKey or none) that sends its requests through transport (nil:
// http.DefaultTransport).
func (s *Signal) Client(key string, transport http.RoundTripper) *signalapi.Client {
	return signalapi.NewClient(signalapi.Config{Base: s.URL, Key: key, HTTPClient: &http.Client{Transport: transport}})
}

// StartSignal starts a signalling server in front of n, served by an
// httptest.Server; configure may change its config (a TokenKey it sets is
// the Signal's). It is closed when the test ends.
func StartSignal(t testing.TB, n *Notary, configure func(*session.Config)) *Signal {
	t.Helper()
	s, cfg := newSignal(t, n, configure)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close signalling server: %v", err)
		}
		hs.Close()
	})
	return &Signal{Server: s, HTTP: hs, TokenKey: cfg.TokenKey, URL: hs.URL, WS: "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/signal"}
}

// ServeSignal is StartSignal with the server serving itself
// (session.Server.Serve, with the limits of its Config.HTTP) on a
// loopback port.
func ServeSignal(t testing.TB, n *Notary, configure func(*session.Config)) *Signal {
	t.Helper()
	return ServeSignalAt(t, n, "127.0.0.1:0", configure)
}

// ServeSignalAt is ServeSignal listening on addr, for tests whose clients
// are on other networks than loopback.
func ServeSignalAt(t testing.TB, n *Notary, addr string, configure func(*session.Config)) *Signal {
	t.Helper()
	s, cfg := newSignal(t, n, configure)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln, nil) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close signalling server: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
	})
	url := "http://" + ln.Addr().String()
	return &Signal{Server: s, TokenKey: cfg.TokenKey, URL: url, WS: "ws://" + ln.Addr().String() + "/v1/signal"}
}

// newSignal makes a server in front of n with a fresh token key and the
// test's API keys, changed by configure.
func newSignal(t testing.TB, n *Notary, configure func(*session.Config)) (*session.Server, session.Config) {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	tk, err := session.NewTokenKey(key)
	if err != nil {
		t.Fatal(err)
	}
	apiKeys, err := auth.ParseTokens([]byte(apiKeysFile))
	if err != nil {
		t.Fatal(err)
	}
	cfg := session.DefaultConfig()
	cfg.Notary, cfg.TokenKey, cfg.APIKeys, cfg.Logger = n.Client, tk, apiKeys, Logger(t)
	if configure != nil {
		configure(&cfg)
	}
	s, err := session.NewServer(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, cfg
}

// Tokens issues a patient and a physician token for a new room id.
func (s *Signal) Tokens(t testing.TB, room string) (patient, physician string) {
	t.Helper()
	exp := time.Now().Add(time.Hour)
	patient, err := s.TokenKey.Issue(room, signalapi.RolePatient, "patient-"+room, exp)
	if err != nil {
		t.Fatal(err)
	}
	physician, err = s.TokenKey.Issue(room, signalapi.RolePhysician, "physician-"+room, exp)
	if err != nil {
		t.Fatal(err)
	}
	return patient, physician
}

// WaitFor polls cond every 10ms until it holds; the test fails after 30s.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Logger logs warnings and errors to the test's log.
func Logger(t testing.TB) *slog.Logger {
	if os.Getenv("TELENOTARY_TEST_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

// Write logs one line to the test.
func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// StartGroup starts len(names) signalling servers in front of n as one
// group (session.Config.Peers), each on its own loopback listener, sharing
// a token key, and waits until each sees all the others answer. configure
// may change each one's config. They are closed when the test ends.
func StartGroup(t testing.TB, n *Notary, names []string, configure func(*session.Config)) []*Signal {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	tk, err := session.NewTokenKey(key)
	if err != nil {
		t.Fatal(err)
	}
	lns := make([]net.Listener, len(names))
	for i := range names {
		if lns[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	out := make([]*Signal, len(names))
	for i, name := range names {
		var peers []session.Peer
		for j, other := range names {
			if j != i {
				peers = append(peers, session.Peer{Name: other, URL: "http://" + lns[j].Addr().String()})
			}
		}
		s, _ := newSignal(t, n, func(cfg *session.Config) {
			cfg.TokenKey, cfg.Instance, cfg.Peers, cfg.ProbeInterval = tk, name, peers, 100*time.Millisecond
			if configure != nil {
				configure(cfg)
			}
		})
		hs := httptest.NewUnstartedServer(s.Handler())
		hs.Listener.Close()
		hs.Listener = lns[i]
		hs.Start()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s.Close(ctx)
			hs.Close()
		})
		out[i] = &Signal{Server: s, HTTP: hs, TokenKey: tk, URL: hs.URL, WS: "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/signal"}
	}
	for _, s := range out {
		WaitFor(t, "every instance of the group to answer", func() bool { return s.InstancesUp(t) == len(names) })
	}
	return out
}

// InstancesUp reads the server's telenotary_signal_instances_up metric.
func (s *Signal) InstancesUp(t testing.TB) int {
	t.Helper()
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "telenotary_signal_instances_up "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return -1
}
