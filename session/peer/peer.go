package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/signalapi"
	"github.com/telenotary/telenotary/session/signalapi/prescription"
)

// Config configures a Peer.
type Config struct {
	// URL is the server's WebSocket URL, such as wss://signal.example.org/v1/signal.
	URL string
	// Token is the participant's room token. It joins once: the peer
	// comes back after a dropped connection with the resume ticket the
	// server handed it (see Peer.Ticket).
	Token string
	// Ticket, instead of Token, resumes a seat that another Peer (of an
	// earlier run of the app, say) held: the value of its Ticket, within
	// the server's grace window after its connection closed.
	Ticket string
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
	// ICEServers are STUN/TURN servers, besides those the server gives
	// in its joined message (with their TURN credentials).
	ICEServers []webrtc.ICEServer
	// ICETransportPolicy "relay" uses TURN relays only (tests, and
	// networks that let nothing else through); the zero value uses all,
	// unless the server's joined message asks for relays only.
	ICETransportPolicy webrtc.ICETransportPolicy
	// ReconnectWindow is how long the peer tries to rejoin after its
	// WebSocket drops (default 20s: inside the server's grace window).
	ReconnectWindow time.Duration
	// HTTPClient fetches /v1/keys and opens the WebSocket (default
	// http.DefaultClient).
	HTTPClient *http.Client
	// Logger receives the peer's logs (default slog.Default()).
	Logger *slog.Logger
	// OnSignal, when set, sees every message from the server as it
	// arrives, before the peer acts on it (tools and load generators). It
	// runs on the peer's reader: it must not block.
	OnSignal func(*signalapi.Message)
}

// Receipt is a bundle the server sent: the session record at start or
// end, a prescription's receipt (physician) or a relayed prescription
// (patient); verified against the policy.
type Receipt struct {
	// Kind is session-start, prescription or session-end.
	Kind notary.Kind
	// Ref is the prescription's reference.
	Ref string
	// Bundle is the document, its salt and its receipt; Raw its JSON.
	Bundle *notary.Bundle
	Raw    []byte
	// Result is the verification's result; Err why it failed.
	Result *notary.Result
	Err    error
	// Relayed marks a prescription relayed to the patient, whose peer
	// tells the server it keeps the bundle once it is in Receipts.
	Relayed bool
	// Holder is, for a prescription's receipt to the physician, who holds
	// the bundle besides the physician (the server sends the receipt only
	// once one does): the patient's app, the app's webhook, or the server
	// (neither by the session's end).
	Holder signalapi.Holder
}

// ServerError is an error message of the server. errors.Is matches it
// against its signalapi.Code.
type ServerError struct {
	Code    signalapi.Code
	Message string
	Ref     string
}

// Error returns the code and the message.
func (e *ServerError) Error() string { return "server: " + string(e.Code) + ": " + e.Message }

// Is reports whether target is e's code.
func (e *ServerError) Is(target error) bool {
	c, ok := target.(signalapi.Code)
	return ok && c == e.Code
}

// writeTimeout bounds one message to the server.
const writeTimeout = 10 * time.Second

// ErrClosed is returned by calls on a closed peer.
var ErrClosed = errors.New("peer: closed")

