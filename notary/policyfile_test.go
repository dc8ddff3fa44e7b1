package notary_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"filippo.io/torchwood"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/witness"
	"golang.org/x/mod/sumdb/note"
)

// testWitness is a witness key: its cosignature/v1 signer seed, name and
// verifier key.
type testWitness struct {
	name string
	priv ed25519.PrivateKey
	vkey string
}

// newTestWitness makes a witness key from a seed source (deterministic
// when the source is).
func newTestWitness(t testing.TB, name string, rng *rand.ChaCha8) testWitness {
	t.Helper()
	var seed [ed25519.SeedSize]byte
	rng.Read(seed[:])
	priv := ed25519.NewKeyFromSeed(seed[:])
	s, err := torchwood.NewCosignatureSigner(name, priv)
	if err != nil {
		t.Fatal(err)
	}
	return testWitness{name: name, priv: priv, vkey: s.Verifier().String()}
}

// cosign returns the witness's cosignature line on a checkpoint body at a
// fixed time, written from c2sp.org/tlog-cosignature (torchwood's signer
// takes the time from the clock; test vectors need fixed bytes).
func (w testWitness) cosign(body []byte, unix uint64) []byte {
	key := append([]byte{0x04}, w.priv.Public().(ed25519.PublicKey)...)
	id := sha256.Sum256(append([]byte(w.name+"\n"), key...))
	msg := fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", unix, body)
	sig := binary.BigEndian.AppendUint64(append([]byte{}, id[:4]...), unix)
	sig = append(sig, ed25519.Sign(w.priv, msg)...)
	return []byte("— " + w.name + " " + base64.StdEncoding.EncodeToString(sig) + "\n")
}

// addLines appends signature lines to a signed note.
func addLines(msg []byte, lines ...[]byte) []byte {
	out := bytes.Clone(msg)
	for _, l := range lines {
		out = append(out, l...)
	}
	return out
}

func noteBody(t testing.TB, msg []byte) []byte {
	t.Helper()
	i := bytes.Index(msg, []byte("\n\n"))
	if i < 0 {
		t.Fatalf("not a signed note: %q", msg)
	}
	return msg[:i+1]
}

func mustPolicy(t testing.TB, text string) *notary.PolicyFile {
	t.Helper()
	f, err := notary.ParsePolicy([]byte(text))
	if err != nil {
		t.Fatalf("policy refused: %v\n%s", err, text)
	}
	return f
}

// TestCosignatureVerifierInterop checks NewCosignatureVerifier against
// torchwood's cosigner: a cosignature torchwood makes verifies, one on
// another body or with its time changed does not, and torchwood's verifier
// accepts the lines the tests write.
func TestCosignatureVerifierInterop(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	s, err := torchwood.NewCosignatureSigner("witness.example.org", priv)
	if err != nil {
		t.Fatal(err)
	}
	v, err := notary.NewCosignatureVerifier(s.Verifier().String())
	if err != nil {
		t.Fatal(err)
	}
	if v.Name() != s.Name() || v.KeyHash() != s.KeyHash() {
		t.Fatalf("verifier %s+%08x, signer %s+%08x", v.Name(), v.KeyHash(), s.Name(), s.KeyHash())
	}
	body := must(notary.Checkpoint{Origin: testOrigin, Size: 5, Root: notary.Hash{1}, Timestamp: baseTime}.Body())
	sig, err := s.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Verify(body, sig) {
		t.Fatal("torchwood's cosignature does not verify")
	}
	other := must(notary.Checkpoint{Origin: testOrigin, Size: 6, Root: notary.Hash{1}, Timestamp: baseTime}.Body())
	if v.Verify(other, sig) {
		t.Fatal("a cosignature verifies on another checkpoint")
	}
	moved := bytes.Clone(sig)
	moved[7] ^= 1 // the timestamp
	if v.Verify(body, moved) {
		t.Fatal("a cosignature verifies with its time changed")
	}
	w := testWitness{name: "witness.example.org", priv: priv}
	line := w.cosign(body, 1795262400)
	n, err := note.Open(append(append(bytes.Clone(body), '\n'), line...), note.VerifierList(s.Verifier()))
	if err != nil || len(n.Sigs) != 1 {
		t.Fatalf("torchwood does not verify the tests' cosignature line: %v", err)
	}
	// A note verifier key (algorithm 0x01) is not a cosignature key.
	_, nodeKey := mustGenerate(t, "node.example.org")
	if _, err := notary.NewCosignatureVerifier(nodeKey); err == nil || !strings.Contains(err.Error(), "unknown verifier algorithm") {
		t.Fatalf("a note verifier key taken as a cosignature key: %v", err)
	}
}

