package session

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
)

// Fingerprint is the SHA-256 of a DTLS certificate: the identity of one
// side of a peer connection.
type Fingerprint [sha256.Size]byte

// FingerprintOf returns the fingerprint of a DER certificate.
func FingerprintOf(der []byte) Fingerprint { return sha256.Sum256(der) }

// String returns the fingerprint as SDP writes it: "sha-256 AB:CD:...".
func (f Fingerprint) String() string {
	var b strings.Builder
	b.Grow(8 + 3*len(f))
	b.WriteString("sha-256 ")
	for i, c := range f {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strings.ToUpper(hex.EncodeToString([]byte{c})))
	}
	return b.String()
}

// MarshalText writes the fingerprint as String does.
func (f Fingerprint) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText parses what MarshalText writes.
func (f *Fingerprint) UnmarshalText(text []byte) error {
	v, err := ParseFingerprint(string(text))
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// ParseFingerprint parses "sha-256 AB:CD:..." (the value of an SDP
// a=fingerprint attribute; hex digits of either case).
func ParseFingerprint(s string) (Fingerprint, error) {
	var f Fingerprint
	alg, value, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok {
		return f, fmt.Errorf("%.80q is not \"sha-256\" followed by the hash", s)
	}
	if !strings.EqualFold(alg, "sha-256") {
		return f, fmt.Errorf("hash function %.20q is not sha-256", alg)
	}
	value = strings.TrimSpace(value)
	parts := strings.Split(value, ":")
	if len(parts) != len(f) {
		return f, fmt.Errorf("sha-256 fingerprint has %d bytes, not %d", len(parts), len(f))
	}
	for i, p := range parts {
		if len(p) != 2 {
			return f, fmt.Errorf("fingerprint byte %d (%.8q) is not two hex digits", i+1, p)
		}
		if _, err := hex.Decode(f[i:i+1], []byte(p)); err != nil {
			return f, fmt.Errorf("fingerprint byte %d (%.8q) is not two hex digits", i+1, p)
		}
	}
	return f, nil
}

// CheckSDP parses an offer or answer with pion's SDP parser and returns its
// DTLS fingerprint. The SDP must be at most MaxSDPSize bytes, have at least
// one media section, and carry sha-256 fingerprints (at session level or on
// each media section) that all agree; fingerprints of other hash functions
// are ignored.
func CheckSDP(text string) (Fingerprint, error) {
	var none Fingerprint
	if len(text) > MaxSDPSize {
		return none, fmt.Errorf("sdp is %d bytes, more than %d", len(text), MaxSDPSize)
	}
	var desc sdp.SessionDescription
	if err := desc.UnmarshalString(text); err != nil {
		return none, fmt.Errorf("sdp does not parse: %w", err)
	}
	if len(desc.MediaDescriptions) == 0 {
		return none, fmt.Errorf("sdp has no media section (m=)")
	}
	var found Fingerprint
	seen := false
	check := func(attrs []sdp.Attribute, where string) (bool, error) {
		any := false
		for _, a := range attrs {
			if a.Key != "fingerprint" {
				continue
			}
			alg, _, _ := strings.Cut(a.Value, " ")
			if !strings.EqualFold(alg, "sha-256") {
				continue
			}
			f, err := ParseFingerprint(a.Value)
			if err != nil {
				return false, fmt.Errorf("%s: a=fingerprint: %w", where, err)
			}
			if seen && f != found {
				return false, fmt.Errorf("%s: a=fingerprint differs from an earlier one", where)
			}
			found, seen, any = f, true, true
		}
		return any, nil
	}
	sessionLevel, err := check(desc.Attributes, "session")
	if err != nil {
		return none, err
	}
	for i, m := range desc.MediaDescriptions {
		has, err := check(m.Attributes, fmt.Sprintf("media section %d (%s)", i+1, m.MediaName.Media))
		if err != nil {
			return none, err
		}
		if !has && !sessionLevel {
			return none, fmt.Errorf("media section %d (%s) has no sha-256 a=fingerprint", i+1, m.MediaName.Media)
		}
	}
	return found, nil
}
