package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
)

const (
	flushInterval = 100 * time.Millisecond
	maxRecent     = 32
	subscriberBuf = 64
)

// hub fans events out to stream subscribers; a slow subscriber loses
// events, it never slows the node.
type hub struct {
	in             chan notaryapi.Event
	maxSubscribers int // a backstop: the API holds each client to its share

	mu     sync.Mutex // guards subs, closed and pending
	subs   map[chan notaryapi.Event]struct{}
	closed bool
	// pending aggregates notarizations until the next flush.
	pending *notaryapi.NotarizedEvent
}

func newHub(maxSubscribers int) *hub {
	return &hub{in: make(chan notaryapi.Event, 256), maxSubscribers: maxSubscribers, subs: map[chan notaryapi.Event]struct{}{}}
}

// notarized records an applied batch; called on raft's FSM goroutine.
func (h *hub) notarized(a applied) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.pending
	if p == nil {
		p = &notaryapi.NotarizedEvent{First: a.First, ByKind: map[string]int{}}
		h.pending = p
	}
	p.Size = a.Size
	p.Count += uint64(len(a.Leaves))
	for i, l := range a.Leaves {
		p.ByKind[l.Kind.String()]++
		if len(a.Leaves)-i <= maxRecent {
			p.Recent = append(p.Recent, notaryapi.LeafInfoOf(a.First+uint64(i), l))
		}
	}
	for code, k := range a.Refused {
		if p.Refused == nil {
			p.Refused = map[string]int{}
		}
		p.Refused[code] += k
	}
	if over := len(p.Recent) - maxRecent; over > 0 {
		p.Recent = append(p.Recent[:0], p.Recent[over:]...)
	}
}

// cluster records a change of the cluster; it never blocks.
func (h *hub) cluster(change notaryapi.Change, node string) {
	select {
	case h.in <- notaryapi.Event{Type: notaryapi.EventCluster, Time: time.Now().UTC(), Change: change, Node: node}:
	default:
	}
}

// run flushes aggregated notarizations and relays cluster events.
func (h *hub) run(ctx context.Context) {
	tick := time.NewTicker(flushInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			h.close()
			return
		case e := <-h.in:
			h.broadcast(e)
		case <-tick.C:
			h.mu.Lock()
			p := h.pending
			h.pending = nil
			h.mu.Unlock()
			if p != nil {
				h.broadcast(notaryapi.Event{Type: notaryapi.EventNotarized, Time: time.Now().UTC(), Notarized: p})
			}
		}
	}
}

func (h *hub) broadcast(e notaryapi.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.subs {
		select {
		case c <- e:
		default: // a slow subscriber misses this one
		}
	}
}

// close ends every subscriber's stream and refuses new ones: the node is
// stopping, and a stream must not hold up the API server's shutdown.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for c := range h.subs {
		close(c)
		delete(h.subs, c)
	}
}

func (h *hub) subscribe() (chan notaryapi.Event, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, fmt.Errorf("%w: the node is stopping", ErrClosed)
	}
	if len(h.subs) >= h.maxSubscribers {
		return nil, fmt.Errorf("%w: too many event subscribers", notaryapi.ErrOverloaded)
	}
	c := make(chan notaryapi.Event, subscriberBuf)
	h.subs[c] = struct{}{}
	return c, nil
}

func (h *hub) unsubscribe(c chan notaryapi.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[c]; ok {
		delete(h.subs, c)
		close(c)
	}
}

// Subscribe follows the node's events (see notaryapi.Event) until cancel
// is called; the channel closes when the node stops. A subscriber too slow
// to take them loses events; it never slows the node.
func (n *Node) Subscribe() (events <-chan notaryapi.Event, cancel func(), err error) {
	c, err := n.events.subscribe()
	if err != nil {
		return nil, nil, err
	}
	return c, func() { n.events.unsubscribe(c) }, nil
}
