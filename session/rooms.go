package session

import (
	"fmt"
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
		httpapi.WriteError(w, r, s.log, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, room.info(s.now()))
}

// serveEndRoom answers POST /v1/rooms/{room}/end: 202, the room ending.
func (s *Server) serveEndRoom(w http.ResponseWriter, r *http.Request) {
	room, err := s.heldRoom(r)
	if err != nil {
		httpapi.WriteError(w, r, s.log, err)
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
		httpapi.WriteError(w, r, s.log, err)
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
