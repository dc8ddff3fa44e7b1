package session

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/signalapi"
)

// Per-session limits.
const (
	maxCandidatesPerOffer = 100 // ICE candidates one participant may send per offer or answer
	maxPrescriptions      = signalapi.MaxSessionPrescriptions
	maxConsents           = 64
	// maxPending bounds the messages kept for an absent participant. All
	// of them matter (a session's receipts, a prescription's receipt and
	// its only copy, a revocation's outcome, refusals), so it is what a
	// session can send one side: per prescription at most three (its
	// receipt, a refusal before it, a revocation's outcome) and the
	// session's own records. It is never reached; if it were, the server
	// would log the loss as an error.
	maxPending    = 3*maxPrescriptions + 16
	maxReconnects = 1000 // reconnections a record lists per participant, which bounds its size
	// jobQueue holds every job a room can have queued at once, so that
	// queueing never blocks: its prescriptions, a revocation of each
	// (revoke.go), and its start and end records.
	jobQueue = 2*maxPrescriptions + 4
)

// room is one consultation: two participant slots, the session record and
// the queue of notarizations, processed in order by the room's worker
// (job.go).
type room struct {
	srv     *Server
	id      string
	session string
	created time.Time
	expires time.Time
	jobs    chan *job

	mu          sync.Mutex // guards everything below, and sends to the participants
	parts       [2]*participant
	started     bool // the session-start record is committed
	startTime   time.Time
	startCommit notary.Commitment
	ending      bool // the end is decided; no more messages
	endReason   string
	endTime     time.Time
	mismatch    bool
	consents    []signalapi.RecordConsent
	rx          []signalapi.RecordPrescription
	rxPending   int                             // prescriptions queued, not yet notarized
	unheld      map[notary.Commitment]*unheldRx // notarized prescriptions whose bundle no holder has yet (holder.go)
	heldAll     chan struct{}                   // closed when unheld empties; nil while it is empty
	receipts    int
	bound       *binding                        // the FHIR resources of its patient and physician; nil when not bound
	issued      map[notary.Commitment]*issuedRx // its notarized prescriptions, for their revocation (revoke.go)
	expiry      *time.Timer
	// continues is the session this room's continues, in a room taken
	// over from an instance that went away (takeover.go); "" otherwise.
	continues          string
	interruptionLogged bool        // the interrupted session's end is queued
	interrupted        []byte      // its receipt message, once notarized
	refresh            *time.Timer // the next round of fresh tickets, in a group
}

// participant is one role's slot in a room.
type participant struct {
	role       signalapi.Role
	subject    string
	c          *conn // nil while away
	joined     time.Time
	left       time.Time
	reconnects []time.Time
	prints     []signalapi.Fingerprint
	sawPeer    *signalapi.Fingerprint
	candidates int      // relayed since the participant's last offer or answer
	pending    [][]byte // encoded messages kept while away
	grace      *time.Timer
	tickets    ticketPair // the seat's resume tickets
	path       string     // the ICE candidate type it reported last
}

// slot is the index of a role in room.parts, in the order of
// signalapi.Roles.
func slot(r signalapi.Role) int {
	if r == signalapi.RolePhysician {
		return 1
	}
	return 0
}

// part returns the participant of a role, nil before it first joins.
func (r *room) part(role signalapi.Role) *participant { return r.parts[slot(role)] }

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func newRoom(s *Server, id string, expires time.Time) *room {
	r := &room{
		srv: s, id: id, session: newID(), created: s.now(), expires: expires,
		jobs: make(chan *job, jobQueue),
	}
	s.workers.Add(1)
	go r.work()
	r.expiry = time.AfterFunc(time.Until(expires), func() { r.end("expired") })
	if s.sealer != nil {
		r.mu.Lock()
		r.refresh = time.AfterFunc(ticketRefresh, r.refreshTickets)
		r.mu.Unlock()
	}
	return r
}

