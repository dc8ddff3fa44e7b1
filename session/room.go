package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// Per-session limits.
const (
	maxCandidatesPerOffer = 100 // ICE candidates one participant may send per offer or answer
	maxPrescriptions      = 200
	maxConsents           = 64
	maxPending            = 64 // messages kept for an absent participant
	jobQueue              = maxPrescriptions + 4
)

const (
	patient   = 0
	physician = 1
)

func roleIndex(role string) int {
	if role == RolePhysician {
		return physician
	}
	return patient
}

func roleName(i int) string {
	if i == physician {
		return RolePhysician
	}
	return RolePatient
}

// room is one consultation: two participant slots, the session record and
// the queue of notarizations, processed in order by the room's worker.
type room struct {
	srv     *Server
	id      string
	session string
	created time.Time
	expires time.Time
	jobs    chan *job

	mu          sync.Mutex
	parts       [2]*participant
	started     bool // the session-start record is committed
	startTime   time.Time
	startCommit notary.Commitment
	ending      bool // the end is decided; no more messages
	endReason   string
	endTime     time.Time
	mismatch    bool
	consents    []RecordConsent
	rx          []RecordPrescription
	rxPending   int // prescriptions queued, not yet notarized
	receipts    int
	expiry      *time.Timer
}

// participant is one role's slot in a room.
type participant struct {
	role       int
	subject    string
	c          *conn // nil while away
	joined     time.Time
	left       time.Time
	reconnects []time.Time
	prints     []Fingerprint
	sawPeer    *Fingerprint
	candidates int // relayed since the participant's last offer or answer
	pending    [][]byte
	grace      *time.Timer
}

// job is one notarization of a room, run by the room's worker in order.
type job struct {
	kind notary.Kind
	ref  string
	salt notary.Salt
	link notary.Commitment
	// document returns the canonical bytes to commit; it runs on the worker,
	// so an end record sees every prescription notarized before it.
	document func() ([]byte, error)
	// done receives the bundle, or the error when notarization failed.
	done func(b *notary.Bundle, bundleJSON []byte, err error)
}

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
	return r
}

// join seats c in its role's slot: a first join, a return within the grace
// window, or a newer connection of the same participant (the older one is
// closed). Another subject in a taken role is refused.
func (r *room) join(c *conn, claims *Claims) error {
	role := roleIndex(claims.Role)
	now := r.srv.now()
	r.mu.Lock()
	if r.ending {
		r.mu.Unlock()
		return fatalErr(CodeRoomEnded, "the consultation in room %s is over", r.id)
	}
	p := r.parts[role]
	resumed := false
	var replaced *conn
	switch {
	case p == nil:
		p = &participant{role: role, subject: claims.Subject(), joined: now}
		r.parts[role] = p
	case p.subject != claims.Subject():
		r.mu.Unlock()
		return fatalErr(CodeRoomFull, "the %s of room %s is another participant", claims.Role, r.id)
	default:
		replaced = p.c
		resumed = r.started
		if resumed {
			p.reconnects = append(p.reconnects, now)
		}
		if p.grace != nil {
			p.grace.Stop()
			p.grace = nil
		}
	}
	p.c = c
	c.room, c.role = r, role
	c.roomID.Store(&r.id)
	peer := r.parts[1-role]
	peerPresent := peer != nil && peer.c != nil
	pending := p.pending
	p.pending = nil
	r.sendLocked(c, &Message{Type: TypeJoined, Room: r.id, Session: r.session, Role: claims.Role, PeerPresent: &peerPresent, Resumed: resumed})
	for _, m := range pending {
		c.enqueue(m)
	}
	if peerPresent {
		r.sendLocked(peer.c, &Message{Type: TypePeerJoined, Role: claims.Role, Resumed: resumed})
	}
	r.mu.Unlock()
	if replaced != nil {
		replaced.fail(fatalErr(CodeReplaced, "this participant joined again on another connection"), "")
	}
	r.srv.metrics.joins.Inc()
	return nil
}

// leave handles a closed connection: after the session started, the
// participant has the grace window to come back before the session ends.
func (r *room) leave(c *conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.parts[c.role]
	if p == nil || p.c != c {
		return // replaced, or never seated
	}
	p.c = nil
	p.left = r.srv.now()
	if r.ending {
		return
	}
	peer := r.parts[1-c.role]
	grace := r.srv.cfg.Grace
	if peer != nil && peer.c != nil {
		left := &Message{Type: TypePeerLeft, Role: roleName(c.role)}
		if r.started { // before the start, nothing ends when a participant is away
			left.GraceMillis = grace.Milliseconds()
		}
		r.sendLocked(peer.c, left)
	}
	if r.started {
		reason := roleName(c.role) + "-disconnected"
		p.grace = time.AfterFunc(grace, func() { r.end(reason) })
	}
}

