package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/peer"
	"github.com/telenotary/telenotary/session/signalapi"
)

// A light participant speaks the signalling protocol over its WebSocket
// and nothing more: no ICE, DTLS or media, and the same offer and answer
// (made once by pion, so that the server finds their fingerprints) in
// every consultation. Ten thousand pion peers need more CPU than a small
// machine has besides the server under test; ten thousand light ones
// measure the server. Every receipt is still verified.

// participant is what the bench does with one side of a consultation:
// the SDK's peer.Peer, or a lightPeer.
type participant interface {
	SendSignal(ctx context.Context, m *signalapi.Message) error
	Prescribe(ctx context.Context, ref string, resource []byte) (*peer.Receipt, error)
	Leave(ctx context.Context, reason string) (*peer.Receipt, error)
	WaitEnd(ctx context.Context) (*peer.Receipt, error)
	Errors() []*peer.ServerError
	Close() error
}

// lightSDP is an offer and an answer pion made, for light participants.
type lightSDP struct{ offer, answer string }

// newLightSDP makes an offer and its answer with two pion peer
// connections that are closed at once.
func newLightSDP() (*lightSDP, error) {
	a, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	defer a.Close()
	b, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	if _, err := a.CreateDataChannel("bench", nil); err != nil {
		return nil, err
	}
	offer, err := a.CreateOffer(nil)
	if err != nil {
		return nil, err
	}
	if err := b.SetRemoteDescription(offer); err != nil {
		return nil, err
	}
	answer, err := b.CreateAnswer(nil)
	if err != nil {
		return nil, err
	}
	return &lightSDP{offer: offer.SDP, answer: answer.SDP}, nil
}

// lightPeer is a light participant.
type lightPeer struct {
	ws       *websocket.Conn
	role     signalapi.Role
	sdp      *lightSDP
	verifier *notary.Verifier
	onSignal func(*signalapi.Message)

	wmu      sync.Mutex // serializes writes
	receipts chan *signalapi.Message
	started  chan struct{} // closed on the verified session-start receipt
	ended    chan struct{} // closed on session-end
	done     chan struct{} // closed when the reader returns

	mu     sync.Mutex // guards the fields below
	end    *signalapi.Message
	errs   []*peer.ServerError
	failed error // a receipt that did not verify, or a protocol surprise
}

// joinLight dials url and joins with token; the patient answers the
// offer it gets, and the physician offers when the patient is there.
func joinLight(ctx context.Context, url, token string, sdp *lightSDP, v *notary.Verifier, onSignal func(*signalapi.Message)) (*lightPeer, error) {
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(4 << 20)
	p := &lightPeer{ws: ws, sdp: sdp, verifier: v, onSignal: onSignal,
		receipts: make(chan *signalapi.Message, 16), started: make(chan struct{}), ended: make(chan struct{}), done: make(chan struct{})}
	if err := p.SendSignal(ctx, &signalapi.Message{Type: signalapi.TypeJoin, Token: token}); err != nil {
		ws.CloseNow()
		return nil, err
	}
	_, data, err := ws.Read(ctx)
	if err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("join: %w", err)
	}
	var joined signalapi.Message
	if err := json.Unmarshal(data, &joined); err != nil || joined.Type != signalapi.TypeJoined {
		ws.CloseNow()
		return nil, fmt.Errorf("join: answered %.200s", data)
	}
	p.role = joined.Role
	go p.read()
	if p.role == signalapi.RolePhysician && joined.PeerPresent != nil && *joined.PeerPresent {
		if err := p.SendSignal(ctx, &signalapi.Message{Type: signalapi.TypeOffer, SDP: sdp.offer}); err != nil {
			p.Close()
			return nil, err
		}
	}
	return p, nil
}

// read handles the server's messages until the connection closes.
func (p *lightPeer) read() {
	defer close(p.done)
	ctx := context.Background()
	for {
		_, data, err := p.ws.Read(ctx)
		if err != nil {
			return
		}
		var m signalapi.Message
		if err := json.Unmarshal(data, &m); err != nil {
			p.fail(fmt.Errorf("a message that is not JSON: %.100q", data))
			continue
		}
		switch m.Type {
		case signalapi.TypeCandidate:
			if p.onSignal != nil {
				p.onSignal(&m)
			}
		case signalapi.TypeOffer:
			p.SendSignal(ctx, &signalapi.Message{Type: signalapi.TypeAnswer, SDP: p.sdp.answer})
		case signalapi.TypePeerJoined:
			if p.role == signalapi.RolePhysician {
				p.SendSignal(ctx, &signalapi.Message{Type: signalapi.TypeOffer, SDP: p.sdp.offer})
			}
		case signalapi.TypeReceipt:
			if _, err := p.verify(&m); err != nil {
				continue
			}
			if m.Kind == notary.KindSessionStart {
				close(p.started)
				continue
			}
			select {
			case p.receipts <- &m:
			default:
				p.fail(errors.New("more receipts than the bench asked for"))
			}
		case signalapi.TypePrescription: // the patient keeps it
			if b, err := p.verify(&m); err == nil {
				p.SendSignal(ctx, &signalapi.Message{Type: signalapi.TypeKept, Commitment: b.Receipt.Leaf.Commitment.String()})
			}
		case signalapi.TypeSessionEnd:
			p.mu.Lock()
			p.end = &m
			p.mu.Unlock()
			close(p.ended)
			return
		case signalapi.TypeError:
			p.mu.Lock()
			p.errs = append(p.errs, &peer.ServerError{Code: m.Code, Message: m.Message, Ref: m.Ref})
			p.mu.Unlock()
		}
	}
}

