package notary_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/telenotary/telenotary/notary"
)

// fuzzPolicy trusts the test vectors' keys.
func fuzzPolicy(f *testing.F) notary.Policy {
	f.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir, "keys.pub"))
	if err != nil {
		f.Fatal(err)
	}
	keys, err := notary.ParseVerifierKeys(b)
	if err != nil {
		f.Fatal(err)
	}
	return notary.Policy{Verifiers: keys}
}

// vectorBundles returns every bundle of the test vectors, as seeds.
func vectorBundles(f *testing.F) [][]byte {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join(vectorDir, "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	var out [][]byte
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(`"receipt"`)) {
			out = append(out, b)
		}
	}
	return out
}

// isVerdict reports whether err is one of the documented outcomes.
func isVerdict(err error) bool {
	for _, s := range outcomes {
		if s != nil && errors.Is(err, s) {
			return true
		}
	}
	return false
}

// FuzzBundle parses and verifies arbitrary bundles. Parsing either fails
// with ErrMalformed or gives a bundle that re-encodes to an equal one;
// verification never panics, fails only with a documented verdict, and
// succeeds only for a genuinely logged document: one of the valid vectors.
func FuzzBundle(f *testing.F) {
	policy := fuzzPolicy(f)
	genuine := map[notary.Commitment]notary.Leaf{}
	for _, b := range vectorBundles(f) {
		f.Add(b)
		if bundle, err := notary.ParseBundle(b); err == nil {
			if _, err := notary.VerifyBundle(bundle, policy); err == nil {
				genuine[bundle.Receipt.Leaf.Commitment] = bundle.Receipt.Leaf
			}
		}
	}
	if len(genuine) == 0 {
		f.Fatal("no valid vector to seed from")
	}
	v, err := notary.NewVerifier(policy)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := notary.ParseBundle(data)
		if err != nil {
			if !errors.Is(err, notary.ErrMalformed) {
				t.Fatalf("parse error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("a parsed bundle does not encode: %v", err)
		}
		b2, err := notary.ParseBundle(again)
		if err != nil {
			t.Fatalf("a re-encoded bundle does not parse: %v\n%s", err, again)
		}
		if again2, _ := json.Marshal(b2); !bytes.Equal(again, again2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", again, again2)
		}
		res, err := v.VerifyBundle(b)
		if err != nil {
			if !isVerdict(err) {
				t.Fatalf("verification failed with an undocumented error: %v", err)
			}
			return
		}
		if leaf, ok := genuine[res.Leaf.Commitment]; !ok || leaf != res.Leaf {
			t.Fatalf("a bundle verified for a leaf that was never logged: %+v", res.Leaf)
		}
	})
}

// FuzzReceipt parses arbitrary receipts: ErrMalformed, or a receipt whose
// encoding parses back to the same bytes.
func FuzzReceipt(f *testing.F) {
	for _, b := range vectorBundles(f) {
		var raw struct{ Receipt json.RawMessage }
		if json.Unmarshal(b, &raw) == nil && raw.Receipt != nil {
			f.Add([]byte(raw.Receipt))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := notary.ParseReceipt(data)
		if err != nil {
			if !errors.Is(err, notary.ErrMalformed) {
				t.Fatalf("parse error %v does not wrap ErrMalformed", err)
			}
			return
		}
		enc, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("a parsed receipt does not encode: %v", err)
		}
		r2, err := notary.ParseReceipt(enc)
		if err != nil {
			t.Fatalf("a re-encoded receipt does not parse: %v\n%s", err, enc)
		}
		if enc2, _ := json.Marshal(r2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, enc2)
		}
	})
}

