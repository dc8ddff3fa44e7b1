package signalapi

import (
	"fmt"
	"net/http"

	"github.com/telenotary/telenotary/cluster/httpapi"
)

// Code is the stable code of a WebSocket error message: apps may switch on
// it. A Code is an error, so errors.Is matches a *[ProtocolError] (and the
// peer SDK's server errors) against it.
type Code string

// Error returns the code itself.
func (c Code) Error() string { return string(c) }

// Codes of error messages. docs/PROTOCOL.md says for each whether the
// server closes the connection after it.
const (
	// CodeBadMessage: not JSON, an unknown or repeated field, a field of
	// another message type or of the wrong type; the message names the
	// field. Fix the client.
	CodeBadMessage Code = "bad_message"
	// CodeUnknownType: a type the server does not know.
	CodeUnknownType Code = "unknown_type"
	// CodeTooLarge: a message over MaxMessageSize (the connection is
	// closed with status 1009).
	CodeTooLarge Code = "too_large"
	// CodeRateLimited: a flood over the rate limit (the connection is
	// closed). Reconnect and send less.
	CodeRateLimited Code = "rate_limited"
	// CodeNotJoined: a message other than join before joining, or no join
	// in time.
	CodeNotJoined Code = "not_joined"
	// CodeAlreadyJoined: a second join on one connection.
	CodeAlreadyJoined Code = "already_joined"
	// CodeTokenInvalid: a token that is malformed, forged, not for this
	// server (aud), from an issuer it does not accept (iss), without iat,
	// or valid for longer than the server's maximum session length. Do
	// not retry with it.
	CodeTokenInvalid Code = "token_invalid"
	// CodeTokenExpired: a token past its expiry, or issued before the
	// signalling server last started (tokens do not survive a restart, so
	// that a room that ended stays ended). Ask the app's backend for a new
	// one.
	CodeTokenExpired Code = "token_expired"
	// CodeTokenUsed: a join token that has seated a participant already.
	// A token joins once: to come back, send the resume ticket of the
	// last joined message; without it, ask the app's backend for a new
	// token. The participant the token seated stays connected.
	CodeTokenUsed Code = "token_used"
	// CodeTicketInvalid: a resume ticket that the server does not hold:
	// malformed, replaced by a newer one, expired (its connection closed
	// longer ago than the grace window) or from before a restart of the
	// server. Ask the app's backend for a new token.
	CodeTicketInvalid Code = "ticket_invalid"
	// CodeWrongRoom: a token or ticket for another room than the one
	// asked for.
	CodeWrongRoom Code = "wrong_room"
	// CodeRoomFull: the role is taken by another subject.
	CodeRoomFull Code = "room_full"
	// CodeRoomEnded: the consultation of this room is over.
	CodeRoomEnded Code = "room_ended"
	// CodeReplaced: the same participant joined on a newer connection;
	// this one is closed. Do not reconnect it.
	CodeReplaced Code = "replaced"
	// CodeRemoved: the app's backend removed this participant from the
	// room (DELETE /v1/rooms/{room}/participants/{role}); its resume
	// tickets no longer seat it.
	CodeRemoved Code = "removed"
	// CodeBadSDP: SDP that does not parse, is too large or has no sha-256
	// fingerprint.
	CodeBadSDP Code = "bad_sdp"
	// CodeBadCandidate: an ICE candidate that is malformed, or one too
	// many for an offer or answer.
	CodeBadCandidate Code = "bad_candidate"
	// CodePeerAbsent: nothing to relay to: the other participant is not
	// connected. Negotiate again when it is back (peer-joined).
	CodePeerAbsent Code = "peer_absent"
	// CodeForbidden: the role may not send this (a patient's
	// prescription).
	CodeForbidden Code = "forbidden"
	// CodeNotStarted: a prescription before the session started (both
	// joined, offer and answer exchanged).
	CodeNotStarted Code = "not_started"
	// CodeInvalidResource: a prescription that is not a valid FHIR R4
	// MedicationRequest; the message names the field.
	CodeInvalidResource Code = "invalid_resource"
	// CodeLimit: a per-session limit (prescriptions, consents) or the
	// server's room limit was reached.
	CodeLimit Code = "limit"
	// CodeNotaryUnavailable: the cluster did not notarize in time; nothing
	// was recorded. Send the prescription again later.
	CodeNotaryUnavailable Code = "notary_unavailable"
	// CodeShuttingDown: the server is stopping.
	CodeShuttingDown Code = "shutting_down"
	// CodeBadFingerprint: a fingerprint report that is not
	// "sha-256 XX:XX:...".
	CodeBadFingerprint Code = "bad_fingerprint"
	// CodeUnknownPrescription: a revoke of a commitment that is not a
	// prescription notarized in this consultation (or that the notary
	// does not know). After the consultation, the app's backend revokes
	// with the bundle (POST /v1/prescriptions/revoke).
	CodeUnknownPrescription Code = "unknown_prescription"
	// CodeRevokeRefused: the notary refused a revocation; the message
	// says why. Nothing was recorded.
	CodeRevokeRefused Code = "revoke_refused"
)

