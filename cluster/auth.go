package cluster

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
)

// Role is what a bearer token may do.
type Role int

// Roles, each allowed what the one before is.
const (
	RoleNone      Role = iota
	RoleSubmitter      // notarize
	RoleOperator       // notarize, join, remove, transfer leadership
)

func (r Role) String() string {
	switch r {
	case RoleSubmitter:
		return "submitter"
	case RoleOperator:
		return "operator"
	}
	return "none"
}

// minTokenLength keeps guessable tokens out of token files.
const minTokenLength = 16

// Tokens maps bearer tokens to roles. It keeps only their SHA-256 digests.
type Tokens struct {
	digests map[[sha256.Size]byte]Role
}

// ParseTokens reads a token file: one "<role> <token>" per line, role
// submitter or operator; blank lines and lines starting with # are ignored.
func ParseTokens(text []byte) (*Tokens, error) {
	t := &Tokens{digests: map[[sha256.Size]byte]Role{}}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: want \"<role> <token>\"", n)
		}
		var role Role
		switch fields[0] {
		case "submitter":
			role = RoleSubmitter
		case "operator":
			role = RoleOperator
		default:
			return nil, fmt.Errorf("line %d: role %q is neither submitter nor operator", n, fields[0])
		}
		if len(fields[1]) < minTokenLength {
			return nil, fmt.Errorf("line %d: token shorter than %d characters", n, minTokenLength)
		}
		d := sha256.Sum256([]byte(fields[1]))
		if _, dup := t.digests[d]; dup {
			return nil, fmt.Errorf("line %d: token listed twice", n)
		}
		t.digests[d] = role
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return t, nil
}

// role returns the role of the request's bearer token.
func (t *Tokens) role(r *http.Request) Role {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || t == nil || token == "" {
		return RoleNone
	}
	d := sha256.Sum256([]byte(token))
	// Look the digest up in constant time over the whole table.
	found := RoleNone
	for k, role := range t.digests {
		if subtle.ConstantTimeCompare(k[:], d[:]) == 1 {
			found = role
		}
	}
	return found
}

// require checks the request's token against the role needed.
func (t *Tokens) require(r *http.Request, need Role) error {
	got := t.role(r)
	switch {
	case got == RoleNone:
		return ErrUnauthorized
	case got < need:
		return fmt.Errorf("%w: %s needed, token is %s", ErrForbidden, need, got)
	}
	return nil
}

// Authorize checks the request's bearer token against the role needed: nil,
// or an error wrapping ErrUnauthorized (no token, or an unknown one) or
// ErrForbidden (a token of a lesser role). Other servers of the project
// (the signalling server) use it for their own keys in the same file format.
func (t *Tokens) Authorize(r *http.Request, need Role) error { return t.require(r, need) }