// Peer is one participant of a consultation. Its methods are safe for
// concurrent use.
//
// Its goroutines: the reader of the WebSocket (which also rejoins), the
// reporter of the DTLS fingerprint and, with media, a reader per remote
// track; Close stops them and waits for them.
type Peer struct {
	cfg      Config
	log      *slog.Logger
	verifier *notary.Verifier
	ctx      context.Context // ends with Close
	cancel   context.CancelFunc
	ownMu    sync.Mutex     // guards stopped and the Add calls of wg; taken with no other lock
	stopped  bool           // no more goroutines start
	wg       sync.WaitGroup // goroutines other than the reader

	role          signalapi.Role
	room, session string

	pc *webrtc.PeerConnection

	mu          sync.Mutex // guards the fields below
	ws          *websocket.Conn
	ticket      string // the resume ticket of the last joined message
	pendingICE  []webrtc.ICECandidateInit
	offered     bool // the physician made its first offer
	channel     *webrtc.DataChannel
	open        chan struct{} // closed when the data channel opens
	onMessage   func([]byte)
	sawPeer     *signalapi.Fingerprint
	waiters     map[string]chan result // prescriptions by ref
	revoking    map[notary.Commitment]chan revokeResult
	revoked     map[notary.Commitment]bool // revocations published
	revocations chan Revocation
	ended       chan struct{} // closed on session-end
	endReceipt  *Receipt
	endReason   string
	errs        []*ServerError
	receipts    chan Receipt
	kept        map[notary.Commitment]bool // relayed prescriptions published, by commitment
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
	if (cfg.Token == "") == (cfg.Ticket == "") {
		return nil, errors.New("peer: config: set Token (to join) or Ticket (to resume a seat), one of them")
	}
	p := &Peer{
		cfg: cfg, log: cfg.Logger, open: make(chan struct{}), waiters: map[string]chan result{},
		ended: make(chan struct{}), receipts: make(chan Receipt, receiptBuffer), kept: map[notary.Commitment]bool{}, readerDone: make(chan struct{}),
		revoking: map[notary.Commitment]chan revokeResult{}, revoked: map[notary.Commitment]bool{}, revocations: make(chan Revocation, signalapi.MaxSessionPrescriptions),
		ticket: cfg.Ticket,
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	if err := p.setUp(ctx); err != nil {
		p.abort()
		return nil, err
	}
	if p.role == signalapi.RolePhysician {
		ch, err := p.pc.CreateDataChannel("consultation", nil)
		if err != nil {
			p.abort()
			return nil, fmt.Errorf("peer: data channel: %w", err)
		}
		p.setChannel(ch)
	}
	go p.read()
	if p.role == signalapi.RolePhysician && p.peerPresent {
		p.offer(false)
	}
	return p, nil
}

// abort undoes a Join that failed before the reader started.
func (p *Peer) abort() {
	p.mu.Lock()
	p.closed = true
	ws := p.ws
	p.mu.Unlock()
	p.cancel()
	if ws != nil {
		ws.CloseNow()
	}
	if p.pc != nil {
		p.pc.Close()
	}
	p.stopOwned()
}

// stopOwned lets no more goroutines start and waits for those running.
func (p *Peer) stopOwned() {
	p.ownMu.Lock()
	p.stopped = true
	p.ownMu.Unlock()
	p.wg.Wait()
}

// setUp makes the verifier and the peer connection, and joins.
func (p *Peer) setUp(ctx context.Context) error {
	policy := p.cfg.Policy
	if policy == nil {
		keys, err := p.fetchKeys(ctx)
		if err != nil {
			return err
		}
		policy = &notary.Policy{Verifiers: keys, MinSignatures: 1}
	}
	v, err := notary.NewVerifier(*policy)
	if err != nil {
		return fmt.Errorf("peer: policy: %w", err)
	}
	p.verifier = v
	ws, joined, err := p.dialAndJoin(ctx)
	if err != nil {
		return err
	}
	// The peer connection takes the ICE servers the server gave; nothing
	// negotiates before the reader starts, after this.
	if joined.ICETransportPolicy == "relay" {
		p.cfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay // the server asks that nobody's address be shown
	}
	if err := p.newPeerConnection(iceServers(p.cfg.ICEServers, joined.ICEServers)); err != nil {
		ws.CloseNow()
		return err
	}
	p.role, p.room, p.session = joined.Role, joined.Room, joined.Session
	p.ws = ws
	p.peerPresent = joined.PeerPresent != nil && *joined.PeerPresent
	return nil
}

// Role is the participant's role.
func (p *Peer) Role() signalapi.Role { return p.role }

// Room is the room's id.
func (p *Peer) Room() string { return p.room }

// Session is the session's id.
func (p *Peer) Session() string { return p.session }

// Ticket is the resume ticket of the last joined message: what another
// Peer (Config.Ticket) presents to take this seat back, within the
// server's grace window after this peer's connection closed. It changes
// on every reconnection. Keep it as secret as the token.
func (p *Peer) Ticket() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ticket
}

// PeerConnection is the underlying pion peer connection.
func (p *Peer) PeerConnection() *webrtc.PeerConnection { return p.pc }

