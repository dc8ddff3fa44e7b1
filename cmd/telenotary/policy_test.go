package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/cmd/telenotary/internal/poll"
	"github.com/telenotary/telenotary/notary"
	"golang.org/x/mod/sumdb/note"
)

// TestVerifyPolicyVectors runs `telenotary verify --policy` on every case
// of the test vectors that has a policy file: exit 0 and VALID with the
// pinned fingerprint, or exit 1 and INVALID with the reason.
func TestVerifyPolicyVectors(t *testing.T) {
	var m struct {
		Cases []struct {
			Bundle, Policy, Expect, Why string
		}
		Policies []struct{ File, Fingerprint, Error string }
	}
	b, err := os.ReadFile(filepath.Join(vectors, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	fingerprints := map[string]string{}
	for _, p := range m.Policies {
		fingerprints[p.File] = p.Fingerprint
		if p.Error == "" {
			continue
		}
		// A refused policy is a usage error that quotes the refusal.
		code, stdout, stderr := runCmd(t, nil, "verify", filepath.Join(vectors, "valid.json"), "--policy", filepath.Join(vectors, p.File))
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, p.Error) {
			t.Errorf("%s: exit %d, want %d with %q\n%s%s", p.File, code, exitUsage, p.Error, stdout, stderr)
		}
	}
	n := 0
	for _, c := range m.Cases {
		if c.Policy == "" {
			continue
		}
		n++
		code, stdout, stderr := runCmd(t, nil, "verify", filepath.Join(vectors, c.Bundle), "--policy", filepath.Join(vectors, c.Policy))
		name := c.Bundle + " under " + c.Policy
		if c.Expect == "valid" {
			if code != exitOK || !strings.HasPrefix(stdout, "VALID: ") || !strings.Contains(stdout, "trust:      pinned policy "+fingerprints[c.Policy]+"\n") {
				t.Errorf("%s (%s): exit %d\n%s%s", name, c.Why, code, stdout, stderr)
			}
			if c.Policy == "policy-witnessed.txt" && !strings.Contains(stdout, "witnesses:  w1, w2\n") {
				t.Errorf("%s: the witnesses that cosigned are not named:\n%s", name, stdout)
			}
			continue
		}
		if code != exitInvalid || !strings.HasPrefix(stdout, "INVALID: ") {
			t.Errorf("%s (%s): exit %d, want %d\n%s%s", name, c.Why, code, exitInvalid, stdout, stderr)
		}
	}
	if n == 0 {
		t.Fatal("no vector has a policy")
	}
	code, stdout, stderr := runCmd(t, nil, "verify", filepath.Join(vectors, "valid.json"), "--policy", filepath.Join(vectors, "policy-witnessed.txt"))
	if code != exitInvalid || !strings.Contains(stdout, "witness quorum q-main needs 2 of 3, 0 valid") {
		t.Errorf("the failed requirement is not named: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestVerifyPolicyExclusive: --policy states keys, signatures and origin,
// so it goes with none of --keys, --min-signatures, --origin (exit 2).
func TestVerifyPolicyExclusive(t *testing.T) {
	valid, policy := filepath.Join(vectors, "valid.json"), filepath.Join(vectors, "policy-nodes.txt")
	for _, extra := range [][]string{
		{"--keys", filepath.Join(vectors, "keys.pub")},
		{"--min-signatures", "2"},
		{"--origin", "notary.example.org/telehealth"},
	} {
		code, stdout, stderr := runCmd(t, nil, append([]string{"verify", valid, "--policy", policy}, extra...)...)
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, "--policy and "+extra[0]+" exclude each other") {
			t.Errorf("with %s: exit %d\n%s%s", extra[0], code, stdout, stderr)
		}
	}
	if code, _, stderr := runCmd(t, nil, "verify", valid, "--policy", filepath.Join(t.TempDir(), "missing.txt")); code != exitUsage || !strings.Contains(stderr, "cannot read policy file") {
		t.Errorf("missing policy file: exit %d, %s", code, stderr)
	}
}

// TestPolicyCommand starts a real one-node cluster (raft and HTTP on
// loopback), has `telenotary policy` ask it for its policy, and checks that
// the output is a policy file that parses, with the node's key and the
// fingerprint it states, and that verifies a receipt the node issues.
func TestPolicyCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const origin = "policy.test/log"
	skey, vkey, err := notary.GenerateKey("policy-node-1.test")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.ParseTokens([]byte("submitter s-0123456789abcdef0123456789abcdef\noperator o-0123456789abcdef0123456789abcdef\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := cluster.DefaultConfig()
	cfg.ID, cfg.DataDir = "policy-node-1", t.TempDir()
	cfg.RaftAddr, cfg.HTTPAddr, cfg.InsecureRaft = "127.0.0.1:0", "127.0.0.1:0", true
	cfg.Signer, cfg.VerifierKey, cfg.Tokens = signer, vkey, tokens
	cfg.Bootstrap, cfg.Origin = true, origin
	n, err := cluster.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	if err := poll.Until(ctx, 30*time.Second, n.Ready); err != nil {
		t.Fatalf("the node did not become ready: %v", err)
	}
	url := "http://" + n.HTTPAddr()

	code, stdout, stderr := runCmd(t, nil, "policy", "--nodes", url+","+url)
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	pf, err := notary.ParsePolicy([]byte(stdout))
	if err != nil {
		t.Fatalf("the output is not a policy file: %v\n%s", err, stdout)
	}
	if pf.Policy.Origin != origin || len(pf.Policy.Verifiers) != 1 || pf.Policy.MinSignatures != 1 || !strings.Contains(stdout, "node "+vkey) {
		t.Errorf("policy %+v\n%s", pf.Policy, stdout)
	}
	if !strings.Contains(stdout, "# fingerprint "+pf.Fingerprint()+"\n") {
		t.Errorf("the fingerprint %s is not stated:\n%s", pf.Fingerprint(), stdout)
	}
	// A receipt the node issues verifies under the policy.
	client := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: []string{url}, Token: "s-0123456789abcdef0123456789abcdef"})
	commitment := notary.Commit(notary.NewSalt(), []byte("a document"))
	resp, err := client.Notarize(ctx, notaryapi.Entry{Kind: notary.KindDocument, Commitment: commitment})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := notary.Verify(notary.Claim{Receipt: resp.Receipt, Commitment: commitment}, pf.Policy); err != nil {
		t.Errorf("the node's receipt does not verify under its policy: %v", err)
	}

	// More signatures than nodes is the operator's mistake: exit 2.
	if code, _, stderr := runCmd(t, nil, "policy", "--nodes", url, "--min-signatures", "2"); code != exitUsage || !strings.Contains(stderr, "2 required but the policy trusts 1 nodes") {
		t.Errorf("--min-signatures 2 of 1 node: exit %d, %s", code, stderr)
	}
	// A node that does not answer: exit 1.
	if code, _, stderr := runCmd(t, nil, "policy", "--nodes", "http://127.0.0.1:1", "--timeout", "2s"); code != exitFailure || !strings.Contains(stderr, "GET /v1/keys") {
		t.Errorf("no node: exit %d, %s", code, stderr)
	}
	for _, args := range [][]string{{"policy"}, {"policy", "--nodes", "ftp://x"}, {"policy", "--nodes", url, "extra"}} {
		if code, _, _ := runCmd(t, nil, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}

	// The operator rotates the node's key: telenotary rekey, a restart
	// with the new key, telenotary policy again. The receipt signed with
	// the old key verifies under the new policy, and so does a new one.
	dir := t.TempDir()
	newSkey, newVkey, err := notary.GenerateKey("policy-node-1.test")
	if err != nil {
		t.Fatal(err)
	}
	keyFile, tokFile := filepath.Join(dir, "new.key"), filepath.Join(dir, "operator.tok")
	os.WriteFile(keyFile, []byte(newSkey+"\n"), 0o600)
	os.WriteFile(tokFile, []byte("o-0123456789abcdef0123456789abcdef\n"), 0o600)
	for _, args := range [][]string{
		{"rekey", "--nodes", url, "--token-file", tokFile, "--id", "policy-node-1"},
		{"rekey", "--nodes", url, "--token-file", tokFile, "--id", "policy-node-1", "--signer-key", filepath.Join(dir, "missing.key")},
	} {
		if code, _, _ := runCmd(t, nil, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
	if code, _, stderr := runCmd(t, nil, "rekey", "--nodes", url, "--token-file", tokFile, "--id", "nobody", "--signer-key", keyFile); code != exitFailure || !strings.Contains(stderr, `"nobody" is not a member`) {
		t.Errorf("rekey of no member: exit %d, %s", code, stderr)
	}
	code, stdout, stderr = runCmd(t, nil, "rekey", "--nodes", url, "--token-file", tokFile, "--id", "policy-node-1", "--signer-key", keyFile)
	if code != exitOK || !strings.Contains(stdout, "Restart policy-node-1") {
		t.Fatalf("rekey: exit %d\n%s%s", code, stdout, stderr)
	}
	n.Close(context.Background())
	newSigner, err := note.NewSigner(newSkey)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Signer, cfg.VerifierKey, cfg.Bootstrap = newSigner, newVkey, false
	cfg.RaftAddr, cfg.HTTPAddr = n.RaftAddr(), n.HTTPAddr()
	if n, err = cluster.New(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	if err := poll.Until(ctx, 30*time.Second, n.Ready); err != nil {
		t.Fatalf("the node did not become ready with its new key: %v", err)
	}
	later, err := client.Notarize(ctx, notaryapi.Entry{Kind: notary.KindDocument, Commitment: notary.Commit(notary.NewSalt(), []byte("another"))})
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCmd(t, nil, "policy", "--nodes", url)
	if code != exitOK {
		t.Fatalf("policy after the rotation: exit %d\n%s%s", code, stdout, stderr)
	}
	rotated, err := notary.ParsePolicy([]byte(stdout))
	if err != nil {
		t.Fatalf("the output is not a policy file: %v\n%s", err, stdout)
	}
	if !strings.Contains(stdout, "node "+vkey+" until ") && !strings.Contains(stdout, "node "+vkey+" from 0 until ") || !strings.Contains(stdout, "node "+newVkey+" from ") || rotated.Policy.MinSignatures != 1 {
		t.Errorf("the policy after the rotation:\n%s", stdout)
	}
	for name, r := range map[string]*notary.Receipt{"old": resp.Receipt, "new": later.Receipt} {
		if _, err := notary.Verify(notary.Claim{Receipt: r, Commitment: r.Leaf.Commitment}, rotated.Policy); err != nil {
			t.Errorf("the %s receipt under the rotated policy: %v", name, err)
		}
	}
}

// TestServedKeysWithRetired: /v1/keys' retired-key comments become keys
// bounded to the sizes they signed; keys in use keep their start.
func TestServedKeysWithRetired(t *testing.T) {
	text := []byte("# verifier keys of o.test/log (cluster x)\n# node n1, signing from log size 0\nn1+01234567+AAAA\n" +
		"# node n3, signing from log size 43\nn3+89abcdef+BBBB\n# retired key of node n3, signed log sizes 0 to 42: n3+00112233+CCCC\n")
	keys, err := parseServedKeys(text)
	if err != nil {
		t.Fatal(err)
	}
	want := []policyKey{{vkey: "n1+01234567+AAAA"}, {vkey: "n3+89abcdef+BBBB", from: 43}, {vkey: "n3+00112233+CCCC", retired: true, until: 42}}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys %+v, want %+v", keys, want)
	}
}