// join seats c with a join token in its role's slot: a first join, a
// return within the grace window, or a newer connection of the same
// participant (the older one is closed). Another subject in a taken role
// is refused. The token is recorded as used once the seat is certain, so
// a refused join does not spend it, and a token that seated someone
// already is refused before anyone is touched.
func (r *room) join(c *conn, claims *Claims, token [sha256.Size]byte) error {
	role := claims.Role
	now := r.srv.now()
	r.mu.Lock()
	if r.ending {
		r.mu.Unlock()
		return signalapi.RefuseFatal(signalapi.CodeRoomEnded, "the consultation in room %s is over", r.id)
	}
	p := r.part(role)
	if p != nil && p.subject != claims.Subject() {
		r.mu.Unlock()
		return signalapi.RefuseFatal(signalapi.CodeRoomFull, "the %s of room %s is another participant", role, r.id)
	}
	if err := r.srv.used.take(token, claims.ExpiresAt.Time.Add(tokenLeeway), now); err != nil {
		r.mu.Unlock()
		return err
	}
	first := p == nil
	if first {
		p = &participant{role: role, subject: claims.Subject(), joined: now}
		r.parts[slot(role)] = p
	}
	r.seatLocked(c, p, now, first, nil)
	return nil
}

// resume seats c in the slot whose resume ticket it presents, within the
// ticket's life: while the slot's connection is open, and for the grace
// window after it closed.
func (r *room) resume(c *conn, ticket ticketHash) error {
	now := r.srv.now()
	r.mu.Lock()
	if r.ending {
		r.mu.Unlock()
		return signalapi.RefuseFatal(signalapi.CodeRoomEnded, "the consultation in room %s is over", r.id)
	}
	var p *participant
	for _, q := range r.parts {
		if q != nil && q.tickets.matches(ticket) {
			p = q
		}
	}
	switch {
	case p == nil:
		r.mu.Unlock()
		return signalapi.RefuseFatal(signalapi.CodeTicketInvalid, "this resume ticket is not the seat's: a newer one replaced it, or it is from an earlier server; ask the app's backend for a new token")
	case p.c == nil && !now.Before(p.left.Add(r.srv.cfg.Grace)):
		r.mu.Unlock()
		return signalapi.RefuseFatal(signalapi.CodeTicketInvalid, "this resume ticket expired: its connection closed more than the grace window (%s) ago; ask the app's backend for a new token", r.srv.cfg.Grace)
	}
	r.seatLocked(c, p, now, false, &ticket)
	return nil
}

// seatLocked gives p's slot to c, closing p's older connection, and
// answers joined with a new resume ticket, then what was kept for p while
// it was away. first is p's first join; presented is the ticket c came
// back with, nil for a token. It unlocks r.mu.
func (r *room) seatLocked(c *conn, p *participant, now time.Time, first bool, presented *ticketHash) {
	role := p.role
	resumed := false
	replaced := p.c
	if !first {
		resumed = r.started
		if resumed && len(p.reconnects) < maxReconnects {
			p.reconnects = append(p.reconnects, now)
		}
	}
	if p.grace != nil {
		p.grace.Stop()
		p.grace = nil
	}
	ticket := r.ticketLocked(p, now, presented)
	p.c = c
	p.left = time.Time{} // back: the record's left is only for one not here at the end
	c.seat(r, role)
	peer := r.part(role.Other())
	peerPresent := peer != nil && peer.c != nil
	pending := p.pending
	p.pending = nil
	ttl := cmp.Or(r.srv.cfg.ICE.CredentialTTL, r.srv.cfg.MaxSessionLength)
	ice := r.srv.cfg.ICE.iceServers(r.session+"-"+string(role), now, ttl)
	c.enqueue(encode(&signalapi.Message{Type: signalapi.TypeJoined, Room: r.id, Session: r.session, Role: role, PeerPresent: &peerPresent, Resumed: resumed, Ticket: ticket, ICEServers: ice, ICETransportPolicy: r.srv.cfg.ICE.transportPolicy()}))
	for _, m := range pending {
		c.enqueue(m)
	}
	if role == signalapi.RolePatient {
		r.resendUnheldLocked(c)
	}
	if peerPresent {
		peer.c.enqueue(encode(&signalapi.Message{Type: signalapi.TypePeerJoined, Role: role, Resumed: resumed}))
	}
	r.mu.Unlock()
	if replaced != nil {
		replaced.fail(signalapi.RefuseFatal(signalapi.CodeReplaced, "this participant joined again on another connection"), "")
	}
	r.srv.metrics.joins.Inc()
}