// Receipts delivers every verified (or failed) receipt, in arrival order.
// None is ever dropped: the channel holds every receipt a session can
// have, and a server that sent more would wait until they are read.
func (p *Peer) Receipts() <-chan Receipt { return p.receipts }

// receiptBuffer is more than the receipts of one session: its start and
// end, and its prescriptions (at most signalapi.MaxSessionPrescriptions).
const receiptBuffer = signalapi.MaxSessionPrescriptions + 8

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

// PathType is the type of this side's candidate in the pair ICE selected:
// "host", "srflx", "prflx" or "relay" (through a TURN server); "" before
// ICE selects one.
func (p *Peer) PathType() string {
	pair, err := p.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local == nil {
		return ""
	}
	return pair.Local.Typ.String()
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
func (p *Peer) LocalFingerprint() (signalapi.Fingerprint, error) {
	params, err := p.pc.SCTP().Transport().GetLocalParameters()
	if err != nil {
		return signalapi.Fingerprint{}, err
	}
	for _, f := range params.Fingerprints {
		if strings.EqualFold(f.Algorithm, "sha-256") {
			return signalapi.ParseFingerprint(f.Algorithm + " " + f.Value)
		}
	}
	return signalapi.Fingerprint{}, errors.New("peer: no sha-256 fingerprint")
}

// SawPeer is the fingerprint of the certificate the other side presented
// on the DTLS transport (false before DTLS connects).
func (p *Peer) SawPeer() (signalapi.Fingerprint, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sawPeer == nil {
		return signalapi.Fingerprint{}, false
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
// its verified receipt. ref must be unique in the session. The resource is
// first checked as the server checks it ([prescription.Check]): one that
// would be refused is not sent, and the error wraps a
// *prescription.Error naming the FHIR path of the fault. A refusal by the
// server is a *ServerError. errors.Is matches both against
// signalapi.CodeInvalidResource.
func (p *Peer) Prescribe(ctx context.Context, ref string, resource []byte) (*Receipt, error) {
	if _, err := prescription.Check(resource); err != nil {
		return nil, fmt.Errorf("peer: prescription %q not sent: %w", ref, err)
	}
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
	if err := p.write(ctx, &signalapi.Message{Type: signalapi.TypePrescription, Ref: ref, Resource: resource}); err != nil {
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
func (p *Peer) SendSignal(ctx context.Context, m *signalapi.Message) error { return p.write(ctx, m) }

// Consent records a consent event in the session record.
func (p *Peer) Consent(ctx context.Context, scope string, granted bool) error {
	return p.write(ctx, &signalapi.Message{Type: signalapi.TypeConsent, Scope: scope, Granted: &granted})
}

// Leave ends the consultation and waits for the session-end receipt (nil
// when the session never started), then closes the peer.
func (p *Peer) Leave(ctx context.Context, reason string) (*Receipt, error) {
	if err := p.write(ctx, &signalapi.Message{Type: signalapi.TypeLeave, Reason: reason}); err != nil {
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

// EndReason is why the session ended ("" before it ends).
func (p *Peer) EndReason() string {
	select {
	case <-p.ended:
		return p.endReason
	default:
		return ""
	}
}

// Close closes the WebSocket and the peer connection, and waits for the
// peer's goroutines to return.
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
	p.stopOwned()
	return err
}

// goOwned runs f on a goroutine that Close waits for, unless the peer is
// closing. pion calls it from callbacks that hold its own locks, so it
// takes none but ownMu.
func (p *Peer) goOwned(f func()) {
	p.ownMu.Lock()
	defer p.ownMu.Unlock()
	if p.stopped {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
}

// Pair joins a patient and a physician (each config with its own token) and
// waits until their data channel is open: a whole consultation on one
// machine, for demos, load generators and tests. On error neither peer is
// left open.
func Pair(ctx context.Context, patientCfg, physicianCfg Config) (patient, physician *Peer, err error) {
	if patient, err = Join(ctx, patientCfg); err != nil {
		return nil, nil, err
	}
	if physician, err = Join(ctx, physicianCfg); err != nil {
		patient.Close()
		return nil, nil, err
	}
	if err := physician.Connected(ctx); err != nil {
		patient.Close()
		physician.Close()
		return nil, nil, err
	}
	return patient, physician, nil
}
