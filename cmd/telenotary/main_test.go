package main

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/telenotary/telenotary/cmd/telenotary/internal/demo"
	"github.com/telenotary/telenotary/notary"
	"golang.org/x/mod/sumdb/note"
)

const vectors = "../../notary/testdata/vectors"

// runCmd runs the command line in-process with the given environment.
func runCmd(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runCmdContext(t, context.Background(), env, args...)
}

// runCmdContext runs the command line in-process under ctx, as if
// interrupted when ctx ends.
func runCmdContext(t *testing.T, ctx context.Context, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &environment{stdout: &out, stderr: &errOut, getenv: func(k string) string { return env[k] }}
	code = run(ctx, e, args)
	return code, out.String(), errOut.String()
}

// TestVerifyVectors runs `telenotary verify` on every bundle of the test
// vectors: exit 0 and VALID, or exit 1 and INVALID with the reason, the
// bundles that do not parse ("malformed input") included, as FORMATS.md
// lists that outcome with the others.
func TestVerifyVectors(t *testing.T) {
	var m struct {
		Keys  string
		Cases []struct {
			Bundle           string
			Policy           string `json:"policy"`
			MinSignatures    int    `json:"min_signatures"`
			Origin           string `json:"origin"`
			NewerCheckpoint  string `json:"newer_checkpoint"`
			ConsistencyProof string `json:"consistency_proof"`
			Expect           string
		}
	}
	b, err := os.ReadFile(filepath.Join(vectors, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	sentinels := map[string]error{
		"commitment mismatch": notary.ErrCommitmentMismatch, "leaf mismatch": notary.ErrLeafMismatch,
		"proof invalid": notary.ErrProofInvalid, "root mismatch": notary.ErrRootMismatch,
		"signature invalid": notary.ErrSignatureInvalid, "too few trusted signatures": notary.ErrTooFewSignatures,
		"inconsistent history": notary.ErrInconsistentHistory, "wrong log": notary.ErrWrongLog,
		"malformed input": notary.ErrMalformed,
	}
	for _, c := range m.Cases {
		if c.Policy != "" {
			continue // TestVerifyPolicyVectors
		}
		t.Run(c.Bundle+"/"+c.Expect, func(t *testing.T) {
			args := []string{"verify", filepath.Join(vectors, c.Bundle), "--keys", filepath.Join(vectors, m.Keys)}
			if c.MinSignatures > 0 {
				args = append(args, "--min-signatures", strconv.Itoa(c.MinSignatures))
			}
			if c.Origin != "" {
				args = append(args, "--origin", c.Origin)
			}
			if c.NewerCheckpoint != "" {
				args = append(args, "--checkpoint", filepath.Join(vectors, c.NewerCheckpoint), "--consistency", filepath.Join(vectors, c.ConsistencyProof))
			}
			code, stdout, stderr := runCmd(t, nil, args...)
			switch c.Expect {
			case "valid":
				if code != exitOK || !strings.HasPrefix(stdout, "VALID: prescription notarized") && !strings.HasPrefix(stdout, "VALID: document notarized") ||
					c.NewerCheckpoint != "" && !strings.Contains(stdout, "history:    a newer checkpoint") {
					t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
				}
			default:
				if sentinels[c.Expect] == nil {
					t.Fatalf("no sentinel for the outcome %q", c.Expect)
				}
				want := "INVALID: " + notary.Reason(sentinels[c.Expect]) + "\n"
				if code != exitInvalid || !strings.HasPrefix(stdout, want) {
					t.Fatalf("exit %d, want %d and %q\n%s%s", code, exitInvalid, want, stdout, stderr)
				}
			}
		})
	}
}

// TestVerifyNewerCheckpointForms: the consistency proof is taken as the
// API answers it too; a proof file that is neither form is malformed
// input, and a newer checkpoint without its proof a usage error.
func TestVerifyNewerCheckpointForms(t *testing.T) {
	dir := t.TempDir()
	var hashes []notary.Hash
	if err := json.Unmarshal(readVector(t, "consistency-proof.json"), &hashes); err != nil {
		t.Fatal(err)
	}
	answer, _ := json.Marshal(map[string]any{"from": 1, "size": 2, "proof": hashes})
	bad := filepath.Join(dir, "bad.json")
	asAnswer := filepath.Join(dir, "answer.json")
	os.WriteFile(asAnswer, answer, 0o600)
	os.WriteFile(bad, []byte(`{"proof":"nope"}`), 0o600)
	base := []string{"verify", filepath.Join(vectors, "valid.json"), "--keys", filepath.Join(vectors, "keys.pub"), "--min-signatures", "2",
		"--checkpoint", filepath.Join(vectors, "newer-checkpoint.txt")}
	if code, stdout, stderr := runCmd(t, nil, append(base, "--consistency", asAnswer)...); code != exitOK || !strings.Contains(stdout, "history:") {
		t.Errorf("the API's answer as the proof: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, _ := runCmd(t, nil, append(base, "--consistency", bad)...); code != exitInvalid || !strings.HasPrefix(stdout, "INVALID: "+notary.Reason(notary.ErrMalformed)) {
		t.Errorf("a proof file of neither form: exit %d\n%s", code, stdout)
	}
	if code, _, stderr := runCmd(t, nil, base...); code != exitUsage || !strings.Contains(stderr, "--checkpoint and --consistency go together") {
		t.Errorf("--checkpoint alone: exit %d %s", code, stderr)
	}
}

func readVector(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectors, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// separateFiles writes the parts of the valid vector bundle to files.
func separateFiles(t *testing.T) (dir string, bundle *notary.Bundle) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectors, "valid.json"))
	if err != nil {
		t.Fatal(err)
	}
	if bundle, err = notary.ParseBundle(b); err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	r, _ := json.Marshal(bundle.Receipt)
	salt, _ := bundle.Salt.MarshalText()
	for name, content := range map[string][]byte{"receipt.json": r, "doc.json": bundle.Document, "salt.txt": append(salt, '\n')} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir, bundle
}

func TestVerifySeparateFiles(t *testing.T) {
	dir, bundle := separateFiles(t)
	keys := filepath.Join(vectors, "keys.pub")
	p := func(name string) string { return filepath.Join(dir, name) }
	wrongSalt := p("wrong-salt.txt")
	if err := os.WriteFile(wrongSalt, []byte(strings.Repeat("ab", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"document and salt", []string{"--receipt", p("receipt.json"), "--document", p("doc.json"), "--salt", p("salt.txt")}, exitOK, "VALID"},
		{"commitment only", []string{"--receipt", p("receipt.json"), "--commitment", bundle.Receipt.Leaf.Commitment.String()}, exitOK, "VALID"},
		{"commitment in capitals", []string{"--receipt", p("receipt.json"), "--commitment", strings.ToUpper(bundle.Receipt.Leaf.Commitment.String())}, exitOK, "VALID"},
		{"wrong salt", []string{"--receipt", p("receipt.json"), "--document", p("doc.json"), "--salt", wrongSalt}, exitInvalid, "INVALID: the document does not match"},
		{"raw bytes of a JSON document", []string{"--receipt", p("receipt.json"), "--document", p("doc.json"), "--salt", p("salt.txt"), "--raw"}, exitInvalid, "INVALID"},
		{"salt without document", []string{"--receipt", p("receipt.json"), "--salt", p("salt.txt")}, exitUsage, ""},
		{"receipt and bundle", []string{filepath.Join(vectors, "valid.json"), "--receipt", p("receipt.json")}, exitUsage, ""},
		{"missing document file", []string{"--receipt", p("receipt.json"), "--document", p("nope.json"), "--salt", p("salt.txt")}, exitUsage, ""},
		{"salt file not hex", []string{"--receipt", p("receipt.json"), "--document", p("doc.json"), "--salt", p("doc.json")}, exitInvalid, "INVALID: " + notary.Reason(notary.ErrMalformed)},
		{"receipt not a receipt", []string{"--receipt", p("doc.json"), "--commitment", bundle.Receipt.Leaf.Commitment.String()}, exitInvalid, "INVALID: " + notary.Reason(notary.ErrMalformed)},
		{"document not JSON", []string{"--receipt", p("receipt.json"), "--document", wrongSalt, "--salt", p("salt.txt")}, exitInvalid, "INVALID: " + notary.Reason(notary.ErrMalformed)},
		{"missing receipt file", []string{"--receipt", p("nope.json"), "--commitment", bundle.Receipt.Leaf.Commitment.String()}, exitUsage, ""},
		{"commitment not hex", []string{"--receipt", p("receipt.json"), "--commitment", "xyz"}, exitUsage, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, nil, append([]string{"verify", "--keys", keys, "--min-signatures", "2"}, tc.args...)...)
			if code != tc.code || !strings.HasPrefix(stdout, tc.out) {
				t.Fatalf("exit %d, want %d and output starting %q\n%s%s", code, tc.code, tc.out, stdout, stderr)
			}
			if code == exitUsage && !strings.HasPrefix(stderr, "telenotary verify: ") {
				t.Fatalf("a usage error without a message: %q", stderr)
			}
		})
	}
}