func mustGenerate(t testing.TB, name string) (string, string) {
	t.Helper()
	s, v, err := notary.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

// policyKeys are the fixed keys of the policy tests.
type policyKeys struct {
	n1, n2, n3, n1new keypair
	w1, w2, w3        testWitness
}

func newPolicyKeys(t testing.TB) policyKeys {
	rng := rand.NewChaCha8([32]byte{'p', 'o', 'l', 'i', 'c', 'y'})
	key := func(name string) keypair {
		skey, vkey, err := note.GenerateKey(rng, name)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := note.NewSigner(skey)
		v, _ := note.NewVerifier(vkey)
		return keypair{name: name, signer: s, verifier: v, vkey: vkey}
	}
	return policyKeys{
		n1: key("notary-1.example.org"), n2: key("notary-2.example.org"), n3: key("notary-3.example.org"),
		n1new: key("notary-1.example.org"),
		w1:    newTestWitness(t, "witness-1.example.net", rng), w2: newTestWitness(t, "witness-2.example.net", rng),
		w3: newTestWitness(t, "witness-3.example.net", rng),
	}
}

func TestParsePolicy(t *testing.T) {
	k := newPolicyKeys(t)
	text := fmt.Sprintf(`# the trust policy of notary.test/log
origin %s
node %s until 100
node %s from 101
node %s
	node   %s  from 1
node-signatures 2

witness w1 %s
witness w2 %s
witness w3 %s
group pair 2 w1 w2
group q-main 1 pair w3
quorum q-main
`, testOrigin, k.n1.vkey, k.n1new.vkey, k.n2.vkey, k.n3.vkey, k.w1.vkey, k.w2.vkey, k.w3.vkey)
	f := mustPolicy(t, text)
	p := f.Policy
	if p.Origin != testOrigin || len(p.Verifiers) != 4 || p.MinSignatures != 2 || len(p.Witnesses) != 3 || len(p.Groups) != 2 || p.Quorum != "q-main" {
		t.Fatalf("parsed %+v", p)
	}
	if r := p.Ranges[0]; r.From != 0 || r.Until != 100 {
		t.Errorf("node 1's old key: range %+v, want 0 to 100", r)
	}
	if r := p.Ranges[1]; r.From != 101 || r.Until != notary.AllSizes.Until {
		t.Errorf("node 1's new key: range %+v, want from 101 on", r)
	}
	// The fingerprint is of the meaning: comments, order, spacing and CRLF
	// do not change it; any change of a key, threshold or range does.
	lines := strings.Split(strings.TrimSpace(text), "\n")
	shuffled := []string{lines[13], lines[10], lines[2], lines[9], lines[8], "group pair 2 w2 w1", "group q-main 1 w3 pair",
		lines[6], "# a comment", lines[1], lines[5], lines[3], "", lines[4]}
	same := mustPolicy(t, strings.Join(shuffled, "\r\n"))
	if same.Fingerprint() != f.Fingerprint() {
		t.Errorf("reordered policy: fingerprint %s, want %s\n%s\n---\n%s", same.Fingerprint(), f.Fingerprint(), same.Canonical, f.Canonical)
	}
	if again := mustPolicy(t, string(f.Canonical)); !bytes.Equal(again.Canonical, f.Canonical) {
		t.Errorf("the canonical form does not parse to itself:\n%s\n---\n%s", f.Canonical, again.Canonical)
	}
	for _, change := range []struct{ from, to string }{
		{"node-signatures 2", "node-signatures 3"},
		{"until 100", "until 99"},
		{"group pair 2", "group pair 1"},
		{"quorum q-main", "quorum pair"},
		{"witness w3 ", "witness w4 "},
	} {
		changed := strings.Replace(text, change.from, change.to, 1)
		if change.to == "witness w4 " {
			changed = strings.Replace(changed, "1 pair w3", "1 pair w4", 1)
		}
		if g := mustPolicy(t, changed); g.Fingerprint() == f.Fingerprint() {
			t.Errorf("%q → %q: same fingerprint", change.from, change.to)
		}
	}
	if len(f.Fingerprint()) != 64 {
		t.Errorf("fingerprint %q is not 64 hex digits", f.Fingerprint())
	}
}

// policyRefusals are policy files ParsePolicy must refuse, with the exact
// error; the test vectors carry them too (vectors_test.go).
func policyRefusals(k policyKeys) []struct{ name, text, err string } {
	head := "origin " + testOrigin + "\nnode " + k.n1.vkey + "\nnode " + k.n2.vkey + "\nnode-signatures 2\n"
	wit := "witness w1 " + k.w1.vkey + "\nwitness w2 " + k.w2.vkey + "\n"
	skey := "PRIVATE+KEY+notary-1.example.org+00000000+AAAA"
	return []struct{ name, text, err string }{
		{"empty", "", "policy: no origin line"},
		{"unknown-keyword", head + "log " + k.n3.vkey + "\n", `policy line 5: unknown keyword "log"`},
		{"keyword-case", head + "Quorum 1\n", `policy line 5: unknown keyword "Quorum"`},
		{"no-origin", "node " + k.n1.vkey + "\nnode-signatures 1\n", "policy: no origin line"},
		{"no-node", "origin " + testOrigin + "\nnode-signatures 1\n", "policy: no node line"},
		{"no-node-signatures", "origin " + testOrigin + "\nnode " + k.n1.vkey + "\n", "policy: no node-signatures line"},
		{"origin-twice", head + "origin other.test/log\n", "policy line 5: origin: a second origin line (the first is line 1)"},
		{"origin-fields", "origin a b\n", `policy line 1: origin: want "origin <origin>"`},
		{"origin-plus", "origin a+b\n", `policy line 1: origin: origin contains '+'; use printable characters without spaces or '+'`},
		{"node-bad-key", head + "node notary-3.example.org+00000000+AAAA\n", "policy line 5: node key: not a note verifier key: invalid verifier hash"},
		{"node-private-key", head + "node " + skey + "\n", "policy line 5: node key: a private signer key; give its verifier key, and keep the private one secret"},
		{"node-witness-key", head + "node " + k.w3.vkey + "\n", "policy line 5: node key: not a note verifier key: unknown verifier algorithm"},
		{"node-duplicate", head + "node " + k.n1.vkey + "\n", "policy line 5: node key: the same key as line 2"},
		{"node-same-name", head + "node " + k.n1new.vkey + "\n", `policy line 5: node key: a second key named "notary-1.example.org" valid at log sizes of line 2's; give them from and until ranges apart`},
		{"node-ranges-overlap", "origin o\nnode " + k.n1.vkey + " until 10\nnode " + k.n1new.vkey + " from 10\nnode-signatures 1\n", `policy line 3: node key: a second key named "notary-1.example.org" valid at log sizes of line 2's; give them from and until ranges apart`},
		{"node-option", head + "node " + k.n3.vkey + " since 5\n", `policy line 5: node: unknown option "since" (want from or until)`},
		{"node-option-twice", head + "node " + k.n3.vkey + " from 5 from 6\n", "policy line 5: node from: given twice"},
		{"node-option-value", head + "node " + k.n3.vkey + " from\n", `policy line 5: node: want "node <verifier key> [from <size>] [until <size>]"`},
		{"node-from-not-number", head + "node " + k.n3.vkey + " from -1\n", `policy line 5: node from: "-1" is not a decimal number`},
		{"node-from-leading-zero", head + "node " + k.n3.vkey + " from 01\n", `policy line 5: node from: "01" is not a decimal number`},
		{"node-until-overflow", head + "node " + k.n3.vkey + " until 18446744073709551616\n", `policy line 5: node until: "18446744073709551616" is more than 18446744073709551615`},
		{"node-until-below-from", head + "node " + k.n3.vkey + " from 10 until 9\n", "policy line 5: node until: 9 is below from 10"},
		{"node-signatures-twice", head + "node-signatures 1\n", "policy line 5: node-signatures: a second node-signatures line (the first is line 4)"},
		{"node-signatures-zero", "origin o\nnode " + k.n1.vkey + "\nnode-signatures 0\n", "policy line 3: node-signatures: must be at least 1"},
		{"node-signatures-above", "origin o\nnode " + k.n1.vkey + "\nnode " + k.n2.vkey + "\nnode-signatures 3\n", "policy line 4: node-signatures: 3 required but the policy trusts 2 nodes"},
		{"node-signatures-rotated", "origin o\nnode " + k.n1.vkey + " until 9\nnode " + k.n1new.vkey + " from 10\nnode-signatures 2\n", "policy line 4: node-signatures: 2 required but the policy trusts 1 nodes"},
		{"witness-bad-name", head + "witness w/1 " + k.w1.vkey + "\n", `policy line 5: witness name: "w/1" is not a name (1 to 64 of A-Z a-z 0-9 . _ -)`},
		{"witness-number-name", head + "witness 7 " + k.w1.vkey + "\n", `policy line 5: witness name: "7" is a number; a name needs a character other than a digit`},
		{"witness-name-twice", head + wit + "witness w1 " + k.w3.vkey + "\n", `policy line 7: witness name: "w1" is already defined on line 5`},
		{"witness-node-key", head + "witness w1 " + k.n3.vkey + "\n", "policy line 5: witness key: not a cosignature/v1 verifier key: unknown verifier algorithm"},
		{"witness-bad-key", head + "witness w1 witness+00000000+BAAA\n", "policy line 5: witness key: not a cosignature/v1 verifier key: malformed verifier id"},
		{"witness-key-twice", head + wit + "witness w3 " + k.w1.vkey + "\n", "policy line 7: witness key: the same key as line 5"},
		{"witness-fields", head + "witness " + k.w1.vkey + "\n", `policy line 5: witness: want "witness <name> <cosignature verifier key>"`},
		{"witness-no-quorum", head + wit, "policy: witnesses are listed but there is no quorum line"},
		{"group-threshold-above", head + wit + "group g 3 w1 w2\nquorum g\n", "policy line 7: group g threshold: 3 is more than its 2 members"},
		{"group-threshold-zero", head + wit + "group g 0 w1 w2\nquorum g\n", "policy line 7: group g threshold: must be at least 1"},
		{"group-undefined-member", head + wit + "group g 1 w1 w3\nquorum g\n", `policy line 7: group g member: "w3" is not a witness or group defined above`},
		{"group-member-twice", head + wit + "group g 1 w1 w1\nquorum g\n", `policy line 7: group g member: "w1" is listed twice`},
		{"group-name-taken", head + wit + "group w2 1 w1\nquorum w2\n", `policy line 7: group name: "w2" is already defined on line 6`},
		{"group-fields", head + wit + "group g 1\n", `policy line 7: group: want "group <name> <k> <member>..."`},
		{"quorum-twice", head + wit + "quorum 1\nquorum w1\n", "policy line 8: quorum: a second quorum line (the first is line 7)"},
		{"quorum-undefined", head + wit + "quorum q\n", `policy line 7: quorum: "q" is not a witness or group`},
		{"quorum-above", head + wit + "quorum 3\n", "policy line 7: quorum: 3 cosignatures required but the policy lists 2 witnesses"},
		{"quorum-no-witness", head + "quorum 1\n", "policy line 5: quorum: no witness is listed"},
		{"trailing-comment", head + "node-signatures 2 # two\n", `policy line 5: node-signatures: want "node-signatures <k>"`},
		{"control-character", head + "quorum\v1\n", "policy line 5: control character 0x0b"},
		{"not-utf8", "origin \xff\n", "policy line 1: not valid UTF-8"},
		{"long-line", "# " + strings.Repeat("x", 1023) + "\n", "policy line 1: line is 1025 bytes, more than 1024"},
		{"too-large", strings.Repeat("#\n", 32<<10+1), "policy: file is 65538 bytes, more than 65536"},
	}
}

func TestParsePolicyRefusals(t *testing.T) {
	for _, c := range policyRefusals(newPolicyKeys(t)) {
		t.Run(c.name, func(t *testing.T) {
			f, err := notary.ParsePolicy([]byte(c.text))
			if err == nil {
				t.Fatalf("accepted:\n%s\ncanonical:\n%s", c.text, f.Canonical)
			}
			if err.Error() != c.err {
				t.Fatalf("error %q, want %q", err, c.err)
			}
			var pe *notary.PolicyFileError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *PolicyFileError", err)
			}
		})
	}
}

