package signalapi

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Fingerprint is the SHA-256 of a DTLS certificate: the identity of one
// side of a peer connection. Its text form is SDP's a=fingerprint value,
// "sha-256 AB:CD:...".
type Fingerprint [sha256.Size]byte

// FingerprintOf returns the fingerprint of a DER certificate.
func FingerprintOf(der []byte) Fingerprint { return sha256.Sum256(der) }

// String returns the fingerprint as SDP writes it: "sha-256 AB:CD:...".
func (f Fingerprint) String() string {
	const digits = "0123456789ABCDEF"
	b := make([]byte, 0, len("sha-256 ")+3*len(f))
	b = append(b, "sha-256 "...)
	for i, c := range f {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, digits[c>>4], digits[c&0xf])
	}
	return string(b)
}

// MarshalText writes the fingerprint as String does.
func (f Fingerprint) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText parses what MarshalText writes (see ParseFingerprint).
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
	parts := strings.Split(strings.TrimSpace(value), ":")
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