// handle acts on one message of a seated participant.
func (r *room) handle(c *conn, m *Message) error {
	switch m.Type {
	case TypeJoin:
		return protoErr(CodeAlreadyJoined, "this connection has joined already")
	case TypeOffer, TypeAnswer:
		fp, err := CheckSDP(m.SDP)
		if err != nil {
			return protoErr(CodeBadSDP, "%v", err)
		}
		return r.relaySDP(c, m, fp)
	case TypeCandidate:
		return r.relayCandidate(c, m)
	case TypeFingerprint:
		fp, _ := ParseFingerprint(m.Fingerprint) // checked by the decoder
		r.reportFingerprint(c, fp)
		return nil
	case TypePrescription:
		return r.prescribe(c, m)
	case TypeConsent:
		return r.consent(c, m)
	case TypeLeave:
		reason := roleName(c.role) + "-left"
		if m.Reason != "" {
			reason += ": " + m.Reason
		}
		r.end(reason)
		return nil
	}
	return protoErr(CodeUnknownType, "unknown message type %q", m.Type)
}

func (r *room) relaySDP(c *conn, m *Message, fp Fingerprint) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.activeLocked(); err != nil {
		return err
	}
	peer := r.parts[1-c.role]
	if peer == nil || peer.c == nil {
		return protoErr(CodePeerAbsent, "the %s is not connected; send the %s when they join", roleName(1-c.role), m.Type)
	}
	p := r.parts[c.role]
	p.candidates = 0 // a new negotiation brings its own candidates
	if len(p.prints) == 0 || p.prints[len(p.prints)-1] != fp {
		if len(p.prints) >= 16 {
			return protoErr(CodeLimit, "too many DTLS certificates in one session")
		}
		p.prints = append(p.prints, fp)
	}
	r.sendLocked(peer.c, &Message{Type: m.Type, SDP: m.SDP})
	r.maybeStartLocked()
	return nil
}

func (r *room) relayCandidate(c *conn, m *Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.activeLocked(); err != nil {
		return err
	}
	p := r.parts[c.role]
	if p.candidates >= maxCandidatesPerOffer {
		return protoErr(CodeBadCandidate, "more than %d candidates for one offer or answer", maxCandidatesPerOffer)
	}
	peer := r.parts[1-c.role]
	if peer == nil || peer.c == nil {
		return protoErr(CodePeerAbsent, "the %s is not connected", roleName(1-c.role))
	}
	p.candidates++
	r.sendLocked(peer.c, &Message{Type: TypeCandidate, Candidate: m.Candidate})
	return nil
}

func (r *room) reportFingerprint(c *conn, fp Fingerprint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.parts[c.role]
	p.sawPeer = &fp
	// Any certificate the other side announced in this session will do: a
	// report may arrive after the other side reloaded with a new one. A
	// certificate in the middle is in none of them.
	peer := r.parts[1-c.role]
	if peer == nil || !slices.Contains(peer.prints, fp) {
		r.mismatch = true
		r.srv.metrics.mismatches.Inc()
		r.srv.alert("fingerprint-mismatch", r.id, fmt.Sprintf("the %s saw a DTLS certificate the %s did not announce", roleName(c.role), roleName(1-c.role)))
	}
}

func (r *room) consent(c *conn, m *Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.activeLocked(); err != nil {
		return err
	}
	if len(r.consents) >= maxConsents {
		return protoErr(CodeLimit, "more than %d consent events in one session", maxConsents)
	}
	r.consents = append(r.consents, RecordConsent{Time: ms(r.srv.now()), Role: roleName(c.role), Scope: m.Scope, Granted: *m.Granted})
	return nil
}

// activeLocked refuses messages once the end is decided.
func (r *room) activeLocked() error {
	if r.ending {
		return protoErr(CodeRoomEnded, "the consultation is over")
	}
	return nil
}

// maybeStartLocked commits the session-start record once both participants
// have joined and announced their DTLS fingerprints (offer and answer).
func (r *room) maybeStartLocked() {
	if r.started || r.parts[0] == nil || r.parts[1] == nil || len(r.parts[0].prints) == 0 || len(r.parts[1].prints) == 0 {
		return
	}
	r.started = true
	r.startTime = r.srv.now()
	doc, err := r.recordLocked("start").canonical()
	if err != nil { // a record always encodes
		panic(fmt.Sprintf("session record does not encode: %v", err))
	}
	salt := newSalt()
	r.startCommit = notary.Commit(salt, doc)
	r.queueLocked(&job{kind: notary.KindSessionStart, document: func() ([]byte, error) { return doc, nil }, done: func(b *notary.Bundle, bj []byte, err error) {
		r.delivered(KindName(notary.KindSessionStart), "", b, bj, err, true)
	}}, salt)
}

