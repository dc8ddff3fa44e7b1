package session

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/signalapi"
)

// A document goes through the server once: the record or the prescription
// is canonicalized and committed when its job is made (document), the
// receipt is checked against that commitment, the bundle's JSON is built
// from the same canonical bytes (appendBundle), and that one encoding goes
// into every message and the webhook event (notarized).

// job is one notarization of a room, run by the room's worker in order.
type job struct {
	kind notary.Kind
	ref  string // a prescription's reference
	// session is, for the end record of an interrupted session
	// (takeover.go), that session; "" for the room's own.
	session string
	link    notary.Commitment
	// fills is the number of dispenses a prescription allows, logged with
	// it as its allowance (notary.NewAllowance); 0 for other kinds.
	fills int
	// document is what to notarize; nil for the session-end record, which the
	// worker makes when the job's turn comes, so that it lists every
	// prescription notarized before it, and for a revocation (of the
	// prescription link, proven with salt: revoke.go), which has none.
	document *document
	salt     notary.Salt // a revocation's: the prescription's salt
}

// document is a canonical document committed under a fresh salt.
type document struct {
	canonical  []byte
	salt       notary.Salt
	commitment notary.Commitment
}

// commitCanonical commits canonical bytes under a fresh salt.
func commitCanonical(canonical []byte) *document {
	salt := notary.NewSalt()
	return &document{canonical: canonical, salt: salt, commitment: notary.Commit(salt, canonical)}
}

// notarized is a document's receipt and its bundle, encoded once.
type notarized struct {
	receipt *notary.Receipt
	// bundle is the bundle's JSON (docs/FORMATS.md): document, salt and
	// receipt.
	bundle []byte
}

// work runs the room's notarizations in order until the queue closes.
func (r *room) work() {
	defer r.srv.workers.Done()
	for j := range r.jobs {
		if j.kind == notary.KindRevocation {
			resp, err := r.srv.revoke(r.srv.ctx, r.id, j.link, j.salt)
			r.revoked(j.link, resp, err)
			continue
		}
		if j.document == nil {
			r.awaitHolders()
			r.mu.Lock()
			j.document = commit(r.recordLocked(signalapi.PhaseEnd))
			r.mu.Unlock()
		}
		n, err := r.notarize(j)
		r.delivered(j, n, err)
	}
}

// notarize has the cluster log the job's commitment (a prescription with
// its allowance, which the cluster logs in a leaf of its own right after
// it) and checks that the receipt is for it.
func (r *room) notarize(j *job) (*notarized, error) {
	ctx, cancel := context.WithTimeout(r.srv.ctx, r.srv.cfg.NotarizeTimeout)
	defer cancel()
	start := time.Now()
	e := notaryapi.Entry{Kind: j.kind, Commitment: j.document.commitment, Link: j.link}
	if j.fills > 0 {
		// The allowance's lock is the end of the dispense chain seeded from
		// the salt: only a holder of the bundle can dispense or revoke.
		a, err := notary.NewAllowance(j.document.salt, j.document.commitment, j.fills)
		if err != nil { // the prescription check bounds the fills
			return nil, fmt.Errorf("notarize %s: %w", j.kind, err)
		}
		e.Allowance = &a
	}
	resp, err := r.srv.cfg.Notary.NotarizeSigned(ctx, e, r.srv.cfg.ReceiptSignatures)
	r.srv.metrics.notarizeSeconds.Observe(time.Since(start).Seconds())
	if err == nil {
		if receipt := resp.Receipt; receipt == nil || receipt.Leaf.Commitment != j.document.commitment || receipt.Leaf.Kind != j.kind || receipt.Leaf.Link != j.link {
			err = errors.New("the notary answered with a receipt for another entry")
		}
	}
	if err == nil && r.srv.cfg.ReceiptWitnesses > 0 {
		resp.Receipt = r.srv.witnessed(r.id, resp.Receipt)
	}
	var bundle []byte
	if err == nil {
		receipt := resp.Receipt
		size := len(j.document.canonical) + len(receipt.Checkpoint) + 2*len(receipt.Origin) + 67*len(receipt.InclusionProof) + 512
		bundle, err = appendBundle(make([]byte, 0, size), j.document, receipt)
	}
	if err != nil {
		r.srv.metrics.notarizations.WithLabelValues(j.kind.String(), "error").Inc()
		return nil, fmt.Errorf("notarize %s: %w", j.kind, err)
	}
	r.srv.metrics.notarizations.WithLabelValues(j.kind.String(), "ok").Inc()
	return &notarized{receipt: resp.Receipt, bundle: bundle}, nil
}

// witnessPoll is how often a receipt waiting for witnesses asks again.
const witnessPoll = 100 * time.Millisecond