func (p *lightPeer) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failed == nil {
		p.failed = err
	}
}

// verify checks the bundle of a message.
func (p *lightPeer) verify(m *signalapi.Message) (*notary.Bundle, error) {
	b, err := notary.ParseBundle(m.Bundle)
	if err == nil {
		_, err = p.verifier.VerifyBundle(b)
	}
	if err != nil {
		err = fmt.Errorf("%s %s receipt does not verify: %w", m.Type, m.Kind, err)
		p.fail(err)
	}
	return b, err
}

// SendSignal writes one message. ctx only decides whether to send: the
// WebSocket library closes the connection when a write's context ends
// midway.
func (p *lightPeer) SendSignal(ctx context.Context, m *signalapi.Message) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p.wmu.Lock()
	defer p.wmu.Unlock()
	return p.ws.Write(wctx, websocket.MessageText, data)
}

// waitStarted waits for the verified session-start receipt.
func (p *lightPeer) waitStarted(ctx context.Context) error {
	select {
	case <-p.started:
		return nil
	case <-p.done:
		return fmt.Errorf("connection closed before the session started: %v", p.Errors())
	case <-ctx.Done():
		return fmt.Errorf("no session-start receipt: %w", ctx.Err())
	}
}

// Prescribe sends a prescription and waits for its verified receipt.
func (p *lightPeer) Prescribe(ctx context.Context, ref string, resource []byte) (*peer.Receipt, error) {
	if err := p.SendSignal(ctx, &signalapi.Message{Type: signalapi.TypePrescription, Ref: ref, Resource: resource}); err != nil {
		return nil, err
	}
	select {
	case m := <-p.receipts:
		if m.Ref != ref || m.Kind != notary.KindPrescription {
			return nil, fmt.Errorf("receipt of %q (%s), want the prescription %q", m.Ref, m.Kind, ref)
		}
		return &peer.Receipt{Kind: m.Kind, Ref: m.Ref, Raw: m.Bundle}, nil
	case <-p.done:
		return nil, fmt.Errorf("connection closed before the receipt: %v", p.Errors())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Leave ends the consultation and returns the end record's receipt.
func (p *lightPeer) Leave(ctx context.Context, reason string) (*peer.Receipt, error) {
	if err := p.SendSignal(ctx, &signalapi.Message{Type: signalapi.TypeLeave, Reason: reason}); err != nil {
		return nil, err
	}
	return p.WaitEnd(ctx)
}

// WaitEnd waits for session-end and returns its receipt, verified.
func (p *lightPeer) WaitEnd(ctx context.Context) (*peer.Receipt, error) {
	select {
	case <-p.ended:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p.mu.Lock()
	end := p.end
	p.mu.Unlock()
	r := &peer.Receipt{Kind: end.Kind, Raw: end.Bundle}
	if len(end.Bundle) > 0 {
		r.Bundle, r.Err = p.verify(end)
	}
	return r, nil
}

// Errors returns the server's error messages and a verification failure.
func (p *lightPeer) Errors() []*peer.ServerError {
	p.mu.Lock()
	defer p.mu.Unlock()
	errs := append([]*peer.ServerError(nil), p.errs...)
	if p.failed != nil {
		errs = append(errs, &peer.ServerError{Code: "bench", Message: p.failed.Error()})
	}
	return errs
}

// Close closes the WebSocket and waits for the reader.
func (p *lightPeer) Close() error {
	p.ws.CloseNow()
	<-p.done
	return nil
}

// lightVerifier reads the verifier keys a signalling server serves.
func lightVerifier(ctx context.Context, base string) (*notary.Verifier, error) {
	c := signalapi.NewClient(signalapi.Config{Base: strings.TrimSuffix(base, "/")})
	text, err := c.Keys(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := notary.ParseVerifierKeys(text)
	if err != nil {
		return nil, err
	}
	return notary.NewVerifier(notary.Policy{Verifiers: keys, MinSignatures: 1})
}
