package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The WebSocket protocol of /v1/signal: one JSON object per text message,
// told apart by its "type". docs/PROTOCOL.md describes every message.

// Types of the messages a client sends.
const (
	TypeJoin         = "join"         // first message: the room token
	TypeOffer        = "offer"        // an SDP offer, relayed to the other participant
	TypeAnswer       = "answer"       // an SDP answer, relayed
	TypeCandidate    = "candidate"    // an ICE candidate, relayed
	TypeFingerprint  = "fingerprint"  // the DTLS certificate fingerprint the client sees on its transport
	TypePrescription = "prescription" // physician: a FHIR MedicationRequest to notarize and relay; patient: a relayed one
	TypeConsent      = "consent"      // a consent given or withdrawn
	TypeLeave        = "leave"        // the participant ends the consultation
)

// Types of the messages the server sends (besides relayed offer, answer,
// candidate and prescription).
const (
	TypeJoined     = "joined"      // the join succeeded
	TypePeerJoined = "peer-joined" // the other participant joined or came back
	TypePeerLeft   = "peer-left"   // the other participant's connection dropped; it may come back within the grace window
	TypeReceipt    = "receipt"     // a receipt bundle: session start, a prescription (to the physician), session end
	TypeSessionEnd = "session-end" // the consultation ended; the connection closes after it
	TypeError      = "error"       // something was refused; see Code
)

// Error codes of error messages. They are stable: apps may switch on them.
const (
	CodeBadMessage     = "bad_message"      // not JSON, an unknown field or a field of the wrong type
	CodeUnknownType    = "unknown_type"     // a type the server does not know
	CodeTooLarge       = "too_large"        // a message over MaxMessageSize (the connection is closed)
	CodeRateLimited    = "rate_limited"     // a flood over the rate limit (the connection is closed)
	CodeNotJoined      = "not_joined"       // a message other than join before joining
	CodeAlreadyJoined  = "already_joined"   // a second join on one connection
	CodeTokenInvalid   = "token_invalid"    // a token that is malformed, forged or not for this server
	CodeTokenExpired   = "token_expired"    // a token past its expiry
	CodeWrongRoom      = "wrong_room"       // a token for another room than the one asked for
	CodeRoomFull       = "room_full"        // the role is taken by another subject
	CodeRoomEnded      = "room_ended"       // the consultation of this room is over
	CodeReplaced       = "replaced"         // the same participant joined on a newer connection
	CodeBadSDP         = "bad_sdp"          // SDP that does not parse, is too large or has no sha-256 fingerprint
	CodeBadCandidate   = "bad_candidate"    // an ICE candidate that is malformed or one too many
	CodePeerAbsent     = "peer_absent"      // nothing to relay to: the other participant is not connected
	CodeForbidden      = "forbidden"        // the role may not send this (a patient's prescription)
	CodeNotStarted     = "not_started"      // a prescription before the session started (both joined, offer and answer)
	CodeInvalidFHIR    = "invalid_resource" // a prescription that is not a valid MedicationRequest
	CodeLimit          = "limit"            // a per-session limit was reached (prescriptions, consents)
	CodeNotaryDown     = "notary_unavailable"
	CodeShuttingDown   = "shutting_down"
	CodeBadFingerprint = "bad_fingerprint" // a fingerprint report that is not "sha-256 XX:XX:..."
)

// Limits on what a client can send.
const (
	MaxMessageSize  = 64 << 10 // bytes of one WebSocket message
	MaxSDPSize      = 32 << 10 // bytes of one SDP
	MaxCandidate    = 1024     // bytes of one candidate line
	MaxRefLength    = 64       // characters of a client reference
	MaxReasonLength = 200      // characters of a leave reason
)

