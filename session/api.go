package session

import (
	"context"
	"errors"
	"fmt"
	"github.com/telenotary/telenotary/notary"
	"net/http"
	"time"

	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/session/signalapi"
)

// The HTTP API (docs/PROTOCOL.md, docs/openapi-signal.json): every error
// is a problem written by httpapi.WriteError from an error that wraps an
// httpapi.Code.

func (s *Server) serveCreateRoom(w http.ResponseWriter, r *http.Request) {
	resp, err := s.createRoom(r)
	if err != nil {
		httpapi.WriteError(w, r, s.log, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusCreated, resp)
}

// createRoom opens a room and issues its participants' tokens.
func (s *Server) createRoom(r *http.Request) (*signalapi.CreateRoomResponse, error) {
	if err := s.cfg.APIKeys.Authorize(r, auth.RoleSubmitter); err != nil {
		return nil, err
	}
	body, err := httpapi.ReadBody(r, signalapi.MaxCreateRoomBody)
	if err != nil {
		return nil, err
	}
	var req signalapi.CreateRoomRequest
	if len(body) > 0 { // every field is optional, the body too
		if err := httpapi.DecodeJSON(body, &req); err != nil {
			return nil, err
		}
	}
	subjects := map[signalapi.Role]string{signalapi.RolePatient: req.Patient, signalapi.RolePhysician: req.Physician}
	for _, role := range signalapi.Roles {
		switch sub := subjects[role]; {
		case sub == "":
			subjects[role] = newID()
		case !signalapi.ValidID(sub):
			return nil, httpapi.Field(string(role), "must be a pseudonymous id: 1 to 64 of A-Z a-z 0-9 - _")
		}
	}
	var bound *binding
	if req.PatientReference != "" || req.PhysicianReference != "" {
		switch {
		case req.PatientReference != "" && !signalapi.ValidReference(req.PatientReference, "Patient"):
			return nil, httpapi.Field("patient_reference", "must be a FHIR reference to a Patient: Patient/<id> or <base URL>/Patient/<id> (id: 1 to 64 of A-Z a-z 0-9 - .), at most %d bytes", signalapi.MaxReference)
		case req.PhysicianReference != "" && !signalapi.ValidReference(req.PhysicianReference, "Practitioner", "PractitionerRole"):
			return nil, httpapi.Field("physician_reference", "must be a FHIR reference to a Practitioner or PractitionerRole: Practitioner/<id> or <base URL>/Practitioner/<id>, at most %d bytes", signalapi.MaxReference)
		}
		bound = &binding{patient: req.PatientReference, physician: req.PhysicianReference, salt: notary.NewSalt()}
	}
	maxTTL := int(s.cfg.MaxSessionLength / time.Second)
	ttl := s.cfg.TokenTTL
	switch {
	case req.TTLSeconds < 0 || req.TTLSeconds > maxTTL:
		return nil, httpapi.Field("ttl_seconds", "must be between 1 and %d", maxTTL)
	case req.TTLSeconds > 0:
		ttl = time.Duration(req.TTLSeconds) * time.Second
	}
	id := newID()
	expires := s.now().Add(ttl).Truncate(time.Second)
	room, err := s.room(id)
	if err != nil {
		if errors.Is(err, signalapi.CodeShuttingDown) {
			return nil, fmt.Errorf("%w: %v", signalapi.ErrShuttingDown, err)
		}
		return nil, fmt.Errorf("%w: %v", signalapi.ErrRoomLimit, err)
	}
	resp := &signalapi.CreateRoomResponse{Room: id, Expires: expires.UTC(), Tokens: map[signalapi.Role]string{}}
	if bound != nil {
		room.mu.Lock()
		room.bound = bound
		room.mu.Unlock()
		resp.ReferenceSalt = &bound.salt
	}
	for role, sub := range subjects {
		instance := "" // alone, a token needs not say where its room is
		if s.group != nil {
			instance = s.cfg.Instance
		}
		tok, err := s.cfg.TokenKey.issue(id, role, sub, instance, expires)
		if err != nil {
			return nil, fmt.Errorf("%w: issue a token: %w", httpapi.ErrInternal, err)
		}
		resp.Tokens[role] = tok
	}
	return resp, nil
}

func (s *Server) serveSessions(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.APIKeys.Authorize(r, auth.RoleOperator); err != nil {
		httpapi.WriteError(w, r, s.log, err)
		return
	}
	out := s.Sessions()
	if s.group != nil && !s.fromPeer(r) {
		s.groupSessions(r, &out)
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

// serveKeys serves the cluster's verifier keys (cached for a minute) for
// the browser pages and the peer SDK.
func (s *Server) serveKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := s.verifierKeys(r.Context())
	if err != nil {
		httpapi.WriteError(w, r, s.log, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(keys)
}

// verifierKeys returns the cluster's keys, from the cache when they are
// less than a minute old or the cluster does not answer.
func (s *Server) verifierKeys(ctx context.Context) ([]byte, error) {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	if s.keys != nil && time.Since(s.keysTime) < time.Minute {
		return s.keys, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	keys, err := s.cfg.Notary.KeysText(ctx)
	switch {
	case err == nil:
		s.keys, s.keysTime = keys, time.Now()
	case s.keys == nil:
		return nil, fmt.Errorf("%w: the notary cluster did not answer: %v", signalapi.ErrNotaryUnavailable, err)
	}
	return s.keys, nil
}
