package httpd

import (
	"fmt"
	"net/http"
	"sync"

	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/notaryapi"
)

// Limits bounds what one client may take of the API, so that a flood from
// strangers never locks out the cluster's own clients and operators.
type Limits struct {
	// AnonymousRate and AnonymousBurst bound the requests per second of
	// each address that presents no valid token.
	AnonymousRate  float64
	AnonymousBurst int
	// TokenRate and TokenBurst bound the requests per second of each valid
	// token, wherever it comes from.
	TokenRate  float64
	TokenBurst int
	// AnonymousStreams bounds the event streams of callers without an
	// operator token, in all and per address; OperatorStreams are kept
	// for operators, whatever the others hold.
	AnonymousStreams, AnonymousStreamsPerIP, OperatorStreams int
}

// DefaultLimits are generous for readers, load generators and consoles,
// and stop a single host's flood.
func DefaultLimits() Limits {
	return Limits{
		AnonymousRate: 1000, AnonymousBurst: 2000,
		TokenRate: 100_000, TokenBurst: 200_000,
		AnonymousStreams: 128, AnonymousStreamsPerIP: 8, OperatorStreams: 16,
	}
}

// Validate names the first limit that cannot work.
func (l Limits) Validate() error {
	switch {
	case l.AnonymousRate <= 0 || l.AnonymousBurst < 1:
		return fmt.Errorf("AnonymousRate and AnonymousBurst must be positive")
	case l.TokenRate <= 0 || l.TokenBurst < 1:
		return fmt.Errorf("TokenRate and TokenBurst must be positive")
	case l.AnonymousStreams < 0 || l.AnonymousStreamsPerIP < 0 || l.OperatorStreams < 1:
		return fmt.Errorf("AnonymousStreams and AnonymousStreamsPerIP must not be negative, OperatorStreams must be positive")
	}
	return nil
}

// unlimited are the probes an orchestrator must always get an answer from.
var unlimited = map[string]bool{"/healthz": true, "/readyz": true}

// rateLimit answers 429 to a client over its rate: per token for a valid
// token (a platform behind one address is not throttled by it), per
// address otherwise (an invalid token does not buy a bucket of its own).
func (a *api) rateLimit(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !unlimited[r.URL.Path] {
			var ok bool
			if role, digest := a.Tokens.Lookup(r); role != auth.RoleNone {
				ok = a.tokenRate.Allow(digest)
			} else {
				ok = a.anonRate.Allow(httpapi.ClientIP(r))
			}
			if !ok {
				w.Header().Set("Retry-After", "1")
				a.fail(w, r, fmt.Errorf("%w: slow down", httpapi.ErrRateLimited))
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// streamSlots counts the open event streams against the limits.
type streamSlots struct {
	limits Limits

	mu        sync.Mutex // guards all below
	anonymous int
	byIP      map[string]int
	operators int
}

// take holds a slot for a stream of a caller of role from ip, or says why
// there is none; release gives it back.
func (s *streamSlots) take(role auth.Role, ip string) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if role.Allows(auth.RoleOperator) {
		if s.operators >= s.limits.OperatorStreams {
			return nil, fmt.Errorf("%w: %d operator event streams are open already", notaryapi.ErrOverloaded, s.operators)
		}
		s.operators++
		return func() {
			s.mu.Lock()
			s.operators--
			s.mu.Unlock()
		}, nil
	}
	switch {
	case s.anonymous >= s.limits.AnonymousStreams:
		return nil, fmt.Errorf("%w: %d event streams are open already (an operator token has streams of its own)", notaryapi.ErrOverloaded, s.anonymous)
	case s.byIP[ip] >= s.limits.AnonymousStreamsPerIP:
		return nil, fmt.Errorf("%w: %d event streams are open from %s already", notaryapi.ErrOverloaded, s.byIP[ip], ip)
	}
	s.anonymous++
	s.byIP[ip]++
	return func() {
		s.mu.Lock()
		s.anonymous--
		if s.byIP[ip]--; s.byIP[ip] == 0 {
			delete(s.byIP, ip)
		}
		s.mu.Unlock()
	}, nil
}
