// Package peer is a Go SDK for the signalling server: it joins a room as
// patient or physician, negotiates a real WebRTC peer connection (pion) with
// the other participant, reports the DTLS certificate it sees, sends
// prescriptions (physician) and collects and verifies receipts.
package peer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session"
	"golang.org/x/mod/sumdb/note"
)

// Config configures a Peer.
type Config struct {
	// URL is the server's WebSocket URL, such as wss://signal.example.org/v1/signal.
	URL string
	// Token is the participant's room token.
	Token string
	// Policy verifies receipts; nil means the keys the server serves at
	// /v1/keys, one signature needed.
	Policy *notary.Policy
	// Media adds audio and video transceivers (receive only) so the peer
	// can take a browser's camera and microphone; without it the connection
	// carries the data channel only.
	Media bool
	// Loopback gathers only loopback candidates, without mDNS: tests and
	// demos on one machine.
	Loopback bool
	// ICEServers are STUN/TURN servers.
	ICEServers []webrtc.ICEServer
	// ReconnectWindow is how long the peer tries to rejoin after its
	// WebSocket drops (default 20s: inside the server's grace window).
	ReconnectWindow time.Duration
	// HTTPClient fetches /v1/keys and opens the WebSocket (default
	// http.DefaultClient).
	HTTPClient *http.Client
	// Logger receives the peer's logs (default slog.Default()).
	Logger *slog.Logger
	// OnSignal, when set, sees every message from the server as it
	// arrives, before the peer acts on it (tools and load generators).
	OnSignal func(*session.Message)
}

// Receipt is a bundle the server sent: the session record at start or
// end, a prescription's receipt (physician) or a relayed prescription
// (patient); verified against the policy.
type Receipt struct {
	// Kind is session-start, prescription or session-end.
	Kind string
	// Ref is the prescription's reference.
	Ref string
	// Bundle is the document, its salt and its receipt; Raw its JSON.
	Bundle *notary.Bundle
	Raw    []byte
	// Result is the verification's result; Err why it failed.
	Result *notary.Result
	Err    error
	// Relayed marks a prescription relayed to the patient.
	Relayed bool
}

// ServerError is an error message of the server.
type ServerError struct {
	Code, Message, Ref string
}

func (e *ServerError) Error() string { return "server: " + e.Code + ": " + e.Message }

// writeTimeout bounds one message to the server.
const writeTimeout = 10 * time.Second

// ErrClosed is returned by calls on a closed peer.
var ErrClosed = errors.New("peer: closed")

// Peer is one participant of a consultation.
type Peer struct {
	cfg      Config
	log      *slog.Logger
	verifier *notary.Verifier
	ctx      context.Context
	cancel   context.CancelFunc

	role, room, session string

	pc *webrtc.PeerConnection

	mu          sync.Mutex
	ws          *websocket.Conn
	pendingICE  []webrtc.ICECandidateInit
	offered     bool // the physician made its first offer
	channel     *webrtc.DataChannel
	open        chan struct{} // closed when the data channel opens
	onMessage   func([]byte)
	sawPeer     *session.Fingerprint
	waiters     map[string]chan result // prescriptions by ref
	ended       chan struct{}          // closed on session-end
	endReceipt  *Receipt
	endReason   string
	errs        []*ServerError
	receipts    chan Receipt
	peerPresent bool
	closed      bool
	readerDone  chan struct{}
}

type result struct {
	r   *Receipt
	err error
}

