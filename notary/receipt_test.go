package notary_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/telenotary/telenotary/notary"
)

// jsonFields decodes a JSON object, keeping numbers as written.
func jsonFields(t testing.TB, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

func encodeFields(t testing.TB, m map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReceiptJSON(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name    string
		receipt *notary.Receipt
		fields  []string
	}{
		{"linked", f.doc.receipt, []string{"version", "origin", "index", "kind", "commitment", "link", "timestamp", "leaf_hash", "inclusion_proof", "checkpoint"}},
		{"unlinked", f.sessions.receipt, []string{"version", "origin", "index", "kind", "commitment", "timestamp", "leaf_hash", "inclusion_proof", "checkpoint"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.receipt
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			m := jsonFields(t, b)
			var keys []string
			for k := range m {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			want := slices.Sorted(slices.Values(tc.fields))
			if !slices.Equal(keys, want) {
				t.Fatalf("receipt JSON has fields %q, want %q", keys, want)
			}
			proof := make([]any, len(r.InclusionProof))
			for i, h := range r.InclusionProof {
				proof[i] = h.String()
			}
			wantValues := map[string]any{
				"version":         json.Number("1"),
				"origin":          testOrigin,
				"index":           json.Number(strings.TrimSpace(string(mustJSON(t, r.Index)))),
				"kind":            r.Leaf.Kind.String(),
				"commitment":      r.Leaf.Commitment.String(),
				"timestamp":       json.Number(strings.TrimSpace(string(mustJSON(t, r.Leaf.Timestamp)))),
				"leaf_hash":       r.LeafHash.String(),
				"inclusion_proof": proof,
				"checkpoint":      string(r.Checkpoint),
			}
			if !r.Leaf.Link.IsZero() {
				wantValues["link"] = r.Leaf.Link.String()
			}
			if !reflect.DeepEqual(m, wantValues) {
				t.Fatalf("receipt JSON\n%v\nwant\n%v", m, wantValues)
			}
			if len(r.InclusionProof) == 0 || r.Leaf.Kind != notary.KindPrescription {
				t.Fatalf("fixture receipt has no proof or kind %v", r.Leaf.Kind)
			}
			back, err := notary.ParseReceipt(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, r) {
				t.Fatalf("parsed back %+v\nwant %+v", back, r)
			}
			again, err := json.Marshal(back)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("marshals back to\n%s\nnot\n%s (%v)", again, b, err)
			}
		})
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hexDigits returns n lowercase hex digits.
func hexDigits(n int) string { return strings.Repeat("ab", n/2) + strings.Repeat("c", n%2) }

// fieldCase is one way to spoil a valid JSON object, and a string the
// error must contain (a field name in quotes, usually).
type fieldCase struct {
	name string
	edit func(t testing.TB, valid []byte) []byte
	want string
}

// set returns an edit that sets (or with no value, removes) a member.
func set(key string, value ...any) func(testing.TB, []byte) []byte {
	return func(t testing.TB, valid []byte) []byte {
		t.Helper()
		m := jsonFields(t, valid)
		if len(value) == 0 {
			if _, ok := m[key]; !ok {
				t.Fatalf("no field %q to remove", key)
			}
			delete(m, key)
		} else {
			m[key] = value[0]
		}
		return encodeFields(t, m)
	}
}

// raw returns an edit that replaces the whole text.
func raw(f func(valid []byte) []byte) func(testing.TB, []byte) []byte {
	return func(_ testing.TB, valid []byte) []byte { return f(bytes.Clone(valid)) }
}

// twice returns an edit that repeats a member ahead of the others.
func twice(member string) func(testing.TB, []byte) []byte {
	return raw(func(valid []byte) []byte {
		return append([]byte("{"+member+","), valid[1:]...)
	})
}

func receiptCases() []fieldCase {
	var cases []fieldCase
	for _, field := range []string{"version", "origin", "index", "kind", "commitment", "timestamp", "leaf_hash", "inclusion_proof", "checkpoint"} {
		cases = append(cases,
			fieldCase{field + " missing", set(field), `"` + field + `"`},
			fieldCase{field + " null", set(field, nil), `"` + field + `"`},
			fieldCase{field + " an object", set(field, map[string]any{}), `"` + field + `"`},
			fieldCase{field + " true", set(field, true), `"` + field + `"`},
		)
	}
	manyHashes := make([]any, notary.MaxProofHashes+1)
	for i := range manyHashes {
		manyHashes[i] = hexDigits(64)
	}
	return append(cases, []fieldCase{
		{"link null", set("link", nil), `"link"`},
		{"link uppercase hex", set("link", strings.ToUpper(hexDigits(64))), `"link"`},
		{"link 63 hex digits", set("link", hexDigits(63)), `"link"`},
		{"unknown field", set("extra", "x"), `"extra"`},
		{"unknown field differing in case", set("Index", json.Number("0")), `"Index"`},
		{"index twice", twice(`"index":0`), `"index"`},
		{"checkpoint twice", twice(`"checkpoint":"x"`), `"checkpoint"`},
		{"link twice", raw(func(v []byte) []byte {
			return append([]byte(`{"link":"`+hexDigits(64)+`","link":"`+hexDigits(64)+`",`), v[1:]...)
		}), `"link"`},
		{"version 2", set("version", json.Number("2")), `"version"`},
		{"version 0", set("version", json.Number("0")), `"version"`},
		{"version 1.0", set("version", json.Number("1.0")), `"version"`},
		{"version as a string", set("version", "1"), `"version"`},
		{"origin empty", set("origin", ""), `"origin"`},
		{"origin with a space", set("origin", "notary test"), `"origin"`},
		{"commitment 63 hex digits", set("commitment", hexDigits(63)), `"commitment"`},
		{"commitment 65 hex digits", set("commitment", hexDigits(65)), `"commitment"`},
		{"commitment uppercase hex", set("commitment", strings.ToUpper(hexDigits(64))), `"commitment"`},
		{"commitment not hex", set("commitment", "g"+hexDigits(63)), `"commitment"`},
		{"commitment base64", set("commitment", base64.StdEncoding.EncodeToString(make([]byte, 32))), `"commitment"`},
		{"commitment a number", set("commitment", json.Number("12")), `"commitment"`},
		{"index negative", set("index", json.Number("-1")), `"index"`},
		{"index fractional", set("index", json.Number("1.5")), `"index"`},
		{"index with exponent", set("index", json.Number("1e2")), `"index"`},
		{"index a string", set("index", "3"), `"index"`},
		{"index over 2^64", set("index", json.Number("18446744073709551616")), `"index"`},
		{"kind unknown", set("kind", "unknown"), `"kind"`},
		{"kind capitalized", set("kind", "Prescription"), `"kind"`},
		{"kind a number", set("kind", json.Number("3")), `"kind"`},
		{"timestamp negative", set("timestamp", json.Number("-1")), `"timestamp"`},
		{"timestamp fractional", set("timestamp", json.Number("1.5")), `"timestamp"`},
		{"timestamp a string", set("timestamp", "1795262400000"), `"timestamp"`},
		{"timestamp over 2^63", set("timestamp", json.Number("9223372036854775808")), `"timestamp"`},
		{"timestamp minus zero", set("timestamp", json.Number("-0")), `"timestamp"`},
		{"index minus zero", set("index", json.Number("-0")), `"index"`},
		{"version 1.0", set("version", json.Number("1.0")), `"version"`},
		{"link all zeros", set("link", hexDigitsZero(64)), `"link"`},
		{"leaf_hash 62 hex digits", set("leaf_hash", hexDigits(62)), `"leaf_hash"`},
		{"leaf_hash 66 hex digits", set("leaf_hash", hexDigits(66)), `"leaf_hash"`},
		{"leaf_hash empty", set("leaf_hash", ""), `"leaf_hash"`},
		{"inclusion_proof a string", set("inclusion_proof", hexDigits(64)), `"inclusion_proof"`},
		{"inclusion_proof with a bad hash", set("inclusion_proof", []any{hexDigits(64), hexDigits(63)}), `"inclusion_proof"`},
		{"inclusion_proof with a number", set("inclusion_proof", []any{json.Number("1")}), `"inclusion_proof"`},
		{"inclusion_proof with a null", set("inclusion_proof", []any{nil}), `"inclusion_proof"`},
		{"inclusion_proof too long", set("inclusion_proof", manyHashes), `"inclusion_proof"`},
		{"checkpoint a number", set("checkpoint", json.Number("5")), `"checkpoint"`},
		{"checkpoint a list", set("checkpoint", []any{"a"}), `"checkpoint"`},
		{"checkpoint over MaxCheckpointSize", set("checkpoint", strings.Repeat("c", notary.MaxCheckpointSize+1)), `"checkpoint"`},
		{"trailing object", raw(func(v []byte) []byte { return append(v, "{}"...) }), "after its closing brace"},
		{"trailing word", raw(func(v []byte) []byte { return append(v, " x"...) }), "receipt"},
		{"trailing brace", raw(func(v []byte) []byte { return append(v, '}') }), "receipt"},
		{"not an object", raw(func([]byte) []byte { return []byte(`["receipt"]`) }), "JSON object"},
		{"a string", raw(func([]byte) []byte { return []byte(`"receipt"`) }), "JSON object"},
		{"null", raw(func([]byte) []byte { return []byte(`null`) }), "JSON object"},
		{"empty", raw(func([]byte) []byte { return nil }), "receipt"},
		{"truncated", raw(func(v []byte) []byte { return v[:len(v)/2] }), "receipt"},
		{"over MaxReceiptSize", raw(func(v []byte) []byte {
			pad := bytes.Repeat([]byte(" "), notary.MaxReceiptSize+1-len(v))
			return append([]byte("{"), append(pad, v[1:]...)...)
		}), "more than"},
	}...)
}

func TestParseReceiptRefuses(t *testing.T) {
	f := newFixture(t)
	valid, err := json.Marshal(f.doc.receipt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := notary.ParseReceipt(valid); err != nil {
		t.Fatal(err)
	}
	// Every edit works on a JSON re-encoding of the valid receipt, which parses.
	if _, err := notary.ParseReceipt(encodeFields(t, jsonFields(t, valid))); err != nil {
		t.Fatalf("re-encoded receipt: %v", err)
	}
	for _, tc := range receiptCases() {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.edit(t, valid)
			r, err := notary.ParseReceipt(b)
			if !errors.Is(err, notary.ErrMalformed) {
				t.Fatalf("ParseReceipt: %v (receipt %t), want ErrMalformed\n%s", err, r != nil, abbreviate(b))
			}
			if r != nil {
				t.Fatalf("ParseReceipt returned a receipt with its error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not name %s", err, tc.want)
			}
		})
	}
}

func TestParseBundleRefuses(t *testing.T) {
	f := newFixture(t)
	valid, err := json.Marshal(notary.Bundle{Document: f.doc.canonical, Salt: f.doc.salt, Receipt: *f.doc.receipt})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := notary.ParseBundle(valid); err != nil {
		t.Fatal(err)
	} else if _, err := notary.VerifyBundle(b, f.policy); err != nil {
		t.Fatal(err)
	}
	salt, _ := f.doc.salt.MarshalText()
	// editReceipt applies a receipt edit inside the bundle.
	editReceipt := func(edit func(testing.TB, []byte) []byte) func(testing.TB, []byte) []byte {
		return func(t testing.TB, valid []byte) []byte {
			t.Helper()
			var m map[string]json.RawMessage
			if err := json.Unmarshal(valid, &m); err != nil {
				t.Fatal(err)
			}
			m["receipt"] = edit(t, m["receipt"])
			return mustJSON(t, m)
		}
	}
	cases := []fieldCase{
		{"salt missing", set("salt"), `"salt"`},
		{"salt null", set("salt", nil), `"salt"`},
		{"salt not hex", set("salt", "salt"), `"salt"`},
		{"salt 63 hex digits", set("salt", hexDigits(63)), `"salt"`},
		{"salt uppercase hex", set("salt", strings.ToUpper(string(salt))), `"salt"`},
		{"salt a number", set("salt", json.Number("0")), `"salt"`},
		{"document and document_base64", set("document_base64", "e30="), `"document_base64"`},
		{"neither document", set("document"), `"document"`},
		{"document_base64 not base64", set("document_base64", "not base64!"), `"document_base64"`},
		{"document_base64 a number", set("document_base64", json.Number("1")), `"document_base64"`},
		{"version 2", set("version", json.Number("2")), `"version"`},
		{"version missing", set("version"), `"version"`},
		{"version a string", set("version", "1"), `"version"`},
		{"receipt missing", set("receipt"), `"receipt"`},
		{"receipt a string", set("receipt", "{}"), "receipt"},
		{"receipt null", set("receipt", nil), "receipt"},
		{"unknown field", set("signature", "x"), `"signature"`},
		{"salt twice", twice(`"salt":"` + string(salt) + `"`), `"salt"`},
		{"document twice", twice(`"document":{}`), `"document"`},
		{"trailing data", raw(func(v []byte) []byte { return append(v, "[]"...) }), "after its closing brace"},
		{"not an object", raw(func([]byte) []byte { return []byte(`[]`) }), "JSON object"},
		{"over MaxBundleSize", raw(func(v []byte) []byte {
			pad := bytes.Repeat([]byte("\n"), notary.MaxBundleSize+1-len(v))
			return append([]byte("{"), append(pad, v[1:]...)...)
		}), "more than"},
	}
	for _, rc := range receiptCases() {
		if strings.HasPrefix(rc.want, `"`) {
			cases = append(cases, fieldCase{"receipt " + rc.name, editReceipt(rc.edit), rc.want})
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.edit(t, valid)
			bundle, err := notary.ParseBundle(b)
			if !errors.Is(err, notary.ErrMalformed) {
				t.Fatalf("ParseBundle: %v (bundle %t), want ErrMalformed\n%s", err, bundle != nil, abbreviate(b))
			}
			if bundle != nil {
				t.Fatal("ParseBundle returned a bundle with its error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not name %s", err, tc.want)
			}
		})
	}
}

func TestBundleRoundTrip(t *testing.T) {
	k := newKeypair(t, "node-1")
	l := newMemLog(t)
	jsonDoc := []byte(`{"resourceType":"MedicationRequest","note":"<b>&</b> 💊"}`)
	canonical, err := notary.CanonicalJSON(jsonDoc)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		bundle notary.Bundle
		field  string
	}{
		{"raw document", notary.Bundle{Raw: []byte("%PDF-1.7\n\x00\xff\xfe binary\n")}, "document_base64"},
		{"one-byte raw document", notary.Bundle{Raw: []byte{0}}, "document_base64"},
		{"empty raw document", notary.Bundle{Raw: []byte{}}, "document_base64"},
		{"raw document that looks like JSON", notary.Bundle{Raw: []byte(`{"a": 1}`)}, "document_base64"},
		{"JSON document", notary.Bundle{Document: jsonDoc}, "document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.bundle
			doc, err := b.Canonical()
			if err != nil {
				t.Fatal(err)
			}
			b.Salt = notary.NewSalt()
			leaf := notary.Leaf{Kind: notary.KindDocument, Commitment: notary.Commit(b.Salt, doc), Timestamp: baseTime}
			idx, err := l.Append([]notary.Leaf{leaf}, nil)
			if err != nil {
				t.Fatal(err)
			}
			r, err := l.Receipt(idx[0], signHead(t, l, k))
			if err != nil {
				t.Fatal(err)
			}
			b.Receipt = *r
			text, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			m := jsonFields(t, text)
			other := map[string]string{"document": "document_base64", "document_base64": "document"}[tc.field]
			if _, ok := m[tc.field]; !ok {
				t.Fatalf("bundle JSON lacks %q:\n%s", tc.field, abbreviate(text))
			}
			if _, ok := m[other]; ok {
				t.Fatalf("bundle JSON has %q:\n%s", other, abbreviate(text))
			}
			back, err := notary.ParseBundle(text)
			if err != nil {
				t.Fatalf("ParseBundle: %v\n%s", err, abbreviate(text))
			}
			if tc.field == "document_base64" && !reflect.DeepEqual(*back, b) {
				t.Fatalf("parsed back %+v\nwant %+v", back, b)
			}
			if tc.field == "document" {
				got, err := back.Canonical()
				if err != nil || !bytes.Equal(got, canonical) || back.Raw != nil || back.Salt != b.Salt || !reflect.DeepEqual(back.Receipt, b.Receipt) {
					t.Fatalf("parsed back %+v (%v)", back, err)
				}
			}
			res, err := notary.VerifyBundle(back, policyOf(k))
			if err != nil {
				t.Fatalf("VerifyBundle: %v", err)
			}
			if res.Index != idx[0] || res.Leaf != leaf {
				t.Fatalf("result %+v", res)
			}
			// Another document does not verify.
			changed := *back
			if changed.Raw != nil {
				changed.Raw = append(bytes.Clone(changed.Raw), '\n')
			} else {
				changed.Document = []byte(`{"resourceType":"MedicationRequest","note":"<b>&</b> 💉"}`)
			}
			if _, err := notary.VerifyBundle(&changed, policyOf(k)); !errors.Is(err, notary.ErrCommitmentMismatch) {
				t.Fatalf("changed document: %v, want ErrCommitmentMismatch", err)
			}
		})
	}
}

func hexDigitsZero(n int) string { return strings.Repeat("0", n) }
