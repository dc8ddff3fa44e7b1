package notary

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Policy says which checkpoints a verifier accepts: signed by at least
// MinSignatures of the trusted Verifiers and, when Origin is set, from that
// log. A cluster's nodes each sign with their own key, so a policy of k of
// n node keys survives k-1 compromised or lost nodes.
//
// A policy may also demand cosignatures of witnesses (c2sp.org/tlog-witness),
// which vouch that the log showed them this checkpoint and no fork of it, and
// limit a node key to a range of log sizes, so that a retired key keeps
// verifying old receipts but cannot sign new checkpoints. [ParsePolicy] reads
// such a policy from a policy file (docs/FORMATS.md §9).
type Policy struct {
	// Verifiers are the trusted note verifier keys. Two keys may share a
	// name (a node's old and new key) only when Ranges keeps them apart.
	Verifiers []note.Verifier
	// MinSignatures is how many distinct trusted node names must sign, by a
	// key valid at the checkpoint's size; 0 means 1.
	MinSignatures int
	// Origin, when not empty, is the only log origin accepted.
	Origin string
	// Ranges, when not nil, holds one entry per Verifiers entry: the log
	// sizes at which that key's signature counts.
	Ranges []KeyRange

	// Witnesses are the trusted witnesses; empty means none is required.
	Witnesses []Witness
	// Groups are named sets of witnesses and groups with a threshold.
	Groups []WitnessGroup
	// Quorum names the witness or group whose requirement every checkpoint
	// must meet. Exactly one of Quorum and MinCosignatures is set when
	// Witnesses is not empty.
	Quorum string
	// MinCosignatures, when not 0, is how many distinct Witnesses must
	// have cosigned.
	MinCosignatures int
}

// KeyRange is the range of checkpoint sizes, From through Until included, at
// which a node key's signature counts.
type KeyRange struct {
	From  uint64
	Until uint64 // math.MaxUint64 for no end
}

// AllSizes is the range of a key valid at every log size.
var AllSizes = KeyRange{From: 0, Until: math.MaxUint64}

// Contains reports whether a checkpoint of size entries is in the range.
func (r KeyRange) Contains(size uint64) bool { return r.From <= size && size <= r.Until }

func (r KeyRange) overlaps(o KeyRange) bool { return r.From <= o.Until && o.From <= r.Until }

// Witness is a trusted witness: a name local to the policy and its
// cosignature/v1 verifier key.
type Witness struct {
	// Name identifies the witness in the policy's groups and quorum.
	Name string
	// Key is the verifier key text, "name+hash+base64" (algorithm 0x04).
	Key string
	// Verifier verifies its cosignatures (see [NewCosignatureVerifier]).
	Verifier note.Verifier
}

// WitnessGroup is met when at least Threshold of its Members are: a member
// names a witness (met when it cosigned) or a group defined before it.
type WitnessGroup struct {
	// Name identifies the group in later groups and the quorum.
	Name string
	// Threshold is how many members must be met, 1 to len(Members).
	Threshold int
	// Members name witnesses and groups defined before this group.
	Members []string
}

func (p *Policy) minSignatures() int { return max(p.MinSignatures, 1) }

// rangeOf returns the range of Verifiers[i].
func (p *Policy) rangeOf(i int) KeyRange {
	if p.Ranges == nil {
		return AllSizes
	}
	return p.Ranges[i]
}

// nodeNames returns how many distinct names the trusted node keys have.
func (p *Policy) nodeNames() int {
	names := make(map[string]bool, len(p.Verifiers))
	for _, v := range p.Verifiers {
		names[v.Name()] = true
	}
	return len(names)
}

// known returns every verifier of the policy, node keys and witnesses, for
// note.Open.
func (p *Policy) known() note.Verifiers {
	vs := slices.Clip(p.Verifiers)
	for _, w := range p.Witnesses {
		vs = append(vs, w.Verifier)
	}
	return note.VerifierList(vs...)
}