// Join connects to the server, joins the room of cfg.Token and starts
// negotiating: the physician offers as soon as both are present. It returns
// once the server has seated the participant.
func Join(ctx context.Context, cfg Config) (*Peer, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.ReconnectWindow <= 0 {
		cfg.ReconnectWindow = 20 * time.Second
	}
	p := &Peer{
		cfg: cfg, log: cfg.Logger, open: make(chan struct{}), waiters: map[string]chan result{},
		ended: make(chan struct{}), receipts: make(chan Receipt, 1024), readerDone: make(chan struct{}),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	policy := cfg.Policy
	if policy == nil {
		keys, err := p.fetchKeys(ctx)
		if err != nil {
			p.cancel()
			return nil, err
		}
		policy = &notary.Policy{Verifiers: keys, MinSignatures: 1}
	}
	v, err := notary.NewVerifier(*policy)
	if err != nil {
		p.cancel()
		return nil, fmt.Errorf("peer: policy: %w", err)
	}
	p.verifier = v
	if err := p.newPeerConnection(); err != nil {
		p.cancel()
		return nil, err
	}
	ws, joined, err := p.dialAndJoin(ctx)
	if err != nil {
		p.pc.Close()
		p.cancel()
		return nil, err
	}
	p.role, p.room, p.session = joined.Role, joined.Room, joined.Session
	p.ws = ws
	p.peerPresent = joined.PeerPresent != nil && *joined.PeerPresent
	if p.role == session.RolePhysician {
		ch, err := p.pc.CreateDataChannel("consultation", nil)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("peer: data channel: %w", err)
		}
		p.setChannel(ch)
	}
	go p.read()
	if p.role == session.RolePhysician && p.peerPresent {
		p.offer(false)
	}
	return p, nil
}

// Role, Room and Session say where the peer sits.
func (p *Peer) Role() string    { return p.role }
func (p *Peer) Room() string    { return p.room }
func (p *Peer) Session() string { return p.session }

// PeerConnection is the underlying pion peer connection.
func (p *Peer) PeerConnection() *webrtc.PeerConnection { return p.pc }

// Receipts delivers every verified (or failed) receipt, in arrival order.
func (p *Peer) Receipts() <-chan Receipt { return p.receipts }

// Connected waits until the data channel is open.
func (p *Peer) Connected(ctx context.Context) error {
	select {
	case <-p.open:
		return nil
	case <-p.ended:
		return fmt.Errorf("peer: the session ended: %s", p.endReason)
	case <-ctx.Done():
		return fmt.Errorf("peer: waiting for the data channel: %w (ICE %s, DTLS %s)", ctx.Err(), p.pc.ICEConnectionState(), p.pc.SCTP().Transport().State())
	}
}

// Send sends a message to the other participant over the data channel.
func (p *Peer) Send(data []byte) error {
	p.mu.Lock()
	ch := p.channel
	p.mu.Unlock()
	if ch == nil {
		return errors.New("peer: no data channel yet")
	}
	return ch.Send(data)
}

// OnMessage sets the handler of data channel messages.
func (p *Peer) OnMessage(f func([]byte)) {
	p.mu.Lock()
	p.onMessage = f
	p.mu.Unlock()
}

// LocalFingerprint is the sha-256 fingerprint of this peer's DTLS
// certificate, as its SDP announces it.
func (p *Peer) LocalFingerprint() (session.Fingerprint, error) {
	params, err := p.pc.SCTP().Transport().GetLocalParameters()
	if err != nil {
		return session.Fingerprint{}, err
	}
	for _, f := range params.Fingerprints {
		if strings.EqualFold(f.Algorithm, "sha-256") {
			return session.ParseFingerprint(f.Algorithm + " " + f.Value)
		}
	}
	return session.Fingerprint{}, errors.New("peer: no sha-256 fingerprint")
}

// SawPeer is the fingerprint of the certificate the other side presented
// on the DTLS transport (zero before DTLS connects).
func (p *Peer) SawPeer() (session.Fingerprint, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sawPeer == nil {
		return session.Fingerprint{}, false
	}
	return *p.sawPeer, true
}

// SelectedPair is the ICE candidate pair the connection uses.
func (p *Peer) SelectedPair() (*webrtc.ICECandidatePair, error) {
	pair, err := p.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err == nil && pair == nil {
		err = errors.New("peer: no selected candidate pair")
	}
	return pair, err
}

// Errors returns the server's error messages so far.
func (p *Peer) Errors() []*ServerError {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*ServerError(nil), p.errs...)
}

// Prescribe sends a FHIR MedicationRequest (physician only) and waits for
// its verified receipt. ref must be unique in the session.
func (p *Peer) Prescribe(ctx context.Context, ref string, resource []byte) (*Receipt, error) {
	ch := make(chan result, 1)
	p.mu.Lock()
	if _, dup := p.waiters[ref]; dup {
		p.mu.Unlock()
		return nil, fmt.Errorf("peer: prescription %q is already waiting", ref)
	}
	p.waiters[ref] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.waiters, ref)
		p.mu.Unlock()
	}()
	if err := p.write(ctx, &session.Message{Type: session.TypePrescription, Ref: ref, Resource: resource}); err != nil {
		return nil, err
	}
	select {
	case res := <-ch:
		return res.r, res.err
	case <-p.ended:
		return nil, fmt.Errorf("peer: the session ended before the receipt: %s", p.endReason)
	case <-ctx.Done():
		return nil, fmt.Errorf("peer: waiting for the receipt of %q: %w", ref, ctx.Err())
	}
}