func TestVerifyFlagsAndEnvironment(t *testing.T) {
	valid := filepath.Join(vectors, "valid.json")
	keys := filepath.Join(vectors, "keys.pub")
	dir := t.TempDir()
	private := filepath.Join(dir, "private.key")
	skey, _, _ := note.GenerateKey(nil, "n")
	os.WriteFile(private, []byte(skey+"\n"), 0o600)
	for _, tc := range []struct {
		name    string
		env     map[string]string
		args    []string
		code    int
		message string
	}{
		{"keys from the environment", map[string]string{"TELENOTARY_KEYS": keys}, []string{valid}, exitOK, ""},
		{"policy from the environment", map[string]string{"TELENOTARY_KEYS": keys, "TELENOTARY_MIN_SIGNATURES": "3"}, []string{valid}, exitInvalid, ""},
		{"flag beats environment", map[string]string{"TELENOTARY_KEYS": keys, "TELENOTARY_MIN_SIGNATURES": "3"}, []string{valid, "--min-signatures", "2"}, exitOK, ""},
		{"bad environment value", map[string]string{"TELENOTARY_KEYS": keys, "TELENOTARY_MIN_SIGNATURES": "two"}, []string{valid}, exitUsage, "TELENOTARY_MIN_SIGNATURES"},
		{"no keys", nil, []string{valid}, exitUsage, "--keys is required"},
		{"private key given as keys", nil, []string{valid, "--keys", private}, exitUsage, "private signer key"},
		{"more signatures than keys", nil, []string{valid, "--keys", keys, "--min-signatures", "4"}, exitUsage, "requires 4 signatures but trusts 3 keys"},
		{"two bundles", nil, []string{valid, valid, "--keys", keys}, exitUsage, "give one bundle file"},
		{"unknown flag", nil, []string{valid, "--keyz", keys}, exitUsage, "flag provided but not defined"},
		{"help", nil, []string{"--help"}, exitOK, "Usage: telenotary verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, tc.env, append([]string{"verify"}, tc.args...)...)
			if code != tc.code || !strings.Contains(stdout+stderr, tc.message) {
				t.Fatalf("exit %d, want %d with %q\n%s%s", code, tc.code, tc.message, stdout, stderr)
			}
		})
	}
}

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := runCmd(t, nil, "keygen", "--name", "notary-1.example.org", "--dir", dir)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	keyPath, pubPath := filepath.Join(dir, "notary-1.example.org.key"), filepath.Join(dir, "notary-1.example.org.pub")
	for path, mode := range map[string]os.FileMode{keyPath: 0o600, pubPath: 0o644} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&^mode != 0 {
			t.Errorf("%s has mode %v, want at most %v", path, st.Mode().Perm(), mode)
		}
	}
	skey, _ := os.ReadFile(keyPath)
	vkey, _ := os.ReadFile(pubPath)
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		t.Fatal(err)
	}
	verifiers, err := notary.ParseVerifierKeys(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if signer.Name() != "notary-1.example.org" || verifiers[0].KeyHash() != signer.KeyHash() || !strings.Contains(stdout, strings.TrimSpace(string(vkey))) {
		t.Fatalf("key pair does not match: %s / %s", signer.Name(), vkey)
	}
	// A signature by the new key verifies with the new verifier key.
	cp, err := notary.Checkpoint{Origin: "o", Size: 0, Root: notary.EmptyRoot()}.Sign(signer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := notary.OpenCheckpoint(cp.Note, notary.Policy{Verifiers: verifiers}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		args    []string
		code    int
		message string
	}{
		{"existing key", []string{"--name", "notary-1.example.org", "--dir", dir}, exitFailure, "already exists"},
		{"no name", []string{"--dir", dir}, exitUsage, "--name is required"},
		{"plus in name", []string{"--name", "a+b", "--dir", dir}, exitUsage, "cannot contain '+'"},
		{"space in name", []string{"--name", "a b", "--dir", dir}, exitUsage, "spaces"},
		{"slash in name", []string{"--name", "a/b", "--dir", dir}, exitUsage, "slashes"},
		{"missing directory", []string{"--name", "x", "--dir", filepath.Join(dir, "nope")}, exitFailure, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, nil, append([]string{"keygen"}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.message) {
				t.Fatalf("exit %d, want %d with %q\n%s%s", code, tc.code, tc.message, stdout, stderr)
			}
		})
	}
	if after, _ := os.ReadFile(keyPath); !bytes.Equal(after, skey) {
		t.Fatal("a refused keygen changed the existing key")
	}
}

