// Package auth is the bearer-token authorization that both servers of
// telenotary use: a notary node for its submitters and operators, the
// signalling server for the app backends and operators that call it. A
// token file lists one "<role> <token>" per line; the server keeps only
// the tokens' SHA-256 digests and looks a presented token up in constant
// time over the whole table.
//
// It lives under cluster only because imports run session → cluster; it
// imports nothing of the project but httpapi, and neither server owns it.
package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"

	"github.com/telenotary/telenotary/cluster/httpapi"
)

// Role is what a bearer token may do.
type Role int

// Roles. An operator may do everything; the others only their own thing.
const (
	// RoleNone is no valid token.
	RoleNone Role = iota
	// RoleSubmitter notarizes (a node), or creates rooms (the signalling
	// server: an app backend).
	RoleSubmitter
	// RoleJoiner may only ask a cluster to add a node: the credential a
	// new node keeps (--join-token-file), useless for anything else.
	RoleJoiner
	// RoleOperator may do all of the above and change the cluster
	// (remove, transfer leadership), see its topology and watch live
	// sessions.
	RoleOperator
	// RolePharmacy may only dispense prescriptions: the credential a
	// pharmacy's till holds (telenotary dispense --pharmacy-token-file).
	RolePharmacy
)

var roleNames = map[Role]string{RoleNone: "none", RoleSubmitter: "submitter", RoleJoiner: "join", RoleOperator: "operator", RolePharmacy: "pharmacy"}

func (r Role) String() string { return roleNames[r] }

// ParseRole reads a role's name as token files spell it.
func ParseRole(s string) (Role, error) {
	for r, name := range roleNames {
		if name == s && r != RoleNone {
			return r, nil
		}
	}
	return RoleNone, fmt.Errorf("role %q is none of submitter, join, operator or pharmacy", s)
}

// Allows reports whether a token of role r may do what needs role need.
func (r Role) Allows(need Role) bool { return r != RoleNone && (r == need || r == RoleOperator) }

// MinTokenLength keeps guessable tokens out of token files.
const MinTokenLength = 16

// Tokens maps bearer tokens to roles. It keeps only their SHA-256 digests.
// The zero value and nil refuse every token.
type Tokens struct {
	digests map[[sha256.Size]byte]Role
}

// ParseTokens reads a token file: one "<role> <token>" per line, role
// submitter, join or operator, tokens at least MinTokenLength characters and
// each listed once; blank lines and lines starting with # are ignored. An
// error names the line.
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
		role, err := ParseRole(fields[0])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if len(fields[1]) < MinTokenLength {
			return nil, fmt.Errorf("line %d: token shorter than %d characters", n, MinTokenLength)
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

// Role returns the role of the request's bearer token, RoleNone without a
// valid one.
func (t *Tokens) Role(r *http.Request) Role {
	role, _ := t.Lookup(r)
	return role
}

// Lookup returns the role of the request's bearer token (RoleNone without
// a valid one) and the token's SHA-256 digest, which stands for the token
// where it must be told apart from others (a rate limit per token) without
// being kept.
func (t *Tokens) Lookup(r *http.Request) (Role, [sha256.Size]byte) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || t == nil || token == "" {
		return RoleNone, [sha256.Size]byte{}
	}
	d := sha256.Sum256([]byte(token))
	// Compare with every digest, so the time taken does not depend on
	// where (or whether) the token is found.
	found := RoleNone
	for k, role := range t.digests {
		if subtle.ConstantTimeCompare(k[:], d[:]) == 1 {
			found = role
		}
	}
	return found, d
}

// Authorize checks the request's bearer token against the role needed:
// nil, or an error wrapping httpapi.ErrUnauthorized (no token, or an
// unknown one) or httpapi.ErrForbidden (a token of a lesser role).
func (t *Tokens) Authorize(r *http.Request, need Role) error {
	got := t.Role(r)
	switch {
	case got == RoleNone:
		return fmt.Errorf("%w: a valid bearer token is required (Authorization: Bearer TOKEN)", httpapi.ErrUnauthorized)
	case !got.Allows(need):
		return fmt.Errorf("%w: %s needed, the token is %s", httpapi.ErrForbidden, need, got)
	}
	return nil
}