// SendSignal sends a protocol message as it is (tools and load
// generators; the peer sends its own offers, answers and candidates).
func (p *Peer) SendSignal(ctx context.Context, m *session.Message) error { return p.write(ctx, m) }

// Consent records a consent event in the session record.
func (p *Peer) Consent(ctx context.Context, scope string, granted bool) error {
	return p.write(ctx, &session.Message{Type: session.TypeConsent, Scope: scope, Granted: &granted})
}

// Leave ends the consultation and waits for the session-end receipt (nil
// when the session never started), then closes the peer.
func (p *Peer) Leave(ctx context.Context, reason string) (*Receipt, error) {
	if err := p.write(ctx, &session.Message{Type: session.TypeLeave, Reason: reason}); err != nil {
		return nil, err
	}
	return p.WaitEnd(ctx)
}

// WaitEnd waits for the session to end and returns its end receipt (nil
// when the session never started), then closes the peer.
func (p *Peer) WaitEnd(ctx context.Context) (*Receipt, error) {
	select {
	case <-p.ended:
	case <-ctx.Done():
		return nil, fmt.Errorf("peer: waiting for session-end: %w", ctx.Err())
	}
	p.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.endReceipt, nil
}

// Ended is closed when the session ends.
func (p *Peer) Ended() <-chan struct{} { return p.ended }

// EndReason is why the session ended.
func (p *Peer) EndReason() string {
	select {
	case <-p.ended:
		return p.endReason
	default:
		return ""
	}
}

// Close closes the WebSocket and the peer connection.
func (p *Peer) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	ws := p.ws
	p.mu.Unlock()
	p.cancel()
	if ws != nil {
		ws.Close(websocket.StatusNormalClosure, "bye")
	}
	err := p.pc.Close()
	<-p.readerDone
	return err
}

func (p *Peer) newPeerConnection() error {
	var se webrtc.SettingEngine
	if p.cfg.Loopback {
		se.SetIncludeLoopbackCandidate(true)
		se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	}
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{ICEServers: p.cfg.ICEServers})
	if err != nil {
		return fmt.Errorf("peer: %w", err)
	}
	p.pc = pc
	if p.cfg.Media {
		for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
			if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
				return fmt.Errorf("peer: %w", err)
			}
		}
		pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			go func() { // read the media so pion's buffers do not fill
				buf := make([]byte, 1500)
				for {
					if _, _, err := t.Read(buf); err != nil {
						return
					}
				}
			}()
		})
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return // gathering is complete; the server needs no end marker
		}
		init := c.ToJSON()
		p.write(p.ctx, &session.Message{Type: session.TypeCandidate, Candidate: &session.Candidate{
			Candidate: init.Candidate, SDPMid: init.SDPMid, SDPMLineIndex: init.SDPMLineIndex, UsernameFragment: init.UsernameFragment}})
	})
	pc.OnDataChannel(func(ch *webrtc.DataChannel) { p.setChannel(ch) })
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		p.log.Debug("ICE state", "role", p.role, "state", s)
	})
	pc.SCTP().Transport().OnStateChange(func(s webrtc.DTLSTransportState) {
		p.log.Debug("DTLS state", "role", p.role, "state", s)
		if s == webrtc.DTLSTransportStateConnected {
			// pion calls this holding the transport's lock, which
			// GetRemoteCertificate takes too.
			go p.reportFingerprint()
		}
	})
	return nil
}

// reportFingerprint tells the server which certificate the other side
// presented on the DTLS transport.
func (p *Peer) reportFingerprint() {
	der := p.pc.SCTP().Transport().GetRemoteCertificate()
	if len(der) == 0 {
		return
	}
	fp := session.FingerprintOf(der)
	p.mu.Lock()
	p.sawPeer = &fp
	p.mu.Unlock()
	p.write(p.ctx, &session.Message{Type: session.TypeFingerprint, Fingerprint: fp.String()})
}

