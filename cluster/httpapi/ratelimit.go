package httpapi

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ErrRateLimited: the client sent more requests than its share; the
// answer's Retry-After says when to come back.
var ErrRateLimited = &Code{"rate_limited", http.StatusTooManyRequests, "too many requests"}

// RateLimiter keeps a token bucket per key (a client's address, a token's
// digest) for requests, forgetting keys idle for a few minutes. It holds at
// most maxKeys buckets: past that, new keys share one, so a flood of keys
// costs bounded memory. It is safe for concurrent use.
type RateLimiter[K comparable] struct {
	limit rate.Limit
	burst int

	mu       sync.Mutex // guards all below
	buckets  map[K]*bucket
	overflow *rate.Limiter
	swept    time.Time
}

type bucket struct {
	*rate.Limiter
	seen time.Time
}

const (
	maxKeys   = 1 << 16
	idleKeys  = 3 * time.Minute
	sweepEach = time.Minute
)

// NewRateLimiter allows each key perSecond requests with bursts of burst.
func NewRateLimiter[K comparable](perSecond float64, burst int) *RateLimiter[K] {
	return &RateLimiter[K]{limit: rate.Limit(perSecond), burst: burst, buckets: map[K]*bucket{},
		overflow: rate.NewLimiter(rate.Limit(perSecond), burst), swept: time.Now()}
}

// Allow reports whether key may make a request now, and takes it.
func (l *RateLimiter[K]) Allow(key K) bool {
	now := time.Now()
	l.mu.Lock()
	if now.Sub(l.swept) > sweepEach {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > idleKeys {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b := l.buckets[key]
	if b == nil && len(l.buckets) < maxKeys {
		b = &bucket{Limiter: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	var lim *rate.Limiter
	if b != nil {
		b.seen = now
		lim = b.Limiter
	} else {
		lim = l.overflow
	}
	l.mu.Unlock()
	return lim.AllowN(now, 1)
}

// ClientIP is the address of the request's peer, without its port. It
// does not trust forwarding headers: put a limiter behind a proxy only if
// the proxy itself limits by client.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