// TestPolicyNodeSignatures checks that node signatures are counted by
// distinct trusted node, and the error names the requirement.
func TestPolicyNodeSignatures(t *testing.T) {
	k := newPolicyKeys(t)
	p := mustPolicy(t, "origin "+testOrigin+"\nnode "+k.n1.vkey+"\nnode "+k.n2.vkey+"\nnode "+k.n3.vkey+"\nnode-signatures 2\n").Policy
	l := newMemLog(t)
	l.Append([]notary.Leaf{leafFor(1, baseTime)}, nil)
	one := signHead(t, l, k.n1)
	_, err := notary.OpenCheckpoint(one.Note, p)
	if !errors.Is(err, notary.ErrTooFewSignatures) || !strings.Contains(err.Error(), `2 node signatures required, 1 valid ("notary-1.example.org")`) {
		t.Fatalf("one signature of two: %v", err)
	}
	// The same signature line twice is one signature.
	lines := strings.SplitAfter(string(one.Note), "\n")
	twice := []byte(string(one.Note) + lines[len(lines)-2])
	if _, err := notary.OpenCheckpoint(twice, p); !errors.Is(err, notary.ErrTooFewSignatures) {
		t.Fatalf("one signature given twice: %v", err)
	}
	two := signHead(t, l, k.n1, k.n3)
	cp, err := notary.OpenCheckpoint(two.Note, p)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(cp.Signers) != "[notary-1.example.org notary-3.example.org]" {
		t.Errorf("signers %v", cp.Signers)
	}
}

