package notary_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/telenotary/telenotary/notary"
	"golang.org/x/mod/sumdb/note"
)

const testOrigin = "notary.test/log"

// baseTime is a fixed clock for tests: 2026-11-21T12:00:00Z.
const baseTime int64 = 1795262400000

// keypair is a node's signing key and the verifier others trust.
type keypair struct {
	name     string
	signer   note.Signer
	verifier note.Verifier
	vkey     string
}

func newKeypair(t testing.TB, name string) keypair {
	t.Helper()
	skey, vkey, err := notary.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return keypair{name: name, signer: s, verifier: v, vkey: vkey}
}

// fhirDocs returns the MedicationRequest examples by file name.
func fhirDocs(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob("fhirdata/MedicationRequest-*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no MedicationRequest examples in fhirdata: %v", err)
	}
	docs := make(map[string][]byte, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		docs[strings.TrimSuffix(filepath.Base(p), ".json")] = b
	}
	return docs
}

// notarized is a document logged and its receipt.
type notarized struct {
	canonical []byte
	salt      notary.Salt
	receipt   *notary.Receipt
}

// notarize logs each document as a prescription in one batch, signs a
// checkpoint over the result with the given keys and returns receipts.
func notarize(t testing.TB, l *notary.Log, docs [][]byte, keys ...keypair) []notarized {
	t.Helper()
	out := make([]notarized, len(docs))
	leaves := make([]notary.Leaf, len(docs))
	head := l.Head()
	for i, d := range docs {
		c, err := notary.CanonicalJSON(d)
		if err != nil {
			t.Fatal(err)
		}
		out[i].canonical, out[i].salt = c, notary.NewSalt()
		leaves[i] = notary.Leaf{Kind: notary.KindPrescription, Commitment: notary.Commit(out[i].salt, c), Timestamp: baseTime + int64(head.Size)}
	}
	idx, err := l.Append(leaves, nil)
	if err != nil {
		t.Fatal(err)
	}
	cp := signHead(t, l, keys...)
	for i := range out {
		if out[i].receipt, err = l.Receipt(idx[i], cp); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// signHead signs a checkpoint over the log's committed head.
func signHead(t testing.TB, l *notary.Log, keys ...keypair) notary.SignedCheckpoint {
	t.Helper()
	head := l.Head()
	signers := make([]note.Signer, len(keys))
	for i, k := range keys {
		signers[i] = k.signer
	}
	cp, err := notary.Checkpoint{Origin: testOrigin, Size: head.Size, Root: head.Root, Timestamp: baseTime + int64(head.Size) + 1000}.Sign(signers...)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func policyOf(keys ...keypair) notary.Policy {
	p := notary.Policy{Origin: testOrigin}
	for _, k := range keys {
		p.Verifiers = append(p.Verifiers, k.verifier)
	}
	return p
}

func newMemLog(t testing.TB) *notary.Log {
	t.Helper()
	l, err := notary.Open(notary.NewMemoryStore())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// leafFor returns a prescription leaf for a commitment derived from i.
func leafFor(i int, ts int64) notary.Leaf {
	var doc [8]byte
	for j := range doc {
		doc[j] = byte(i >> (8 * j))
	}
	return notary.Leaf{Kind: notary.KindDocument, Commitment: notary.Commit(notary.Salt{}, doc[:]), Timestamp: ts}
}
