package notary_test

import (
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/telenotary/telenotary/notary"
	"golang.org/x/mod/sumdb/tlog"
)

// benchTreeLevels makes benchmark receipts prove into a tree of 2^24
// (16.7 million) leaves: 24 proof hashes, as at the sizes production sees.
const benchTreeLevels = 24

// bigTreeReceipt returns a receipt for leaf 0 of a tree of 2^levels leaves
// whose other leaves all commit to one filler document, signed by key at
// time baseTime+1000+skew. Such a tree hashes like any other of its size,
// and needs no log to build.
func bigTreeReceipt(b *testing.B, key keypair, doc []byte, salt notary.Salt, skew int64) *notary.Receipt {
	b.Helper()
	leaf := notary.Leaf{Kind: notary.KindPrescription, Commitment: notary.Commit(salt, doc), Timestamp: baseTime}
	filler := notary.Leaf{Kind: notary.KindConsent, Commitment: notary.Commit(notary.Salt{}, []byte("filler")), Timestamp: baseTime}
	node := tlog.Hash(leaf.Hash())
	sub := tlog.Hash(filler.Hash()) // a perfect subtree of fillers, 2^k leaves
	proof := make([]notary.Hash, benchTreeLevels)
	for k := range benchTreeLevels {
		proof[k] = notary.Hash(sub)
		node = tlog.NodeHash(node, sub)
		sub = tlog.NodeHash(sub, sub)
	}
	cp, err := notary.Checkpoint{Origin: testOrigin, Size: 1 << benchTreeLevels, Root: notary.Hash(node), Timestamp: baseTime + 1000 + skew}.Sign(key.signer)
	if err != nil {
		b.Fatal(err)
	}
	return &notary.Receipt{Origin: testOrigin, Index: 0, Leaf: leaf, LeafHash: leaf.Hash(), InclusionProof: proof, Checkpoint: cp.Note}
}

// BenchmarkVerifyReceipt verifies a receipt against its commitment, or a
// FHIR MedicationRequest with its salt, into a 2^24-leaf tree. "warm" has
// the checkpoint's signature already verified (the Verifier caches it);
// "cold" cycles through more distinct checkpoints than the cache holds, so
// every receipt's signature is verified. Run with -cpu 1 for per-core rates.
func BenchmarkVerifyReceipt(b *testing.B) {
	key := newKeypair(b, "node-1")
	doc, err := notary.CanonicalJSON(fhirDocs(b)["MedicationRequest-medrx0302"])
	if err != nil {
		b.Fatal(err)
	}
	salt := notary.NewSalt()
	receipts := make([]*notary.Receipt, 4096)
	for i := range receipts {
		receipts[i] = bigTreeReceipt(b, key, doc, salt, int64(i))
	}
	v, err := notary.NewVerifier(policyOf(key))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name     string
		document bool
		distinct int // checkpoints cycled through
	}{
		{"warm/commitment", false, 1},
		{"warm/document", true, 1},
		{"cold/commitment", false, len(receipts)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			claims := make([]notary.Claim, bc.distinct)
			for i := range claims {
				claims[i] = notary.Claim{Receipt: receipts[i], Commitment: receipts[i].Leaf.Commitment}
				if bc.document {
					claims[i] = notary.Claim{Receipt: receipts[i], Document: doc, Salt: salt}
				}
			}
			if _, err := v.Verify(claims[0]); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := v.Verify(claims[i%len(claims)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "receipts/s")
		})
	}
}

// BenchmarkEd25519Verify is the yardstick for cold verification: one
// Ed25519 signature check over a checkpoint-sized message.
func BenchmarkEd25519Verify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := make([]byte, 120)
	sig := ed25519.Sign(priv, msg)
	b.ResetTimer()
	for range b.N {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("signature does not verify")
		}
	}
}

// BenchmarkParseBundle decodes a bundle file holding a FHIR document.
func BenchmarkParseBundle(b *testing.B) {
	key := newKeypair(b, "node-1")
	doc := fhirDocs(b)["MedicationRequest-medrx0302"]
	canonical, _ := notary.CanonicalJSON(doc)
	salt := notary.NewSalt()
	data, err := json.Marshal(notary.Bundle{Document: doc, Salt: salt, Receipt: *bigTreeReceipt(b, key, canonical, salt, 0)})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		if _, err := notary.ParseBundle(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCommit canonicalizes and commits a FHIR MedicationRequest.
func BenchmarkCommit(b *testing.B) {
	doc := fhirDocs(b)["MedicationRequest-medrx0302"]
	salt := notary.NewSalt()
	b.SetBytes(int64(len(doc)))
	for range b.N {
		c, err := notary.CanonicalJSON(doc)
		if err != nil {
			b.Fatal(err)
		}
		notary.Commit(salt, c)
	}
}

// BenchmarkReceiptJSON encodes and decodes a receipt with 24 proof hashes,
// as clients of a busy cluster do for every receipt.
func BenchmarkReceiptJSON(b *testing.B) {
	key := newKeypair(b, "node-1")
	r := bigTreeReceipt(b, key, []byte(`{"a":1}`), notary.Salt{}, 0)
	data, err := json.Marshal(r)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for range b.N {
			if _, err := r.AppendJSON(nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for range b.N {
			if _, err := notary.ParseReceipt(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkOpenCheckpointPolicy opens the vectors' checkpoint signed by two
// nodes and cosigned by two witnesses, under the keys file (nodes only) and
// under the witnessed policy file: the cost of checking the quorum.
func BenchmarkOpenCheckpointPolicy(b *testing.B) {
	bundle, err := notary.ParseBundle(mustReadB(b, "witnessed.json"))
	if err != nil {
		b.Fatal(err)
	}
	keys, err := notary.ParseVerifierKeys(mustReadB(b, "keys.pub"))
	if err != nil {
		b.Fatal(err)
	}
	pf, err := notary.ParsePolicy(mustReadB(b, "policy-witnessed.txt"))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		p    notary.Policy
	}{
		{"keys", notary.Policy{Verifiers: keys, MinSignatures: 2}},
		{"witnessed-policy", pf.Policy},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := notary.OpenCheckpoint(bundle.Receipt.Checkpoint, c.p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParsePolicy parses the witnessed policy file of the vectors.
func BenchmarkParsePolicy(b *testing.B) {
	text := mustReadB(b, "policy-witnessed.txt")
	for b.Loop() {
		if _, err := notary.ParsePolicy(text); err != nil {
			b.Fatal(err)
		}
	}
}

func mustReadB(b *testing.B, name string) []byte {
	b.Helper()
	data, err := os.ReadFile(filepath.Join(vectorDir, name))
	if err != nil {
		b.Fatal(err)
	}
	return data
}
