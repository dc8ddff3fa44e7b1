package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/telenotary/telenotary/notary"
)

// Event is one message of the event stream (GET /v1/events, server-sent
// events). Notarizations are aggregated per flush interval, so a busy
// cluster sends a few events a second however many receipts it issues.
type Event struct {
	// Type is "notarized" or "cluster".
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	// Notarized, for type "notarized".
	Notarized *NotarizedEvent `json:"notarized,omitempty"`
	// Cluster, for type "cluster": Change is leader, joined, removed,
	// peer-added, peer-removed, peer-unreachable or peer-reachable.
	Change string `json:"change,omitempty"`
	Node   string `json:"node,omitempty"`
}

// NotarizedEvent sums up the leaves appended since the previous event.
type NotarizedEvent struct {
	First  uint64         `json:"first"` // index of the first new leaf
	Size   uint64         `json:"size"`  // log size after them
	Count  uint64         `json:"count"`
	ByKind map[string]int `json:"by_kind"`
	// Recent are the last few leaves (at most maxRecent), newest last.
	Recent []LeafInfo `json:"recent"`
}

const (
	flushInterval  = 100 * time.Millisecond
	maxRecent      = 32
	subscriberBuf  = 64
	maxSubscribers = 256
)

// hub fans events out to stream subscribers; a slow subscriber loses
// events, it never slows the node.
type hub struct {
	in chan Event

	mu   sync.Mutex // guards subs and pending
	subs map[chan Event]struct{}
	// pending aggregates notarizations until the next flush.
	pending *NotarizedEvent
}

func newHub() *hub { return &hub{in: make(chan Event, 256), subs: map[chan Event]struct{}{}} }

// notarized records an applied batch; called on raft's FSM goroutine.
func (h *hub) notarized(a applied) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.pending
	if p == nil {
		p = &NotarizedEvent{First: a.First, ByKind: map[string]int{}}
		h.pending = p
	}
	p.Size = a.Size
	p.Count += uint64(len(a.Leaves))
	for i, l := range a.Leaves {
		p.ByKind[l.Kind.String()]++
		if len(a.Leaves)-i <= maxRecent {
			p.Recent = append(p.Recent, leafInfo(a.First+uint64(i), l))
		}
	}
	if over := len(p.Recent) - maxRecent; over > 0 {
		p.Recent = append(p.Recent[:0], p.Recent[over:]...)
	}
}

func leafInfo(index uint64, l notary.Leaf) LeafInfo {
	return LeafInfo{Index: index, Kind: l.Kind, Commitment: l.Commitment, Link: l.Link, Timestamp: l.Timestamp}
}

// cluster records a change of the cluster; it never blocks.
func (h *hub) cluster(change, node string) {
	select {
	case h.in <- Event{Type: "cluster", Time: time.Now().UTC(), Change: change, Node: node}:
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
			h.mu.Lock()
			for c := range h.subs {
				close(c)
				delete(h.subs, c)
			}
			h.mu.Unlock()
			return
		case e := <-h.in:
			h.broadcast(e)
		case <-tick.C:
			h.mu.Lock()
			p := h.pending
			h.pending = nil
			h.mu.Unlock()
			if p != nil {
				h.broadcast(Event{Type: "notarized", Time: time.Now().UTC(), Notarized: p})
			}
		}
	}
}

func (h *hub) broadcast(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.subs {
		select {
		case c <- e:
		default: // a slow subscriber misses this one
		}
	}
}

func (h *hub) subscribe() (chan Event, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) >= maxSubscribers {
		return nil, fmt.Errorf("%w: too many event subscribers", ErrOverloaded)
	}
	c := make(chan Event, subscriberBuf)
	h.subs[c] = struct{}{}
	return c, nil
}

func (h *hub) unsubscribe(c chan Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[c]; ok {
		delete(h.subs, c)
		close(c)
	}
}

// handleEvents streams events as server-sent events until the client goes
// away or the node stops.
func (n *Node) handleEvents(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		n.writeError(w, r, fmt.Errorf("streaming unsupported"))
		return
	}
	c, err := n.events.subscribe()
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	defer n.events.unsubscribe(c)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": telenotary events\n\n")
	flusher.Flush()
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepAlive.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			flusher.Flush()
		case e, ok := <-c:
			if !ok {
				return
			}
			b, _ := json.Marshal(e)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Type, b)
			flusher.Flush()
		}
	}
}