// TestDemo runs the headless demo for a few seconds: a 3-node cluster, the
// signalling server and simulated consultations; every bundle it wrote
// verifies with telenotary verify and the keys it wrote.
func TestDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	code, stdout, stderr := runCmd(t, nil, "demo", "--headless", "--duration", "8s", "--interval", "500ms", "--consultations", "2", "--listen", "127.0.0.1:0", "--dir", dir)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "/app/#token=") || !strings.Contains(stdout, "consultations got verified receipts") {
		t.Fatalf("demo output:\n%s", stdout)
	}
	runs, _ := filepath.Glob(filepath.Join(dir, "run-*"))
	if len(runs) != 1 {
		t.Fatalf("run directories: %v", runs)
	}
	bundles, err := filepath.Glob(filepath.Join(runs[0], "bundles", "*.json"))
	if err != nil || len(bundles) < 2 {
		t.Fatalf("bundles %v, %v\n%s", bundles, err, stdout)
	}
	// The app key is there, private, and the how-to names it in a curl
	// line for POST /v1/rooms; the verify lines name plain telenotary (the
	// test runs no installed binary to copy) and a real bundle at the end.
	if st, err := os.Stat(filepath.Join(runs[0], "app.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("app.key: %v %v", st, err)
	}
	howTo, err := os.ReadFile(filepath.Join(runs[0], "TRY-IT.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"/app/#token=", `curl -sS -H "Authorization: Bearer $(cat ` + filepath.Join(runs[0], "app.key") + `)"`, "/v1/rooms\n",
		"telenotary verify " + runs[0] + "/bundles/<file>.json --keys " + runs[0] + "/keys.pub --min-signatures 2"} {
		if !strings.Contains(string(howTo), want) || !strings.Contains(stdout, want) {
			t.Errorf("TRY-IT.txt or the output lacks %q:\n%s", want, howTo)
		}
	}
	if !regexp.MustCompile(`check one \(a majority of the three nodes signed it\):\n  telenotary verify \S+/bundles/prescription-\d+\.json --keys \S+/keys.pub --min-signatures 2\n`).MatchString(stdout) {
		t.Errorf("no verify line for a real bundle at the end:\n%s", stdout)
	}
	kinds := map[string]bool{}
	for _, b := range bundles {
		// Every bundle carries a majority's signatures (the signalling
		// server's default), so no single node can forge one.
		code, out, errOut := runCmd(t, nil, "verify", b, "--keys", filepath.Join(runs[0], "keys.pub"), "--origin", demo.Origin, "--min-signatures", "2")
		if code != exitOK {
			t.Fatalf("%s: exit %d\n%s%s", b, code, out, errOut)
		}
		kinds[strings.SplitN(filepath.Base(b), "-", 3)[0]] = true
	}
	if !kinds["session"] || !kinds["prescription"] {
		t.Fatalf("bundle kinds %v", kinds)
	}
	// The demo stopped its three nodes and the signalling server cleanly:
	// not one ERROR in their logs (raft's transport used to log one at
	// every stop), but for raft's word, on a node still running, that a
	// peer which already stopped does not answer.
	logs, _ := filepath.Glob(filepath.Join(runs[0], "logs", "*.log"))
	if len(logs) < 4 {
		t.Fatalf("logs: %v", logs)
	}
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			peerGone := strings.Contains(line, "module=raft") && (strings.Contains(line, `msg="failed to heartbeat to"`) || strings.Contains(line, `msg="failed to appendEntries to"`))
			if strings.Contains(line, "level=ERROR") && !peerGone {
				t.Errorf("%s: %s", filepath.Base(l), line)
			}
		}
	}
}

