package notary_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/telenotary/telenotary/notary"
)

var allKinds = []struct {
	kind notary.Kind
	name string
}{
	{notary.KindSessionStart, "session-start"},
	{notary.KindSessionEnd, "session-end"},
	{notary.KindPrescription, "prescription"},
	{notary.KindConsent, "consent"},
	{notary.KindDocument, "document"},
	{notary.KindAllowance, "allowance"},
	{notary.KindDispense, "dispense"},
	{notary.KindRevocation, "revocation"},
}

// sequence returns n bytes counting up from start.
func sequence(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func TestLeafRoundTrip(t *testing.T) {
	var c, link notary.Commitment
	copy(c[:], sequence(1, notary.HashSize))
	copy(link[:], sequence(0x80, notary.HashSize))
	for _, k := range allKinds {
		for _, tc := range []struct {
			name string
			leaf notary.Leaf
		}{
			{"zero", notary.Leaf{Kind: k.kind}},
			{"no link", notary.Leaf{Kind: k.kind, Commitment: c, Timestamp: baseTime}},
			{"linked", notary.Leaf{Kind: k.kind, Commitment: c, Link: link, Timestamp: baseTime}},
			{"largest timestamp", notary.Leaf{Kind: k.kind, Commitment: link, Link: c, Timestamp: math.MaxInt64}},
		} {
			t.Run(k.name+"/"+tc.name, func(t *testing.T) {
				b, err := tc.leaf.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				if len(b) != notary.LeafSize || notary.LeafSize != 74 {
					t.Fatalf("encoding is %d bytes, LeafSize %d, want 74", len(b), notary.LeafSize)
				}
				if b[0] != notary.LeafVersion || b[1] != byte(k.kind) {
					t.Fatalf("encoding starts % x", b[:2])
				}
				var back notary.Leaf
				if err := back.UnmarshalBinary(b); err != nil {
					t.Fatal(err)
				}
				if back != tc.leaf {
					t.Fatalf("round trip: %+v, want %+v", back, tc.leaf)
				}
				appended, err := tc.leaf.AppendBinary([]byte("prefix"))
				if err != nil || !bytes.Equal(appended, append([]byte("prefix"), b...)) {
					t.Fatalf("AppendBinary = %x, %v", appended, err)
				}
				want := sha256.Sum256(append([]byte{0x00}, b...))
				if h := tc.leaf.Hash(); h != notary.Hash(want) {
					t.Fatalf("Hash = %s, want SHA-256(0x00 || encoding) = %x", h, want)
				}
			})
		}
	}
}

// TestLeafVector checks one encoding byte by byte against the layout
// version (1) || kind (1) || commitment (32) || link (32) || timestamp (8, big-endian ms).
func TestLeafVector(t *testing.T) {
	var c, link notary.Commitment
	copy(c[:], sequence(0x01, 32))
	copy(link[:], sequence(0xa0, 32))
	leaf := notary.Leaf{Kind: notary.KindConsent, Commitment: c, Link: link, Timestamp: baseTime}
	got, err := leaf.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x01, 0x04}
	want = append(want, sequence(0x01, 32)...)
	want = append(want, sequence(0xa0, 32)...)
	want = append(want, 0x00, 0x00, 0x01, 0xa1, 0xfd, 0xfa, 0x46, 0x00) // 1795262400000
	if len(got) != len(want) {
		t.Fatalf("encoding is %d bytes, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("byte %d is %#02x, want %#02x", i, got[i], want[i])
		}
	}
	h := leaf.Hash()
	wantHash := sha256.Sum256(append([]byte{0}, want...))
	if h != notary.Hash(wantHash) {
		t.Fatalf("Hash = %s, want %x", h, wantHash)
	}
	if tm := leaf.Time(); tm.Format("2006-01-02T15:04:05.000Z07:00") != "2026-11-21T12:00:00.000Z" {
		t.Fatalf("Time = %s", tm)
	}
}