// Message is every message of the protocol, in both directions: only the
// fields of its type are set.
type Message struct {
	Type string `json:"type"`

	// join
	Token string `json:"token,omitempty"`
	// join (optional: the room the client means to enter), joined
	Room string `json:"room,omitempty"`

	// offer, answer
	SDP string `json:"sdp,omitempty"`
	// candidate; a candidate whose line is empty ends the candidates
	Candidate *Candidate `json:"candidate,omitempty"`
	// fingerprint: what the client's DTLS transport saw of the other side,
	// as "sha-256 AB:CD:..."
	Fingerprint string `json:"fingerprint,omitempty"`

	// prescription, receipt, error: the client's reference, echoed
	Ref string `json:"ref,omitempty"`
	// prescription (physician to server): the FHIR R4 MedicationRequest
	Resource json.RawMessage `json:"resource,omitempty"`

	// consent
	Scope   string `json:"scope,omitempty"`
	Granted *bool  `json:"granted,omitempty"`

	// leave, session-end
	Reason string `json:"reason,omitempty"`

	// joined
	Session string `json:"session,omitempty"`
	// joined, peer-joined, peer-left
	Role string `json:"role,omitempty"`
	// joined: whether the other participant is connected
	PeerPresent *bool `json:"peer_present,omitempty"`
	// joined, peer-joined: a reconnection within the grace window
	Resumed bool `json:"resumed,omitempty"`
	// peer-left: milliseconds the other participant has to come back
	GraceMillis int64 `json:"grace_ms,omitempty"`

	// receipt, session-end: what the bundle proves (session-start,
	// prescription, session-end)
	Kind string `json:"kind,omitempty"`
	// receipt, prescription (server to patient), session-end: document,
	// salt and receipt, verifiable offline
	Bundle json.RawMessage `json:"bundle,omitempty"`

	// error
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// Candidate is an ICE candidate in the JSON form of RTCIceCandidateInit.
type Candidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// ProtocolError is a refusal sent to a client as an error message.
type ProtocolError struct {
	Code    string
	Message string
	// Fatal errors close the connection after the error message.
	Fatal bool
}

func (e *ProtocolError) Error() string { return e.Code + ": " + e.Message }

func protoErr(code, format string, args ...any) *ProtocolError {
	return &ProtocolError{Code: code, Message: fmt.Sprintf(format, args...)}
}

func fatalErr(code, format string, args ...any) *ProtocolError {
	return &ProtocolError{Code: code, Message: fmt.Sprintf(format, args...), Fatal: true}
}

// clientTypes are the types a client may send, with the fields each may
// carry.
var clientTypes = map[string][]string{
	TypeJoin:         {"token", "room"},
	TypeOffer:        {"sdp"},
	TypeAnswer:       {"sdp"},
	TypeCandidate:    {"candidate"},
	TypeFingerprint:  {"fingerprint"},
	TypePrescription: {"ref", "resource"},
	TypeConsent:      {"scope", "granted"},
	TypeLeave:        {"reason"},
}

// DecodeClientMessage parses one message from a client: a JSON object of at
// most MaxMessageSize bytes with a known type and only that type's fields,
// each within its bounds. The error is a *ProtocolError naming the field.
func DecodeClientMessage(data []byte) (*Message, error) {
	if len(data) > MaxMessageSize {
		return nil, fatalErr(CodeTooLarge, "message is %d bytes, more than %d", len(data), MaxMessageSize)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		return nil, protoErr(CodeBadMessage, "message is not a JSON object")
	}
	rawType, ok := fields["type"]
	if !ok {
		return nil, protoErr(CodeBadMessage, "message has no \"type\"")
	}
	var typ string
	if err := json.Unmarshal(rawType, &typ); err != nil {
		return nil, protoErr(CodeBadMessage, "\"type\" is not a string")
	}
	allowed, ok := clientTypes[typ]
	if !ok {
		return nil, protoErr(CodeUnknownType, "unknown message type %.40q", typ)
	}
	for name := range fields {
		if name != "type" && !slices.Contains(allowed, name) {
			return nil, protoErr(CodeBadMessage, "field %.40q is not part of a %s message", name, typ)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Message
	if err := dec.Decode(&m); err != nil {
		return nil, protoErr(CodeBadMessage, "%s", fieldError(err))
	}
	if err := m.checkBounds(); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *Message) checkBounds() error {
	switch m.Type {
	case TypeJoin:
		if m.Token == "" {
			return fatalErr(CodeTokenInvalid, "join has no token")
		}
		if len(m.Token) > MaxTokenSize {
			return fatalErr(CodeTokenInvalid, "token is longer than %d bytes", MaxTokenSize)
		}
		if m.Room != "" && !validID(m.Room) {
			return fatalErr(CodeBadMessage, "room is not a room id (1 to 64 of A-Z a-z 0-9 - _)")
		}
	case TypeOffer, TypeAnswer:
		if m.SDP == "" {
			return protoErr(CodeBadSDP, "%s has no sdp", m.Type)
		}
		if len(m.SDP) > MaxSDPSize {
			return protoErr(CodeBadSDP, "sdp is %d bytes, more than %d", len(m.SDP), MaxSDPSize)
		}
	case TypeCandidate:
		if m.Candidate == nil {
			return protoErr(CodeBadCandidate, "candidate message has no candidate")
		}
		if err := m.Candidate.check(); err != nil {
			return err
		}
	case TypeFingerprint:
		if _, err := ParseFingerprint(m.Fingerprint); err != nil {
			return protoErr(CodeBadFingerprint, "fingerprint: %v", err)
		}
	case TypePrescription:
		if len(m.Ref) > MaxRefLength || !printable(m.Ref) {
			return protoErr(CodeBadMessage, "ref must be at most %d printable ASCII characters", MaxRefLength)
		}
		if len(m.Resource) == 0 || string(m.Resource) == "null" {
			return protoErr(CodeInvalidFHIR, "prescription has no resource")
		}
	case TypeConsent:
		if !validScope(m.Scope) {
			return protoErr(CodeBadMessage, "scope must be 1 to 64 of a-z 0-9 - . (such as \"recording\")")
		}
		if m.Granted == nil {
			return protoErr(CodeBadMessage, "consent has no \"granted\" (true or false)")
		}
	case TypeLeave:
		if len(m.Reason) > MaxReasonLength || !printable(m.Reason) {
			return protoErr(CodeBadMessage, "reason must be at most %d printable ASCII characters", MaxReasonLength)
		}
	}
	return nil
}

func (c *Candidate) check() error {
	if len(c.Candidate) > MaxCandidate {
		return protoErr(CodeBadCandidate, "candidate is longer than %d bytes", MaxCandidate)
	}
	if c.Candidate != "" && !strings.HasPrefix(c.Candidate, "candidate:") {
		return protoErr(CodeBadCandidate, "candidate does not start with \"candidate:\"")
	}
	if !printable(c.Candidate) {
		return protoErr(CodeBadCandidate, "candidate has characters other than printable ASCII")
	}
	for _, s := range []*string{c.SDPMid, c.UsernameFragment} {
		if s != nil && (len(*s) > 256 || !printable(*s)) {
			return protoErr(CodeBadCandidate, "sdpMid and usernameFragment must be at most 256 printable ASCII characters")
		}
	}
	return nil
}

// fieldError turns a decoding error into a sentence that names the field.
func fieldError(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Sprintf("field %q must be %s, not %s", typeErr.Field, typeName(typeErr.Type.String()), typeErr.Value)
	}
	return "message is not valid: " + err.Error()
}

func typeName(goType string) string {
	switch {
	case strings.Contains(goType, "string"):
		return "a string"
	case strings.Contains(goType, "bool"):
		return "true or false"
	case strings.Contains(goType, "int"):
		return "a number"
	case strings.Contains(goType, "Candidate"):
		return "an object"
	}
	return "another type"
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

// validID reports whether s is a room, session or subject id: 1 to 64 of
// A-Z a-z 0-9 - _.
func validID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

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