func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{nil, exitUsage, "Usage: telenotary <command>"},
		{[]string{"--help"}, exitOK, "Commands:"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"--version"}, exitOK, "telenotary "},
		{[]string{"version"}, exitOK, "telenotary "},
		{[]string{"keygen", "--help"}, exitOK, "Usage: telenotary keygen"},
		{[]string{"demo", "--help"}, exitOK, "Usage: telenotary demo"},
	} {
		code, stdout, stderr := runCmd(t, nil, tc.args...)
		if code != tc.code || !strings.Contains(stdout+stderr, tc.out) {
			t.Errorf("telenotary %v: exit %d, want %d with %q\n%s%s", tc.args, code, tc.code, tc.out, stdout, stderr)
		}
	}
}

// TestSignalRefusesBadStart: each start-up problem of telenotary signal is
// one line that names the flag, with exit 2 for the command line and 1 for
// a start that failed.
func TestSignalRefusesBadStart(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tok := write("ctok", "cluster-token-0123456789\n")
	keys := write("keys", "submitter app-key-0123456789abcdef\n")
	badKeys := write("badkeys", "nurse app-key-0123456789abcdef\n")
	shortKey := write("short", "too short\n")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	base := []string{"signal", "--cluster", "http://127.0.0.1:1", "--cluster-token-file", tok}
	for _, c := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"signal"}, "is required", exitUsage},
		{append(base, "--api-keys", filepath.Join(dir, "missing")), "--api-keys", exitUsage},
		{append(base, "--api-keys", badKeys), "none of submitter, join, operator or pharmacy", exitUsage},
		{append(base, "--api-keys", keys, "--token-key-file", shortKey), "--token-key-file", exitUsage},
		{append(base, "--api-keys", keys, "--webhook", "http://127.0.0.1:1/hook"), "--webhook-secret-file", exitUsage},
		{append(base, "--api-keys", keys, "--webhook", "ftp://x", "--webhook-secret-file", keys), "not an http(s) URL", exitUsage},
		{append(base, "--api-keys", keys, "--listen", ln.Addr().String()), "is another server on that port", exitFailure}, // the run failed
		{append(base, "--api-keys", keys, "--log-level", "loud"), "--log-level", exitUsage},
		{append(base, "--api-keys", keys, "--receipt-signatures", "0"), "--receipt-signatures", exitUsage},
		{append(base, "--api-keys", keys, "--receipt-signatures", "most"), "--receipt-signatures", exitUsage},
		{append(base, "--api-keys", keys, "--ice-servers", "turn:127.0.0.1:3478"), "a turn: URL needs a secret", exitUsage},
		{append(base, "--api-keys", keys, "--ice-servers", "https://stun.example.org"), `scheme "https" is not stun`, exitUsage},
		{append(base, "--api-keys", keys, "--ice-servers", "stun://stun.example.org:3478"), `has no "//"`, exitUsage},
		{append(base, "--api-keys", keys, "--ice-servers", "turn:t.example.org:99999", "--turn-secret-file", keys), "not a port number", exitUsage},
		{append(base, "--api-keys", keys, "--ice-servers", "stun:s.example.org", "--turn-secret-file", keys), "no URL is a turn:", exitUsage},
		{append(base, "--api-keys", keys, "--receipt-witnesses", "-1"), "--receipt-witnesses", exitUsage},
		{append(base, "--api-keys", keys, "--receipt-witnesses", "1", "--receipt-witness-wait", "0s"), "--receipt-witness-wait", exitUsage},
	} {
		code, _, stderr := runCmd(t, nil, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and one line with %q", c.args[1:], code, stderr, c.code, c.want)
		}
	}
	if code, _, stderr := runCmd(t, map[string]string{"TELENOTARY_API_KEYS": badKeys}, base...); code != exitUsage || !strings.Contains(stderr, "--api-keys") {
		t.Errorf("--api-keys from the environment: exit %d %q", code, stderr)
	}
	// Receipts are signed by a majority unless told otherwise.
	env := &environment{stdout: new(strings.Builder), stderr: new(strings.Builder), getenv: func(string) string { return "" }}
	for flag, want := range map[string]int{"": notaryapi.Majority, "majority": notaryapi.Majority, "1": 1, "3": 3} {
		args := []string{"--cluster", "http://127.0.0.1:1", "--cluster-token-file", tok, "--api-keys", keys}
		if flag != "" {
			args = append(args, "--receipt-signatures", flag)
		}
		var f signalFlags
		if err := f.parse(env, args); err != nil {
			t.Fatal(err)
		}
		if cfg, _, _, err := f.config(env); err != nil || cfg.ReceiptSignatures != want {
			t.Errorf("--receipt-signatures %q: ReceiptSignatures %d (%v), want %d", flag, cfg.ReceiptSignatures, err, want)
		}
	}

	// An embedded TURN server: clients are given its turn: URLs, over UDP
	// and TCP, with credentials under a secret the process made.
	turnArgs := func(extra ...string) []string {
		return append([]string{"--cluster", "http://127.0.0.1:1", "--cluster-token-file", tok, "--api-keys", keys}, extra...)
	}
	var f signalFlags
	if err := f.parse(env, turnArgs("--turn-listen", "127.0.0.1:3478", "--turn-relay-ports", "50000-50100", "--turn-user-quota", "2")); err != nil {
		t.Fatal(err)
	}
	cfg, _, turnCfg, err := f.config(env)
	if err != nil || turnCfg == nil {
		t.Fatalf("--turn-listen: %v", err)
	}
	if want := []string{"turn:127.0.0.1:3478?transport=udp", "turn:127.0.0.1:3478?transport=tcp"}; !slices.Equal(cfg.ICE.URLs, want) {
		t.Errorf("ICE URLs %q, want %q", cfg.ICE.URLs, want)
	}
	if len(cfg.ICE.TURNSecret) != 32 || string(turnCfg.Secret) != string(cfg.ICE.TURNSecret) || turnCfg.MinPort != 50000 || turnCfg.MaxPort != 50100 ||
		turnCfg.MaxAllocationsPerUser != 2 || turnCfg.AllowPrivatePeers || turnCfg.Registerer == nil {
		t.Errorf("TURN configuration %+v", turnCfg)
	}
	for want, args := range map[string][]string{
		"--turn-relay-ip":            {"--turn-listen", "0.0.0.0:3478"},
		"--turn-relay-ports":         {"--turn-listen", "127.0.0.1:3478", "--turn-relay-ports", "9-5"},
		"--turn-tls-listen needs":    {"--turn-tls-listen", "127.0.0.1:443"},
		"a turn: URL needs a secret": {"--ice-servers", "turn:t.example.org"},
	} {
		var f signalFlags
		if err := f.parse(env, turnArgs(args...)); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := f.config(env); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error with %q", args, err, want)
		}
	}
}