// leave handles a closed connection: after the session started, the
// participant has the grace window to come back before the session ends.
func (r *room) leave(c *conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.part(c.role)
	if p == nil || p.c != c {
		return // replaced, or never seated
	}
	p.c = nil
	if r.ending {
		return // left by the end: not a departure of its own
	}
	p.left = r.srv.now()
	peer := r.part(c.role.Other())
	grace := r.srv.cfg.Grace
	if peer != nil && peer.c != nil {
		left := &signalapi.Message{Type: signalapi.TypePeerLeft, Role: c.role}
		if r.started { // before the start, nothing ends when a participant is away
			left.GraceMillis = grace.Milliseconds()
		}
		peer.c.enqueue(encode(left))
	}
	if r.started {
		reason := string(c.role) + "-disconnected"
		p.grace = time.AfterFunc(grace, func() { r.end(reason) })
	}
}

// handle acts on one message of a seated participant.
func (r *room) handle(c *conn, m *signalapi.Message) error {
	switch m.Type {
	case signalapi.TypeJoin:
		return signalapi.Refuse(signalapi.CodeAlreadyJoined, "this connection has joined already")
	case signalapi.TypeOffer, signalapi.TypeAnswer:
		fp, err := CheckSDP(m.SDP)
		if err != nil {
			return signalapi.Refuse(signalapi.CodeBadSDP, "%v", err)
		}
		return r.relaySDP(c, m, fp)
	case signalapi.TypeCandidate:
		return r.relayCandidate(c, m)
	case signalapi.TypeFingerprint:
		r.reportFingerprint(c, *m.Fingerprint) // set by the decoder
		return nil
	case signalapi.TypePrescription:
		return r.prescribe(c, m)
	case signalapi.TypeConsent:
		return r.consent(c, m)
	case signalapi.TypeKept:
		return r.kept(c, m)
	case signalapi.TypeRevoke:
		return r.requestRevoke(c, m)
	case signalapi.TypePath:
		r.mu.Lock()
		r.part(c.role).path = m.Path // checked by the decoder
		r.mu.Unlock()
		return nil
	case signalapi.TypeLeave:
		reason := string(c.role) + "-left"
		if m.Reason != "" {
			reason += ": " + m.Reason
		}
		r.mu.Lock()
		if p := r.part(c.role); p != nil && !r.ending {
			// The record's left time: this participant leaves now, though
			// its connection stays open until session-end is sent.
			p.left = r.srv.now()
		}
		r.mu.Unlock()
		r.end(reason)
		return nil
	}
	return signalapi.Refuse(signalapi.CodeUnknownType, "unknown message type %q", m.Type)
}

func (r *room) relaySDP(c *conn, m *signalapi.Message, fp signalapi.Fingerprint) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.activeLocked(); err != nil {
		return err
	}
	peer := r.part(c.role.Other())
	if peer == nil || peer.c == nil {
		return signalapi.Refuse(signalapi.CodePeerAbsent, "the %s is not connected; send the %s when they join", c.role.Other(), m.Type)
	}
	p := r.part(c.role)
	p.candidates = 0 // a new negotiation brings its own candidates
	if len(p.prints) == 0 || p.prints[len(p.prints)-1] != fp {
		if len(p.prints) >= 16 {
			return signalapi.Refuse(signalapi.CodeLimit, "too many DTLS certificates in one session")
		}
		p.prints = append(p.prints, fp)
	}
	peer.c.enqueue(encode(&signalapi.Message{Type: m.Type, SDP: m.SDP}))
	r.maybeStartLocked()
	return nil
}

