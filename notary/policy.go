package notary

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Policy says which checkpoints a verifier accepts: signed by at least
// MinSignatures of the trusted Verifiers and, when Origin is set, from that
// log. A cluster's nodes each sign with their own key, so a policy of k of
// n node keys survives k-1 compromised or lost nodes.
type Policy struct {
	// Verifiers are the trusted note verifier keys, at most one per name.
	Verifiers []note.Verifier
	// MinSignatures is how many distinct trusted keys must sign; 0 means 1.
	MinSignatures int
	// Origin, when not empty, is the only log origin accepted.
	Origin string
}

func (p *Policy) minSignatures() int { return max(p.MinSignatures, 1) }

// Validate checks that the policy can be met.
func (p Policy) Validate() error {
	if len(p.Verifiers) == 0 {
		return errors.New("policy: no trusted verifier keys")
	}
	names := make(map[string]bool, len(p.Verifiers))
	for _, v := range p.Verifiers {
		if names[v.Name()] {
			return fmt.Errorf("policy: two trusted keys named %q", v.Name())
		}
		names[v.Name()] = true
	}
	if p.MinSignatures < 0 || p.MinSignatures > len(p.Verifiers) {
		return fmt.Errorf("policy: requires %d signatures but trusts %d keys", p.MinSignatures, len(p.Verifiers))
	}
	if p.Origin != "" {
		if err := ValidateOrigin(p.Origin); err != nil {
			return fmt.Errorf("policy: %w", err)
		}
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