// TestCompletion loads the bash completion script into bash and completes
// commands, subcommands and flags with it.
func TestCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("SKIPPED: no bash to load the completion script into")
	}
	code, script, stderr := runCmd(t, nil, "completion", "bash")
	if code != exitOK {
		t.Fatalf("completion bash: exit %d %s", code, stderr)
	}
	path := filepath.Join(t.TempDir(), "telenotary.bash")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	for words, want := range map[string]string{
		"telenotary ver":              "verify version",
		"telenotary node --data":      "--data-dir",
		"telenotary bench s":          "signal",
		"telenotary bench signal --r": "--relay-rate --rooms",
		"telenotary signal --api":     "--api-keys",
	} {
		w := strings.Fields(words)
		if strings.HasSuffix(words, " ") {
			w = append(w, "")
		}
		cmd := exec.Command(bash, "-c", `source "$0"; COMP_WORDS=(`+strings.Join(w, " ")+`); COMP_CWORD=`+strconv.Itoa(len(w)-1)+`; _telenotary; echo "${COMPREPLY[*]}"`, path)
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("%q completes to %q (%v), want %q", words, strings.TrimSpace(string(out)), err, want)
		}
	}
	for shell, want := range map[string]string{"zsh": "--data-dir", "fish": "-l data-dir"} {
		if code, out, _ := runCmd(t, nil, "completion", shell); code != exitOK || !strings.Contains(out, want) {
			t.Errorf("completion %s: exit %d", shell, code)
		}
	}
	if code, _, _ := runCmd(t, nil, "completion", "tcsh"); code != exitUsage {
		t.Errorf("completion tcsh: exit %d, want 2", code)
	}
}

