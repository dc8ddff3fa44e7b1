package session

import (
	"errors"
	"fmt"
	"time"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/signalapi"
)

// A prescription's bundle is the only proof of it (its salt lives nowhere
// else), and the server holds it only in memory. So the physician is sent
// a prescription's receipt only once the bundle has a holder: the
// patient's app, which says so with a kept message once it stored it, or
// the app's backend, whose webhook answered 2xx. Until then the bundle
// waits in room.unheld, and goes to the patient again whenever the patient
// comes back. A session that ends with bundles no holder took gives them
// to the undelivered store (GET /v1/undelivered), the physician's receipt
// saying so (holder "server").

// unheldRx is a notarized prescription whose bundle no holder has yet.
type unheldRx struct {
	ref      string
	bundle   []byte
	delivery delivery // its webhook event, also what the undelivered store keeps
}

// awaitHolderLocked relays a notarized prescription to the patient and the
// webhook, and keeps it until one of them holds it.
func (r *room) awaitHolderLocked(j *job, n *notarized, d delivery) {
	c := n.receipt.Leaf.Commitment
	if r.unheld == nil {
		r.unheld = map[notary.Commitment]*unheldRx{}
	}
	if len(r.unheld) == 0 {
		r.heldAll = make(chan struct{})
	}
	r.unheld[c] = &unheldRx{ref: j.ref, bundle: n.bundle, delivery: d}
	r.srv.metrics.unheld.Inc()
	if p := r.part(signalapi.RolePatient); p != nil && p.c != nil {
		p.c.enqueue(r.relayedLocked(r.unheld[c]))
	}
	// Otherwise the patient gets it on coming back (resendUnheldLocked).
}

// relayedLocked is the prescription message that gives the patient a
// bundle.
func (r *room) relayedLocked(u *unheldRx) []byte {
	return encodeWithBundle(&signalapi.Message{Type: signalapi.TypePrescription, Kind: notary.KindPrescription, Ref: u.ref, Session: r.session}, u.bundle)
}

// resendUnheldLocked sends the patient, who just (re)joined, every bundle
// it has not said it keeps: one sent to an earlier connection may not
// have arrived. A client ignores a bundle it has already (by commitment).
func (r *room) resendUnheldLocked(c *conn) {
	for _, u := range r.unheld {
		c.enqueue(r.relayedLocked(u))
	}
}

// kept is the patient saying it keeps a bundle. A commitment that does
// not wait for a holder (kept twice, or after a reload) is ignored.
func (r *room) kept(c *conn, m *signalapi.Message) error {
	if c.role != signalapi.RolePatient {
		return signalapi.Refuse(signalapi.CodeForbidden, "only the patient keeps a prescription's bundle; the physician's copy does not count, since the patient needs it")
	}
	commitment, err := notary.ParseCommitment(m.Commitment)
	if err != nil { // the decoder checked it
		return signalapi.Refuse(signalapi.CodeBadMessage, "commitment: %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.heldLocked(commitment, signalapi.HolderPatient)
	return nil
}

// heldLocked records that a bundle has a holder and sends the physician
// its receipt, saying who holds it.
func (r *room) heldLocked(commitment notary.Commitment, h signalapi.Holder) {
	u := r.unheld[commitment]
	if u == nil {
		return
	}
	delete(r.unheld, commitment)
	r.srv.metrics.unheld.Dec()
	r.srv.metrics.holders.WithLabelValues(string(h)).Inc()
	if len(r.unheld) == 0 {
		close(r.heldAll)
		r.heldAll = nil
	}
	r.sendToLocked(signalapi.RolePhysician, encodeWithBundle(&signalapi.Message{
		Type: signalapi.TypeReceipt, Kind: notary.KindPrescription, Ref: u.ref, Session: r.session, Holder: h,
	}, u.bundle))
}

// awaitHolders waits, before the session-end record is made, until every
// prescription's bundle has a holder, for at most HolderWait, and only
// while one can still come: the patient is connected, or a webhook is
// set.
func (r *room) awaitHolders() {
	r.mu.Lock()
	all := r.heldAll
	p := r.part(signalapi.RolePatient)
	patientHere := p != nil && p.c != nil
	r.mu.Unlock()
	if all == nil || !patientHere && r.srv.cfg.Webhook.URL == "" {
		return
	}
	t := time.NewTimer(r.srv.cfg.HolderWait)
	defer t.Stop()
	select {
	case <-all:
	case <-t.C:
	case <-r.srv.ctx.Done():
	}
}

// holdUnheldLocked gives the bundles no holder took by the session's end
// to the undelivered store, and sends the physician their receipts saying
// so (holder "server"); a bundle the store has no room for is the
// physician's alone, and the physician is told to pass it on.
func (r *room) holdUnheldLocked() {
	for commitment, u := range r.unheld {
		delete(r.unheld, commitment)
		r.srv.metrics.unheld.Dec()
		why := errors.New("the session ended before the patient's app said it keeps the bundle or the webhook took it")
		msg := &signalapi.Message{Type: signalapi.TypeReceipt, Kind: notary.KindPrescription, Ref: u.ref, Session: r.session, Holder: signalapi.HolderServer}
		if r.srv.undelivered.keep(u.delivery, why, time.Now()) {
			r.srv.metrics.holders.WithLabelValues(string(signalapi.HolderServer)).Inc()
			r.srv.log.WarnContext(r.srv.ctx, "a prescription's bundle had no holder at the session's end: held for the app to fetch (GET /v1/undelivered)", "room", r.id, "session", r.session, "id", u.delivery.id)
			r.srv.alert(signalapi.AlertWebhookFailed, r.id, fmt.Sprintf("prescription %q: no holder took its bundle by the session's end; held as %s for GET /v1/undelivered", u.ref, u.delivery.id))
		} else {
			msg.Holder = ""
			r.srv.log.ErrorContext(r.srv.ctx, "a prescription's bundle had no holder at the session's end and the undelivered store is full: only the physician has it", "room", r.id, "session", r.session, "id", u.delivery.id)
			r.srv.alert(signalapi.AlertWebhookFailed, r.id, fmt.Sprintf("prescription %q: no holder took its bundle and the undelivered store is full: only the physician has it", u.ref))
			r.sendToLocked(signalapi.RolePhysician, encode(&signalapi.Message{Type: signalapi.TypeError, Code: signalapi.CodeLimit, Ref: u.ref,
				Message: "the patient never confirmed keeping this prescription's bundle and the server cannot hold it: the receipt that follows is the only copy, give it to the patient"}))
		}
		r.sendToLocked(signalapi.RolePhysician, encodeWithBundle(msg, u.bundle))
	}
	if r.heldAll != nil {
		close(r.heldAll)
		r.heldAll = nil
	}
}

// webhookTook is told of every event the webhook took: a copy held for
// the app is forgotten, and a prescription's bundle has its holder.
func (s *Server) webhookTook(d delivery) {
	s.undelivered.ack(d.id)
	if d.event != notary.KindPrescription {
		return
	}
	s.mu.Lock()
	r := s.rooms[d.room]
	s.mu.Unlock()
	if r == nil {
		return // ended: the physician was told at the end
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.heldLocked(d.commitment, signalapi.HolderWebhook)
}
