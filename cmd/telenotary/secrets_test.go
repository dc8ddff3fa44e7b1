package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/filestore"
	"github.com/telenotary/telenotary/notary/witness"
	"golang.org/x/mod/sumdb/note"
)

// stoppedContext has ended already: a command that gets past its checks
// stops at once instead of running.
func stoppedContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// writeTestFile writes a file of dir with the given mode (whatever the
// umask).
func writeTestFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// testKeyPair writes a self-signed certificate for 127.0.0.1 and its key
// (mode 0600), and returns their paths; the certificate is its own CA.
func testKeyPair(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeTestFile(t, dir, "tls.crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), 0o644)
	keyFile = writeTestFile(t, dir, "tls.key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})), 0o600)
	return certFile, keyFile
}

// testSecrets are the paths of key and token files, each mode 0600.
type testSecrets struct {
	signerKey string // a node's signer key
	tokens    string // a tokens file with a token of each role
	token     string // one token
	longKey   string // a key of 40 bytes (a room-token key, a webhook secret)
	apiKeys   string // a signalling server's API keys file
}

// writeTestSecrets writes the key and token files of testSecrets into dir.
func writeTestSecrets(t *testing.T, dir string) testSecrets {
	t.Helper()
	skey, _, err := notary.GenerateKey("node-1")
	if err != nil {
		t.Fatal(err)
	}
	private := func(name, content string) string { return writeTestFile(t, dir, name, content, 0o600) }
	return testSecrets{
		signerKey: private("node-1.key", skey+"\n"),
		tokens:    private("tokens", "submitter submitter-token-0123456789\njoin join-token-0123456789\noperator operator-token-0123456789\n"),
		token:     private("token", "token-0123456789abcdef\n"),
		longKey:   private("long.key", strings.Repeat("k", 40)+"\n"),
		apiKeys:   private("api-keys", "submitter app-key-0123456789abcdef\n"),
	}
}

// busyAddr is an address something already listens on.
func busyAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// TestSecretFilesMustBePrivate: every flag that reads a key or a token
// refuses a file its group or others may read, with exit 2 and one line
// that names the flag, the file and chmod 600. With every file private,
// the same command line gets past the files (and stops on a later,
// deliberate problem), so the refusal is the mode's doing.
func TestSecretFilesMustBePrivate(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SKIPPED: file modes do not say who may read a file on Windows")
	}
	dir := t.TempDir()
	sec := writeTestSecrets(t, dir)
	signerKey, tokens, token, longKey, apiKeys := sec.signerKey, sec.tokens, sec.token, sec.longKey, sec.apiKeys
	cert, tlsKey := testKeyPair(t, dir)
	busy := busyAddr(t)

	for _, family := range []struct {
		name    string
		args    []string
		secrets []string // the flags whose file is a secret
		past    string   // what the command says once past its files
	}{
		{"node", []string{"node", "--id", "node-1", "--data-dir", filepath.Join(dir, "data"), "--bootstrap", "--origin", "o.test/log",
			"--signer-key", signerKey, "--tokens", tokens, "--join", "http://127.0.0.1:1", "--join-token-file", token,
			"--tls-cert", cert, "--tls-key", tlsKey, "--raft-tls-cert", cert, "--raft-tls-key", tlsKey, "--raft-tls-ca", cert,
			"--log-level", "loud"},
			[]string{"--signer-key", "--tokens", "--join-token-file", "--tls-key", "--raft-tls-key"}, "--log-level"},
		{"signal", []string{"signal", "--cluster", "http://127.0.0.1:1", "--cluster-token-file", token, "--api-keys", apiKeys,
			"--token-key-file", longKey, "--webhook", "http://127.0.0.1:1/hook", "--webhook-secret-file", longKey,
			"--tls-cert", cert, "--tls-key", tlsKey, "--listen", busy},
			[]string{"--cluster-token-file", "--api-keys", "--token-key-file", "--webhook-secret-file", "--tls-key"}, "is another server on that port"},
		{"console", []string{"console", "--nodes", "ftp://127.0.0.1:1", "--token-file", token, "--signal", "http://127.0.0.1:1", "--signal-key-file", apiKeys},
			[]string{"--token-file", "--signal-key-file"}, "is not an http(s) URL"},
		{"bench notarize", []string{"bench", "notarize", "--nodes", "http://127.0.0.1:1", "--token-file", token},
			[]string{"--token-file"}, "cannot fetch the cluster's keys"},
		{"bench signal", []string{"bench", "signal", "--signal", "http://127.0.0.1:1", "--api-key-file", token, "--rooms", "1", "--duration", "0"},
			[]string{"--api-key-file"}, "no consultation could be set up"},
	} {
		t.Run(family.name, func(t *testing.T) {
			if _, _, stderr := runCmdContext(t, stoppedContext(), nil, family.args...); !strings.Contains(stderr, family.past) || strings.Contains(stderr, "chmod") {
				t.Fatalf("with every file private: stderr %q, want %q", stderr, family.past)
			}
			for _, flagName := range family.secrets {
				t.Run(flagName, func(t *testing.T) {
					i := slices.Index(family.args, flagName)
					if i < 0 {
						t.Fatalf("%s is not in the command line", flagName)
					}
					// A copy readable by all, for this flag only.
					shared := writeTestFile(t, t.TempDir(), "shared", mustRead(t, family.args[i+1]), 0o644)
					args := slices.Clone(family.args)
					args[i+1] = shared
					code, _, stderr := runCmdContext(t, stoppedContext(), nil, args...)
					line := strings.TrimSuffix(stderr, "\n")
					if code != exitUsage || strings.Contains(line, "\n") {
						t.Fatalf("exit %d, stderr %q; want exit 2 and one line", code, stderr)
					}
					for _, want := range []string{flagName + " " + shared, "mode 0644", "chmod 600 " + shared} {
						if !strings.Contains(line, want) {
							t.Errorf("the refusal %q does not say %q", line, want)
						}
					}
				})
			}
		})
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPublicFilesMayBeShared: verifier keys, certificates and CAs are
// public; a mode of 0644 is fine for them.
func TestPublicFilesMayBeShared(t *testing.T) {
	dir := t.TempDir()
	cert, _ := testKeyPair(t, dir) // the certificate is 0644
	if _, err := clientTLS(cert, "--tls-ca"); err != nil {
		t.Fatalf("a CA file of mode 0644: %v", err)
	}
	keys := filepath.Join(vectors, "keys.pub")
	shared := writeTestFile(t, dir, "keys.pub", mustRead(t, keys), 0o644)
	if code, stdout, stderr := runCmd(t, nil, "verify", filepath.Join(vectors, "valid.json"), "--keys", shared); code != exitOK {
		t.Fatalf("verify with a keys file of mode 0644: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestWarnClearText: a bearer token bound for plain http off this machine
// gets one warning naming the URL; https and loopback get none.
func TestWarnClearText(t *testing.T) {
	for _, tc := range []struct {
		url  string
		warn bool
	}{
		{"http://10.0.0.1:8080", true},
		{"http://notary-1.example.org:8080", true},
		{"HTTP://10.0.0.1", true},
		{"ws://10.0.0.1/v1/signal", true},
		{"https://10.0.0.1:8443", false},
		{"http://127.0.0.1:8080", false},
		{"http://127.8.9.10:8080", false},
		{"http://localhost:8080", false},
		{"http://[::1]:8080", false},
		{"ftp://x", false}, // left to the URL checks
		{"", false},
	} {
		var lines []string
		warnClearText(func(line string) { lines = append(lines, line) }, "--nodes", "operator token", []string{tc.url})
		switch {
		case tc.warn && (len(lines) != 1 || !strings.Contains(lines[0], "--nodes "+tc.url) || !strings.Contains(lines[0], "operator token travels in clear")):
			t.Errorf("%q: warnings %q, want one naming the URL and the token in clear", tc.url, lines)
		case !tc.warn && len(lines) != 0:
			t.Errorf("%q: warnings %q, want none", tc.url, lines)
		}
	}
}

// TestClearTextWarningAtStart: each command that sends a bearer token
// warns at start when a URL it sends it to is plain http off loopback
// (192.0.2.1 is a documentation address; every command stops before it
// sends anything).
func TestClearTextWarningAtStart(t *testing.T) {
	dir := t.TempDir()
	sec := writeTestSecrets(t, dir)
	signerKey, tokens, token, apiKeys := sec.signerKey, sec.tokens, sec.token, sec.apiKeys
	const far = "http://192.0.2.1:8080"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"node --join", []string{"node", "--id", "node-2", "--data-dir", filepath.Join(dir, "data"), "--join", far, "--join-token-file", token,
			"--signer-key", signerKey, "--tokens", tokens, "--insecure-raft", "--raft-addr", "127.0.0.1:0", "--http-addr", busyAddr(t)},
			"--join " + far + ": the join token travels in clear"},
		{"signal --cluster", []string{"signal", "--cluster", far, "--cluster-token-file", token, "--api-keys", apiKeys, "--listen", busyAddr(t)},
			"--cluster " + far + ": the cluster token travels in clear"},
		{"console --nodes", []string{"console", "--nodes", far + ",ftp://x", "--token-file", token},
			"--nodes " + far + ": the operator token travels in clear"},
		{"console --signal", []string{"console", "--nodes", "ftp://x", "--signal", far, "--signal-key-file", apiKeys},
			"--signal " + far + ": the signalling server's API key travels in clear"},
		{"bench notarize --nodes", []string{"bench", "notarize", "--nodes", far, "--token-file", token},
			"--nodes " + far + ": the submitter token travels in clear"},
		{"bench signal --signal", []string{"bench", "signal", "--signal", far, "--api-key-file", token, "--rooms", "1", "--duration", "0"},
			"--signal " + far + ": the API key travels in clear"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, stderr := runCmdContext(t, stoppedContext(), nil, tc.args...)
			if strings.Count(stderr, "travels in clear") != 1 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("stderr %q; want one warning with %q", stderr, tc.want)
			}
		})
	}
	// Loopback and https: no warning.
	_, _, stderr := runCmdContext(t, stoppedContext(), nil, "bench", "notarize", "--nodes", "http://127.0.0.1:1,https://192.0.2.1:8443", "--token-file", token)
	if strings.Contains(stderr, "travels in clear") {
		t.Fatalf("a warning for loopback or https: %q", stderr)
	}
}

// TestNodeDebugAddrLoopbackOnly: the profiler is refused anywhere but on
// loopback, in one line; on loopback it serves.
func TestNodeDebugAddrLoopbackOnly(t *testing.T) {
	dir := t.TempDir()
	for _, addr := range []string{"0.0.0.0:6060", ":6060", "10.0.0.1:6060", "[::]:6060", "example.org:6060", "6060"} {
		code, _, stderr := runCmd(t, nil, "node", "--id", "n", "--data-dir", dir, "--bootstrap", "--signer-key", "k", "--tokens", "t", "--debug-addr", addr)
		if code != exitUsage || strings.Count(strings.TrimSpace(stderr), "\n") > 0 || !strings.Contains(stderr, "--debug-addr "+addr) {
			t.Errorf("--debug-addr %s: exit %d, stderr %q; want exit 2 and one line naming it", addr, code, stderr)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0"} {
		if err := checkDebugAddr(addr); err != nil {
			t.Errorf("--debug-addr %s refused: %v", addr, err)
		}
	}
	stop, err := serveDebug("localhost:0")
	if err != nil {
		t.Fatal(err)
	}
	stop()
}

// TestNodeMaxClockSkew: --max-clock-skew reaches the node's configuration,
// with the cluster's default, and must be above 0.
func TestNodeMaxClockSkew(t *testing.T) {
	dir := t.TempDir()
	sec := writeTestSecrets(t, dir)
	base := []string{"--id", "node-1", "--data-dir", dir, "--bootstrap", "--origin", "o.test/log", "--signer-key", sec.signerKey, "--tokens", sec.tokens}
	env := &environment{stdout: new(strings.Builder), stderr: new(strings.Builder), getenv: func(string) string { return "" }}
	for _, tc := range []struct {
		args []string
		want time.Duration
	}{
		{nil, time.Second},
		{[]string{"--max-clock-skew", "250ms"}, 250 * time.Millisecond},
	} {
		var f nodeFlags
		if err := f.parse(env, append(slices.Clone(base), tc.args...)); err != nil {
			t.Fatal(err)
		}
		cfg, err := f.config(env)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.MaxClockSkew != tc.want {
			t.Errorf("%v: MaxClockSkew %v, want %v", tc.args, cfg.MaxClockSkew, tc.want)
		}
	}
	if code, _, stderr := runCmd(t, nil, append([]string{"node", "--max-clock-skew", "0"}, base...)...); code != exitUsage || !strings.Contains(stderr, "--max-clock-skew") {
		t.Errorf("--max-clock-skew 0: exit %d, stderr %q", code, stderr)
	}
	if _, stdout, stderr := runCmd(t, nil, "node", "--help"); !strings.Contains(stdout+stderr, "  --max-clock-skew  [TELENOTARY_MAX_CLOCK_SKEW]") {
		t.Errorf("node --help lacks --max-clock-skew:\n%s", stdout+stderr)
	}
}

// TestNodeScrubRate: --scrub-rate reaches the node's configuration, with
// the cluster's default; 0 turns the scrub off and a negative rate is a
// usage error naming the flag. --no-heal reaches it too (heal by default).
func TestNodeScrubRate(t *testing.T) {
	dir := t.TempDir()
	sec := writeTestSecrets(t, dir)
	base := []string{"--id", "node-1", "--data-dir", dir, "--bootstrap", "--origin", "o.test/log", "--signer-key", sec.signerKey, "--tokens", sec.tokens}
	env := &environment{stdout: new(strings.Builder), stderr: new(strings.Builder), getenv: func(string) string { return "" }}
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, cluster.DefaultConfig().ScrubRate},
		{[]string{"--scrub-rate", "500"}, 500},
		{[]string{"--scrub-rate", "0"}, 0},
	} {
		var f nodeFlags
		if err := f.parse(env, append(slices.Clone(base), tc.args...)); err != nil {
			t.Fatal(err)
		}
		cfg, err := f.config(env)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.ScrubRate != tc.want {
			t.Errorf("%v: ScrubRate %d, want %d", tc.args, cfg.ScrubRate, tc.want)
		}
	}
	if code, _, stderr := runCmd(t, nil, append([]string{"node", "--scrub-rate", "-1"}, base...)...); code != exitUsage || !strings.Contains(stderr, "--scrub-rate") {
		t.Errorf("--scrub-rate -1: exit %d, stderr %q", code, stderr)
	}
	for _, tc := range []struct {
		args []string
		want bool
	}{{nil, false}, {[]string{"--no-heal"}, true}} {
		var f nodeFlags
		if err := f.parse(env, append(slices.Clone(base), tc.args...)); err != nil {
			t.Fatal(err)
		}
		if cfg, err := f.config(env); err != nil || cfg.NoHeal != tc.want {
			t.Errorf("%v: NoHeal %v (%v), want %v", tc.args, cfg.NoHeal, err, tc.want)
		}
	}
	var f nodeFlags
	if err := f.parse(env, append(slices.Clone(base), "--follower-commit-delay", "5ms")); err != nil {
		t.Fatal(err)
	}
	if cfg, err := f.config(env); err != nil || cfg.FollowerCommitDelay != 5*time.Millisecond {
		t.Errorf("--follower-commit-delay 5ms: %v (%v)", cfg.FollowerCommitDelay, err)
	}
	if code, _, stderr := runCmd(t, nil, append([]string{"node", "--follower-commit-delay", "0s"}, base...)...); code != exitUsage || !strings.Contains(stderr, "--follower-commit-delay") {
		t.Errorf("--follower-commit-delay 0s: exit %d, stderr %q", code, stderr)
	}
}

// TestNodeWitnessFlag: --witness URL=VKEY, repeated or from the
// environment (separated by spaces), reaches the node's configuration; a
// bad value is one line naming the flag.
func TestNodeWitnessFlag(t *testing.T) {
	dir := t.TempDir()
	sec := writeTestSecrets(t, dir)
	base := []string{"--id", "node-1", "--data-dir", dir, "--bootstrap", "--origin", "o.test/log", "--signer-key", sec.signerKey, "--tokens", sec.tokens}
	var vkeys []string
	for _, name := range []string{"w1.test", "w2.test"} {
		skey, _, err := note.GenerateKey(nil, name)
		if err != nil {
			t.Fatal(err)
		}
		s, err := witness.NewSigner(skey)
		if err != nil {
			t.Fatal(err)
		}
		vkeys = append(vkeys, s.Verifier().String())
	}
	one, two := "https://w1.example/w="+vkeys[0], "http://127.0.0.1:7380="+vkeys[1]
	for _, tc := range []struct {
		args []string
		env  string
	}{
		{[]string{"--witness", one, "--witness", two}, ""},
		{nil, one + " " + two},
	} {
		env := &environment{stdout: new(strings.Builder), stderr: new(strings.Builder), getenv: func(k string) string {
			if k == "TELENOTARY_WITNESS" {
				return tc.env
			}
			return ""
		}}
		var f nodeFlags
		if err := f.parse(env, append(slices.Clone(base), tc.args...)); err != nil {
			t.Fatal(err)
		}
		cfg, err := f.config(env)
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Witnesses) != 2 || cfg.Witnesses[0].URL != "https://w1.example/w" || cfg.Witnesses[1].Verifier.Name() != "w2.test" {
			t.Errorf("%v %q: Witnesses %+v", tc.args, tc.env, cfg.Witnesses)
		}
		if cfg.WitnessInterval != cluster.DefaultConfig().WitnessInterval {
			t.Errorf("WitnessInterval %v, want the default", cfg.WitnessInterval)
		}
	}
	env := &environment{stdout: new(strings.Builder), stderr: new(strings.Builder), getenv: func(string) string { return "" }}
	var f nodeFlags
	if err := f.parse(env, append(slices.Clone(base), "--witness-interval", "250ms")); err != nil {
		t.Fatal(err)
	}
	if cfg, err := f.config(env); err != nil || cfg.WitnessInterval != 250*time.Millisecond {
		t.Errorf("--witness-interval 250ms: %v (%v)", cfg.WitnessInterval, err)
	}
	if code, _, stderr := runCmd(t, nil, append([]string{"node", "--witness-interval", "-1s"}, base...)...); code != exitUsage || !strings.Contains(stderr, "--witness-interval") {
		t.Errorf("--witness-interval -1s: exit %d, stderr %q", code, stderr)
	}
	// Raft's snapshot settings reach the node's configuration; nonsense is
	// refused, naming the flag.
	f = nodeFlags{}
	if err := f.parse(env, append(slices.Clone(base), "--snapshot-interval", "2s", "--snapshot-threshold", "64", "--trailing-logs", "16")); err != nil {
		t.Fatal(err)
	}
	if cfg, err := f.config(env); err != nil || cfg.SnapshotInterval != 2*time.Second || cfg.SnapshotThreshold != 64 || cfg.TrailingLogs != 16 {
		t.Errorf("snapshot flags: interval %v, threshold %d, trailing %d (%v)", cfg.SnapshotInterval, cfg.SnapshotThreshold, cfg.TrailingLogs, err)
	}
	for _, bad := range [][]string{{"--snapshot-interval", "1ms"}, {"--snapshot-threshold", "0"}, {"--trailing-logs", "0"}} {
		if code, _, stderr := runCmd(t, nil, append([]string{"node", bad[0], bad[1]}, base...)...); code != exitUsage || !strings.Contains(stderr, bad[0]) {
			t.Errorf("%s %s: exit %d, stderr %q", bad[0], bad[1], code, stderr)
		}
	}
	_, nodeKey, err := note.GenerateKey(nil, "w3.test")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"https://w.example", "https://w.example=" + nodeKey, "ftp://w.example=" + vkeys[0]} {
		code, _, stderr := runCmd(t, nil, append([]string{"node", "--witness", bad}, base...)...)
		if code != exitUsage || !strings.Contains(stderr, "--witness") || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("--witness %q: exit %d, stderr %q; want one line naming --witness", bad, code, stderr)
		}
	}
	if code, _, stderr := runCmd(t, map[string]string{"TELENOTARY_WITNESS": "nonsense"}, append([]string{"node"}, base...)...); code != exitUsage || !strings.Contains(stderr, "--witness") {
		t.Errorf("TELENOTARY_WITNESS=nonsense: exit %d, stderr %q", code, stderr)
	}
}

