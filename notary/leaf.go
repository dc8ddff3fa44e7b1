package notary

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// Kind says what a commitment commits to.
type Kind uint8

// The kinds of record a leaf can commit to. Their numbers are part of the
// leaf encoding and never change.
const (
	KindSessionStart Kind = 1 // a consultation's record when both parties joined
	KindSessionEnd   Kind = 2 // the record when it ended, linked to the start
	KindPrescription Kind = 3 // a FHIR MedicationRequest issued in a session
	KindConsent      Kind = 4 // a consent event
	KindDocument     Kind = 5 // any other document
	// KindAllowance says how many times a prescription may be dispensed and
	// locks its dispenses (see Allowance); the cluster logs it with the
	// prescription it links to.
	KindAllowance Kind = 6
	// KindDispense is a pharmacy's dispense of a prescription, linked to it;
	// its commitment is the pharmacy's MedicationDispense.
	KindDispense Kind = 7
	// KindRevocation revokes the prescription it links to (see
	// RevocationCommitment).
	KindRevocation Kind = 8
)

// lastKind is the highest defined kind.
const lastKind = KindRevocation

var kindNames = [...]string{
	KindSessionStart: "session-start",
	KindSessionEnd:   "session-end",
	KindPrescription: "prescription",
	KindConsent:      "consent",
	KindDocument:     "document",
	KindAllowance:    "allowance",
	KindDispense:     "dispense",
	KindRevocation:   "revocation",
}

// Valid reports whether k is one of the defined kinds.
func (k Kind) Valid() bool { return k >= KindSessionStart && k <= lastKind }

// String returns the kind's name as used in receipts, such as "prescription".
func (k Kind) String() string {
	if !k.Valid() {
		return fmt.Sprintf("kind(%d)", uint8(k))
	}
	return kindNames[k]
}

// ParseKind returns the kind with the given name.
func ParseKind(s string) (Kind, error) {
	for k := KindSessionStart; k <= lastKind; k++ {
		if kindNames[k] == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown kind %q (want session-start, session-end, prescription, consent, document, allowance, dispense or revocation)", s)
}

// MarshalText encodes the kind by name.
func (k Kind) MarshalText() ([]byte, error) {
	if !k.Valid() {
		return nil, fmt.Errorf("invalid kind %d", uint8(k))
	}
	return []byte(kindNames[k]), nil
}

// UnmarshalText decodes a kind name.
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	*k = v
	return err
}

// LeafVersion is the version byte that starts every leaf encoding.
const LeafVersion = 1

// LeafSize is the length of an encoded version-1 leaf.
const LeafSize = 1 + 1 + HashSize + HashSize + 8

// Leaf is one entry of the log. It holds no personal data: only a
// commitment, the commitment of a related earlier record, and when it was
// logged.
type Leaf struct {
	Kind       Kind
	Commitment Commitment
	// Link is the commitment of an earlier related record, such as the
	// session-start record a prescription was issued in; zero when none.
	Link Commitment
	// Timestamp is when the log sequenced the leaf, in milliseconds since the
	// Unix epoch (UTC). It is never negative.
	Timestamp int64
}

// Time returns the leaf's timestamp as a UTC time.
func (l Leaf) Time() time.Time { return time.UnixMilli(l.Timestamp).UTC() }

// Validate checks the fields a leaf encoding cannot represent.
func (l Leaf) Validate() error {
	if !l.Kind.Valid() {
		return fmt.Errorf("leaf kind %d is not defined", uint8(l.Kind))
	}
	if l.Timestamp < 0 {
		return fmt.Errorf("leaf timestamp %d is before 1970", l.Timestamp)
	}
	return nil
}

// AppendBinary appends the version-1 encoding of the leaf:
//
//	version (1) || kind (1) || commitment (32) || link (32) || timestamp (8, big-endian ms)
func (l Leaf) AppendBinary(b []byte) ([]byte, error) {
	if err := l.Validate(); err != nil {
		return b, err
	}
	return l.appendUnchecked(b), nil
}

func (l Leaf) appendUnchecked(b []byte) []byte {
	b = append(b, LeafVersion, byte(l.Kind))
	b = append(b, l.Commitment[:]...)
	b = append(b, l.Link[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(l.Timestamp))
}

// MarshalBinary returns the version-1 encoding of the leaf.
func (l Leaf) MarshalBinary() ([]byte, error) { return l.AppendBinary(make([]byte, 0, LeafSize)) }

// UnmarshalBinary decodes a version-1 leaf, refusing any other length,
// version, kind or an out-of-range timestamp.
func (l *Leaf) UnmarshalBinary(b []byte) error {
	if len(b) != LeafSize {
		return fmt.Errorf("%w: leaf is %d bytes, want %d", ErrMalformed, len(b), LeafSize)
	}
	if b[0] != LeafVersion {
		return fmt.Errorf("%w: leaf version %d, want %d", ErrMalformed, b[0], LeafVersion)
	}
	k := Kind(b[1])
	if !k.Valid() {
		return fmt.Errorf("%w: leaf kind %d is not defined", ErrMalformed, b[1])
	}
	ts := binary.BigEndian.Uint64(b[2+2*HashSize:])
	if ts > math.MaxInt64 {
		return fmt.Errorf("%w: leaf timestamp %d out of range", ErrMalformed, ts)
	}
	l.Kind = k
	copy(l.Commitment[:], b[2:])
	copy(l.Link[:], b[2+HashSize:])
	l.Timestamp = int64(ts)
	return nil
}

// Hash returns the RFC 6962 leaf hash SHA-256(0x00 || encoding). It panics
// on a leaf that fails [Leaf.Validate]; the log never holds one.
func (l Leaf) Hash() Hash {
	if err := l.Validate(); err != nil {
		panic("notary: hash of invalid leaf: " + err.Error())
	}
	var buf [1 + LeafSize]byte
	l.appendUnchecked(buf[:1])
	return sha256.Sum256(buf[:])
}