// TestPolicyKeyRotation checks that a node key counts only at the log
// sizes of its range: a retired key still verifies a checkpoint up to its
// last size, not one larger; the new key, only from its first.
func TestPolicyKeyRotation(t *testing.T) {
	k := newPolicyKeys(t)
	l := newMemLog(t)
	for i := range 10 {
		l.Append([]notary.Leaf{leafFor(i, baseTime)}, nil)
	}
	p := mustPolicy(t, "origin "+testOrigin+"\nnode "+k.n1.vkey+" until 10\nnode "+k.n1new.vkey+" from 11\nnode "+k.n2.vkey+"\nnode-signatures 2\n").Policy
	old10 := signHead(t, l, k.n1, k.n2)
	if _, err := notary.OpenCheckpoint(old10.Note, p); err != nil {
		t.Fatalf("the old key at size 10, its last: %v", err)
	}
	new10 := signHead(t, l, k.n1new, k.n2)
	if _, err := notary.OpenCheckpoint(new10.Note, p); !errors.Is(err, notary.ErrTooFewSignatures) ||
		!strings.Contains(err.Error(), `; "notary-1.example.org" signed with a key not valid at size 10`) {
		t.Fatalf("the new key at size 10, before its first: %v", err)
	}
	l.Append([]notary.Leaf{leafFor(11, baseTime)}, nil)
	old11 := signHead(t, l, k.n1, k.n2)
	_, err := notary.OpenCheckpoint(old11.Note, p)
	if !errors.Is(err, notary.ErrTooFewSignatures) || !strings.Contains(err.Error(), "2 node signatures required, 1 valid") {
		t.Fatalf("the retired key at size 11: %v", err)
	}
	new11 := signHead(t, l, k.n1new, k.n2)
	if _, err := notary.OpenCheckpoint(new11.Note, p); err != nil {
		t.Fatalf("the new key at size 11: %v", err)
	}
	// Without ranges (a keys file), the same two keys under one name are
	// refused, as before.
	if err := (notary.Policy{Verifiers: []note.Verifier{k.n1.verifier, k.n1new.verifier}}).Validate(); err == nil {
		t.Fatal("two keys of one name accepted without ranges")
	}
}

