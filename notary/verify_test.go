package notary_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/telenotary/telenotary/notary"
	"golang.org/x/mod/sumdb/note"
)

// fixture is a log holding the FHIR examples and one of them notarized as
// a prescription linked to a session-start record, signed by two nodes.
type fixture struct {
	log      *notary.Log
	n1, n2   keypair
	doc      notarized
	policy   notary.Policy // trusts n1 and n2, needs 2
	sessions notarized
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{log: newMemLog(t), n1: newKeypair(t, "node-1"), n2: newKeypair(t, "node-2")}
	var docs [][]byte
	for _, d := range fhirDocs(t) {
		docs = append(docs, d)
	}
	notarize(t, f.log, docs[1:], f.n1)
	// A prescription linked to a session, appended after some others.
	session := notarize(t, f.log, [][]byte{[]byte(`{"session":"s-1"}`)}, f.n1)[0]
	canonical, err := notary.CanonicalJSON(docs[0])
	if err != nil {
		t.Fatal(err)
	}
	salt := notary.NewSalt()
	leaf := notary.Leaf{Kind: notary.KindPrescription, Commitment: notary.Commit(salt, canonical), Link: session.receipt.Leaf.Commitment, Timestamp: baseTime + int64(f.log.Head().Size)}
	idx, err := f.log.Append([]notary.Leaf{leaf}, nil)
	if err != nil {
		t.Fatal(err)
	}
	notarize(t, f.log, [][]byte{[]byte(`{"later":1}`), []byte(`{"later":2}`)}, f.n1)
	r, err := f.log.Receipt(idx[0], signHead(t, f.log, f.n1, f.n2))
	if err != nil {
		t.Fatal(err)
	}
	f.doc = notarized{canonical: canonical, salt: salt, receipt: r}
	f.sessions = session
	f.policy = policyOf(f.n1, f.n2)
	f.policy.MinSignatures = 2
	return f
}

func (f *fixture) claim() notary.Claim {
	r := cloneReceipt(f.doc.receipt)
	return notary.Claim{Receipt: r, Document: bytes.Clone(f.doc.canonical), Salt: f.doc.salt}
}

func cloneReceipt(r *notary.Receipt) *notary.Receipt {
	c := *r
	c.InclusionProof = append([]notary.Hash(nil), r.InclusionProof...)
	c.Checkpoint = bytes.Clone(r.Checkpoint)
	return &c
}

func TestVerifyValid(t *testing.T) {
	f := newFixture(t)
	res, err := notary.Verify(f.claim(), f.policy)
	if err != nil {
		t.Fatal(err)
	}
	if res.Index != f.doc.receipt.Index || res.Leaf.Link != f.sessions.receipt.Leaf.Commitment || res.Origin != testOrigin {
		t.Fatalf("result %+v", res)
	}
	if got := strings.Join(res.Signers, ","); got != "node-1,node-2" {
		t.Fatalf("signers %q", got)
	}
	// Only the commitment at hand.
	c := f.claim()
	c.Document, c.Commitment = nil, f.doc.receipt.Leaf.Commitment
	if _, err := notary.Verify(c, f.policy); err != nil {
		t.Fatal(err)
	}
	// Every receipt in the log verifies, through a JSON round trip.
	head := f.log.Head()
	cp := signHead(t, f.log, f.n1)
	for i := range head.Size {
		r, err := f.log.Receipt(i, cp)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		back, err := notary.ParseReceipt(b)
		if err != nil {
			t.Fatalf("receipt %d does not parse back: %v\n%s", i, err, b)
		}
		if _, err := notary.Verify(notary.Claim{Receipt: back, Commitment: r.Leaf.Commitment}, policyOf(f.n1)); err != nil {
			t.Fatalf("receipt %d: %v", i, err)
		}
	}
}

