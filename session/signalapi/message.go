package signalapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/notary"
)

// The WebSocket protocol of /v1/signal: one JSON object per text message,
// told apart by its "type". docs/PROTOCOL.md describes every message.

// Type is what a message is.
type Type string

// Types of the messages a client sends.
const (
	TypeJoin         Type = "join"         // first message: the room token, or the resume ticket of an earlier connection
	TypeOffer        Type = "offer"        // an SDP offer, relayed to the other participant
	TypeAnswer       Type = "answer"       // an SDP answer, relayed
	TypeCandidate    Type = "candidate"    // an ICE candidate, relayed
	TypeFingerprint  Type = "fingerprint"  // the DTLS certificate fingerprint the client sees on its transport
	TypePrescription Type = "prescription" // physician: a FHIR MedicationRequest to notarize and relay; patient: a relayed one
	TypeConsent      Type = "consent"      // a consent given or withdrawn
	TypeLeave        Type = "leave"        // the participant ends the consultation
	TypeKept         Type = "kept"         // patient: the bundle of a relayed prescription is kept (stored by the app)
	TypePath         Type = "path"         // the kind of candidate ICE selected on the client's side (host, srflx, prflx, relay)
	TypeRevoke       Type = "revoke"       // physician: revoke a prescription issued in this consultation
)

// Types of the messages the server sends (besides relayed offer, answer,
// candidate and prescription).
const (
	TypeJoined     Type = "joined"      // the join succeeded
	TypePeerJoined Type = "peer-joined" // the other participant joined or came back
	TypePeerLeft   Type = "peer-left"   // the other participant's connection dropped; it may come back within the grace window
	TypeReceipt    Type = "receipt"     // a receipt bundle: session start, a prescription (to the physician)
	TypeSessionEnd Type = "session-end" // the consultation ended; the connection closes after it
	TypeError      Type = "error"       // something was refused; see Code
	TypeRevoked    Type = "revoked"     // a prescription of this consultation was revoked: the revocation's receipt (to both)
	TypeTicket     Type = "ticket"      // a fresh resume ticket, sent from time to time to replace the last one (its sealed part expires)
)

// Holder is who holds a prescription's bundle when the physician is sent
// its receipt: the server holds a bundle only in memory, so the physician
// is told a prescription is done only once the bundle is out of it.
type Holder string

// The holders of a bundle.
const (
	HolderPatient Holder = "patient" // the patient's app said it keeps the bundle (a kept message)
	HolderWebhook Holder = "webhook" // the app's backend took its webhook event (HTTP 2xx)
	// HolderServer: neither had taken it when the session ended; the
	// server holds it, in memory, for the app's backend to fetch (GET
	// /v1/undelivered), and raised an alert.
	HolderServer Holder = "server"
)

// PathTypes are the ICE candidate types a path message may name.
var PathTypes = []string{"host", "srflx", "prflx", "relay"}

// Limits on what a client can send.
const (
	MaxMessageSize      = 64 << 10 // bytes of one WebSocket message
	MaxSDPSize          = 32 << 10 // bytes of one SDP
	MaxCandidate        = 1024     // bytes of one candidate line
	MaxRefLength        = 64       // characters of a client reference
	MaxReasonLength     = 200      // characters of a leave reason
	MaxTokenSize        = 4096     // bytes of a room token
	MaxTicketSize       = 2048     // bytes of a resume ticket (its sealed part names the seat, for another instance to take over)
	MaxPrescriptionSize = 48 << 10 // bytes of a MedicationRequest
)

