package session

import (
	"container/heap"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/telenotary/telenotary/session/signalapi"
)

// usedTokens remembers the join tokens that seated a participant, each
// until it expires (after which the token is refused for its expiry
// anyway): a token joins once. Memory is bounded: expired ids are dropped
// as new ones come, and at most max are held; beyond, joins with a token
// are refused (limit) until some expire. Only ids are kept (the SHA-256 of
// a token's signed part), in memory.
type usedTokens struct {
	max int

	mu    sync.Mutex // guards until and order
	until map[[sha256.Size]byte]time.Time
	order expiryHeap // the ids in until, soonest expiry first
}

func newUsedTokens(max int) *usedTokens {
	return &usedTokens{max: max, until: map[[sha256.Size]byte]time.Time{}}
}

// take records id as used until the given time. Its error is a fatal
// *signalapi.ProtocolError: token_used when id was used already, limit
// when max ids are held.
func (u *usedTokens) take(id [sha256.Size]byte, until, now time.Time) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.checkLocked(id, now); err != nil {
		return err
	}
	u.until[id] = until
	heap.Push(&u.order, expiring{id: id, until: until})
	return nil
}

// check is take without taking: a join refused by it touches no room.
func (u *usedTokens) check(id [sha256.Size]byte, now time.Time) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.checkLocked(id, now)
}

// checkLocked drops the ids expired at now, then refuses id if it is held
// or if max are.
func (u *usedTokens) checkLocked(id [sha256.Size]byte, now time.Time) error {
	for len(u.order) > 0 && !u.order[0].until.After(now) {
		e := heap.Pop(&u.order).(expiring)
		delete(u.until, e.id)
	}
	if _, used := u.until[id]; used {
		return signalapi.RefuseFatal(signalapi.CodeTokenUsed, "this join token has seated its participant already: a token joins once. To come back, join with the ticket of your last joined message; without it, ask the app's backend for a new token")
	}
	if len(u.until) >= u.max {
		return signalapi.RefuseFatal(signalapi.CodeLimit, "the server remembers its maximum of %d used join tokens; try again when some expire", u.max)
	}
	return nil
}

// len is the number of ids held.
func (u *usedTokens) len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.until)
}

// expiring is an id and when it may be forgotten.
type expiring struct {
	id    [sha256.Size]byte
	until time.Time
}

// expiryHeap is a min-heap of ids by expiry (container/heap).
type expiryHeap []expiring

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].until.Before(h[j].until) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiring)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
