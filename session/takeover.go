package session

import (
	"fmt"
	"time"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/signalapi"
)

// A takeover (group.go): the instance that held a room went away, and a
// participant comes back with its ticket to the room's successor, this
// instance. The successor opens the room again, as a new session that
// continues the interrupted one (the record's continues), seats each
// participant whose ticket names that session, and notarizes the
// interrupted session's end (end reason "interrupted", continued_by the
// new session, linked to its start record when a ticket names it): the
// interruption is in the log, and both records verify and name each
// other. The participants negotiate again (the physician's SDK restarts
// ICE when the patient is back), and the new session starts with its own
// start record when both have announced their fingerprints, as any does.

// ticketRefresh is how often a connected participant gets a fresh ticket
// in a group; a sealed ticket is valid for ticketLife after it was made.
const ticketRefresh = 15 * time.Second

// ticketLife is how long a sealed ticket opens its seat anywhere: long
// enough for a participant that lost its connection to come back within
// the grace window, missing one refresh.
func (s *Server) ticketLife() time.Duration { return s.cfg.Grace + 2*ticketRefresh }

// takeOver opens room id here as the continuation of the session of a
// ticket's seat, and seats c.
func (s *Server) takeOver(c *conn, id string, seat *ticketSeat) error {
	ends := time.Unix(seat.RoomEnds, 0)
	if !s.now().Before(ends) {
		return signalapi.RefuseFatal(signalapi.CodeRoomEnded, "the consultation in room %s is over: it reached its maximum length", id)
	}
	s.mu.Lock()
	switch {
	case s.closing:
		s.mu.Unlock()
		return signalapi.RefuseFatal(signalapi.CodeShuttingDown, "the server is shutting down")
	case s.rooms[id] != nil: // the other participant was quicker
		r := s.rooms[id]
		s.mu.Unlock()
		if r.continues != seat.Session {
			return signalapi.RefuseFatal(signalapi.CodeTicketInvalid, "room %s holds another session than this ticket's; ask the app's backend for a new token", id)
		}
		return r.takeSeat(c, seat)
	case len(s.rooms) >= s.cfg.MaxRooms:
		s.mu.Unlock()
		return signalapi.RefuseFatal(signalapi.CodeLimit, "the server holds its maximum of %d rooms", s.cfg.MaxRooms)
	}
	r := newRoom(s, id, ends)
	r.continues = seat.Session
	if seat.Salt != nil {
		r.bound = &binding{patient: seat.Patient, physician: seat.Physician, salt: *seat.Salt}
	}
	s.rooms[id] = r
	s.metrics.rooms.Inc()
	s.mu.Unlock()
	s.metrics.takeovers.Inc()
	s.alert(signalapi.AlertTakeover, id, fmt.Sprintf("took the room over from instance %s, which went away: session %s continues as %s", seat.Instance, seat.Session, r.session))
	s.log.Warn("took over a room whose signalling instance went away: its session continues as a new one",
		"room", id, "interrupted_session", seat.Session, "session", r.session, "from_instance", seat.Instance)
	return r.takeSeat(c, seat)
}

// knowsTicket reports whether a ticket is one of the room's own.
func (r *room) knowsTicket(h ticketHash) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.parts {
		if p != nil && p.tickets.matches(h) {
			return true
		}
	}
	return false
}

// takeSeat seats c in a continued room with a ticket of the interrupted
// session: in its role's seat, unless another participant took it; and
// notarizes the interruption once a ticket says when the session started.
func (r *room) takeSeat(c *conn, seat *ticketSeat) error {
	now := r.srv.now()
	r.mu.Lock()
	if r.ending {
		r.mu.Unlock()
		return signalapi.RefuseFatal(signalapi.CodeRoomEnded, "the consultation in room %s is over", r.id)
	}
	p := r.part(seat.Role)
	if p != nil && p.subject != seat.Subject {
		r.mu.Unlock()
		return signalapi.RefuseFatal(signalapi.CodeRoomFull, "the %s of room %s is another participant", seat.Role, r.id)
	}
	if p != nil && p.tickets.voided {
		r.mu.Unlock()
		return signalapi.RefuseFatal(signalapi.CodeTicketInvalid, "the app removed this participant; to come back you need a new link")
	}
	first := p == nil
	if first {
		p = &participant{role: seat.Role, subject: seat.Subject, joined: now}
		r.parts[slot(seat.Role)] = p
		if r.interrupted != nil { // notarized before this participant was back
			p.pending = append(p.pending, r.interrupted)
		}
	}
	if !r.interruptionLogged && seat.StartCommitment != nil {
		r.interruptionLogged = true
		r.jobs <- &job{kind: notary.KindSessionEnd, link: *seat.StartCommitment, session: seat.Session, document: commit(r.interruptedRecordLocked(seat, now))}
	}
	r.seatLocked(c, p, now, first, nil)
	return nil
}

// interruptedRecordLocked is the end record of the session a ticket names,
// as the instance taking its room over knows it: when it started and when
// it was found interrupted, and the session that continues it.
func (r *room) interruptedRecordLocked(seat *ticketSeat, now time.Time) *signalapi.Record {
	end := ms(now)
	return &signalapi.Record{
		Format: signalapi.RecordFormat, Phase: signalapi.PhaseEnd, Room: r.id, Session: seat.Session,
		Started: ms(time.UnixMilli(seat.Started)), Ended: &end, EndReason: signalapi.EndInterrupted,
		Participants: []signalapi.RecordParticipant{}, ContinuedBy: r.session,
	}
}

// seatOfLocked is what a ticket of p's seat seals.
func (r *room) seatOfLocked(p *participant, now time.Time) *ticketSeat {
	s := r.srv
	seat := &ticketSeat{
		Instance: s.cfg.Instance, Epoch: s.epoch.Unix(), Expires: now.Add(s.ticketLife()).Unix(),
		Role: p.role, Subject: p.subject, Session: r.session, RoomEnds: r.expires.Unix(),
	}
	if r.started {
		seat.Started = r.startTime.UnixMilli()
		c := r.startCommit
		seat.StartCommitment = &c
	}
	if b := r.bound; b != nil {
		seat.Patient, seat.Physician = b.patient, b.physician
		salt := b.salt
		seat.Salt = &salt
	}
	return seat
}

// ticketLocked makes a new ticket for p's seat, sealed in a group, and
// records it: presented is the ticket the participant came back with (nil
// for a token), which stays valid until the new one is used.
func (r *room) ticketLocked(p *participant, now time.Time, presented *ticketHash) string {
	t, _ := newTicket(r.id)
	if r.srv.sealer != nil {
		t = r.srv.sealer.seal(t, r.seatOfLocked(p, now))
	}
	p.tickets.rotate(hashTicket(t), presented)
	return t
}

// refreshTickets sends each connected participant a fresh ticket, then
// comes again after ticketRefresh while the room lasts.
func (r *room) refreshTickets() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ending {
		return
	}
	r.sendTicketsLocked()
	r.refresh = time.AfterFunc(ticketRefresh, r.refreshTickets)
}

// sendTicketsLocked sends each connected participant a fresh ticket (in a
// group: alone, a ticket seals nothing that changes).
func (r *room) sendTicketsLocked() {
	if r.srv.sealer == nil {
		return
	}
	now := r.srv.now()
	for _, p := range r.parts {
		if p == nil || p.c == nil || p.tickets.voided {
			continue
		}
		last := p.tickets.last
		t := r.ticketLocked(p, now, &last)
		p.c.enqueue(encode(&signalapi.Message{Type: signalapi.TypeTicket, Ticket: t}))
	}
}