// ProtocolError is a refusal the server sends to a client as an error
// message: its code, a sentence that names the field at fault, and whether
// the server closes the connection after it. errors.Is matches it against
// its Code.
type ProtocolError struct {
	Code    Code
	Message string
	// Fatal errors close the connection after the error message.
	Fatal bool
}

// Error returns the code and the message.
func (e *ProtocolError) Error() string { return string(e.Code) + ": " + e.Message }

// Is reports whether target is e's Code.
func (e *ProtocolError) Is(target error) bool {
	c, ok := target.(Code)
	return ok && c == e.Code
}

// Refuse returns a ProtocolError that keeps the connection open.
func Refuse(code Code, format string, args ...any) *ProtocolError {
	return &ProtocolError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// RefuseFatal returns a ProtocolError after which the server closes the
// connection.
func RefuseFatal(code Code, format string, args ...any) *ProtocolError {
	return &ProtocolError{Code: code, Message: fmt.Sprintf(format, args...), Fatal: true}
}

// Errors of the HTTP API besides those of every API (httpapi.ErrBadRequest,
// ErrUnauthorized, ErrForbidden, ErrNotFound, ErrMethodNotAllowed,
// ErrTooLarge, ErrInternal). The server answers each with its status and
// code; the [Client] returns an *httpapi.Problem that errors.Is matches
// against the same value.
var (
	// ErrShuttingDown: the server is stopping. Try another server, or
	// again after it restarted.
	ErrShuttingDown = &httpapi.Code{Name: string(CodeShuttingDown), Status: http.StatusServiceUnavailable, Title: "shutting down"}
	// ErrRoomLimit: the server holds as many rooms as it may. Retry after
	// a moment or on another server.
	ErrRoomLimit = &httpapi.Code{Name: string(CodeLimit), Status: http.StatusServiceUnavailable, Title: "room limit reached"}
	// ErrUpgradeRequired: a request to /v1/signal that is not a WebSocket
	// handshake. Open it with a WebSocket client.
	ErrUpgradeRequired = &httpapi.Code{Name: "upgrade_required", Status: http.StatusUpgradeRequired, Title: "WebSocket handshake required"}
	// ErrNotaryUnavailable: the notary cluster did not answer. Retry after
	// a moment.
	ErrNotaryUnavailable = &httpapi.Code{Name: string(CodeNotaryUnavailable), Status: http.StatusServiceUnavailable, Title: "notary cluster unavailable"}
	// ErrUnknownPrescription: the notary's log holds no prescription with
	// the bundle's commitment, or none it tracks (logged without an
	// allowance). The cluster's refusal, relayed (HTTP 409).
	ErrUnknownPrescription = &httpapi.Code{Name: string(CodeUnknownPrescription), Status: http.StatusConflict, Title: "no such prescription to dispense or revoke"}
	// ErrBadProof: the bundle's salt does not open the prescription's
	// dispense lock. The cluster's refusal, relayed (HTTP 409).
	ErrBadProof = &httpapi.Code{Name: "bad_proof", Status: http.StatusConflict, Title: "the proof does not open the prescription's lock"}
)