// TestStaticBuild builds the binary as docs/deploy/Dockerfile does and
// checks that it is static and reports the version it was given.
func TestStaticBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	df, err := os.ReadFile("../../docs/deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`RUN CGO_ENABLED=0 go build -trimpath -ldflags "([^"]*)" -o \S+ (\S+)`).FindSubmatch(df)
	if line == nil {
		t.Fatal("no static go build line in the Dockerfile")
	}
	ldflags := strings.ReplaceAll(string(line[1]), "${VERSION}", "v9.8.7-test")
	bin := filepath.Join(t.TempDir(), "telenotary")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", bin, string(line[2]))
	build.Dir = "../.."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary is dynamically linked")
		}
	}
	out, err := exec.Command(bin, "--version").Output()
	if first, _, _ := strings.Cut(string(out), "\n"); err != nil || first != "telenotary v9.8.7-test" || !strings.Contains(string(out), "go:     go1.") {
		t.Fatalf("--version: %q %v", out, err)
	}
}

// TestVerifyCommitmentWording: with --commitment only, a mismatch speaks of
// the commitment given, not of a document or a salt the user never gave.
func TestVerifyCommitmentWording(t *testing.T) {
	dir, _ := separateFiles(t)
	other := strings.Repeat("ab", 32)
	code, stdout, stderr := runCmd(t, nil, "verify", "--keys", filepath.Join(vectors, "keys.pub"), "--receipt", filepath.Join(dir, "receipt.json"), "--commitment", other)
	if code != exitInvalid || !strings.HasPrefix(stdout, "INVALID: the commitment given does not match this receipt") || !strings.Contains(stdout, "--commitment is "+other) {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	for _, word := range []string{"document", "salt"} {
		if strings.Contains(stdout, word) {
			t.Errorf("the verdict on a commitment mentions the %s:\n%s", word, stdout)
		}
	}
}

// TestVerifyUnreadableAndMalformed: a file that cannot be read is a usage
// error (2, on stderr, nothing verified); one that was read but is not a
// bundle is INVALID (1, on stdout), whatever is wrong with it; and the
// detail never says the same thing twice in a row.
func TestVerifyUnreadableAndMalformed(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(vectors, "keys.pub")
	valid, err := os.ReadFile(filepath.Join(vectors, "valid.json"))
	if err != nil {
		t.Fatal(err)
	}
	var b map[string]any
	if err := json.Unmarshal(valid, &b); err != nil {
		t.Fatal(err)
	}
	// The checkpoint without its signatures: the note does not parse.
	receipt := b["receipt"].(map[string]any)
	body, _, _ := strings.Cut(receipt["checkpoint"].(string), "\n\n")
	receipt["checkpoint"] = body + "\n"
	unsigned, _ := json.Marshal(b)
	files := map[string][]byte{
		"unsigned.json":  unsigned,
		"not-json.json":  []byte("hello"),
		"empty.json":     nil,
		"too-large.json": bytes.Repeat([]byte(" "), notary.MaxBundleSize+1),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		file string
		code int
	}{
		{"unsigned.json", exitInvalid},
		{"not-json.json", exitInvalid},
		{"empty.json", exitInvalid},
		{"too-large.json", exitInvalid},
		{"missing.json", exitUsage},
		{".", exitUsage}, // a directory
	} {
		t.Run(tc.file, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, nil, "verify", filepath.Join(dir, tc.file), "--keys", keys)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, stdout, stderr)
			}
			if code == exitUsage {
				if stdout != "" || !strings.HasPrefix(stderr, "telenotary verify: cannot read bundle") {
					t.Fatalf("a file that cannot be read:\nstdout %q\nstderr %q", stdout, stderr)
				}
				return
			}
			if !strings.HasPrefix(stdout, "INVALID: "+notary.Reason(notary.ErrMalformed)+"\n") || stderr != "" {
				t.Fatalf("stdout %q\nstderr %q", stdout, stderr)
			}
			if strings.Contains(stdout, "malformed input: malformed input") {
				t.Fatalf("the detail repeats itself: %q", stdout)
			}
		})
	}
}

func TestDetail(t *testing.T) {
	inner := fmt.Errorf("%w: checkpoint lacks its timestamp line", notary.ErrMalformed)
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&notary.VerifyError{Err: notary.ErrMalformed, Detail: inner.Error()}, "malformed input: checkpoint lacks its timestamp line"},
		{fmt.Errorf("bundle b.json: %w", inner), "bundle b.json: malformed input: checkpoint lacks its timestamp line"},
		{errors.New("a: b: a: b"), "a: b: a: b"},
	} {
		if got := detail(tc.err); got != tc.want {
			t.Errorf("detail(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
