package peer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/coder/websocket"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/signalapi"
	"golang.org/x/mod/sumdb/note"
)

// dialAndJoin opens the WebSocket and joins: with the resume ticket of the
// last joined message when there is one (the token joins once), else with
// the token. It keeps the new ticket and returns the joined message.
func (p *Peer) dialAndJoin(ctx context.Context) (*websocket.Conn, *signalapi.Message, error) {
	ws, _, err := websocket.Dial(ctx, p.cfg.URL, &websocket.DialOptions{HTTPClient: p.cfg.HTTPClient})
	if err != nil {
		return nil, nil, fmt.Errorf("peer: connect to %s: %w", p.cfg.URL, err)
	}
	p.mu.Lock()
	msg := &signalapi.Message{Type: signalapi.TypeJoin, Token: p.cfg.Token}
	if p.ticket != "" {
		msg = &signalapi.Message{Type: signalapi.TypeJoin, Ticket: p.ticket}
	}
	p.mu.Unlock()
	m, err := join(ctx, ws, msg)
	if err != nil {
		ws.CloseNow()
		return nil, nil, err
	}
	if m.Ticket != "" {
		p.mu.Lock()
		p.ticket = m.Ticket
		p.mu.Unlock()
	}
	return ws, m, nil
}

// join sends the join message and reads the answer.
func join(ctx context.Context, ws *websocket.Conn, msg *signalapi.Message) (*signalapi.Message, error) {
	ws.SetReadLimit(4 << 20) // bundles with documents
	data, _ := json.Marshal(msg)
	if err := ws.Write(ctx, websocket.MessageText, data); err != nil {
		return nil, fmt.Errorf("peer: join: %w", err)
	}
	_, data, err := ws.Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("peer: join: %w", err)
	}
	var m signalapi.Message
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("peer: join: answer is not a message: %w", err)
	}
	switch m.Type {
	case signalapi.TypeJoined:
		return &m, nil
	case signalapi.TypeError:
		return nil, &ServerError{Code: m.Code, Message: m.Message}
	}
	return nil, fmt.Errorf("peer: join: unexpected %q", m.Type)
}

func (p *Peer) write(ctx context.Context, m *signalapi.Message) error {
	p.mu.Lock()
	ws, closed := p.ws, p.closed
	p.mu.Unlock()
	if closed {
		return ErrClosed
	}
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("peer: send %s: %w", m.Type, err)
	}
	// The caller's context only decides whether to send: the WebSocket
	// library closes the connection when a write's context ends midway,
	// which would drop the session for a caller's timeout.
	wctx, cancel := context.WithTimeout(p.ctx, writeTimeout)
	defer cancel()
	if err := ws.Write(wctx, websocket.MessageText, data); err != nil {
		return fmt.Errorf("peer: send %s: %w", m.Type, err)
	}
	return nil
}

// read runs the protocol until the session ends or the peer closes; a
// dropped WebSocket is rejoined within the reconnect window.
func (p *Peer) read() {
	defer close(p.readerDone)
	for {
		p.mu.Lock()
		ws := p.ws
		p.mu.Unlock()
		_, data, err := ws.Read(p.ctx)
		if err != nil {
			if p.isEnded() || p.ctx.Err() != nil || websocket.CloseStatus(err) == websocket.StatusNormalClosure {
				return
			}
			p.log.InfoContext(p.ctx, "signalling connection lost; rejoining", "room", p.room, "error", err)
			if !p.rejoin() {
				return
			}
			continue
		}
		var m signalapi.Message
		if err := json.Unmarshal(data, &m); err != nil {
			p.log.WarnContext(p.ctx, "server sent a message that is not JSON", "error", err)
			continue
		}
		p.handle(&m)
	}
}

func (p *Peer) isEnded() bool {
	select {
	case <-p.ended:
		return true
	default:
		return false
	}
}

// rejoin dials again with the resume ticket of the last joined message,
// with a jittered backoff, until the reconnect window passes or the server
// refuses; the physician then restarts ICE. It reports whether the peer is
// back.
func (p *Peer) rejoin() bool {
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.ReconnectWindow)
	defer cancel()
	attempt := func() (*signalapi.Message, error) {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ws, joined, err := p.dialAndJoin(actx)
		var refused *ServerError
		if errors.As(err, &refused) {
			return nil, backoff.Permanent(err)
		}
		if err != nil {
			return nil, err
		}
		p.mu.Lock()
		p.ws = ws
		p.peerPresent = joined.PeerPresent != nil && *joined.PeerPresent
		p.mu.Unlock()
		return joined, nil
	}
	wait := &backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, RandomizationFactor: 0.2, Multiplier: 2, MaxInterval: 2 * time.Second}
	joined, err := backoff.Retry(ctx, attempt, backoff.WithBackOff(wait), backoff.WithMaxElapsedTime(0))
	if err != nil {
		p.log.WarnContext(p.ctx, "rejoin failed", "room", p.room, "error", err)
		return false
	}
	if p.role == signalapi.RolePhysician && joined.PeerPresent != nil && *joined.PeerPresent {
		p.offer(true)
	}
	return true
}