// prescribe checks and queues a physician's prescription.
func (r *room) prescribe(c *conn, m *Message) error {
	if c.role != physician {
		return protoErr(CodeForbidden, "only the physician may issue a prescription")
	}
	doc, err := CheckMedicationRequest(m.Resource)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.activeLocked(); err != nil {
		return err
	}
	if !r.started {
		return protoErr(CodeNotStarted, "the session has not started: both participants must join and exchange offer and answer")
	}
	if len(r.rx)+r.rxPending >= maxPrescriptions {
		return protoErr(CodeLimit, "more than %d prescriptions in one session", maxPrescriptions)
	}
	r.rxPending++
	ref := m.Ref
	r.queueLocked(&job{kind: notary.KindPrescription, ref: ref, link: r.startCommit, document: func() ([]byte, error) { return doc, nil }, done: func(b *notary.Bundle, bj []byte, err error) {
		r.mu.Lock()
		r.rxPending--
		if err == nil {
			r.rx = append(r.rx, RecordPrescription{Commitment: b.Receipt.Leaf.Commitment, Index: b.Receipt.Index})
		}
		r.mu.Unlock()
		r.delivered(KindName(notary.KindPrescription), ref, b, bj, err, false)
	}}, newSalt())
	return nil
}

// end decides the end of the session: no more messages are taken; the end
// record is notarized after everything queued before it, then both
// participants get session-end and their connections close.
func (r *room) end(reason string) {
	r.mu.Lock()
	if r.ending {
		r.mu.Unlock()
		return
	}
	r.ending = true
	r.endReason = reason
	r.endTime = r.srv.now()
	r.expiry.Stop()
	for _, p := range r.parts {
		if p != nil && p.grace != nil {
			p.grace.Stop()
		}
	}
	if !r.started {
		r.finishLocked(nil, nil)
		r.mu.Unlock()
		return
	}
	r.queueLocked(&job{kind: notary.KindSessionEnd, link: r.startCommit, document: func() ([]byte, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.recordLocked("end").canonical()
	}, done: func(b *notary.Bundle, bj []byte, err error) {
		r.delivered(KindName(notary.KindSessionEnd), "", b, bj, err, true)
		r.mu.Lock()
		r.finishLocked(b, bj)
		r.mu.Unlock()
	}}, newSalt())
	r.mu.Unlock()
}

// finishLocked sends session-end, closes the connections and the job
// queue, and forgets the room.
func (r *room) finishLocked(b *notary.Bundle, bundleJSON []byte) {
	msg := &Message{Type: TypeSessionEnd, Reason: r.endReason}
	if b != nil {
		msg.Kind = KindName(notary.KindSessionEnd)
		msg.Bundle = bundleJSON
	}
	data := encode(msg)
	for _, p := range r.parts {
		if p != nil && p.c != nil {
			p.c.enqueue(data)
			p.c.closeAfterSend()
		}
	}
	close(r.jobs)
	r.srv.forget(r)
}

// queueLocked adds a job; the queue is sized for every job a session may
// have, so this never blocks.
func (r *room) queueLocked(j *job, salt notary.Salt) {
	j.salt = salt
	r.jobs <- j
}

// work runs the room's notarizations in order until the queue closes.
func (r *room) work() {
	defer r.srv.workers.Done()
	for j := range r.jobs {
		b, bj, err := r.notarize(j)
		j.done(b, bj, err)
	}
}

func (r *room) notarize(j *job) (*notary.Bundle, []byte, error) {
	doc, err := j.document()
	if err != nil {
		return nil, nil, err
	}
	commitment := notary.Commit(j.salt, doc)
	ctx, cancel := context.WithTimeout(r.srv.ctx, r.srv.cfg.NotarizeTimeout)
	defer cancel()
	start := time.Now()
	resp, err := r.srv.cfg.Notary.Notarize(ctx, notaryapi.Entry{Kind: j.kind, Commitment: commitment, Link: j.link})
	r.srv.metrics.notarizeSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		r.srv.metrics.notarizations.WithLabelValues(KindName(j.kind), "error").Inc()
		return nil, nil, fmt.Errorf("notarize %s: %w", KindName(j.kind), err)
	}
	rc := resp.Receipt
	if rc == nil || rc.Leaf.Commitment != commitment || rc.Leaf.Kind != j.kind || rc.Leaf.Link != j.link {
		r.srv.metrics.notarizations.WithLabelValues(KindName(j.kind), "error").Inc()
		return nil, nil, errors.New("the notary answered with a receipt for another entry")
	}
	r.srv.metrics.notarizations.WithLabelValues(KindName(j.kind), "ok").Inc()
	b := &notary.Bundle{Document: json.RawMessage(doc), Salt: j.salt, Receipt: *rc}
	bj, err := b.MarshalJSON()
	if err != nil {
		return nil, nil, err
	}
	return b, bj, nil
}