// TestPolicyWitnessQuorum has checkpoints cosigned by real witnesses
// (package notary/witness, in process, with their state on disk) and checks
// the quorum: a group's threshold, nested groups, a count of witnesses.
func TestPolicyWitnessQuorum(t *testing.T) {
	k := newPolicyKeys(t)
	l := newMemLog(t)
	l.Append([]notary.Leaf{leafFor(1, baseTime)}, nil)
	cp := signHead(t, l, k.n1, k.n2)

	var ws []*witness.Witness
	var vkeys []string
	for i := range 3 {
		skey, _ := mustGenerate(t, fmt.Sprintf("witness-%d.example.net", i+1))
		s, err := witness.NewSigner(skey)
		if err != nil {
			t.Fatal(err)
		}
		w, err := witness.New(witness.Config{Dir: t.TempDir(), Signer: s, Logs: []witness.Log{{Origin: testOrigin, Verifiers: []note.Verifier{k.n1.verifier}}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		ws, vkeys = append(ws, w), append(vkeys, w.VerifierKey())
	}
	cosign := func(i int) []byte {
		sigs, err := ws[i].AddCheckpoint(witness.Request{OldSize: 0, Checkpoint: cp.Note}.Marshal())
		if err != nil {
			t.Fatalf("witness %d refused: %v", i+1, err)
		}
		return sigs
	}
	c1, c2 := cosign(0), cosign(1)
	base := "origin " + testOrigin + "\nnode " + k.n1.vkey + "\nnode " + k.n2.vkey + "\nnode-signatures 2\n" +
		"witness w1 " + vkeys[0] + "\nwitness w2 " + vkeys[1] + "\nwitness w3 " + vkeys[2] + "\n"
	cases := []struct {
		quorum string
		msg    []byte
		err    string // "" for valid
	}{
		{"group q-main 2 w1 w2 w3\nquorum q-main\n", addLines(cp.Note, c1, c2), ""},
		{"group q-main 2 w1 w2 w3\nquorum q-main\n", addLines(cp.Note, c1), "witness quorum q-main needs 2 of 3, 1 valid"},
		{"group q-main 2 w1 w2 w3\nquorum q-main\n", cp.Note, "witness quorum q-main needs 2 of 3, 0 valid"},
		{"group q-main 3 w1 w2 w3\nquorum q-main\n", addLines(cp.Note, c1, c2), "witness quorum q-main needs 3 of 3, 2 valid"},
		{"quorum 2\n", addLines(cp.Note, c2, c1), ""},
		{"quorum 3\n", addLines(cp.Note, c1, c2), "witness quorum needs 3 of 3 witnesses, 2 valid"},
		{"quorum w3\n", addLines(cp.Note, c1, c2), "witness quorum w3 needs its cosignature, none valid"},
		{"quorum w2\n", addLines(cp.Note, c2), ""},
		// Nested: w3, or both of w1 and w2.
		{"group both 2 w1 w2\ngroup q 1 both w3\nquorum q\n", addLines(cp.Note, c1, c2), ""},
		{"group both 2 w1 w2\ngroup q 1 both w3\nquorum q\n", addLines(cp.Note, c1), "witness quorum q needs 1 of 2, 0 valid"},
		// The same cosignature twice is one witness.
		{"quorum 2\n", addLines(cp.Note, c1, c1), "witness quorum needs 2 of 3 witnesses, 1 valid"},
	}
	for i, c := range cases {
		p := mustPolicy(t, base+c.quorum).Policy
		_, err := notary.OpenCheckpoint(c.msg, p)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("case %d (%q): %v", i, c.quorum, err)
		case c.err != "" && (!errors.Is(err, notary.ErrTooFewSignatures) || !strings.HasSuffix(err.Error(), c.err)):
			t.Errorf("case %d (%q): %v, want %q", i, c.quorum, err, c.err)
		}
	}
	// A cosignature of a trusted witness that does not verify: the
	// checkpoint or the cosignature was altered.
	bad := bytes.Clone(c1)
	bad[len(bad)-5] ^= 1
	p := mustPolicy(t, base+"quorum 1\n").Policy
	if _, err := notary.OpenCheckpoint(addLines(cp.Note, bad, c2), p); !errors.Is(err, notary.ErrSignatureInvalid) {
		t.Fatalf("altered cosignature: %v", err)
	}
	// Witnesses do not count as nodes, nor nodes as witnesses.
	p = mustPolicy(t, "origin "+testOrigin+"\nnode "+k.n1.vkey+"\nnode "+k.n2.vkey+"\nnode-signatures 2\nwitness w1 "+vkeys[0]+"\nquorum 1\n").Policy
	only := must(notary.Checkpoint{Origin: testOrigin, Size: cp.Size, Root: cp.Root, Timestamp: cp.Timestamp}.Sign(k.n1.signer))
	if _, err := notary.OpenCheckpoint(addLines(only.Note, c1), p); !errors.Is(err, notary.ErrTooFewSignatures) {
		t.Fatalf("a cosignature counted as a node signature: %v", err)
	}
	if _, err := notary.OpenCheckpoint(addLines(cp.Note), p); err == nil || !strings.Contains(err.Error(), "witness quorum") {
		t.Fatalf("node signatures counted as cosignatures: %v", err)
	}
}

// TestPolicyWithoutWitnessesUnchanged checks that a Policy as callers made
// it before witnesses (no Ranges, no Witnesses) keeps its rules.
func TestPolicyWithoutWitnessesUnchanged(t *testing.T) {
	k := newPolicyKeys(t)
	l := newMemLog(t)
	l.Append([]notary.Leaf{leafFor(1, baseTime)}, nil)
	cp := signHead(t, l, k.n1, k.n2)
	p := notary.Policy{Verifiers: []note.Verifier{k.n1.verifier, k.n2.verifier, k.n3.verifier}, MinSignatures: 2, Origin: testOrigin}
	if _, err := notary.OpenCheckpoint(cp.Note, p); err != nil {
		t.Fatal(err)
	}
	p.MinSignatures = 3
	if _, err := notary.OpenCheckpoint(cp.Note, p); !errors.Is(err, notary.ErrTooFewSignatures) {
		t.Fatal(err)
	}
}

// TestFormatsPolicyExample parses the example of docs/FORMATS.md §9 and
// checks the fingerprint printed under it.
func TestFormatsPolicyExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/FORMATS.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "<!-- policy example -->\n```text\n")
	example, rest, ok2 := strings.Cut(rest, "```\n")
	if !ok || !ok2 {
		t.Fatal("docs/FORMATS.md has no policy example block")
	}
	f := mustPolicy(t, example)
	if !strings.Contains(rest[:min(len(rest), 600)], f.Fingerprint()) {
		t.Errorf("the text after the example does not give its fingerprint %s", f.Fingerprint())
	}
}
