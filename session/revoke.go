package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/signalapi"
)

// A prescription's life after its consultation (docs/PROTOCOL.md,
// "Revoking a prescription"). The server notarizes each prescription with
// its allowance (job.go), whose lock only the salt opens, and keeps the
// salt of every prescription of a room while the room lives: the
// physician revokes one with a revoke message, and the server proves the
// salt to the cluster with the dispense chain's seed (notary.DispenseSeed).
// Once the room is gone, the server holds nothing: the app's backend
// revokes with the bundle (POST /v1/prescriptions/revoke), whose salt is
// the proof. Either way both participants still in the room get revoked
// with the revocation's receipt. The status of a prescription is the
// cluster's, relayed (GET /v1/prescriptions/{commitment}/status).

// issuedRx is a prescription notarized in a room, kept while the room
// lives so that its physician can revoke it.
type issuedRx struct {
	salt     notary.Salt
	revoking bool   // a revocation is queued or in flight
	revoked  []byte // the encoded revoked message, once the revocation is logged
}

// requestRevoke is the physician's revoke message: the prescription is
// revoked by the room's worker, after what is queued before it. A
// prescription being revoked is not revoked twice; one revoked already
// is answered with its revoked message again.
func (r *room) requestRevoke(c *conn, m *signalapi.Message) error {
	if c.role != signalapi.RolePhysician {
		return signalapi.Refuse(signalapi.CodeForbidden, "only the physician may revoke a prescription; the patient's app may not")
	}
	commitment, err := notary.ParseCommitment(m.Commitment)
	if err != nil { // the decoder checked it
		return signalapi.Refuse(signalapi.CodeBadMessage, "commitment: %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ending {
		return signalapi.Refuse(signalapi.CodeRoomEnded, "the consultation is over: the app's backend revokes a prescription with its bundle (POST %s)", signalapi.PathRevoke)
	}
	rx := r.issued[commitment]
	switch {
	case rx == nil:
		return signalapi.Refuse(signalapi.CodeUnknownPrescription, "no prescription with commitment %s was notarized in this consultation (a revoke names the commitment of its bundle's receipt); the app's backend revokes others with their bundle (POST %s)", commitment, signalapi.PathRevoke)
	case rx.revoked != nil:
		c.enqueue(rx.revoked)
		return nil
	case rx.revoking:
		return nil // its revoked message is coming
	}
	rx.revoking = true
	// Room in the queue: at most one revocation per prescription (jobQueue).
	r.jobs <- &job{kind: notary.KindRevocation, link: commitment, salt: rx.salt}
	return nil
}

// issuedLocked keeps a notarized prescription's salt for its revocation.
func (r *room) issuedLocked(j *job, n *notarized) {
	if r.issued == nil {
		r.issued = map[notary.Commitment]*issuedRx{}
	}
	r.issued[n.receipt.Leaf.Commitment] = &issuedRx{salt: j.document.salt}
}

// revoked hands the outcome of a revocation to the participants: revoked
// with its receipt to both, or the refusal to the physician.
func (r *room) revoked(c notary.Commitment, resp *notaryapi.NotarizeResponse, err error) {
	var receipt []byte
	if err == nil {
		receipt, err = resp.Receipt.AppendJSON(nil)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rx := r.issued[c]
	rx.revoking = false
	if err == nil {
		r.revokedLocked(c, rx, receipt)
		return
	}
	code := signalapi.CodeNotaryUnavailable
	msg := fmt.Sprintf("the revocation could not be notarized; nothing was recorded (%v)", err)
	switch refused := lifecycleRefusal(err); {
	case refused == nil:
		r.srv.log.WarnContext(r.srv.ctx, "revocation failed", "room", r.id, "session", r.session, "error", err)
		r.srv.alert(signalapi.AlertNotaryUnavailable, r.id, fmt.Sprintf("revocation not notarized: %v", err))
	case refused.Code == signalapi.ErrUnknownPrescription.Name:
		code, msg = signalapi.CodeUnknownPrescription, fmt.Sprintf("the notary refused the revocation: %v", err)
	default:
		code, msg = signalapi.CodeRevokeRefused, fmt.Sprintf("the notary refused the revocation: %v", err)
	}
	r.sendToLocked(signalapi.RolePhysician, encode(&signalapi.Message{Type: signalapi.TypeError, Code: code, Commitment: c.String(), Message: msg}))
}

// revokedLocked records a prescription's revocation and sends revoked to
// both participants (or keeps it for one who is away).
func (r *room) revokedLocked(c notary.Commitment, rx *issuedRx, receipt []byte) {
	rx.revoked = withMember(encode(&signalapi.Message{Type: signalapi.TypeRevoked, Commitment: c.String(), Session: r.session}), "receipt", receipt)
	r.sendToLocked(signalapi.RolePhysician, rx.revoked)
	r.sendToLocked(signalapi.RolePatient, rx.revoked)
}

// tellRevoked tells the participants of a live room that issued the
// prescription c that the app's backend revoked it, unless they were
// told already.
func (s *Server) tellRevoked(c notary.Commitment, receipt *notary.Receipt) {
	data, err := receipt.AppendJSON(nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	rooms := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	for _, r := range rooms {
		r.mu.Lock()
		if rx := r.issued[c]; rx != nil && rx.revoked == nil && !r.ending {
			r.revokedLocked(c, rx, data)
		}
		r.mu.Unlock()
	}
}

// revoke has the cluster log the revocation of the prescription with
// commitment c, proven with the seed of its salt, and checks that the
// receipt is for it. A prescription revoked before answers that
// revocation's receipt (Existing). room names the room in the logs ("" for
// none).
func (s *Server) revoke(ctx context.Context, room string, c notary.Commitment, salt notary.Salt) (*notaryapi.NotarizeResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.NotarizeTimeout)
	defer cancel()
	seed := notary.DispenseSeed(salt, c)
	e := notaryapi.Entry{Kind: notary.KindRevocation, Commitment: notary.RevocationCommitment(c), Link: c, Proof: &seed}
	start := time.Now()
	resp, err := s.cfg.Notary.NotarizeSigned(ctx, e, s.cfg.ReceiptSignatures)
	s.metrics.notarizeSeconds.Observe(time.Since(start).Seconds())
	if err == nil {
		if rc := resp.Receipt; rc == nil || rc.Leaf.Kind != e.Kind || rc.Leaf.Commitment != e.Commitment || rc.Leaf.Link != c {
			err = errors.New("the notary answered with a receipt for another entry")
		}
	}
	if err != nil {
		s.metrics.notarizations.WithLabelValues(e.Kind.String(), "error").Inc()
		return nil, fmt.Errorf("notarize the revocation of %s: %w", c, err)
	}
	if s.cfg.ReceiptWitnesses > 0 {
		resp.Receipt = s.witnessed(room, resp.Receipt)
	}
	s.metrics.notarizations.WithLabelValues(e.Kind.String(), "ok").Inc()
	s.log.InfoContext(s.ctx, "prescription revoked", "room", room, "index", resp.Receipt.Index, "existing", resp.Existing)
	return resp, nil
}

// lifecycleRefusal is the cluster's refusal of a revocation (HTTP 409:
// unknown_prescription, bad_proof and the others the log's rules give),
// nil when err is not one.
func lifecycleRefusal(err error) *httpapi.Problem {
	var p *httpapi.Problem
	if errors.As(err, &p) && p.Status == http.StatusConflict {
		return p
	}
	return nil
}

func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request) {
	resp, err := s.revokeBundle(r)
	if p := lifecycleRefusal(err); p != nil {
		httpapi.WriteProblem(w, p) // the cluster's refusal, as it is
		return
	}
	if err != nil {
		httpapi.WriteError(w, r, s.log, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

// revokeBundle revokes the prescription of the bundle in the request:
// POST /v1/prescriptions/revoke, with an app key.
func (s *Server) revokeBundle(r *http.Request) (*signalapi.RevokeResponse, error) {
	if err := s.cfg.APIKeys.Authorize(r, auth.RoleSubmitter); err != nil {
		return nil, err
	}
	body, err := httpapi.ReadBody(r, signalapi.MaxRevokeBody)
	if err != nil {
		return nil, err
	}
	var req signalapi.RevokeRequest
	if err := httpapi.DecodeJSON(body, &req); err != nil {
		return nil, err
	}
	if len(req.Bundle) == 0 || string(req.Bundle) == "null" {
		return nil, httpapi.Field("bundle", "is required: the prescription's bundle, as the server delivered it")
	}
	b, err := notary.ParseBundle(req.Bundle)
	if err != nil {
		return nil, httpapi.Field("bundle", "is not a bundle (docs/FORMATS.md): %v", err)
	}
	if k := b.Receipt.Leaf.Kind; k != notary.KindPrescription {
		return nil, httpapi.Field("bundle.receipt.kind", "is %s: only a prescription's bundle revokes it", k)
	}
	doc, err := b.Canonical()
	if err != nil {
		return nil, httpapi.Field("bundle.document", "%v", err)
	}
	c := b.Receipt.Leaf.Commitment
	if got := notary.Commit(b.Salt, doc); got != c {
		return nil, httpapi.Field("bundle.document", "with bundle.salt gives commitment %s, not the receipt's %s: the document or the salt is not the one notarized", got, c)
	}
	resp, err := s.revoke(r.Context(), "", c, b.Salt)
	switch {
	case lifecycleRefusal(err) != nil:
		return nil, err // relayed by serveRevoke
	case refusedRequest(err):
		// The cluster refused what this server sent (its token's role, a
		// cluster without revocations): a fault here, logged.
		return nil, fmt.Errorf("%w: %w", httpapi.ErrInternal, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", signalapi.ErrNotaryUnavailable, err)
	}
	s.tellRevoked(c, resp.Receipt)
	return &signalapi.RevokeResponse{Commitment: c, Receipt: resp.Receipt, Existing: resp.Existing}, nil
}

// refusedRequest reports whether err is a problem the cluster answered
// with a 4xx status other than 409 (a refusal by its log's rules) and 429
// (retry later).
func refusedRequest(err error) bool {
	var p *httpapi.Problem
	return errors.As(err, &p) && p.Status >= 400 && p.Status < 500 && p.Status != http.StatusConflict && p.Status != http.StatusTooManyRequests
}

// statusTimeout bounds a status look-up, retries included.
const statusTimeout = 10 * time.Second

// servePrescriptionStatus relays the cluster's status of a prescription
// (GET /v1/prescriptions/{commitment}/status, public), and its problem
// with its status when it answers with one, for the /verify/ page: the
// answer is the cluster's, to verify (notary.Verifier.VerifyStatus), not
// this server's word. Each client address has its rate.
func (s *Server) servePrescriptionStatus(w http.ResponseWriter, r *http.Request) {
	if !s.statusLimit.Allow(httpapi.ClientIP(r)) {
		w.Header().Set("Retry-After", "1")
		httpapi.WriteError(w, r, s.log, fmt.Errorf("%w: more than %g status look-ups a second from this address", httpapi.ErrRateLimited, s.cfg.StatusRate))
		return
	}
	c, err := notary.ParseCommitment(r.PathValue("commitment"))
	if err != nil {
		httpapi.WriteError(w, r, s.log, httpapi.Field("commitment", "must be the 64 lowercase hex digits of the prescription's commitment (its bundle's receipt.commitment)"))
		return
	}
	consistent := false
	switch q := r.URL.Query().Get("consistent"); q {
	case "", "0", "false":
	case "1", "true":
		consistent = true
	default:
		httpapi.WriteError(w, r, s.log, httpapi.Field("consistent", "is %.20q: 1 or true asks for a linearizable read, 0 or false (the default) for any node's", q))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), statusTimeout)
	defer cancel()
	st, err := s.cfg.Notary.PrescriptionStatus(ctx, c, consistent)
	var p *httpapi.Problem
	switch {
	case errors.As(err, &p):
		httpapi.WriteProblem(w, p) // the cluster's answer, as it is
		return
	case err != nil:
		httpapi.WriteError(w, r, s.log, fmt.Errorf("%w: %w", signalapi.ErrNotaryUnavailable, err))
		return
	}
	// Encoded as the nodes encode it (encoding/json, then a newline), so
	// the answer is the cluster's byte for byte.
	body, err := json.Marshal(st)
	if err != nil {
		httpapi.WriteError(w, r, s.log, fmt.Errorf("%w: encode the status: %w", httpapi.ErrInternal, err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(append(body, '\n'))
}