func (p *Peer) setChannel(ch *webrtc.DataChannel) {
	p.mu.Lock()
	p.channel = ch
	p.mu.Unlock()
	ch.OnOpen(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		select {
		case <-p.open:
		default:
			close(p.open)
		}
	})
	ch.OnMessage(func(m webrtc.DataChannelMessage) {
		p.mu.Lock()
		f := p.onMessage
		p.mu.Unlock()
		if f != nil {
			f(m.Data)
		}
	})
}

// dialAndJoin opens the WebSocket and joins; it returns the joined message.
func (p *Peer) dialAndJoin(ctx context.Context) (*websocket.Conn, *session.Message, error) {
	ws, _, err := websocket.Dial(ctx, p.cfg.URL, &websocket.DialOptions{HTTPClient: p.cfg.HTTPClient})
	if err != nil {
		return nil, nil, fmt.Errorf("peer: connect to %s: %w", p.cfg.URL, err)
	}
	ws.SetReadLimit(4 << 20) // bundles with documents
	data, _ := json.Marshal(&session.Message{Type: session.TypeJoin, Token: p.cfg.Token})
	if err := ws.Write(ctx, websocket.MessageText, data); err != nil {
		ws.CloseNow()
		return nil, nil, fmt.Errorf("peer: join: %w", err)
	}
	_, data, err = ws.Read(ctx)
	if err != nil {
		ws.CloseNow()
		return nil, nil, fmt.Errorf("peer: join: %w", err)
	}
	var m session.Message
	if err := json.Unmarshal(data, &m); err != nil {
		ws.CloseNow()
		return nil, nil, fmt.Errorf("peer: join: answer is not a message: %w", err)
	}
	switch m.Type {
	case session.TypeJoined:
		return ws, &m, nil
	case session.TypeError:
		ws.CloseNow()
		return nil, nil, &ServerError{Code: m.Code, Message: m.Message}
	}
	ws.CloseNow()
	return nil, nil, fmt.Errorf("peer: join: unexpected %q", m.Type)
}

func (p *Peer) write(ctx context.Context, m *session.Message) error {
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
			p.log.Info("signalling connection lost; rejoining", "room", p.room, "err", err)
			if !p.rejoin() {
				return
			}
			continue
		}
		var m session.Message
		if err := json.Unmarshal(data, &m); err != nil {
			p.log.Warn("server sent a message that is not JSON", "err", err)
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

// rejoin dials again with the same token until the window passes; the
// physician then restarts ICE.
func (p *Peer) rejoin() bool {
	deadline := time.Now().Add(p.cfg.ReconnectWindow)
	backoff := 100 * time.Millisecond
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		ws, joined, err := p.dialAndJoin(ctx)
		cancel()
		if err == nil {
			p.mu.Lock()
			p.ws = ws
			p.peerPresent = joined.PeerPresent != nil && *joined.PeerPresent
			present := p.peerPresent
			p.mu.Unlock()
			if p.role == session.RolePhysician && present {
				p.offer(true)
			}
			return true
		}
		var se *ServerError
		if errors.As(err, &se) || p.ctx.Err() != nil {
			p.log.Warn("rejoin refused", "err", err)
			return false
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-p.ctx.Done():
			t.Stop()
			return false
		}
		backoff = min(2*backoff, 2*time.Second)
	}
	return false
}

