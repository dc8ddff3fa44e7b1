package notary

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// A prescription's life after it is issued (docs/FORMATS.md, "Dispensing
// and revocation"): when a prescription is notarized with an allowance,
// the cluster logs a companion leaf of kind allowance, linked to it, that
// holds the number of fills allowed and a lock, the end of a hash chain
// seeded from the bundle's salt. Fill k of n is accepted only with the
// chain value k steps before the lock, so only a holder of the bundle can
// dispense, each fill's proof is spent by its use, and no value seen in
// the cluster's raft log lets anyone make the next fill. A revocation
// proves the salt the same way, with the chain's seed.

// MaxFills bounds the fills one prescription may allow.
const MaxFills = 100

// ChainSize is the length of a dispense chain value.
const ChainSize = 30

// ChainValue is one link of a prescription's dispense chain.
type ChainValue [ChainSize]byte

// String returns the value in hex.
func (v ChainValue) String() string { return hex.EncodeToString(v[:]) }

// MarshalText encodes the value in lowercase hex.
func (v ChainValue) MarshalText() ([]byte, error) { return hexText(v[:]), nil }

// UnmarshalText decodes a hex value of ChainSize bytes.
func (v *ChainValue) UnmarshalText(b []byte) error { return parseHex(v[:], b) }

// Domain separators of the dispense chain and of revocations.
const (
	dispenseSeedDomain = "telenotary dispense seed v1"
	chainDomain        = "telenotary dispense chain v1"
	revocationDomain   = "telenotary revocation v1"
)

// DispenseSeed is the first value of the dispense chain of the
// prescription with commitment c: HMAC-SHA-256 keyed with its salt over a
// domain and c, cut to ChainSize bytes. Only a holder of the salt can
// compute it.
func DispenseSeed(salt Salt, c Commitment) ChainValue {
	m := hmac.New(sha256.New, salt[:])
	m.Write([]byte(dispenseSeedDomain))
	m.Write([]byte{0})
	m.Write(c[:])
	var v ChainValue
	copy(v[:], m.Sum(nil))
	return v
}

// ChainStep is one step of the chain: SHA-256 over a domain and v, cut to
// ChainSize bytes.
func ChainStep(v ChainValue) ChainValue {
	h := sha256.New()
	h.Write([]byte(chainDomain))
	h.Write([]byte{0})
	h.Write(v[:])
	var out ChainValue
	copy(out[:], h.Sum(nil))
	return out
}

// chainSteps applies ChainStep n times.
func chainSteps(v ChainValue, n int) ChainValue {
	for range n {
		v = ChainStep(v)
	}
	return v
}

// Allowance is what a prescription's allowance leaf holds: the number of
// fills allowed and the lock, the chain value Fills steps after the seed.
type Allowance struct {
	Fills int        `json:"fills"`
	Lock  ChainValue `json:"lock"`
}

// NewAllowance returns the allowance of fills dispenses for the
// prescription with commitment c and salt.
func NewAllowance(salt Salt, c Commitment, fills int) (Allowance, error) {
	if fills < 1 || fills > MaxFills {
		return Allowance{}, fmt.Errorf("%w: %d fills; a prescription allows 1 to %d", ErrMalformed, fills, MaxFills)
	}
	return Allowance{Fills: fills, Lock: chainSteps(DispenseSeed(salt, c), fills)}, nil
}

// Commitment encodes the allowance in the commitment field of its leaf:
// fills (2 bytes, big-endian) followed by the lock.
func (a Allowance) Commitment() Commitment {
	var c Commitment
	binary.BigEndian.PutUint16(c[:], uint16(a.Fills))
	copy(c[2:], a.Lock[:])
	return c
}

// ParseAllowance decodes the commitment field of an allowance leaf.
func ParseAllowance(c Commitment) (Allowance, error) {
	a := Allowance{Fills: int(binary.BigEndian.Uint16(c[:]))}
	if a.Fills < 1 || a.Fills > MaxFills {
		return Allowance{}, fmt.Errorf("%w: allowance of %d fills; 1 to %d are allowed", ErrMalformed, a.Fills, MaxFills)
	}
	copy(a.Lock[:], c[2:])
	return a, nil
}

// DispenseProof is the proof for fill k (from 1) of the prescription with
// commitment c and salt under allowance a: the chain value k steps before
// the lock.
func DispenseProof(salt Salt, c Commitment, a Allowance, k int) (ChainValue, error) {
	if k < 1 || k > a.Fills {
		return ChainValue{}, fmt.Errorf("fill %d of %d does not exist", k, a.Fills)
	}
	return chainSteps(DispenseSeed(salt, c), a.Fills-k), nil
}

// CheckDispense reports whether proof opens fill k of a: k steps of the
// chain lead from it to the lock.
func (a Allowance) CheckDispense(k int, proof ChainValue) bool {
	if k < 1 || k > a.Fills {
		return false
	}
	v := chainSteps(proof, k)
	return hmac.Equal(v[:], a.Lock[:])
}

// CheckRevocation reports whether seed is the chain's seed: a revocation's
// proof of holding the salt.
func (a Allowance) CheckRevocation(seed ChainValue) bool {
	v := chainSteps(seed, a.Fills)
	return hmac.Equal(v[:], a.Lock[:])
}

// RevocationCommitment is the commitment of the revocation leaf of the
// prescription with commitment c: SHA-256 over a domain and c. It holds
// nothing but the fact of the revocation, and a prescription has at most
// one.
func RevocationCommitment(c Commitment) Commitment {
	h := sha256.New()
	h.Write([]byte(revocationDomain))
	h.Write([]byte{0})
	h.Write(c[:])
	var out Commitment
	h.Sum(out[:0])
	return out
}
