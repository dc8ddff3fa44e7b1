package witness

import (
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/torchwood"
)

// cosignatureV1 is the signed-note algorithm byte of a cosignature/v1 key
// (c2sp.org/tlog-cosignature).
const cosignatureV1 = 0x04

// NewVerifier parses a witness's cosignature/v1 verifier key
// ("<name>+<key hash>+<base64 of 0x04 and the Ed25519 public key>", as
// telenotary witness --print-key and litewitness print it) into torchwood's
// cosignature verifier. The key hash must be the one the name and key give.
func NewVerifier(vkey string) (*torchwood.CosignatureVerifier, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 || parts[0] == "" || len(parts[1]) != 8 {
		return nil, errors.New("not a verifier key (<name>+<key hash>+<key>)")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(parts[2])
	if err != nil || len(raw) == 0 {
		return nil, errors.New("the key is not base64")
	}
	if raw[0] != cosignatureV1 {
		if raw[0] == 0x01 {
			return nil, errors.New("an Ed25519 note key, not a cosignature/v1 key (a witness prints its key with --print-key)")
		}
		return nil, fmt.Errorf("key algorithm %#02x is not cosignature/v1 (0x04)", raw[0])
	}
	if len(raw) != 1+ed25519.PublicKeySize {
		return nil, fmt.Errorf("the key is %d bytes, want %d", len(raw)-1, ed25519.PublicKeySize)
	}
	// torchwood builds its verifier from a signer's public half; this one
	// holds the public key only and cannot sign.
	s, err := torchwood.NewCosignatureSigner(parts[0], publicOnly(raw[1:]))
	if err != nil {
		return nil, fmt.Errorf("verifier key: %w", err)
	}
	v := s.Verifier()
	if v.String() != vkey {
		return nil, errors.New("the key hash is not that of the name and key")
	}
	return v, nil
}

// publicOnly is an Ed25519 public key posing as a crypto.Signer that
// refuses to sign.
type publicOnly ed25519.PublicKey

func (p publicOnly) Public() crypto.PublicKey { return ed25519.PublicKey(p) }

func (publicOnly) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("a verifier key cannot sign")
}