// relayedCandidate is a candidate message as the server relays it: a
// Message with only these fields set encodes the same, but this one is a
// fraction of its size, and candidates are most of what a room relays.
type relayedCandidate struct {
	Type      signalapi.Type       `json:"type"`
	Candidate *signalapi.Candidate `json:"candidate,omitempty"`
}

func (r *room) relayCandidate(c *conn, m *signalapi.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.activeLocked(); err != nil {
		return err
	}
	p := r.part(c.role)
	if p.candidates >= maxCandidatesPerOffer {
		return signalapi.Refuse(signalapi.CodeBadCandidate, "more than %d candidates for one offer or answer", maxCandidatesPerOffer)
	}
	peer := r.part(c.role.Other())
	if peer == nil || peer.c == nil {
		return signalapi.Refuse(signalapi.CodePeerAbsent, "the %s is not connected", c.role.Other())
	}
	p.candidates++
	peer.c.enqueue(encodeValue(relayedCandidate{Type: signalapi.TypeCandidate, Candidate: m.Candidate}))
	return nil
}

func (r *room) reportFingerprint(c *conn, fp signalapi.Fingerprint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.part(c.role)
	p.sawPeer = &fp
	// Any certificate the other side announced in this session will do: a
	// report may arrive after the other side reloaded with a new one. A
	// certificate in the middle is in none of them.
	peer := r.part(c.role.Other())
	if peer == nil || !slices.Contains(peer.prints, fp) {
		r.mismatch = true
		r.srv.metrics.mismatches.Inc()
		r.srv.alert(signalapi.AlertFingerprintMismatch, r.id, fmt.Sprintf("the %s saw a DTLS certificate the %s did not announce", c.role, c.role.Other()))
	}
}

func (r *room) consent(c *conn, m *signalapi.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.activeLocked(); err != nil {
		return err
	}
	if len(r.consents) >= maxConsents {
		return signalapi.Refuse(signalapi.CodeLimit, "more than %d consent events in one session", maxConsents)
	}
	r.consents = append(r.consents, signalapi.RecordConsent{Time: ms(r.srv.now()), Role: c.role, Scope: m.Scope, Granted: *m.Granted})
	return nil
}

// activeLocked refuses messages once the end is decided.
func (r *room) activeLocked() error {
	if r.ending {
		return signalapi.Refuse(signalapi.CodeRoomEnded, "the consultation is over")
	}
	return nil
}

// maybeStartLocked commits the session-start record once both participants
// have joined and announced their DTLS fingerprints (offer and answer),
// and queues its notarization.
func (r *room) maybeStartLocked() {
	both := r.parts[0] != nil && r.parts[1] != nil
	if r.started || !both || len(r.parts[0].prints) == 0 || len(r.parts[1].prints) == 0 {
		return
	}
	r.started = true
	r.startTime = r.srv.now()
	d := commit(r.recordLocked(signalapi.PhaseStart))
	r.startCommit = d.commitment
	r.jobs <- &job{kind: notary.KindSessionStart, document: d}
}

// prescribe checks a physician's prescription, canonicalizes and commits
// it (the only time the server reads the document), and queues its
// notarization with the number of dispenses it allows.
func (r *room) prescribe(c *conn, m *signalapi.Message) error {
	if c.role != signalapi.RolePhysician {
		return signalapi.Refuse(signalapi.CodeForbidden, "only the physician may issue a prescription")
	}
	rx, err := checkPrescription(m.Resource)
	if err != nil {
		return err
	}
	canonical := rx.Canonical
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.activeLocked(); err != nil {
		return err
	}
	if err := r.bound.check(canonical); err != nil {
		return err
	}
	if !r.started {
		return signalapi.Refuse(signalapi.CodeNotStarted, "the session has not started: both participants must join and exchange offer and answer")
	}
	if r.srv.webhook.queue != nil && r.srv.undelivered.full() {
		return signalapi.Refuse(signalapi.CodeLimit, "the server holds %d bundles its webhook did not take, its limit: no prescription is notarized until the app fetches them (GET /v1/undelivered), so that none is lost", r.srv.cfg.MaxUndelivered)
	}
	if len(r.rx)+r.rxPending >= maxPrescriptions {
		return signalapi.Refuse(signalapi.CodeLimit, "more than %d prescriptions in one session", maxPrescriptions)
	}
	r.rxPending++
	r.jobs <- &job{kind: notary.KindPrescription, ref: m.Ref, link: r.startCommit, document: commitCanonical(canonical), fills: rx.Fills()}
	return nil
}