// delivered hands a notarization's outcome to the participants and the
// webhook: a session receipt goes to both, a prescription's receipt to the
// physician and the prescription itself to the patient.
func (r *room) delivered(kind, ref string, b *notary.Bundle, bundleJSON []byte, err error, both bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.srv.log.Warn("notarization failed", "room", r.id, "session", r.session, "kind", kind, "err", err)
		r.srv.alert("notary-unavailable", r.id, fmt.Sprintf("%s not notarized: %v", kind, err))
		msg := &Message{Type: TypeError, Code: CodeNotaryDown, Ref: ref, Message: fmt.Sprintf("the %s could not be notarized; nothing was recorded (%v)", kind, err)}
		r.sendToLocked(physician, msg)
		if both {
			r.sendToLocked(patient, msg)
		}
		return
	}
	r.receipts++
	r.srv.webhook.deliver(WebhookEvent{Event: kind, Room: r.id, Session: r.session, Ref: ref, Bundle: bundleJSON})
	if kind == KindName(notary.KindSessionEnd) {
		return // session-end carries it to the participants
	}
	receipt := &Message{Type: TypeReceipt, Kind: kind, Ref: ref, Session: r.session, Bundle: bundleJSON}
	r.sendToLocked(physician, receipt)
	if both {
		r.sendToLocked(patient, receipt)
	} else {
		r.sendToLocked(patient, &Message{Type: TypePrescription, Kind: kind, Ref: ref, Session: r.session, Bundle: bundleJSON})
	}
}

// sendToLocked sends to a role's participant, or keeps the message for
// when it comes back.
func (r *room) sendToLocked(role int, m *Message) {
	p := r.parts[role]
	if p == nil {
		return
	}
	data := encode(m)
	if p.c != nil {
		p.c.enqueue(data)
		return
	}
	if len(p.pending) < maxPending {
		p.pending = append(p.pending, data)
	}
}

func (r *room) sendLocked(c *conn, m *Message) { c.enqueue(encode(m)) }

// recordLocked builds the session record as it stands.
func (r *room) recordLocked(phase string) *Record {
	rec := &Record{
		Format: RecordFormat, Phase: phase, Room: r.id, Session: r.session,
		Started: ms(r.startTime), FingerprintMismatch: r.mismatch,
		Participants: []RecordParticipant{},
	}
	if phase == "end" {
		t := ms(r.endTime)
		rec.Ended, rec.EndReason = &t, r.endReason
		rec.Consents = append(rec.Consents, r.consents...)
		rec.Prescriptions = append(rec.Prescriptions, r.rx...)
	} else {
		rec.Consents = append(rec.Consents, r.consents...)
	}
	for _, p := range r.parts {
		if p == nil {
			continue
		}
		rp := RecordParticipant{Role: roleName(p.role), Subject: p.subject, Joined: ms(p.joined), Fingerprints: append([]Fingerprint(nil), p.prints...), SawPeer: p.sawPeer}
		if phase == "end" && !p.left.IsZero() {
			t := ms(p.left)
			rp.Left = &t
		}
		for _, t := range p.reconnects {
			rp.Reconnects = append(rp.Reconnects, ms(t))
		}
		rec.Participants = append(rec.Participants, rp)
	}
	return rec
}

// info describes the room for the sessions API: no subjects, no documents.
func (r *room) info(now time.Time) SessionInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	si := SessionInfo{
		Room: r.id, Session: r.session, Created: r.created, Receipts: r.receipts,
		Prescriptions: len(r.rx), FingerprintMismatch: r.mismatch, State: "waiting",
	}
	if r.started {
		t := r.startTime
		si.Started = &t
		si.DurationMillis = now.Sub(r.startTime).Milliseconds()
		si.State = "active"
	}
	for _, p := range r.parts {
		if p == nil {
			continue
		}
		ps := ParticipantInfo{Role: roleName(p.role), Connected: p.c != nil, DTLS: "new"}
		if len(p.prints) > 0 {
			ps.DTLS = "negotiating"
		}
		if p.sawPeer != nil {
			ps.DTLS = "connected"
		}
		if p.c == nil && r.started && !r.ending {
			si.State = "reconnecting"
		}
		si.Participants = append(si.Participants, ps)
	}
	if r.ending {
		si.State = "ending"
	}
	return si
}

func newSalt() notary.Salt { return notary.NewSalt() }

// KindName returns a leaf kind's name as the protocol writes it.
func KindName(k notary.Kind) string { return k.String() }
