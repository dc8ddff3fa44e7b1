package notary_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/telenotary/telenotary/notary"
	"golang.org/x/mod/sumdb/note"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/vectors")

const vectorDir = "testdata/vectors"

// vectorCase is one entry of testdata/vectors/manifest.json, the test vectors
// docs/FORMATS.md describes for other implementations.
type vectorCase struct {
	Bundle           string `json:"bundle"`
	Policy           string `json:"policy,omitempty"`
	MinSignatures    int    `json:"min_signatures,omitempty"`
	Origin           string `json:"origin,omitempty"`
	NewerCheckpoint  string `json:"newer_checkpoint,omitempty"`
	ConsistencyProof string `json:"consistency_proof,omitempty"`
	Expect           string `json:"expect"`
	Why              string `json:"why"`
}

// policyVector is a policy file of the vectors: accepted, with its
// fingerprint, or refused, with the exact error.
type policyVector struct {
	File        string `json:"file"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Error       string `json:"error,omitempty"`
}

type vectorManifest struct {
	About    string         `json:"about"`
	Keys     string         `json:"keys"`
	Cases    []vectorCase   `json:"cases"`
	Policies []policyVector `json:"policies"`
}

// outcomes maps the manifest's expected outcomes to the errors they mean.
var outcomes = map[string]error{
	"valid":                      nil,
	"malformed input":            notary.ErrMalformed,
	"commitment mismatch":        notary.ErrCommitmentMismatch,
	"leaf mismatch":              notary.ErrLeafMismatch,
	"proof invalid":              notary.ErrProofInvalid,
	"root mismatch":              notary.ErrRootMismatch,
	"signature invalid":          notary.ErrSignatureInvalid,
	"too few trusted signatures": notary.ErrTooFewSignatures,
	"inconsistent history":       notary.ErrInconsistentHistory,
	"wrong log":                  notary.ErrWrongLog,
}

// buildVectors makes every vector file from fixed seeds: the same bytes on
// every run (Ed25519 signatures are deterministic).
func buildVectors(t *testing.T) map[string][]byte {
	t.Helper()
	rng := rand.New(rand.NewChaCha8([32]byte{'t', 'e', 'l', 'e', 'n', 'o', 't', 'a', 'r', 'y'}))
	seed := rand.NewChaCha8([32]byte{'k', 'e', 'y', 's'})
	key := func(name string) keypair {
		skey, vkey, err := note.GenerateKey(seed, name)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := note.NewSigner(skey)
		v, _ := note.NewVerifier(vkey)
		return keypair{name: name, signer: s, verifier: v, vkey: vkey}
	}
	n1, n2, n3, outsider := key("notary-1.example.org"), key("notary-2.example.org"), key("notary-3.example.org"), key("notary-9.example.org")
	salt := func() notary.Salt {
		var s notary.Salt
		for i := range s {
			s[i] = byte(rng.Uint32())
		}
		return s
	}
	const origin = "notary.example.org/telehealth"
	ts := int64(1795262400000) // 2026-11-21T12:00:00Z

	// The log: a session-start record, a prescription linked to it, and
	// other entries so the proof has several levels.
	l := newMemLog(t)
	fill := func(n int) {
		var leaves []notary.Leaf
		for range n {
			leaves = append(leaves, notary.Leaf{Kind: notary.KindConsent, Commitment: notary.Commit(salt(), []byte("filler")), Timestamp: ts})
		}
		if _, err := l.Append(leaves, nil); err != nil {
			t.Fatal(err)
		}
	}
	fill(9)
	session := []byte(`{"room":"r-1","session":"s-1","participants":[{"role":"patient","subject":"p-7f3a"},{"role":"physician","subject":"d-19c2"}]}`)
	sessionSalt := salt()
	sessionC := notary.Commit(sessionSalt, must(notary.CanonicalJSON(session)))
	ts += 1500
	if _, err := l.Append([]notary.Leaf{{Kind: notary.KindSessionStart, Commitment: sessionC, Timestamp: ts}}, nil); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("fhirdata/MedicationRequest-medrx0302.json")
	if err != nil {
		t.Fatal(err)
	}
	docSalt := salt()
	ts += 61000
	rx := notary.Leaf{Kind: notary.KindPrescription, Commitment: notary.Commit(docSalt, must(notary.CanonicalJSON(doc))), Link: sessionC, Timestamp: ts}
	raw := []byte("%PDF-1.7 a discharge letter that is not JSON\n")
	rawSalt := salt()
	rawLeaf := notary.Leaf{Kind: notary.KindDocument, Commitment: notary.Commit(rawSalt, raw), Link: sessionC, Timestamp: ts}
	idx, err := l.Append([]notary.Leaf{rx, rawLeaf}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fill(4)
	head := l.Head()
	cpBody := notary.Checkpoint{Origin: origin, Size: head.Size, Root: head.Root, Timestamp: ts + 250}
	cp := must(cpBody.Sign(n1.signer, n2.signer))
	receipt := must(l.Receipt(idx[0], cp))
	rawReceipt := must(l.Receipt(idx[1], cp))

	files := map[string][]byte{}
	put := func(name string, v any) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		files[name] = buf.Bytes()
	}
	valid := notary.Bundle{Document: doc, Salt: docSalt, Receipt: *receipt}
	put("valid.json", valid)
	put("valid-raw-document.json", notary.Bundle{Raw: raw, Salt: rawSalt, Receipt: *rawReceipt})
	files["keys.pub"] = []byte("# verifier keys of the test vectors' notary nodes\n" + n1.vkey + "\n" + n2.vkey + "\n" + n3.vkey + "\n")

	var cases []vectorCase
	add := func(name, expect, why string, edit func(b *notary.Bundle)) {
		b := valid
		b.Receipt = *cloneReceipt(receipt)
		b.Document = bytes.Clone(doc)
		if edit != nil {
			edit(&b)
		}
		put(name, b)
		cases = append(cases, vectorCase{Bundle: name, MinSignatures: 2, Expect: expect, Why: why})
	}
	resign := func(b *notary.Bundle, c notary.Checkpoint, keys ...keypair) {
		var s []note.Signer
		for _, k := range keys {
			s = append(s, k.signer)
		}
		b.Receipt.Checkpoint = must(c.Sign(s...)).Note
	}

	cases = append(cases,
		vectorCase{Bundle: "valid.json", MinSignatures: 2, Expect: "valid", Why: "a prescription linked to its session, signed by two trusted nodes"},
		vectorCase{Bundle: "valid.json", MinSignatures: 3, Expect: "too few trusted signatures", Why: "the policy needs three signatures, the checkpoint has two"},
		vectorCase{Bundle: "valid.json", MinSignatures: 1, Origin: "other.example.org/log", Expect: "wrong log", Why: "the policy accepts only another log"},
		vectorCase{Bundle: "valid-raw-document.json", MinSignatures: 2, Expect: "valid", Why: "a document that is not JSON, committed byte for byte"},
	)
	add("document-reformatted.json", "valid", "the same JSON document with other key order, whitespace and escapes: canonicalization gives the same bytes", func(b *notary.Bundle) {
		b.Document = reformat(t, b.Document)
	})
	add("document-changed.json", "commitment mismatch", "the dosage text was edited", func(b *notary.Bundle) {
		b.Document = bytes.Replace(b.Document, []byte("One tablet daily for 4 days"), []byte("Two tablets daily for 4 days"), 1)
		if bytes.Equal(b.Document, doc) {
			t.Fatal("document-changed: the dosage text is not in the example")
		}
	})
	add("salt-changed.json", "commitment mismatch", "one bit of the salt differs", func(b *notary.Bundle) { b.Salt[7] ^= 0x10 })
	add("commitment-changed.json", "commitment mismatch", "the receipt names another commitment", func(b *notary.Bundle) { b.Receipt.Leaf.Commitment[0] ^= 1 })
	add("kind-changed.json", "leaf mismatch", "the receipt claims the entry is a consent record", func(b *notary.Bundle) { b.Receipt.Leaf.Kind = notary.KindConsent })
	add("timestamp-changed.json", "leaf mismatch", "the notarization time was moved one day earlier", func(b *notary.Bundle) { b.Receipt.Leaf.Timestamp -= 86400000 })
	add("link-changed.json", "leaf mismatch", "the receipt links another session", func(b *notary.Bundle) { b.Receipt.Leaf.Link[31] ^= 1 })
	add("link-removed.json", "leaf mismatch", "the link to the session was dropped", func(b *notary.Bundle) { b.Receipt.Leaf.Link = notary.Commitment{} })
	add("leaf-hash-changed.json", "leaf mismatch", "the stated leaf hash differs from the leaf's fields", func(b *notary.Bundle) { b.Receipt.LeafHash[5] ^= 1 })
	add("index-changed.json", "root mismatch", "the entry's index was changed by one", func(b *notary.Bundle) { b.Receipt.Index++ })
	add("index-beyond-size.json", "proof invalid", "the index is not below the checkpoint's size", func(b *notary.Bundle) { b.Receipt.Index = head.Size })
	add("proof-hash-changed.json", "root mismatch", "one byte of a proof hash differs", func(b *notary.Bundle) { b.Receipt.InclusionProof[1][0] ^= 1 })
	add("proof-hash-removed.json", "proof invalid", "the proof lost its last hash", func(b *notary.Bundle) {
		b.Receipt.InclusionProof = b.Receipt.InclusionProof[:len(b.Receipt.InclusionProof)-1]
	})
	add("proof-hash-added.json", "proof invalid", "the proof has one hash too many", func(b *notary.Bundle) {
		b.Receipt.InclusionProof = append(b.Receipt.InclusionProof, b.Receipt.InclusionProof[0])
	})
	add("checkpoint-root-changed.json", "signature invalid", "the checkpoint's root was edited; its signatures no longer match", func(b *notary.Bundle) {
		b.Receipt.Checkpoint = replaceLine(t, b.Receipt.Checkpoint, 2, func(line string) string { return "A" + line[1:] })
	})
	add("checkpoint-size-changed.json", "signature invalid", "the checkpoint's tree size was edited", func(b *notary.Bundle) {
		b.Receipt.Checkpoint = replaceLine(t, b.Receipt.Checkpoint, 1, func(line string) string { return line + "0" })
	})
	add("signature-changed.json", "signature invalid", "one character of the first signature differs", func(b *notary.Bundle) {
		b.Receipt.Checkpoint = replaceLine(t, b.Receipt.Checkpoint, 5, func(line string) string {
			i := len(line) - 10
			return line[:i] + string(rune(line[i]^1)) + line[i+1:]
		})
	})
	add("signature-removed.json", "too few trusted signatures", "the second node's signature was removed; the policy needs two", func(b *notary.Bundle) {
		lines := strings.SplitAfter(string(b.Receipt.Checkpoint), "\n")
		b.Receipt.Checkpoint = []byte(strings.Join(lines[:len(lines)-2], ""))
	})
	add("signed-by-untrusted-key.json", "too few trusted signatures", "the checkpoint is signed by two keys, one of which is not trusted", func(b *notary.Bundle) {
		resign(b, cpBody, n1, outsider)
	})
	add("origin-changed.json", "wrong log", "the receipt names another log than its checkpoint", func(b *notary.Bundle) { b.Receipt.Origin = "notary.example.net/telehealth" })
	add("checkpoint-before-leaf.json", "inconsistent history", "the log signed a checkpoint dated before an entry it contains", func(b *notary.Bundle) {
		early := cpBody
		early.Timestamp = rx.Timestamp - 1
		resign(b, early, n1, n2)
	})

	// Malformed files: exit status 2 for the command line.
	validJSON := files["valid.json"]
	malformed := map[string][]byte{
		"truncated.json": validJSON[:len(validJSON)/2],
		"unknown-field.json": bytes.Replace(validJSON, []byte(`"salt":`), []byte(`"pepper": 1,
  "salt":`), 1),
		"salt-not-hex.json": bytes.Replace(validJSON, []byte(`"salt": "`), []byte(`"salt": "zz`), 1),
		"version-2.json":    bytes.Replace(validJSON, []byte(`"version": 1`), []byte(`"version": 2`), 1),
	}
	for _, name := range slices.Sorted(mapsKeys(malformed)) {
		if bytes.Equal(malformed[name], validJSON) {
			t.Fatalf("%s: edit did not apply", name)
		}
		files[name] = malformed[name]
		cases = append(cases, vectorCase{Bundle: name, MinSignatures: 1, Expect: "malformed input", Why: "not a readable version-1 bundle"})
	}

	// A newer checkpoint with a consistency proof, and a fork of it.
	fill(7)
	newHead := l.Head()
	newer := must(notary.Checkpoint{Origin: origin, Size: newHead.Size, Root: newHead.Root, Timestamp: ts + 90000}.Sign(n1.signer, n2.signer))
	files["newer-checkpoint.txt"] = newer.Note
	proof := must(l.ConsistencyProof(head.Size, newHead.Size))
	put("consistency-proof.json", proof)
	forkRoot := newHead.Root
	forkRoot[0] ^= 1
	forked := must(notary.Checkpoint{Origin: origin, Size: newHead.Size, Root: forkRoot, Timestamp: ts + 90000}.Sign(n1.signer, n2.signer))
	files["forked-checkpoint.txt"] = forked.Note
	cases = append(cases,
		vectorCase{Bundle: "valid.json", MinSignatures: 2, NewerCheckpoint: "newer-checkpoint.txt", ConsistencyProof: "consistency-proof.json", Expect: "valid", Why: "a later checkpoint of the same log extends the receipt's"},
		vectorCase{Bundle: "valid.json", MinSignatures: 2, NewerCheckpoint: "forked-checkpoint.txt", ConsistencyProof: "consistency-proof.json", Expect: "inconsistent history", Why: "a later checkpoint, properly signed, of a history that does not extend the receipt's: a fork"},
	)

	// Trust policy files (docs/FORMATS.md §9): node keys with ranges, and
	// witnesses whose cosignatures are made at a fixed time. These keys come
	// from their own seed, so that the files above stay as they were.
	pseed := rand.NewChaCha8([32]byte{'p', 'o', 'l', 'i', 'c', 'y'})
	pkey := func(name string) keypair {
		skey, vkey, err := note.GenerateKey(pseed, name)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := note.NewSigner(skey)
		v, _ := note.NewVerifier(vkey)
		return keypair{name: name, signer: s, verifier: v, vkey: vkey}
	}
	n1new := pkey("notary-1.example.org")
	w1, w2, w3 := newTestWitness(t, "witness-1.example.net", pseed), newTestWitness(t, "witness-2.example.net", pseed), newTestWitness(t, "witness-3.example.net", pseed)
	const cosignTime = 1795262460 // a minute after the checkpoint
	nodes := "origin " + origin + "\nnode " + n1.vkey + "\nnode " + n2.vkey + "\nnode " + n3.vkey + "\nnode-signatures 2\n"
	witnesses := "witness w1 " + w1.vkey + "\nwitness w2 " + w2.vkey + "\nwitness w3 " + w3.vkey + "\n"
	policies := []struct{ file, text string }{
		{"policy-nodes.txt", "# the test vectors' cluster: two of its three nodes must sign\n" + nodes},
		{"policy-witnessed.txt", "# two of three nodes, and two of three witnesses\n" + nodes + witnesses + "group q-main 2 w1 w2 w3\nquorum q-main\n"},
		{"policy-other-log.txt", "origin other.example.org/log\nnode " + n1.vkey + "\nnode " + n2.vkey + "\nnode-signatures 2\n"},
		{"policy-rotated.txt", fmt.Sprintf("# notary-1 changed its key after size %d\norigin %s\nnode %s until %d\nnode %s from %d\nnode %s\nnode %s\nnode-signatures 2\n",
			head.Size-1, origin, n1.vkey, head.Size-1, n1new.vkey, head.Size, n2.vkey, n3.vkey)},
		{"policy-rotated-later.txt", fmt.Sprintf("# notary-1 changed its key after size %d\norigin %s\nnode %s until %d\nnode %s from %d\nnode %s\nnode %s\nnode-signatures 2\n",
			head.Size, origin, n1.vkey, head.Size, n1new.vkey, head.Size+1, n2.vkey, n3.vkey)},
	}
	var pvs []policyVector
	for _, p := range policies {
		files[p.file] = []byte(p.text)
		pf, err := notary.ParsePolicy([]byte(p.text))
		if err != nil {
			t.Fatalf("%s: %v", p.file, err)
		}
		pvs = append(pvs, policyVector{File: p.file, Fingerprint: pf.Fingerprint()})
	}
	for _, r := range policyRefusals(policyKeys{n1: n1, n2: n2, n3: n3, n1new: n1new, w1: w1, w2: w2, w3: w3}) {
		name := "policy-refused-" + r.name + ".txt"
		files[name] = []byte(r.text)
		pvs = append(pvs, policyVector{File: name, Error: r.err})
	}
	body := must(cpBody.Body())
	cosigned := func(name string, lines ...[]byte) {
		b := valid
		b.Receipt = *cloneReceipt(receipt)
		b.Receipt.Checkpoint = addLines(cp.Note, lines...)
		put(name, b)
	}
	c1, c2 := w1.cosign(body, cosignTime), w2.cosign(body, cosignTime+1)
	bad := bytes.Clone(c2)
	bad[len(bad)-6] ^= 1
	cosigned("witnessed.json", c1, c2)
	cosigned("witnessed-once.json", c2)
	cosigned("witnessed-cosignature-changed.json", c1, bad)
	rotated := valid
	rotated.Receipt = *cloneReceipt(receipt)
	rotated.Receipt.Checkpoint = must(cpBody.Sign(n2.signer, n1new.signer)).Note
	put("signed-by-new-key.json", rotated)
	cases = append(cases,
		vectorCase{Bundle: "valid.json", Policy: "policy-nodes.txt", Expect: "valid", Why: "the policy file trusts the three nodes and needs two"},
		vectorCase{Bundle: "valid.json", Policy: "policy-other-log.txt", Expect: "wrong log", Why: "the policy file accepts only another log"},
		vectorCase{Bundle: "signed-by-untrusted-key.json", Policy: "policy-nodes.txt", Expect: "too few trusted signatures", Why: "one of the two signers is not in the policy"},
		vectorCase{Bundle: "witnessed.json", Policy: "policy-witnessed.txt", Expect: "valid", Why: "two nodes signed and two of the three witnesses cosigned"},
		vectorCase{Bundle: "witnessed.json", Policy: "policy-nodes.txt", Expect: "valid", Why: "a policy without witnesses ignores cosignatures"},
		vectorCase{Bundle: "valid.json", Policy: "policy-witnessed.txt", Expect: "too few trusted signatures", Why: "no witness cosigned; the quorum needs two"},
		vectorCase{Bundle: "witnessed-once.json", Policy: "policy-witnessed.txt", Expect: "too few trusted signatures", Why: "one witness cosigned; the quorum needs two"},
		vectorCase{Bundle: "witnessed-cosignature-changed.json", Policy: "policy-witnessed.txt", Expect: "signature invalid", Why: "a trusted witness's cosignature was altered"},
		vectorCase{Bundle: "witnessed-cosignature-changed.json", Policy: "policy-nodes.txt", Expect: "valid", Why: "a cosignature by a key the policy does not trust is ignored, altered or not"},
		vectorCase{Bundle: "valid.json", Policy: "policy-rotated.txt", Expect: "too few trusted signatures", Why: "notary-1's key was retired before this checkpoint's size: only notary-2's signature counts"},
		vectorCase{Bundle: "valid.json", Policy: "policy-rotated-later.txt", Expect: "valid", Why: "notary-1's old key is valid up to this checkpoint's size, included"},
		vectorCase{Bundle: "signed-by-new-key.json", Policy: "policy-rotated.txt", Expect: "valid", Why: "notary-1's new key is valid from this checkpoint's size"},
		vectorCase{Bundle: "signed-by-new-key.json", Policy: "policy-rotated-later.txt", Expect: "too few trusted signatures", Why: "notary-1's new key is valid only from the next size"},
	)

	put("manifest.json", vectorManifest{
		About: "telenotary verification test vectors; see docs/FORMATS.md. Each case: verify the bundle with the keys file, " +
			"min_signatures (0 means 1) and origin (empty means any); with newer_checkpoint, also check the consistency proof from the receipt's checkpoint to it. " +
			"expect is the outcome: valid, or the name of the first failed step. A case with policy is verified under that policy file (docs/FORMATS.md §9) instead of keys, min_signatures and origin. " +
			"policies lists every policy file: accepted with its fingerprint, or refused with the exact error.",
		Keys:     "keys.pub",
		Cases:    cases,
		Policies: pvs,
	})
	return files
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// replaceLine edits line i (from 0) of a checkpoint note.
func replaceLine(t *testing.T, msg []byte, i int, edit func(string) string) []byte {
	t.Helper()
	lines := strings.Split(string(msg), "\n")
	if i >= len(lines) || lines[i] == "" {
		t.Fatalf("checkpoint has no line %d:\n%s", i, msg)
	}
	lines[i] = edit(lines[i])
	return []byte(strings.Join(lines, "\n"))
}

// reformat re-serializes a JSON document with keys in reverse order, other
// whitespace and every non-ASCII character escaped: the same JSON value.
func reformat(t *testing.T, doc []byte) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	var emit func(v any, indent string)
	emit = func(v any, indent string) {
		switch v := v.(type) {
		case map[string]any:
			keys := slices.Sorted(mapsKeys(v))
			slices.Reverse(keys)
			b.WriteString("{\n")
			for i, k := range keys {
				fmt.Fprintf(&b, "%s\t%s :  ", indent, quoteASCII(k))
				emit(v[k], indent+"\t")
				if i < len(keys)-1 {
					b.WriteString(",")
				}
				b.WriteString("\n")
			}
			b.WriteString(indent + "}")
		case []any:
			b.WriteString("[ ")
			for i, e := range v {
				if i > 0 {
					b.WriteString(" , ")
				}
				emit(e, indent)
			}
			b.WriteString(" ]")
		case string:
			b.WriteString(quoteASCII(v))
		case json.Number:
			b.WriteString(v.String())
		default:
			out, _ := json.Marshal(v)
			b.Write(out)
		}
	}
	emit(v, "")
	return []byte(b.String())
}

// quoteASCII quotes s with every non-ASCII character and every '/' escaped.
func quoteASCII(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '/':
			b.WriteString(`\/`)
		case r < 0x20 || r > 0x7e:
			if r > 0xffff {
				r -= 0x10000
				fmt.Fprintf(&b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
			} else {
				fmt.Fprintf(&b, `\u%04X`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// TestVectorsAreCurrent regenerates the vectors and compares them with the
// files; run `make vectors` (go test -run TestVectorsAreCurrent -update)
// after a deliberate change of format.
func TestVectorsAreCurrent(t *testing.T) {
	files := buildVectors(t)
	if *update {
		if err := os.RemoveAll(vectorDir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(vectorDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(vectorDir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	entries, err := os.ReadDir(vectorDir)
	if err != nil {
		t.Fatal(err)
	}
	onDisk := map[string]bool{}
	for _, e := range entries {
		onDisk[e.Name()] = true
		if e.Name() == "README.md" {
			continue
		}
		if _, ok := files[e.Name()]; !ok {
			t.Errorf("%s is in %s but the generator does not make it", e.Name(), vectorDir)
		}
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(vectorDir, name))
		if err != nil {
			t.Errorf("%s: %v (run make vectors)", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what the generator makes (run make vectors if the change is deliberate)", name)
		}
	}
}

// TestVectors checks every case of the manifest against Verify.
func TestVectors(t *testing.T) {
	var m vectorManifest
	if err := json.Unmarshal(mustRead(t, "manifest.json"), &m); err != nil {
		t.Fatal(err)
	}
	keys, err := notary.ParseVerifierKeys(mustRead(t, m.Keys))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range m.Cases {
		want, ok := outcomes[c.Expect]
		if !ok {
			t.Fatalf("%s: unknown outcome %q", c.Bundle, c.Expect)
		}
		seen[c.Expect] = true
		t.Run(strings.TrimSuffix(c.Bundle, ".json")+"/"+strings.ReplaceAll(c.Expect, " ", "-"), func(t *testing.T) {
			err := verifyVector(t, c, keys)
			if !errors.Is(err, want) || (want == nil && err != nil) {
				t.Fatalf("%s: got %v, want %s", c.Why, err, c.Expect)
			}
		})
	}
	for o := range outcomes {
		if !seen[o] {
			t.Errorf("no vector has outcome %q", o)
		}
	}
	if len(m.Policies) == 0 {
		t.Error("no policy vectors")
	}
	for _, pv := range m.Policies {
		pf, err := notary.ParsePolicy(mustRead(t, pv.File))
		switch {
		case pv.Error != "" && (err == nil || err.Error() != pv.Error):
			t.Errorf("%s: got %v, want the error %q", pv.File, err, pv.Error)
		case pv.Error == "" && err != nil:
			t.Errorf("%s: refused: %v", pv.File, err)
		case pv.Error == "" && pf.Fingerprint() != pv.Fingerprint:
			t.Errorf("%s: fingerprint %s, the manifest says %s", pv.File, pf.Fingerprint(), pv.Fingerprint)
		}
	}
}

func verifyVector(t *testing.T, c vectorCase, keys []note.Verifier) error {
	t.Helper()
	b, err := notary.ParseBundle(mustRead(t, c.Bundle))
	if err != nil {
		return err
	}
	p := notary.Policy{Verifiers: keys, MinSignatures: c.MinSignatures, Origin: c.Origin}
	if c.Policy != "" {
		pf, err := notary.ParsePolicy(mustRead(t, c.Policy))
		if err != nil {
			t.Fatal(err)
		}
		p = pf.Policy
	}
	v, err := notary.NewVerifier(p)
	if err != nil {
		t.Fatal(err)
	}
	claim := notary.Claim{Receipt: &b.Receipt, Salt: b.Salt}
	if claim.Document, err = b.Canonical(); err != nil {
		return err
	}
	if c.NewerCheckpoint != "" {
		claim.Newer = mustRead(t, c.NewerCheckpoint)
		if err := json.Unmarshal(mustRead(t, c.ConsistencyProof), &claim.Consistency); err != nil {
			t.Fatal(err)
		}
	}
	_, err = v.Verify(claim)
	return err
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
