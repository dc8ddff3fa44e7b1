package notary

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// HashSize is the size in bytes of every hash, salt and commitment here.
const HashSize = 32

// MaxDocumentSize bounds the canonical bytes of a committed document. FHIR
// resources a telehealth app sends are a few kilobytes.
const MaxDocumentSize = 1 << 20

// commitDomain separates commitments from every other use of SHA-256.
const commitDomain = "telenotary/commit/v1"

// Hash is a SHA-256 value: a leaf hash, a Merkle node or a root.
// Its text form is 64 lowercase hex digits.
type Hash [HashSize]byte

// String returns the hash in lowercase hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText encodes the hash in lowercase hex.
func (h Hash) MarshalText() ([]byte, error) { return hexText(h[:]), nil }

// UnmarshalText decodes 64 lowercase hex digits.
func (h *Hash) UnmarshalText(b []byte) error { return parseHex(h[:], b) }

// Commitment is SHA-256("telenotary/commit/v1" || 0x00 || salt || canonical
// document). It reveals nothing about the document without the salt. Its text
// form is 64 lowercase hex digits.
type Commitment [HashSize]byte

// String returns the commitment in lowercase hex.
func (c Commitment) String() string { return hex.EncodeToString(c[:]) }

// IsZero reports whether c is all zeros, which a [Leaf] link uses for "none".
func (c Commitment) IsZero() bool { return c == Commitment{} }

// MarshalText encodes the commitment in lowercase hex.
func (c Commitment) MarshalText() ([]byte, error) { return hexText(c[:]), nil }

// UnmarshalText decodes 64 lowercase hex digits.
func (c *Commitment) UnmarshalText(b []byte) error { return parseHex(c[:], b) }

// ParseCommitment decodes a commitment from 64 lowercase hex digits.
func ParseCommitment(s string) (Commitment, error) {
	var c Commitment
	return c, c.UnmarshalText([]byte(s))
}

// Salt is the secret random value mixed into a commitment. Whoever holds the
// document and its salt can prove the commitment; erasing the salt erases the
// link between the log and the document. A salt never appears in logs: its
// slog value is redacted.
type Salt [HashSize]byte

// NewSalt draws a fresh salt from crypto/rand.
func NewSalt() Salt {
	var s Salt
	rand.Read(s[:]) // never fails: crypto/rand aborts the program instead
	return s
}

// MarshalText encodes the salt in lowercase hex.
func (s Salt) MarshalText() ([]byte, error) { return hexText(s[:]), nil }

// UnmarshalText decodes 64 lowercase hex digits.
func (s *Salt) UnmarshalText(b []byte) error { return parseHex(s[:], b) }

// LogValue keeps salts out of logs.
func (Salt) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// ParseSalt decodes a salt from 64 lowercase hex digits.
func ParseSalt(s string) (Salt, error) {
	var salt Salt
	return salt, salt.UnmarshalText([]byte(s))
}

// Commit computes the commitment to canonical document bytes under salt.
func Commit(salt Salt, canonical []byte) Commitment {
	h := sha256.New()
	h.Write([]byte(commitDomain))
	h.Write([]byte{0})
	h.Write(salt[:])
	h.Write(canonical)
	var c Commitment
	h.Sum(c[:0])
	return c
}

// CanonicalJSON returns the RFC 8785 (JCS) canonical form of a JSON
// document: the bytes a JSON document is committed as. Two serializations of
// the same JSON value (key order, whitespace, number spelling, string
// escapes) give the same bytes. Documents over [MaxDocumentSize], invalid
// JSON or UTF-8, and objects with duplicate keys are refused.
func CanonicalJSON(doc []byte) ([]byte, error) {
	if len(doc) > MaxDocumentSize {
		return nil, fmt.Errorf("%w: document is %d bytes, more than the %d allowed", ErrMalformed, len(doc), MaxDocumentSize)
	}
	// json.Valid bounds the nesting depth before jcs, which recurses, sees it.
	if !json.Valid(doc) {
		return nil, fmt.Errorf("%w: document is not valid JSON", ErrMalformed)
	}
	if !utf8.Valid(doc) {
		return nil, fmt.Errorf("%w: document is not valid UTF-8", ErrMalformed)
	}
	out, err := jcs.Transform(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: document cannot be canonicalized: %w", ErrMalformed, err)
	}
	if len(out) > MaxDocumentSize {
		return nil, fmt.Errorf("%w: canonical document is %d bytes, more than the %d allowed", ErrMalformed, len(out), MaxDocumentSize)
	}
	return out, nil
}

func hexText(b []byte) []byte {
	out := make([]byte, hex.EncodedLen(len(b)))
	hex.Encode(out, b)
	return out
}

// parseHex decodes exactly len(dst) bytes from lowercase hex. One spelling
// per value keeps receipts canonical.
func parseHex(dst, src []byte) error {
	if len(src) != 2*len(dst) {
		return fmt.Errorf("want %d lowercase hex digits, got %d characters", 2*len(dst), len(src))
	}
	for i, c := range src {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("character %d is %q, not a lowercase hex digit", i, c)
		}
	}
	_, err := hex.Decode(dst, src)
	return err
}