// TestNodeMemoryLimit: --memory-limit sets the Go runtime's soft memory
// limit (0: none), GOMEMLIMIT wins over it, and a bad value is refused
// naming the flag.
func TestNodeMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	noEnv := func(string) string { return "" }
	if got := applyMemoryLimit(150, noEnv); got != 150<<20 || debug.SetMemoryLimit(-1) != 150<<20 {
		t.Errorf("--memory-limit 150: limit %d, runtime's %d", got, debug.SetMemoryLimit(-1))
	}
	if got := applyMemoryLimit(0, noEnv); got != 0 || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Errorf("--memory-limit 0: limit %d, runtime's %d; want none", got, debug.SetMemoryLimit(-1))
	}
	debug.SetMemoryLimit(300 << 20) // as the runtime does for GOMEMLIMIT=300MiB
	env := func(k string) string {
		if k == "GOMEMLIMIT" {
			return "300MiB"
		}
		return ""
	}
	if got := applyMemoryLimit(150, env); got != 300<<20 {
		t.Errorf("GOMEMLIMIT=300MiB and --memory-limit 150: limit %d, want GOMEMLIMIT's", got)
	}
	if code, _, stderr := runCmd(t, nil, "node", "--memory-limit", "lots", "--id", "n", "--data-dir", t.TempDir(), "--signer-key", "k", "--tokens", "t"); code != exitUsage || !strings.Contains(stderr, "memory-limit") {
		t.Errorf("--memory-limit lots: exit %d, stderr %q", code, stderr)
	}
}