// witnessed waits, up to ReceiptWitnessWait, for the receipt proven into a
// checkpoint that ReceiptWitnesses witnesses cosigned; past the wait, or if
// the server stops, it returns the receipt it was given. room names the
// room it is for in the logs ("" for none).
func (s *Server) witnessed(room string, receipt *notary.Receipt) *notary.Receipt {
	cfg := s.cfg
	ctx, cancel := context.WithTimeout(s.ctx, cfg.ReceiptWitnessWait)
	defer cancel()
	tick := time.NewTicker(witnessPoll)
	defer tick.Stop()
	for {
		w, err := cfg.Notary.ReceiptWitnessed(ctx, receipt.Leaf.Commitment, cfg.ReceiptSignatures, cfg.ReceiptWitnesses)
		if err == nil && w != nil && w.Leaf == receipt.Leaf && w.Index == receipt.Index {
			s.metrics.witnessed.WithLabelValues("cosigned").Inc()
			return w
		}
		if errors.Is(err, notaryapi.ErrBadRequest) {
			// The cluster has fewer witnesses than asked for: no wait helps.
			s.metrics.witnessed.WithLabelValues("refused").Inc()
			s.log.ErrorContext(s.ctx, "the cluster refuses receipts cosigned by this many witnesses: delivering without their cosignatures",
				"room", room, "witnesses", cfg.ReceiptWitnesses, "error", err)
			return receipt
		}
		select {
		case <-ctx.Done():
			s.metrics.witnessed.WithLabelValues("timeout").Inc()
			s.log.WarnContext(s.ctx, "no receipt cosigned by enough witnesses in time: delivering it without their cosignatures",
				"room", room, "witnesses", cfg.ReceiptWitnesses, "wait", cfg.ReceiptWitnessWait, "index", receipt.Index, "error", err)
			return receipt
		case <-tick.C:
		}
	}
}

// appendBundle appends the version-1 JSON form of the bundle of a JSON
// document to b: the bytes notary.Bundle.MarshalJSON writes, made from the
// canonical bytes at hand instead of canonicalizing the document again.
func appendBundle(b []byte, d *document, receipt *notary.Receipt) ([]byte, error) {
	b = append(b, `{"version":`...)
	b = strconv.AppendInt(b, notary.BundleVersion, 10)
	b = append(b, `,"document":`...)
	b = append(b, d.canonical...)
	b = append(b, `,"salt":"`...)
	b = hex.AppendEncode(b, d.salt[:])
	b = append(b, `","receipt":`...)
	b, err := receipt.AppendJSON(b)
	return append(b, '}'), err
}

// delivered hands a notarization's outcome to the participants and the
// webhook: a session-start receipt goes to both, a prescription itself to
// the patient and its receipt to the physician once a holder has it
// (holder.go), the
// session-end record with session-end to both. A failure is told to the
// participants concerned and raised as an alert.
func (r *room) delivered(j *job, n *notarized, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if j.kind == notary.KindPrescription {
		r.rxPending--
		if err == nil {
			r.rx = append(r.rx, signalapi.RecordPrescription{Commitment: n.receipt.Leaf.Commitment, Index: n.receipt.Index})
			r.issuedLocked(j, n)
		}
	}
	var d delivery
	if err != nil {
		r.failedLocked(j, err)
	} else {
		r.receipts++
		d = newDelivery(webhookEvent{Event: j.kind, Room: r.id, Session: cmp.Or(j.session, r.session), Ref: j.ref}, n.bundle)
		d.commitment = n.receipt.Leaf.Commitment
		r.srv.webhook.deliver(d)
	}
	switch {
	case j.session != "": // an interrupted session's end: to both, the room goes on
		if err == nil {
			receipt := encodeWithBundle(&signalapi.Message{Type: signalapi.TypeReceipt, Kind: j.kind, Session: j.session}, n.bundle)
			r.interrupted = receipt // for a participant not back yet (takeSeat)
			r.sendToLocked(signalapi.RolePhysician, receipt)
			r.sendToLocked(signalapi.RolePatient, receipt)
		}
	case j.kind == notary.KindSessionStart:
		if err == nil {
			receipt := encodeWithBundle(&signalapi.Message{Type: signalapi.TypeReceipt, Kind: j.kind, Session: r.session}, n.bundle)
			r.sendToLocked(signalapi.RolePhysician, receipt)
			r.sendToLocked(signalapi.RolePatient, receipt)
			r.sendTicketsLocked() // tickets that name the start, for a takeover's record
		}
	case j.kind == notary.KindPrescription:
		if err == nil {
			r.awaitHolderLocked(j, n, d) // the physician's receipt once the bundle has a holder
		}
	case j.kind == notary.KindSessionEnd:
		var bundle []byte
		if err == nil {
			bundle = n.bundle
		}
		r.finishLocked(bundle)
	}
}

// failedLocked tells the participants concerned that a notarization
// failed: the physician of a prescription, both of a session record.
func (r *room) failedLocked(j *job, err error) {
	r.srv.log.WarnContext(r.srv.ctx, "notarization failed", "room", r.id, "session", r.session, "kind", j.kind, "error", err)
	r.srv.alert(signalapi.AlertNotaryUnavailable, r.id, fmt.Sprintf("%s not notarized: %v", j.kind, err))
	msg := encode(&signalapi.Message{Type: signalapi.TypeError, Code: signalapi.CodeNotaryUnavailable, Ref: j.ref,
		Message: fmt.Sprintf("the %s could not be notarized; nothing was recorded (%v)", j.kind, err)})
	r.sendToLocked(signalapi.RolePhysician, msg)
	if j.kind != notary.KindPrescription {
		r.sendToLocked(signalapi.RolePatient, msg)
	}
}