// TestEveryByteFlipIsCaught flips, one at a time, every byte of the
// document, the salt, every receipt field, every proof hash and every
// signature, and checks verification fails with the reason that names what
// was changed.
func TestEveryByteFlipIsCaught(t *testing.T) {
	f := newFixture(t)
	checks := 0
	expect := func(what string, c notary.Claim, want ...error) {
		t.Helper()
		checks++
		_, err := notary.Verify(c, f.policy)
		for _, w := range want {
			if errors.Is(err, w) {
				return
			}
		}
		t.Fatalf("%s: got %v, want one of %v", what, err, want)
	}
	flip := func(b []byte, i int) { b[i] ^= 0x01 }

	for i := range f.doc.canonical {
		c := f.claim()
		flip(c.Document, i)
		expect(fmt.Sprintf("document byte %d", i), c, notary.ErrCommitmentMismatch)
	}
	for i := range notary.HashSize {
		c := f.claim()
		flip(c.Salt[:], i)
		expect(fmt.Sprintf("salt byte %d", i), c, notary.ErrCommitmentMismatch)

		c = f.claim()
		flip(c.Receipt.Leaf.Commitment[:], i)
		expect(fmt.Sprintf("commitment byte %d", i), c, notary.ErrCommitmentMismatch)

		c = f.claim()
		flip(c.Receipt.Leaf.Link[:], i)
		expect(fmt.Sprintf("link byte %d", i), c, notary.ErrLeafMismatch)

		c = f.claim()
		flip(c.Receipt.LeafHash[:], i)
		expect(fmt.Sprintf("leaf hash byte %d", i), c, notary.ErrLeafMismatch)
	}
	for i := range 8 {
		c := f.claim()
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(c.Receipt.Leaf.Timestamp))
		flip(b[:], i)
		c.Receipt.Leaf.Timestamp = int64(binary.BigEndian.Uint64(b[:]))
		expect(fmt.Sprintf("timestamp byte %d", i), c, notary.ErrLeafMismatch)

		c = f.claim()
		binary.BigEndian.PutUint64(b[:], c.Receipt.Index)
		flip(b[:], i)
		c.Receipt.Index = binary.BigEndian.Uint64(b[:])
		expect(fmt.Sprintf("index byte %d", i), c, notary.ErrProofInvalid, notary.ErrRootMismatch)
	}
	for k := notary.KindSessionStart; k <= notary.KindDocument; k++ {
		if k == f.doc.receipt.Leaf.Kind {
			continue
		}
		c := f.claim()
		c.Receipt.Leaf.Kind = k
		expect("kind "+k.String(), c, notary.ErrLeafMismatch)
	}
	for i := range len(f.doc.receipt.Origin) {
		c := f.claim()
		o := []byte(c.Receipt.Origin)
		flip(o, i)
		c.Receipt.Origin = string(o)
		expect(fmt.Sprintf("origin byte %d", i), c, notary.ErrWrongLog)
	}
	for h := range f.doc.receipt.InclusionProof {
		for i := range notary.HashSize {
			c := f.claim()
			flip(c.Receipt.InclusionProof[h][:], i)
			expect(fmt.Sprintf("proof hash %d byte %d", h, i), c, notary.ErrRootMismatch)
		}
	}
	// The checkpoint: its signed text, then each signature line.
	note := f.doc.receipt.Checkpoint
	textEnd := bytes.Index(note, []byte("\n\n")) + 1
	for i := range textEnd {
		c := f.claim()
		flip(c.Receipt.Checkpoint, i)
		// A control character in the text makes the note unparseable.
		expect(fmt.Sprintf("checkpoint text byte %d", i), c, notary.ErrSignatureInvalid, notary.ErrMalformed)
	}
	for i := textEnd + 1; i < len(note); i++ {
		c := f.claim()
		flip(c.Receipt.Checkpoint, i)
		switch {
		case note[i] == '\n':
			expect(fmt.Sprintf("signature line end %d", i), c, notary.ErrMalformed, notary.ErrSignatureInvalid)
		case isNameByte(note, i):
			// A renamed signer is no longer a trusted one.
			expect(fmt.Sprintf("signer name byte %d", i), c, notary.ErrTooFewSignatures, notary.ErrSignatureInvalid)
		default:
			expect(fmt.Sprintf("signature byte %d", i), c, notary.ErrSignatureInvalid)
		}
	}
	t.Logf("%d single-byte changes, each caught with its reason", checks)
}