// TestNodeLimitLeavesRoomOffHeap: the node lowers the runtime's soft limit
// by what its store holds outside the Go heap (a store's default
// memtables: about 32 MiB on linux), but never below half the limit, and
// gives it back as the store frees it.
func TestNodeLimitLeavesRoomOffHeap(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	before := filestore.OffHeapBytes()
	s, err := filestore.Open(t.TempDir(), filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	off := filestore.OffHeapBytes()
	if runtime.GOOS == "linux" && off-before < 30<<20 {
		t.Errorf("an open store holds %d bytes outside the Go heap, want its memtables' 32 MiB", off-before)
	}
	stop := leaveRoomOffHeap(300 << 20)
	if got := debug.SetMemoryLimit(-1); got != max(300<<20-off, 150<<20) {
		t.Errorf("limit 300 MiB with %d bytes off the heap: runtime's limit %d", off, got)
	}
	stop()
	stop = leaveRoomOffHeap(off)
	if got := debug.SetMemoryLimit(-1); got != off/2 {
		t.Errorf("limit %d with as much off the heap: runtime's limit %d, want half", off, got)
	}
	stop()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := filestore.OffHeapBytes(); got != before {
		t.Errorf("%d bytes outside the Go heap after the store closed, want %d", got, before)
	}
}