// FuzzCheckpoint parses and opens arbitrary checkpoint notes: a body that
// parses is in its one canonical spelling, and opening fails only with a
// documented verdict.
func FuzzCheckpoint(f *testing.F) {
	policy := fuzzPolicy(f)
	for _, name := range []string{"newer-checkpoint.txt", "forked-checkpoint.txt"} {
		b, err := os.ReadFile(filepath.Join(vectorDir, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:bytes.Index(b, []byte("\n\n"))+1])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if c, err := notary.ParseCheckpointBody(data); err == nil {
			body, err := c.Body()
			if err != nil || !bytes.Equal(body, data) {
				t.Fatalf("body %q parsed to %+v, which encodes to %q (%v)", data, c, body, err)
			}
		} else if !errors.Is(err, notary.ErrMalformed) {
			t.Fatalf("parse error %v does not wrap ErrMalformed", err)
		}
		if _, err := notary.OpenCheckpoint(data, policy); err != nil && !isVerdict(err) {
			t.Fatalf("open failed with an undocumented error: %v", err)
		}
		if _, err := notary.ParseSignedCheckpoint(data); err != nil && !errors.Is(err, notary.ErrMalformed) {
			t.Fatalf("ParseSignedCheckpoint error %v does not wrap ErrMalformed", err)
		}
	})
}

// FuzzLeaf decodes arbitrary bytes as a leaf: either ErrMalformed or a leaf
// that encodes back to exactly those bytes.
func FuzzLeaf(f *testing.F) {
	for k := notary.KindSessionStart; k <= notary.KindDocument; k++ {
		b, _ := leafFor(int(k), baseTime).MarshalBinary()
		b[1] = byte(k)
		f.Add(b)
	}
	f.Add(make([]byte, notary.LeafSize))
	f.Fuzz(func(t *testing.T, data []byte) {
		var l notary.Leaf
		if err := l.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, notary.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		enc, err := l.MarshalBinary()
		if err != nil || !bytes.Equal(enc, data) {
			t.Fatalf("leaf %+v from %x encodes to %x (%v)", l, data, enc, err)
		}
		_ = l.Hash()
	})
}

// FuzzCanonicalJSON canonicalizes arbitrary documents: canonical output is
// itself canonical, valid JSON, and refusals wrap ErrMalformed.
func FuzzCanonicalJSON(f *testing.F) {
	for _, d := range fhirDocs(f) {
		f.Add(d)
	}
	f.Add([]byte(`{"a":1.0,"b":[1e0,"\u00e9"],"c":{"z":null,"y":true}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := notary.CanonicalJSON(data)
		if err != nil {
			if !errors.Is(err, notary.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if !json.Valid(c) {
			t.Fatalf("canonical form is not JSON: %q", c)
		}
		again, err := notary.CanonicalJSON(c)
		if err != nil || !bytes.Equal(again, c) {
			t.Fatalf("canonical form %q is not a fixed point: %q (%v)", c, again, err)
		}
	})
}

// FuzzParsePolicy checks that ParsePolicy never panics, that what it accepts
// is a valid policy whose canonical form parses to itself (so its
// fingerprint is stable), and that every refusal is a *PolicyFileError.
func FuzzParsePolicy(f *testing.F) {
	k := newPolicyKeys(f)
	for _, c := range policyRefusals(k) {
		f.Add([]byte(c.text))
	}
	f.Add([]byte("origin " + testOrigin + "\nnode " + k.n1.vkey + " until 10\nnode " + k.n1new.vkey + " from 11\nnode " + k.n2.vkey +
		"\nnode-signatures 2\nwitness w1 " + k.w1.vkey + "\nwitness w2 " + k.w2.vkey + "\ngroup g 1 w1 w2\nquorum g\n"))
	if b, err := os.ReadFile(filepath.Join(vectorDir, "policy-witnessed.txt")); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		pf, err := notary.ParsePolicy(text)
		if err != nil {
			var pe *notary.PolicyFileError
			if !errors.As(err, &pe) {
				t.Fatalf("refusal %T %v is not a *PolicyFileError", err, err)
			}
			return
		}
		if err := pf.Policy.Validate(); err != nil {
			t.Fatalf("accepted policy does not validate: %v\n%s", err, text)
		}
		again, err := notary.ParsePolicy(pf.Canonical)
		if err != nil {
			t.Fatalf("canonical form refused: %v\n%s", err, pf.Canonical)
		}
		if !bytes.Equal(again.Canonical, pf.Canonical) || again.Fingerprint() != pf.Fingerprint() {
			t.Fatalf("canonical form is not stable:\n%s\n---\n%s", pf.Canonical, again.Canonical)
		}
	})
}