// isNameByte reports whether note[i] is in a signer's name: between the
// "— " that starts a signature line and the space after the name.
func isNameByte(note []byte, i int) bool {
	lineStart := bytes.LastIndexByte(note[:i], '\n') + 1
	line := note[lineStart:]
	prefix := len("— ")
	space := bytes.IndexByte(line[prefix:], ' ')
	return i-lineStart >= prefix && i-lineStart < prefix+space
}

// TestBundleFileFlips flips every byte of a serialized bundle: each result
// is unreadable or invalid, never valid.
func TestBundleFileFlips(t *testing.T) {
	f := newFixture(t)
	b, err := json.Marshal(notary.Bundle{Document: f.doc.canonical, Salt: f.doc.salt, Receipt: *f.doc.receipt})
	if err != nil {
		t.Fatal(err)
	}
	v, err := notary.NewVerifier(f.policy)
	if err != nil {
		t.Fatal(err)
	}
	if bundle, err := notary.ParseBundle(b); err != nil {
		t.Fatal(err)
	} else if _, err := v.VerifyBundle(bundle); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		mod := bytes.Clone(b)
		mod[i] ^= 0x01
		bundle, err := notary.ParseBundle(mod)
		if err != nil {
			if !errors.Is(err, notary.ErrMalformed) {
				t.Fatalf("byte %d: parse error %v does not wrap ErrMalformed", i, err)
			}
			continue
		}
		if _, err := v.VerifyBundle(bundle); err == nil {
			t.Fatalf("byte %d (%q in %q): bundle still verifies", i, b[i], b[max(0, i-20):min(len(b), i+20)])
		}
	}
}

func TestVerifyPolicy(t *testing.T) {
	f := newFixture(t)
	n3 := newKeypair(t, "node-3")
	for _, tc := range []struct {
		name   string
		policy notary.Policy
		want   error
	}{
		{"two of two", f.policy, nil},
		{"one of one", policyOf(f.n2), nil},
		{"two of three", notary.Policy{Verifiers: []note.Verifier{f.n1.verifier, f.n2.verifier, n3.verifier}, MinSignatures: 2}, nil},
		{"three of three", notary.Policy{Verifiers: []note.Verifier{f.n1.verifier, f.n2.verifier, n3.verifier}, MinSignatures: 3}, notary.ErrTooFewSignatures},
		{"untrusted signers", policyOf(n3), notary.ErrTooFewSignatures},
		{"other origin", notary.Policy{Verifiers: []note.Verifier{f.n1.verifier}, Origin: "elsewhere.test/log"}, notary.ErrWrongLog},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := notary.Verify(f.claim(), tc.policy)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
		})
	}
	// A key of a trusted name that is not the trusted key.
	impostor := newKeypair(t, "node-1")
	c := f.claim()
	cp, _ := notary.ParseSignedCheckpoint(c.Receipt.Checkpoint)
	signed, err := cp.Checkpoint.Sign(impostor.signer)
	if err != nil {
		t.Fatal(err)
	}
	c.Receipt.Checkpoint = signed.Note
	if _, err := notary.Verify(c, policyOf(f.n1)); !errors.Is(err, notary.ErrSignatureInvalid) {
		t.Fatalf("impostor key: %v, want ErrSignatureInvalid", err)
	}
	for _, bad := range []notary.Policy{
		{},
		{Verifiers: []note.Verifier{f.n1.verifier}, MinSignatures: 2},
		{Verifiers: []note.Verifier{f.n1.verifier, f.n1.verifier}},
	} {
		if _, err := notary.Verify(f.claim(), bad); err == nil || errors.Is(err, notary.ErrTooFewSignatures) {
			t.Errorf("policy %+v accepted as valid: %v", bad, err)
		}
	}
}