func TestLeafRefusesToEncode(t *testing.T) {
	for _, tc := range []struct {
		name string
		leaf notary.Leaf
	}{
		{"kind 0", notary.Leaf{Kind: 0, Timestamp: baseTime}},
		{"kind 9", notary.Leaf{Kind: 9, Timestamp: baseTime}},
		{"kind 255", notary.Leaf{Kind: 255, Timestamp: baseTime}},
		{"negative timestamp", notary.Leaf{Kind: notary.KindDocument, Timestamp: -1}},
		{"smallest timestamp", notary.Leaf{Kind: notary.KindDocument, Timestamp: math.MinInt64}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.leaf.Validate(); err == nil {
				t.Fatal("Validate accepts it")
			}
			if b, err := tc.leaf.MarshalBinary(); err == nil {
				t.Fatalf("MarshalBinary = %x", b)
			}
			defer func() {
				if recover() == nil {
					t.Fatal("Hash does not panic")
				}
			}()
			tc.leaf.Hash()
		})
	}
}

func TestLeafUnmarshalRefuses(t *testing.T) {
	valid, err := notary.Leaf{Kind: notary.KindPrescription, Commitment: notary.Commitment{1}, Timestamp: baseTime}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	with := func(i int, v ...byte) []byte {
		b := bytes.Clone(valid)
		copy(b[i:], v)
		return b
	}
	const ts = 2 + 2*notary.HashSize // offset of the timestamp
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"one byte", []byte{notary.LeafVersion}},
		{"one byte short", valid[:notary.LeafSize-1]},
		{"one byte long", append(bytes.Clone(valid), 0)},
		{"twice", append(bytes.Clone(valid), valid...)},
		{"version 0", with(0, 0)},
		{"version 2", with(0, 2)},
		{"version 255", with(0, 255)},
		{"kind 0", with(1, 0)},
		{"kind 9", with(1, 9)},
		{"kind 255", with(1, 255)},
		{"timestamp 2^63", with(ts, 0x80, 0, 0, 0, 0, 0, 0, 0)},
		{"timestamp 2^64-1", with(ts, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l notary.Leaf
			err := l.UnmarshalBinary(tc.b)
			if !errors.Is(err, notary.ErrMalformed) {
				t.Fatalf("UnmarshalBinary(%x): %v, want ErrMalformed", tc.b, err)
			}
		})
	}
	// The largest timestamp still decodes.
	var l notary.Leaf
	if err := l.UnmarshalBinary(with(ts, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)); err != nil || l.Timestamp != math.MaxInt64 {
		t.Fatalf("timestamp 2^63-1: %v, %d", err, l.Timestamp)
	}
}

func TestKindNames(t *testing.T) {
	for _, tc := range allKinds {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.kind.Valid() || tc.kind.String() != tc.name {
				t.Fatalf("String = %q, Valid = %v", tc.kind.String(), tc.kind.Valid())
			}
			k, err := notary.ParseKind(tc.name)
			if err != nil || k != tc.kind {
				t.Fatalf("ParseKind = %v, %v", k, err)
			}
			text, err := tc.kind.MarshalText()
			if err != nil || string(text) != tc.name {
				t.Fatalf("MarshalText = %q, %v", text, err)
			}
			var back notary.Kind
			if err := back.UnmarshalText(text); err != nil || back != tc.kind {
				t.Fatalf("UnmarshalText = %v, %v", back, err)
			}
			j, err := json.Marshal(tc.kind)
			if err != nil || string(j) != `"`+tc.name+`"` {
				t.Fatalf("json.Marshal = %s, %v", j, err)
			}
		})
	}
	for _, name := range []string{"", "unknown", "Prescription", "PRESCRIPTION", " prescription", "prescription ", "session_start", "sessionstart", "3", "kind(3)", "kind(0)"} {
		t.Run("unknown "+name, func(t *testing.T) {
			if k, err := notary.ParseKind(name); err == nil {
				t.Fatalf("ParseKind(%q) = %v", name, k)
			}
			var k notary.Kind
			if err := k.UnmarshalText([]byte(name)); err == nil || k.Valid() {
				t.Fatalf("UnmarshalText(%q) = %v, %v", name, k, err)
			}
		})
	}
	for _, k := range []notary.Kind{0, 9, 255} {
		if k.Valid() {
			t.Errorf("kind %d is valid", k)
		}
		if text, err := k.MarshalText(); err == nil {
			t.Errorf("MarshalText of kind %d = %q", k, text)
		}
		if s := k.String(); s == "" || s == "prescription" {
			t.Errorf("String of kind %d = %q", k, s)
		}
	}
}