// handle acts on one message of the server.
func (p *Peer) handle(m *signalapi.Message) {
	if p.cfg.OnSignal != nil {
		p.cfg.OnSignal(m)
	}
	p.log.DebugContext(p.ctx, "signal message", "role", p.role, "type", m.Type, "code", m.Code, "message", m.Message)
	switch m.Type {
	case signalapi.TypePeerJoined:
		p.peerJoined()
	case signalapi.TypePeerLeft:
		p.log.InfoContext(p.ctx, "the other participant left", "role", m.Role, "grace_ms", m.GraceMillis)
	case signalapi.TypeOffer:
		p.answer(m.SDP)
	case signalapi.TypeAnswer:
		p.answered(m.SDP)
	case signalapi.TypeCandidate:
		p.addCandidate(m.Candidate)
	case signalapi.TypeReceipt, signalapi.TypePrescription:
		p.receiptMessage(m)
	case signalapi.TypeRevoked:
		p.revokedMessage(m)
	case signalapi.TypeSessionEnd:
		p.sessionEnd(m)
	case signalapi.TypeError:
		p.serverError(m)
	case signalapi.TypeTicket:
		if m.Ticket != "" {
			p.mu.Lock()
			p.ticket = m.Ticket
			p.mu.Unlock()
		}
	}
}

// peerJoined has the physician offer (again, restarting ICE, after its
// first offer) when the patient arrives or comes back.
func (p *Peer) peerJoined() {
	if p.role != signalapi.RolePhysician {
		return
	}
	p.mu.Lock()
	restart := p.offered
	p.mu.Unlock()
	p.offer(restart)
}

// receiptMessage verifies a receipt or a relayed prescription, hands a
// prescription's receipt to the Prescribe waiting for it, and publishes it.
func (p *Peer) receiptMessage(m *signalapi.Message) {
	r := p.receipt(m)
	r.Relayed = m.Type == signalapi.TypePrescription
	r.Holder = m.Holder
	if r.Relayed && r.Bundle != nil {
		p.keepRelayed(r)
		return
	}
	if m.Type == signalapi.TypeReceipt && m.Kind == notary.KindPrescription {
		p.mu.Lock()
		w := p.waiters[m.Ref]
		p.mu.Unlock()
		if w != nil {
			var err error
			if r.Err != nil {
				err = fmt.Errorf("peer: the receipt of %q does not verify: %w", m.Ref, r.Err)
			}
			w <- result{r: &r, err: err}
		}
	}
	p.publish(r)
}

// keepRelayed publishes a prescription relayed to the patient, once (the
// server sends it again after a reconnection until it hears), and tells
// the server the bundle is kept: the physician's receipt waits for that.
func (p *Peer) keepRelayed(r Receipt) {
	c := r.Bundle.Receipt.Leaf.Commitment
	p.mu.Lock()
	seen := p.kept[c]
	p.mu.Unlock()
	if !seen {
		if !p.publish(r) {
			return // closing: nobody took it, so it is not kept
		}
		p.mu.Lock()
		p.kept[c] = true
		p.mu.Unlock()
	}
	if err := p.write(p.ctx, &signalapi.Message{Type: signalapi.TypeKept, Commitment: c.String()}); err != nil {
		// The server sends the bundle again when the connection is back.
		p.log.DebugContext(p.ctx, "could not say a bundle is kept", "ref", r.Ref, "error", err)
	}
}

// sessionEnd keeps the end receipt and reason and marks the session ended.
func (p *Peer) sessionEnd(m *signalapi.Message) {
	var r *Receipt
	if len(m.Bundle) > 0 {
		receipt := p.receipt(m)
		r = &receipt
		p.publish(receipt)
	}
	p.mu.Lock()
	p.endReceipt, p.endReason = r, m.Reason
	p.mu.Unlock()
	close(p.ended)
}

// serverError keeps an error message and fails the Prescribe it refers to.
func (p *Peer) serverError(m *signalapi.Message) {
	e := &ServerError{Code: m.Code, Message: m.Message, Ref: m.Ref}
	p.mu.Lock()
	p.errs = append(p.errs, e)
	w := p.waiters[m.Ref]
	var rw chan revokeResult
	if c, err := notary.ParseCommitment(m.Commitment); err == nil {
		rw = p.revoking[c]
	}
	p.mu.Unlock()
	if w != nil && m.Ref != "" {
		w <- result{err: e}
	}
	if rw != nil {
		select { // a Revoke waits for one answer; more are dropped
		case rw <- revokeResult{err: e}:
		default:
		}
	}
	p.log.DebugContext(p.ctx, "server error", "code", m.Code, "message", m.Message)
}

// publish hands a receipt to the reader of Receipts, waiting for room in
// its buffer; false when the peer closes first.
func (p *Peer) publish(r Receipt) bool {
	select {
	case p.receipts <- r:
		return true
	case <-p.ctx.Done(): // the peer is closing: nobody reads any more
		return false
	}
}

// receipt parses and verifies a message's bundle.
func (p *Peer) receipt(m *signalapi.Message) Receipt {
	r := Receipt{Kind: m.Kind, Ref: m.Ref, Raw: m.Bundle}
	b, err := notary.ParseBundle(m.Bundle)
	if err != nil {
		r.Err = err
		return r
	}
	r.Bundle = b
	r.Result, r.Err = p.verifier.VerifyBundle(b)
	return r
}

// fetchKeys reads the verifier keys the server serves.
func (p *Peer) fetchKeys(ctx context.Context) ([]note.Verifier, error) {
	base := strings.Replace(strings.Replace(p.cfg.URL, "wss://", "https://", 1), "ws://", "http://", 1)
	base = strings.TrimSuffix(base, signalapi.PathSignal)
	c := signalapi.NewClient(signalapi.Config{Base: base, HTTPClient: p.cfg.HTTPClient})
	text, err := c.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("peer: %w", err)
	}
	return notary.ParseVerifierKeys(text)
}