// TestLeafAfterCheckpoint is a log that signs a checkpoint dated before a
// leaf it includes: its history contradicts itself.
func TestLeafAfterCheckpoint(t *testing.T) {
	f := newFixture(t)
	c := f.claim()
	cp, _ := notary.ParseSignedCheckpoint(c.Receipt.Checkpoint)
	cp.Timestamp = c.Receipt.Leaf.Timestamp - 1
	signed, err := cp.Checkpoint.Sign(f.n1.signer, f.n2.signer)
	if err != nil {
		t.Fatal(err)
	}
	c.Receipt.Checkpoint = signed.Note
	if _, err := notary.Verify(c, f.policy); !errors.Is(err, notary.ErrInconsistentHistory) {
		t.Fatalf("Verify: %v, want ErrInconsistentHistory", err)
	}
}

func TestVerifyWithNewerCheckpoint(t *testing.T) {
	f := newFixture(t)
	old := f.doc.receipt
	oldCP, _ := notary.ParseSignedCheckpoint(old.Checkpoint)
	notarize(t, f.log, [][]byte{[]byte(`{"more":1}`), []byte(`{"more":2}`), []byte(`{"more":3}`)}, f.n1)
	newer := signHead(t, f.log, f.n1, f.n2)
	proof, err := f.log.ConsistencyProof(oldCP.Size, newer.Size)
	if err != nil {
		t.Fatal(err)
	}
	c := f.claim()
	c.Newer, c.Consistency = newer.Note, proof
	res, err := notary.Verify(c, f.policy)
	if err != nil {
		t.Fatal(err)
	}
	if res.Newer == nil || res.Newer.Size != newer.Size {
		t.Fatalf("result newer %+v", res.Newer)
	}

	// A fork: another log state at the newer size, properly signed.
	fork := newMemLog(t)
	for i := range newer.Size {
		l := leafFor(int(i)+1000, baseTime)
		if _, err := fork.Append([]notary.Leaf{l}, nil); err != nil {
			t.Fatal(err)
		}
	}
	forked := signHead(t, fork, f.n1, f.n2)
	c = f.claim()
	c.Newer, c.Consistency = forked.Note, proof
	if _, err := notary.Verify(c, f.policy); !errors.Is(err, notary.ErrInconsistentHistory) {
		t.Fatalf("forked history: %v, want ErrInconsistentHistory", err)
	}
	// The same size with another root is a fork too.
	same := oldCP.Checkpoint
	same.Root[0] ^= 1
	signedSame, _ := same.Sign(f.n1.signer, f.n2.signer)
	c = f.claim()
	c.Newer, c.Consistency = signedSame.Note, nil
	if _, err := notary.Verify(c, f.policy); !errors.Is(err, notary.ErrInconsistentHistory) {
		t.Fatalf("two roots for one size: %v, want ErrInconsistentHistory", err)
	}
	// A shrinking log.
	smaller := oldCP.Checkpoint
	smaller.Size--
	signedSmaller, _ := smaller.Sign(f.n1.signer, f.n2.signer)
	c = f.claim()
	c.Newer = signedSmaller.Note
	if _, err := notary.Verify(c, f.policy); !errors.Is(err, notary.ErrInconsistentHistory) {
		t.Fatalf("shrinking log: %v, want ErrInconsistentHistory", err)
	}
	// A damaged consistency proof.
	c = f.claim()
	c.Newer, c.Consistency = newer.Note, proof[:len(proof)-1]
	if _, err := notary.Verify(c, f.policy); !errors.Is(err, notary.ErrProofInvalid) {
		t.Fatalf("truncated consistency proof: %v, want ErrProofInvalid", err)
	}
}

func TestReasonsArePlain(t *testing.T) {
	for _, err := range []error{
		notary.ErrCommitmentMismatch, notary.ErrLeafMismatch, notary.ErrProofInvalid, notary.ErrRootMismatch,
		notary.ErrSignatureInvalid, notary.ErrTooFewSignatures, notary.ErrInconsistentHistory, notary.ErrWrongLog, notary.ErrMalformed,
	} {
		wrapped := fmt.Errorf("context: %w", &notary.VerifyError{Err: err, Detail: "x"})
		r := notary.Reason(wrapped)
		if r == wrapped.Error() || strings.Contains(r, "mismatch") || strings.Contains(r, "proof invalid") {
			t.Errorf("Reason(%v) = %q: not a plain sentence", err, r)
		}
	}
}