// end decides the end of the session: no more messages are taken; the end
// record is notarized after everything queued before it, then both
// participants get session-end and their connections close.
func (r *room) end(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ending {
		return
	}
	r.ending = true
	r.endReason = reason
	r.endTime = r.srv.now()
	r.expiry.Stop()
	if r.refresh != nil {
		r.refresh.Stop()
	}
	for _, p := range r.parts {
		if p != nil && p.grace != nil {
			p.grace.Stop()
		}
	}
	if !r.started {
		r.finishLocked(nil)
		return
	}
	// The end record is made by the worker when its turn comes (job.document
	// nil), so that it lists every prescription notarized before it.
	r.jobs <- &job{kind: notary.KindSessionEnd, link: r.startCommit}
}

// finishLocked forgets the room, sends session-end (with the end record's
// bundle, if it was notarized) and closes the connections and the job
// queue.
func (r *room) finishLocked(bundle []byte) {
	r.holdUnheldLocked()
	// Forgotten first: a participant told session-end and joining again at
	// once must be told the room ended, not find it still open.
	r.srv.forget(r)
	msg := &signalapi.Message{Type: signalapi.TypeSessionEnd, Reason: r.endReason}
	if bundle != nil {
		msg.Kind = notary.KindSessionEnd
	}
	data := encodeWithBundle(msg, bundle)
	for _, p := range r.parts {
		if p != nil && p.c != nil {
			p.c.enqueue(data)
			p.c.closeAfterSend()
		}
	}
	close(r.jobs)
}

// sendToLocked sends an encoded message to a role's participant, or keeps
// it for when the participant comes back.
func (r *room) sendToLocked(role signalapi.Role, data []byte) {
	p := r.part(role)
	if p == nil {
		return
	}
	if p.c != nil {
		p.c.enqueue(data)
		return
	}
	if len(p.pending) >= maxPending {
		r.srv.log.ErrorContext(r.srv.ctx, "a message for an absent participant was dropped: more than the session can send is waiting", "room", r.id, "session", r.session, "role", role, "waiting", len(p.pending))
		return
	}
	p.pending = append(p.pending, data)
}

// info describes the room for the sessions API: no subjects, no documents.
func (r *room) info(now time.Time) signalapi.SessionInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	si := signalapi.SessionInfo{
		Room: r.id, Session: r.session, Instance: r.srv.cfg.Instance, Created: r.created, Expires: r.expires.UTC(), Receipts: r.receipts,
		Prescriptions: len(r.rx), FingerprintMismatch: r.mismatch, State: signalapi.StateWaiting,
		Participants: []signalapi.ParticipantInfo{},
	}
	if r.started {
		t := r.startTime
		si.Started = &t
		si.DurationMillis = now.Sub(r.startTime).Milliseconds()
		si.State = signalapi.StateActive
	}
	for _, p := range r.parts {
		if p == nil {
			continue
		}
		ps := signalapi.ParticipantInfo{Role: p.role, Connected: p.c != nil, DTLS: signalapi.DTLSNew, Path: p.path}
		if len(p.prints) > 0 {
			ps.DTLS = signalapi.DTLSNegotiating
		}
		if p.sawPeer != nil {
			ps.DTLS = signalapi.DTLSConnected
		}
		if p.c == nil && r.started && !r.ending {
			si.State = signalapi.StateReconnecting
		}
		si.Participants = append(si.Participants, ps)
	}
	if r.ending {
		si.State = signalapi.StateEnding
	}
	return si
}
