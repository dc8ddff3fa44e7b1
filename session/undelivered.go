package session

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/session/signalapi"
)

// undelivered keeps, in memory, the webhook events the app's backend did
// not take (every attempt failed, or the queue was full), so that no
// bundle is lost while it is down: the app fetches them (GET
// /v1/undelivered) and acknowledges each (DELETE /v1/undelivered/{id}).
// It holds at most max; when it is full, the server refuses new
// prescriptions rather than drop a bundle (room.prescribe).
type undelivered struct {
	mu     sync.Mutex
	max    int
	events map[string]signalapi.UndeliveredEvent
	order  []string // ids, oldest first
}

func newUndelivered(max int) *undelivered {
	return &undelivered{max: max, events: map[string]signalapi.UndeliveredEvent{}}
}

// keep holds a delivery that failed for good, reporting false when there
// is no room for it (it is then lost: the caller alerts).
func (u *undelivered) keep(d delivery, why error, at time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.events[d.id]; ok {
		return true
	}
	if len(u.events) >= u.max {
		return false
	}
	u.events[d.id] = signalapi.UndeliveredEvent{ID: d.id, FailedAt: at.UTC(), Error: why.Error(), Event: json.RawMessage(d.body)}
	u.order = append(u.order, d.id)
	return true
}

// full reports whether no more events fit.
func (u *undelivered) full() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.events) >= u.max
}

// len is how many events are held.
func (u *undelivered) len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.events)
}

// list returns the events held, oldest first.
func (u *undelivered) list() []signalapi.UndeliveredEvent {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]signalapi.UndeliveredEvent, 0, len(u.order))
	for _, id := range u.order {
		out = append(out, u.events[id])
	}
	return out
}

// ack forgets the event id, reporting whether it was held.
func (u *undelivered) ack(id string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.events[id]; !ok {
		return false
	}
	delete(u.events, id)
	for i, o := range u.order {
		if o == id {
			u.order = append(u.order[:i], u.order[i+1:]...)
			break
		}
	}
	return true
}

func (s *Server) serveUndelivered(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.APIKeys.Authorize(r, auth.RoleSubmitter); err != nil {
		httpapi.WriteError(w, r, s.log, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, signalapi.UndeliveredResponse{Events: s.undelivered.list()})
}

func (s *Server) serveAckUndelivered(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.APIKeys.Authorize(r, auth.RoleSubmitter); err != nil {
		httpapi.WriteError(w, r, s.log, err)
		return
	}
	if !s.undelivered.ack(r.PathValue("id")) {
		httpapi.WriteError(w, r, s.log, fmt.Errorf("%w: no undelivered event %.80q (acknowledged already?)", httpapi.ErrNotFound, r.PathValue("id")))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