// Message is every message of the protocol, in both directions: only the
// fields of its type are set.
type Message struct {
	Type Type `json:"type"`

	// join: the room token, for a first join (a token seats once)
	Token string `json:"token,omitempty"`
	// join: the resume ticket of an earlier connection, instead of the
	// token, to come back to the seat; joined: the ticket for the next
	// reconnection (a new one on every join)
	Ticket string `json:"ticket,omitempty"`
	// join (optional: the room the client means to enter), joined
	Room string `json:"room,omitempty"`

	// offer, answer
	SDP string `json:"sdp,omitempty"`
	// candidate; a candidate whose line is empty ends the candidates
	Candidate *Candidate `json:"candidate,omitempty"`
	// fingerprint: what the client's DTLS transport saw of the other side
	Fingerprint *Fingerprint `json:"fingerprint,omitempty"`

	// prescription, receipt, error: the client's reference, echoed
	Ref string `json:"ref,omitempty"`
	// prescription (physician to server): the FHIR R4 MedicationRequest
	Resource json.RawMessage `json:"resource,omitempty"`

	// consent
	Scope   string `json:"scope,omitempty"`
	Granted *bool  `json:"granted,omitempty"`

	// leave, session-end
	Reason string `json:"reason,omitempty"`

	// joined, receipt, prescription (server to patient)
	Session string `json:"session,omitempty"`
	// joined, peer-joined, peer-left
	Role Role `json:"role,omitempty"`
	// joined: whether the other participant is connected
	PeerPresent *bool `json:"peer_present,omitempty"`
	// joined, peer-joined: a reconnection within the grace window
	Resumed bool `json:"resumed,omitempty"`
	// joined: the STUN and TURN servers the client gives its peer
	// connection (RTCConfiguration.iceServers), TURN with credentials
	// valid for this participant until they expire
	ICEServers []ICEServer `json:"ice_servers,omitempty"`
	// joined: "relay" when the server asks clients to connect through
	// TURN relays only (RTCConfiguration.iceTransportPolicy), so that
	// neither side learns the other's IP address
	ICETransportPolicy string `json:"ice_transport_policy,omitempty"`
	// peer-left: milliseconds the other participant has to come back
	GraceMillis int64 `json:"grace_ms,omitempty"`

	// receipt, prescription (server to patient), session-end: what the
	// bundle proves (session-start, prescription or session-end)
	Kind notary.Kind `json:"kind,omitempty"`
	// receipt, prescription (server to patient), session-end: document,
	// salt and receipt, verifiable offline
	Bundle json.RawMessage `json:"bundle,omitempty"`

	// kept (patient to server): the commitment (64 hex digits) of the
	// relayed prescription whose bundle the patient's app now keeps;
	// revoke (physician to server), revoked, and the error refusing a
	// revoke: the commitment of the prescription revoked
	Commitment string `json:"commitment,omitempty"`
	// revoked: the receipt (docs/FORMATS.md) of the revocation's leaf:
	// kind revocation, commitment notary.RevocationCommitment of the
	// prescription's, linked to it
	Receipt json.RawMessage `json:"receipt,omitempty"`
	// path: the type of the client's candidate in the pair ICE selected
	Path string `json:"path,omitempty"`
	// receipt of a prescription (server to physician): who holds the
	// bundle, so that it cannot be lost with the server's memory; the
	// receipt is sent only once one of them does (see Holder)
	Holder Holder `json:"holder,omitempty"`

	// error
	Code    Code   `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// ICEServer is a STUN or TURN server in the JSON form of RTCIceServer.
// TURN credentials follow the TURN REST convention (a TURN server with a
// shared secret checks them without asking anyone): Username is
// "<expiry in Unix seconds>:<user>" and Credential the base64 HMAC-SHA1 of
// Username under the secret, as coturn's use-auth-secret expects.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Candidate is an ICE candidate in the JSON form of RTCIceCandidateInit.
type Candidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// clientMessage is what a client may send: a pointer per field, so that a
// field given with its zero value is still seen as given.
type clientMessage struct {
	Type        *Type           `json:"type"`
	Token       *string         `json:"token"`
	Ticket      *string         `json:"ticket"`
	Room        *string         `json:"room"`
	SDP         *string         `json:"sdp"`
	Candidate   *Candidate      `json:"candidate"`
	Fingerprint *string         `json:"fingerprint"`
	Ref         *string         `json:"ref"`
	Resource    json.RawMessage `json:"resource"`
	Scope       *string         `json:"scope"`
	Granted     *bool           `json:"granted"`
	Reason      *string         `json:"reason"`
	Commitment  *string         `json:"commitment"`
	Path        *string         `json:"path"`
}

// clientFields are the fields each type a client may send carries,
// besides "type".
var clientFields = map[Type][]string{
	TypeJoin:         {"token", "ticket", "room"},
	TypeOffer:        {"sdp"},
	TypeAnswer:       {"sdp"},
	TypeCandidate:    {"candidate"},
	TypeFingerprint:  {"fingerprint"},
	TypePrescription: {"ref", "resource"},
	TypeConsent:      {"scope", "granted"},
	TypeLeave:        {"reason"},
	TypeKept:         {"commitment"},
	TypePath:         {"path"},
	TypeRevoke:       {"commitment"},
}

// DecodeClientMessage parses one message from a client in one pass: a JSON
// object of at most MaxMessageSize bytes with a known type and only that
// type's fields, none repeated, each within its bounds. A prescription's
// resource is valid JSON without repeated members, but is not checked as
// FHIR here. The error is a *ProtocolError naming the field.
//
// The server decodes every client message with it; a client may use it to
// check what it is about to send. When a prescription is refused for its
// resource (invalid_resource), the message is returned too, with its type
// and ref only, so that the refusal can name the prescription.
func DecodeClientMessage(data []byte) (*Message, error) {
	if len(data) > MaxMessageSize {
		return nil, RefuseFatal(CodeTooLarge, "message is %d bytes, more than %d", len(data), MaxMessageSize)
	}
	var cm clientMessage
	if err := httpapi.DecodeJSON(data, &cm); err != nil {
		pe := decodeError(err, cm.Type)
		if pe.Code == CodeInvalidResource {
			return &Message{Type: TypePrescription, Ref: refOf(data)}, pe
		}
		return nil, pe
	}
	if cm.Type == nil {
		return nil, Refuse(CodeBadMessage, "message has no \"type\"")
	}
	typ := *cm.Type
	allowed, ok := clientFields[typ]
	if !ok {
		return nil, Refuse(CodeUnknownType, "unknown message type %.40q", typ)
	}
	for _, f := range cm.given() {
		if !contains(allowed, f) {
			return nil, Refuse(CodeBadMessage, "field %q is not part of %s messages", f, typ)
		}
	}
	m := &Message{Type: typ, Candidate: cm.Candidate, Resource: cm.Resource, Granted: cm.Granted}
	for _, s := range []struct {
		dst *string
		src *string
	}{{&m.Token, cm.Token}, {&m.Ticket, cm.Ticket}, {&m.Room, cm.Room}, {&m.SDP, cm.SDP}, {&m.Ref, cm.Ref}, {&m.Scope, cm.Scope}, {&m.Reason, cm.Reason}, {&m.Commitment, cm.Commitment}, {&m.Path, cm.Path}} {
		if s.src != nil {
			*s.dst = *s.src
		}
	}
	if typ == TypeFingerprint {
		fp, err := ParseFingerprint(deref(cm.Fingerprint))
		if err != nil {
			return nil, Refuse(CodeBadFingerprint, "fingerprint: %v", err)
		}
		m.Fingerprint = &fp
	}
	if err := m.checkBounds(); err != nil {
		var pe *ProtocolError
		if errors.As(err, &pe) && pe.Code == CodeInvalidResource {
			return &Message{Type: m.Type, Ref: m.Ref}, err
		}
		return nil, err
	}
	return m, nil
}

// refOf finds the top-level "ref" of a message whose resource was refused
// (it may repeat a member or hold invalid UTF-8): "" when there is none or
// it is not a valid ref.
func refOf(data []byte) string {
	dec := jsontext.NewDecoder(bytes.NewReader(data), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return ""
	}
	for dec.PeekKind() == '"' {
		name, err := dec.ReadToken()
		if err != nil {
			return ""
		}
		if name.String() != "ref" || dec.PeekKind() != '"' {
			if dec.SkipValue() != nil {
				return ""
			}
			continue
		}
		v, err := dec.ReadToken()
		if err != nil || len(v.String()) > MaxRefLength || !printable(v.String()) {
			return ""
		}
		return v.String()
	}
	return ""
}

// decodeError turns the decoder's error into a protocol error: a mistake
// inside a prescription's resource is invalid_resource, any other
// bad_message; both name the field.
func decodeError(err error, typ *Type) *ProtocolError {
	var fe *httpapi.FieldError
	if !errors.As(err, &fe) {
		return Refuse(CodeBadMessage, "message is not valid: %v", err)
	}
	switch top, _, _ := strings.Cut(fe.Field, "."); {
	case fe.Field == "body":
		return Refuse(CodeBadMessage, "message %s", fe.Reason)
	case top == "resource" || strings.HasPrefix(top, "resource["):
		// Named by its FHIR path, as the prescription check names a fault.
		return Refuse(CodeInvalidResource, "MedicationRequest%s: %s", strings.TrimPrefix(fe.Field, "resource"), fe.Reason)
	case !knownField(top) && typ != nil:
		return Refuse(CodeBadMessage, "field %q is not part of %s messages", top, *typ)
	case !knownField(top):
		return Refuse(CodeBadMessage, "field %q is not part of any client message", top)
	}
	return Refuse(CodeBadMessage, "field %q %s", fe.Field, fe.Reason)
}

// given lists the fields of a client message that were present.
func (cm *clientMessage) given() []string {
	var out []string
	for _, f := range []struct {
		name  string
		given bool
	}{
		{"token", cm.Token != nil}, {"ticket", cm.Ticket != nil}, {"room", cm.Room != nil}, {"sdp", cm.SDP != nil},
		{"candidate", cm.Candidate != nil}, {"fingerprint", cm.Fingerprint != nil}, {"ref", cm.Ref != nil},
		{"resource", cm.Resource != nil}, {"scope", cm.Scope != nil}, {"granted", cm.Granted != nil},
		{"reason", cm.Reason != nil}, {"commitment", cm.Commitment != nil}, {"path", cm.Path != nil},
	} {
		if f.given {
			out = append(out, f.name)
		}
	}
	return out
}

func knownField(name string) bool {
	if name == "type" {
		return true
	}
	for _, fields := range clientFields {
		if contains(fields, name) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// checkBounds checks what the decoder cannot: the bounds of each field.
func (m *Message) checkBounds() error {
	switch m.Type {
	case TypeJoin:
		switch {
		case m.Token != "" && m.Ticket != "":
			return RefuseFatal(CodeBadMessage, "join has both a token and a ticket: send the ticket to come back, the token only to join the first time")
		case m.Ticket != "":
			if len(m.Ticket) > MaxTicketSize || !printable(m.Ticket) {
				return RefuseFatal(CodeTicketInvalid, "ticket must be at most %d printable ASCII characters, as joined.ticket gave it", MaxTicketSize)
			}
		case m.Token == "":
			return RefuseFatal(CodeTokenInvalid, "join has no token (nor a ticket)")
		case len(m.Token) > MaxTokenSize:
			return RefuseFatal(CodeTokenInvalid, "token is longer than %d bytes", MaxTokenSize)
		}
		if m.Room != "" && !ValidID(m.Room) {
			return RefuseFatal(CodeBadMessage, "room is not a room id (1 to 64 of A-Z a-z 0-9 - _)")
		}
	case TypeOffer, TypeAnswer:
		if m.SDP == "" {
			return Refuse(CodeBadSDP, "%s has no sdp", m.Type)
		}
		if len(m.SDP) > MaxSDPSize {
			return Refuse(CodeBadSDP, "sdp is %d bytes, more than %d", len(m.SDP), MaxSDPSize)
		}
	case TypeCandidate:
		if m.Candidate == nil {
			return Refuse(CodeBadCandidate, "candidate message has no candidate")
		}
		return m.Candidate.check()
	case TypePrescription:
		if len(m.Ref) > MaxRefLength || !printable(m.Ref) {
			return Refuse(CodeBadMessage, "ref must be at most %d printable ASCII characters", MaxRefLength)
		}
		if len(m.Resource) == 0 || string(m.Resource) == "null" {
			return Refuse(CodeInvalidResource, "MedicationRequest: missing: a prescription message carries it in \"resource\"")
		}
		if len(m.Resource) > MaxPrescriptionSize {
			return Refuse(CodeInvalidResource, "MedicationRequest: the prescription is %d bytes, more than the %d (%d KiB) allowed", len(m.Resource), MaxPrescriptionSize, MaxPrescriptionSize>>10)
		}
	case TypeConsent:
		if !validScope(m.Scope) {
			return Refuse(CodeBadMessage, "scope must be 1 to 64 of a-z 0-9 - . (such as \"recording\")")
		}
		if m.Granted == nil {
			return Refuse(CodeBadMessage, "consent has no \"granted\" (true or false)")
		}
	case TypeLeave:
		if len(m.Reason) > MaxReasonLength || !printable(m.Reason) {
			return Refuse(CodeBadMessage, "reason must be at most %d printable ASCII characters", MaxReasonLength)
		}
	case TypePath:
		if !slices.Contains(PathTypes, m.Path) {
			return Refuse(CodeBadMessage, "path must be one of host, srflx, prflx, relay (the local candidate type of the selected pair)")
		}
	case TypeKept:
		if _, err := notary.ParseCommitment(m.Commitment); err != nil {
			return Refuse(CodeBadMessage, "commitment must be the 64 lowercase hex digits of the kept bundle's receipt.leaf.commitment")
		}
	case TypeRevoke:
		if _, err := notary.ParseCommitment(m.Commitment); err != nil {
			return Refuse(CodeBadMessage, "commitment must be the 64 lowercase hex digits of the prescription's receipt.leaf.commitment (its bundle's)")
		}
	}
	return nil
}

func (c *Candidate) check() error {
	if len(c.Candidate) > MaxCandidate {
		return Refuse(CodeBadCandidate, "candidate is longer than %d bytes", MaxCandidate)
	}
	if c.Candidate != "" && !strings.HasPrefix(c.Candidate, "candidate:") {
		return Refuse(CodeBadCandidate, "candidate does not start with \"candidate:\"")
	}
	if !printable(c.Candidate) {
		return Refuse(CodeBadCandidate, "candidate has characters other than printable ASCII")
	}
	for _, s := range []*string{c.SDPMid, c.UsernameFragment} {
		if s != nil && (len(*s) > 256 || !printable(*s)) {
			return Refuse(CodeBadCandidate, "sdpMid and usernameFragment must be at most 256 printable ASCII characters")
		}
	}
	return nil
}

// printable reports whether s is printable ASCII (space to tilde).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// validScope reports whether s is a consent scope: 1 to 64 of a-z 0-9 - .
func validScope(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