// Validate checks that the policy can be met.
func (p Policy) Validate() error {
	if len(p.Verifiers) == 0 {
		return errors.New("policy: no trusted verifier keys")
	}
	if p.Ranges != nil && len(p.Ranges) != len(p.Verifiers) {
		return fmt.Errorf("policy: %d key ranges for %d keys", len(p.Ranges), len(p.Verifiers))
	}
	type id struct {
		name string
		hash uint32
	}
	ids := make(map[id]bool, len(p.Verifiers)+len(p.Witnesses))
	for i, v := range p.Verifiers {
		if v == nil {
			return fmt.Errorf("policy: trusted key %d is nil", i)
		}
		r := p.rangeOf(i)
		if r.From > r.Until {
			return fmt.Errorf("policy: the key of %q is valid from size %d until %d", v.Name(), r.From, r.Until)
		}
		for j, u := range p.Verifiers[:i] {
			if u.Name() == v.Name() && (p.Ranges == nil || r.overlaps(p.rangeOf(j))) {
				return fmt.Errorf("policy: two trusted keys named %q", v.Name())
			}
		}
		if ids[id{v.Name(), v.KeyHash()}] {
			return fmt.Errorf("policy: two trusted keys named %q with key hash %08x", v.Name(), v.KeyHash())
		}
		ids[id{v.Name(), v.KeyHash()}] = true
	}
	if p.MinSignatures < 0 || p.MinSignatures > p.nodeNames() {
		return fmt.Errorf("policy: requires %d signatures but trusts %d keys", p.MinSignatures, p.nodeNames())
	}
	if p.Origin != "" {
		if err := ValidateOrigin(p.Origin); err != nil {
			return fmt.Errorf("policy: %w", err)
		}
	}
	return p.validateWitnesses(func(name string, hash uint32) bool {
		if ids[id{name, hash}] {
			return false
		}
		ids[id{name, hash}] = true
		return true
	})
}

func (p *Policy) validateWitnesses(newID func(string, uint32) bool) error {
	if len(p.Witnesses) == 0 {
		if len(p.Groups) > 0 || p.Quorum != "" || p.MinCosignatures != 0 {
			return errors.New("policy: a witness quorum but no witnesses")
		}
		return nil
	}
	defined := make(map[string]bool, len(p.Witnesses)+len(p.Groups))
	for _, w := range p.Witnesses {
		if w.Verifier == nil {
			return fmt.Errorf("policy: witness %q has no verifier", w.Name)
		}
		if !isPolicyName(w.Name) || defined[w.Name] {
			return fmt.Errorf("policy: witness name %q is not a name or is used twice", w.Name)
		}
		defined[w.Name] = true
		if !newID(w.Verifier.Name(), w.Verifier.KeyHash()) {
			return fmt.Errorf("policy: witness %q has the same key name and hash as another trusted key", w.Name)
		}
	}
	for _, g := range p.Groups {
		if !isPolicyName(g.Name) || defined[g.Name] {
			return fmt.Errorf("policy: group name %q is not a name or is used twice", g.Name)
		}
		seen := make(map[string]bool, len(g.Members))
		for _, m := range g.Members {
			if !defined[m] || seen[m] {
				return fmt.Errorf("policy: group %q: member %q is not defined before it or is listed twice", g.Name, m)
			}
			seen[m] = true
		}
		if g.Threshold < 1 || g.Threshold > len(g.Members) {
			return fmt.Errorf("policy: group %q needs %d of %d members", g.Name, g.Threshold, len(g.Members))
		}
		defined[g.Name] = true
	}
	switch {
	case p.Quorum != "" && p.MinCosignatures != 0:
		return errors.New("policy: both a named quorum and a number of cosignatures")
	case p.Quorum != "" && !defined[p.Quorum]:
		return fmt.Errorf("policy: quorum %q is not a witness or group", p.Quorum)
	case p.Quorum == "" && (p.MinCosignatures < 1 || p.MinCosignatures > len(p.Witnesses)):
		return fmt.Errorf("policy: requires %d cosignatures but trusts %d witnesses", p.MinCosignatures, len(p.Witnesses))
	}
	return nil
}

// ParseVerifierKeys reads note verifier keys ("name+hash+base64"), one per
// line; blank lines and lines starting with # are ignored.
func ParseVerifierKeys(text []byte) ([]note.Verifier, error) {
	var vs []note.Verifier
	sc := bufio.NewScanner(bytes.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "PRIVATE+KEY+") {
			return nil, fmt.Errorf("line %d is a private signer key; give the verifier (.pub) key instead, and keep the private one secret", n)
		}
		v, err := note.NewVerifier(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: not a verifier key: %w", n, err)
		}
		vs = append(vs, v)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, errors.New("no verifier keys found")
	}
	return vs, nil
}

// NewSigner parses a signer key, as GenerateKey makes it, and returns the
// signer and its verifier key.
func NewSigner(signerKey string) (note.Signer, string, error) {
	signerKey = strings.TrimSpace(signerKey)
	s, err := note.NewSigner(signerKey)
	if err != nil {
		return nil, "", fmt.Errorf("not a signer key: %w", err)
	}
	// PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>; base64 may hold '+'.
	parts := strings.SplitN(signerKey, "+", 5)
	raw, err := base64.StdEncoding.DecodeString(parts[len(parts)-1])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, "", errors.New("not an Ed25519 signer key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return nil, "", err
	}
	return s, vkey, nil
}

// GenerateKey returns a new Ed25519 signer key and its verifier key, both
// in note key format, for a signer called name.
func GenerateKey(name string) (signer, verifier string, err error) {
	return note.GenerateKey(rand.Reader, name)
}