func (p *Peer) handle(m *session.Message) {
	if p.cfg.OnSignal != nil {
		p.cfg.OnSignal(m)
	}
	p.log.Debug("signal message", "role", p.role, "type", m.Type, "code", m.Code, "message", m.Message)
	switch m.Type {
	case session.TypePeerJoined:
		if p.role == session.RolePhysician {
			p.mu.Lock()
			restart := p.offered
			p.mu.Unlock()
			p.offer(restart)
		}
	case session.TypePeerLeft:
		p.log.Info("the other participant left", "role", m.Role, "grace_ms", m.GraceMillis)
	case session.TypeOffer:
		if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.SDP}); err != nil {
			p.log.Warn("remote offer refused", "err", err)
			return
		}
		p.flushCandidates()
		answer, err := p.pc.CreateAnswer(nil)
		if err == nil {
			err = p.pc.SetLocalDescription(answer)
		}
		if err != nil {
			p.log.Warn("cannot answer", "err", err)
			return
		}
		p.write(p.ctx, &session.Message{Type: session.TypeAnswer, SDP: answer.SDP})
	case session.TypeAnswer:
		if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP}); err != nil {
			p.log.Warn("remote answer refused", "err", err)
			return
		}
		p.flushCandidates()
	case session.TypeCandidate:
		if m.Candidate == nil || m.Candidate.Candidate == "" {
			return
		}
		c := webrtc.ICECandidateInit{Candidate: m.Candidate.Candidate, SDPMid: m.Candidate.SDPMid, SDPMLineIndex: m.Candidate.SDPMLineIndex, UsernameFragment: m.Candidate.UsernameFragment}
		p.mu.Lock()
		if p.pc.RemoteDescription() == nil {
			p.pendingICE = append(p.pendingICE, c)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		if err := p.pc.AddICECandidate(c); err != nil {
			p.log.Debug("remote candidate refused", "err", err)
		}
	case session.TypeReceipt, session.TypePrescription:
		r := p.receipt(m)
		r.Relayed = m.Type == session.TypePrescription
		if m.Type == session.TypeReceipt && m.Kind == notary.KindPrescription.String() {
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
	case session.TypeSessionEnd:
		var r *Receipt
		if len(m.Bundle) > 0 {
			rc := p.receipt(m)
			r = &rc
			p.publish(rc)
		}
		p.mu.Lock()
		p.endReceipt, p.endReason = r, m.Reason
		p.mu.Unlock()
		close(p.ended)
	case session.TypeError:
		e := &ServerError{Code: m.Code, Message: m.Message, Ref: m.Ref}
		p.mu.Lock()
		p.errs = append(p.errs, e)
		w := p.waiters[m.Ref]
		p.mu.Unlock()
		if w != nil && m.Ref != "" {
			w <- result{err: e}
		}
		p.log.Debug("server error", "code", m.Code, "message", m.Message)
	}
}

func (p *Peer) publish(r Receipt) {
	select {
	case p.receipts <- r:
	default:
		p.log.Warn("receipts channel full: a receipt was dropped", "kind", r.Kind)
	}
}

// receipt parses and verifies a message's bundle.
func (p *Peer) receipt(m *session.Message) Receipt {
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

func (p *Peer) flushCandidates() {
	p.mu.Lock()
	pending := p.pendingICE
	p.pendingICE = nil
	p.mu.Unlock()
	for _, c := range pending {
		if err := p.pc.AddICECandidate(c); err != nil {
			p.log.Debug("remote candidate refused", "err", err)
		}
	}
}

// offer sends an offer (physician), restarting ICE after a reconnection.
func (p *Peer) offer(restart bool) {
	p.mu.Lock()
	p.offered = true
	p.mu.Unlock()
	offer, err := p.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: restart})
	if err == nil {
		err = p.pc.SetLocalDescription(offer)
	}
	if err != nil {
		p.log.Warn("cannot make an offer", "err", err)
		return
	}
	p.write(p.ctx, &session.Message{Type: session.TypeOffer, SDP: offer.SDP})
}

// fetchKeys reads the verifier keys the server serves.
func (p *Peer) fetchKeys(ctx context.Context) ([]note.Verifier, error) {
	u := strings.Replace(strings.Replace(p.cfg.URL, "wss://", "https://", 1), "ws://", "http://", 1)
	u = strings.TrimSuffix(u, "/v1/signal") + "/v1/keys"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("peer: fetch verifier keys: %w", err)
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("peer: fetch verifier keys from %s: HTTP %d %v", u, resp.StatusCode, err)
	}
	return notary.ParseVerifierKeys(text)
}

// Pair joins a patient and a physician (each config with its own token) and
// waits until their data channel is open: a whole consultation on one
// machine, for demos, load generators and tests. On error neither peer is
// left open.
func Pair(ctx context.Context, patient, physician Config) (pat, doc *Peer, err error) {
	if pat, err = Join(ctx, patient); err != nil {
		return nil, nil, err
	}
	if doc, err = Join(ctx, physician); err != nil {
		pat.Close()
		return nil, nil, err
	}
	if err := doc.Connected(ctx); err != nil {
		pat.Close()
		doc.Close()
		return nil, nil, err
	}
	return pat, doc, nil
}
