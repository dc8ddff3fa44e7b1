package session

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/session/signalapi"
)

// Room control for the app's backend (its app key): list the rooms, look
// at one, end one (both participants told, the end record notarized as
// for a leave), remove a participant (disconnected, its tickets void).

// serveRooms answers GET /v1/rooms.
func (s *Server) serveRooms(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.APIKeys.Authorize(r, auth.RoleSubmitter); err != nil {
		httpapi.WriteError(w, r, s.log, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, signalapi.RoomsResponse{Rooms: s.Sessions().Sessions})
}

// serveRoom answers GET /v1/rooms/{room}.
func (s *Server) serveRoom(w http.ResponseWriter, r *http.Request) {
	room, err := s.heldRoom(r)
	if err != nil {
		s.roomElsewhere(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, room.info(s.now()))
}

// serveEndRoom answers POST /v1/rooms/{room}/end: 202, the room ending.
func (s *Server) serveEndRoom(w http.ResponseWriter, r *http.Request) {
	room, err := s.heldRoom(r)
	if err != nil {
		s.roomElsewhere(w, r, err)
		return
	}
	body, err := httpapi.ReadBody(r, signalapi.MaxEndRoomBody)
	if err != nil {
		httpapi.WriteError(w, r, s.log, err)
		return
	}
	var req signalapi.EndRoomRequest
	if len(body) > 0 {
		if err := httpapi.DecodeJSON(body, &req); err != nil {
			httpapi.WriteError(w, r, s.log, err)
			return
		}
	}
	if len(req.Reason) > signalapi.MaxReasonLength || !printableASCII(req.Reason) {
		httpapi.WriteError(w, r, s.log, httpapi.Field("reason", "must be at most %d printable ASCII characters", signalapi.MaxReasonLength))
		return
	}
	reason := "ended-by-app"
	if req.Reason != "" {
		reason += ": " + req.Reason
	}
	s.log.InfoContext(r.Context(), "the app ended a room", "room", room.id, "session", room.session)
	room.end(reason)
	httpapi.WriteJSON(w, http.StatusAccepted, room.info(s.now()))
}

// serveRemoveParticipant answers DELETE
// /v1/rooms/{room}/participants/{role}: 204 once the participant is
// disconnected and its tickets void.
func (s *Server) serveRemoveParticipant(w http.ResponseWriter, r *http.Request) {
	room, err := s.heldRoom(r)
	if err != nil {
		s.roomElsewhere(w, r, err)
		return
	}
	role := signalapi.Role(r.PathValue("role"))
	if role != signalapi.RolePatient && role != signalapi.RolePhysician {
		httpapi.WriteError(w, r, s.log, httpapi.Field("role", "must be patient or physician, not %.20q", role))
		return
	}
	if err := room.remove(role); err != nil {
		httpapi.WriteError(w, r, s.log, err)
		return
	}
	s.log.InfoContext(r.Context(), "the app removed a participant", "room", room.id, "session", room.session, "role", role)
	w.WriteHeader(http.StatusNoContent)
}

// roomElsewhere answers a request about a room this server does not hold:
// in a group, with the answer of the instance that holds it (each that
// answers is asked in turn, until one does not answer 404), else with err.
func (s *Server) roomElsewhere(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, httpapi.ErrNotFound) || s.group == nil || s.fromPeer(r) {
		httpapi.WriteError(w, r, s.log, err)
		return
	}
	body, rerr := httpapi.ReadBody(r, signalapi.MaxEndRoomBody)
	if rerr != nil {
		httpapi.WriteError(w, r, s.log, rerr)
		return
	}
	for _, m := range s.group.members {
		if !isUp(m) {
			continue
		}
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, m.URL+r.URL.Path, bytes.NewReader(body))
		for _, h := range []string{"Authorization", "Content-Type"} {
			if v := r.Header.Get(h); v != "" {
				req.Header.Set(h, v)
			}
		}
		req.Header.Set(signalapi.RelayHeader, s.relayProof())
		resp, ferr := s.cfg.PeerClient.Do(req)
		if ferr != nil {
			continue
		}
		answer, ferr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if ferr != nil || resp.StatusCode == http.StatusNotFound {
			continue
		}
		for _, h := range []string{"Content-Type", "WWW-Authenticate", "Retry-After"} {
			if v := resp.Header.Get(h); v != "" {
				w.Header().Set(h, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(answer)
		return
	}
	httpapi.WriteError(w, r, s.log, fmt.Errorf("%w (nor does any other instance of the group)", err))
}

// heldRoom authorizes an app's request about the room of its path and
// returns the room; 404 when the server holds no such room.
func (s *Server) heldRoom(r *http.Request) (*room, error) {
	if err := s.cfg.APIKeys.Authorize(r, auth.RoleSubmitter); err != nil {
		return nil, err
	}
	id := r.PathValue("room")
	if !signalapi.ValidID(id) {
		return nil, httpapi.Field("room", "must be a room id: 1 to 64 of A-Z a-z 0-9 - _")
	}
	s.mu.Lock()
	room := s.rooms[id]
	_, over := s.ended[id]
	s.mu.Unlock()
	switch {
	case room == nil && over:
		return nil, fmt.Errorf("%w: the consultation in room %s is over", httpapi.ErrNotFound, id)
	case room == nil:
		return nil, fmt.Errorf("%w: this server holds no room %s", httpapi.ErrNotFound, id)
	}
	return room, nil
}

// remove disconnects the participant of a role and voids its tickets.
func (r *room) remove(role signalapi.Role) error {
	r.mu.Lock()
	p := r.part(role)
	if p == nil {
		r.mu.Unlock()
		return fmt.Errorf("%w: the %s of room %s has not joined", httpapi.ErrNotFound, role, r.id)
	}
	p.tickets.void()
	c := p.c
	r.mu.Unlock()
	if c != nil {
		c.fail(signalapi.RefuseFatal(signalapi.CodeRemoved, "the app removed you from this consultation; to come back you need a new link"), "")
	}
	return nil
}
