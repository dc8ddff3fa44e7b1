package session

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/telenotary/telenotary/session/signalapi"
)

// Room tokens are JWTs signed with HS256 under the server's token key. The
// server issues them (POST /v1/rooms); an app backend that holds the same
// key may sign its own.
const (
	TokenIssuer   = "telenotary"        // the iss claim the server writes; others are accepted
	TokenAudience = "telenotary-signal" // the aud claim every token must carry
	MinTokenKey   = 32                  // bytes of a token key (and of a webhook secret)
	tokenLeeway   = 30 * time.Second    // clock skew allowed on exp, nbf and iat
)

// Claims are what a room token says: who may join which room as what.
type Claims struct {
	// Room is the room id.
	Room string `json:"room"`
	// Role is patient or physician.
	Role signalapi.Role `json:"role"`
	jwt.RegisteredClaims
}

// Subject is the participant's pseudonymous id (the sub claim).
func (c *Claims) Subject() string { return c.RegisteredClaims.Subject }

// TokenKey signs and checks room tokens.
type TokenKey struct {
	key    []byte
	parser *jwt.Parser
	now    func() time.Time
}

// NewTokenKey returns a token key; key must have at least MinTokenKey
// bytes.
func NewTokenKey(key []byte) (*TokenKey, error) {
	if len(key) < MinTokenKey {
		return nil, fmt.Errorf("token key has %d bytes; it needs at least %d", len(key), MinTokenKey)
	}
	k := &TokenKey{key: append([]byte(nil), key...), now: time.Now}
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

// Issue signs a token for subject to join room in role until expires.
func (k *TokenKey) Issue(room string, role signalapi.Role, subject string, expires time.Time) (string, error) {
	c := Claims{Room: room, Role: role, RegisteredClaims: jwt.RegisteredClaims{
		Issuer:    TokenIssuer,
		Subject:   subject,
		Audience:  jwt.ClaimStrings{TokenAudience},
		ExpiresAt: jwt.NewNumericDate(expires),
		IssuedAt:  jwt.NewNumericDate(k.now()),
	}}
	if err := c.check(); err != nil {
		return "", err
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(k.key)
}

// Parse checks a token's signature, audience, times and claims. Its error is
// a fatal *signalapi.ProtocolError: token_expired for a token past its
// expiry, token_invalid for anything else.
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
	}
	return nil
}
