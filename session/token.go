package session

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/telenotary/telenotary/session/signalapi"
)

// Room tokens are JWTs signed with HS256 under the server's token key. The
// server issues them (POST /v1/rooms); an app backend that holds the same
// key may sign its own, with its own issuer (NewTokenKey's appIssuers).
const (
	TokenIssuer   = "telenotary"        // the iss claim the server writes, always accepted
	TokenAudience = "telenotary-signal" // the aud claim every token must carry
	MinTokenKey   = 32                  // bytes of a token key (and of a webhook secret)
	tokenLeeway   = 30 * time.Second    // clock skew allowed on exp, nbf and iat
	maxIssuer     = 256                 // bytes of an accepted issuer
)

// Claims are what a room token says: who may join which room as what.
type Claims struct {
	// Room is the room id.
	Room string `json:"room"`
	// Role is patient or physician.
	Role signalapi.Role `json:"role"`
	// Instance, in a token the server issued in a group of instances,
	// names the instance that opened the room (group.go); empty otherwise.
	Instance string `json:"ins,omitempty"`
	jwt.RegisteredClaims
}

// Subject is the participant's pseudonymous id (the sub claim).
func (c *Claims) Subject() string { return c.RegisteredClaims.Subject }

// TokenKey signs and checks room tokens. It is safe for concurrent use.
type TokenKey struct {
	key     []byte
	issuers []string // accepted iss claims: TokenIssuer and the app's
	parser  *jwt.Parser
	now     func() time.Time
}

// NewTokenKey returns a token key; key must have at least MinTokenKey
// bytes. Tokens must name an accepted issuer in their iss claim: the
// server's own (TokenIssuer) and each of appIssuers, the iss an app
// backend that signs its own tokens with this key writes. An empty
// appIssuer is skipped, so a flag left empty accepts the server's own
// tokens only.
func NewTokenKey(key []byte, appIssuers ...string) (*TokenKey, error) {
	if len(key) < MinTokenKey {
		return nil, fmt.Errorf("token key has %d bytes; it needs at least %d", len(key), MinTokenKey)
	}
	k := &TokenKey{key: append([]byte(nil), key...), issuers: []string{TokenIssuer}, now: time.Now}
	for _, iss := range appIssuers {
		switch {
		case iss == "":
			continue
		case len(iss) > maxIssuer || !printableASCII(iss):
			return nil, fmt.Errorf("token issuer %.40q must be 1 to %d printable ASCII characters", iss, maxIssuer)
		}
		k.issuers = append(k.issuers, iss)
	}
	k.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithAudience(TokenAudience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(tokenLeeway),
		jwt.WithTimeFunc(func() time.Time { return k.now() }),
	)
	return k, nil
}

// Issue signs a token for subject to join room in role until expires. The
// token has a random id (jti), so that two tokens for the same seat are
// two tokens: each joins once.
func (k *TokenKey) Issue(room string, role signalapi.Role, subject string, expires time.Time) (string, error) {
	return k.issue(room, role, subject, "", expires)
}

// issue is Issue for a room opened by an instance of a group.
func (k *TokenKey) issue(room string, role signalapi.Role, subject, instance string, expires time.Time) (string, error) {
	var id [16]byte
	rand.Read(id[:])
	c := Claims{Room: room, Role: role, Instance: instance, RegisteredClaims: jwt.RegisteredClaims{
		Issuer:    TokenIssuer,
		Subject:   subject,
		Audience:  jwt.ClaimStrings{TokenAudience},
		ExpiresAt: jwt.NewNumericDate(expires),
		IssuedAt:  jwt.NewNumericDate(k.now()),
		ID:        hex.EncodeToString(id[:]),
	}}
	if err := c.check(); err != nil {
		return "", err
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(k.key)
}

// Parse checks a token's signature, audience, issuer, times and claims.
// Its error is a fatal *signalapi.ProtocolError: token_expired for a
// token past its expiry, token_invalid for anything else. Whether the
// token was used already, or predates the server, is the server's to
// check.
func (k *TokenKey) Parse(token string) (*Claims, error) {
	if len(token) > signalapi.MaxTokenSize {
		return nil, signalapi.RefuseFatal(signalapi.CodeTokenInvalid, "token is longer than %d bytes", signalapi.MaxTokenSize)
	}
	var c Claims
	_, err := k.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return k.key, nil })
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, signalapi.RefuseFatal(signalapi.CodeTokenExpired, "token expired at %s", c.ExpiresAt.UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, signalapi.RefuseFatal(signalapi.CodeTokenInvalid, "token signature is not valid (signed with another key?)")
	case err != nil:
		return nil, signalapi.RefuseFatal(signalapi.CodeTokenInvalid, "token is not valid: %v", err)
	}
	if err := c.check(); err != nil {
		return nil, signalapi.RefuseFatal(signalapi.CodeTokenInvalid, "token %v", err)
	}
	if !slices.Contains(k.issuers, c.Issuer) {
		return nil, signalapi.RefuseFatal(signalapi.CodeTokenInvalid, "token claim \"iss\" is %.64q; this server accepts tokens issued by %q", c.Issuer, k.issuers)
	}
	if c.IssuedAt == nil {
		return nil, signalapi.RefuseFatal(signalapi.CodeTokenInvalid, "token has no claim \"iat\" (issued at); the server needs it")
	}
	return &c, nil
}

func (c *Claims) check() error {
	switch {
	case !signalapi.ValidID(c.Room):
		return fmt.Errorf("claim \"room\" is not a room id (1 to 64 of A-Z a-z 0-9 - _)")
	case !c.Role.Valid():
		return fmt.Errorf("claim \"role\" is %.20q, not patient or physician", c.Role)
	case !signalapi.ValidID(c.RegisteredClaims.Subject):
		return fmt.Errorf("claim \"sub\" is not a pseudonymous id (1 to 64 of A-Z a-z 0-9 - _)")
	case c.Instance != "" && !signalapi.ValidID(c.Instance):
		return fmt.Errorf("claim \"ins\" is not an instance name (1 to 64 of A-Z a-z 0-9 - _)")
	}
	return nil
}

// tokenID identifies a token for the record of used ones: the SHA-256 of
// its signed part (header and claims). The signature's encoding can vary
// without breaking it; the signed part cannot, so one token has one id.
// token must have parsed.
func tokenID(token string) [sha256.Size]byte {
	signed := token
	if i := strings.LastIndexByte(token, '.'); i >= 0 {
		signed = token[:i]
	}
	return sha256.Sum256([]byte(signed))
}

// printableASCII reports whether s is 1 or more printable ASCII
// characters.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return s != ""
}
