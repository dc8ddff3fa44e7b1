package signalapi

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/telenotary/telenotary/notary"
)

// Paths of the HTTP API.
const (
	PathRooms    = "/v1/rooms"
	PathSessions = "/v1/sessions"
	PathKeys     = "/v1/keys"
	PathSignal   = "/v1/signal"
	// PathUndelivered lists the webhook events the app's backend did not
	// take; PathUndelivered + "/{id}" acknowledges one (DELETE).
	PathUndelivered = "/v1/undelivered"
	// PathPrescriptions + "/{commitment}/status" relays a prescription's
	// status from the notary cluster (GET, public).
	PathPrescriptions = "/v1/prescriptions"
	// PathRevoke revokes a prescription given its bundle (POST, app key).
	PathRevoke = PathPrescriptions + "/revoke"
	// PathInstance names the answering signalling instance and when it
	// started (GET, public): what the instances of a group probe of each
	// other (InstanceInfo).
	PathInstance = "/v1/instance"
)

// RelayHeader, on a request of one signalling instance of a group to
// another (a relayed WebSocket, a listing of sessions, room control),
// names the instance and proves it ("NAME MAC": an HMAC of the name under
// a key derived from the group's token key): the instance answering
// serves it itself, never passing it on, and a relayed join may take a
// room over. Without a valid proof the header is ignored.
const RelayHeader = "Telenotary-Relayed-By"

// InstanceInfo is the answer of GET /v1/instance.
type InstanceInfo struct {
	// Instance is the instance's name (the signal command's --instance).
	Instance string `json:"instance"`
	// Epoch is when the instance started, in Unix seconds: another value
	// for the same name means it restarted, and holds none of the rooms
	// it held before.
	Epoch int64 `json:"epoch"`
}

// StatusPath is the path of a prescription's status (GET): the notary
// cluster's answer (notary.PrescriptionStatus), relayed as it is.
func StatusPath(c notary.Commitment) string { return PathPrescriptions + "/" + c.String() + "/status" }

// MaxRevokeBody bounds the body of POST /v1/prescriptions/revoke: a
// bundle of a prescription (at most MaxPrescriptionSize) with its receipt.
const MaxRevokeBody = 128 << 10

// RevokeRequest is the body of POST /v1/prescriptions/revoke: an app's
// backend revokes, on behalf of the physician, a prescription whose
// bundle it holds, after its consultation is over (in a consultation the
// physician sends a revoke message).
type RevokeRequest struct {
	// Bundle is the prescription's bundle (docs/FORMATS.md) as the server
	// delivered it: its document and salt must give its receipt's
	// commitment, and its receipt must be a prescription's. Its salt is
	// the proof that the revoker holds it.
	Bundle json.RawMessage `json:"bundle"`
}

// RevokeResponse answers POST /v1/prescriptions/revoke (HTTP 200).
type RevokeResponse struct {
	// Commitment is the revoked prescription's.
	Commitment notary.Commitment `json:"commitment"`
	// Receipt is the revocation's: a leaf of kind revocation, commitment
	// notary.RevocationCommitment(Commitment), linked to the prescription.
	Receipt *notary.Receipt `json:"receipt"`
	// Existing says the prescription was revoked before: this is the
	// receipt of that revocation.
	Existing bool `json:"existing"`
}

// MaxSessionPrescriptions bounds the prescriptions of one session.
const MaxSessionPrescriptions = 200

// MaxCreateRoomBody bounds the body of POST /v1/rooms.
const MaxCreateRoomBody = 4096

// CreateRoomRequest is the body of POST /v1/rooms; every field is optional.
type CreateRoomRequest struct {
	// Patient and Physician are pseudonymous subject ids (1 to 64 of
	// A-Z a-z 0-9 - _; see ValidID); the server draws random ones when
	// they are empty. Never a name or a record number: they are notarized,
	// salted, in the session record.
	Patient   string `json:"patient,omitempty"`
	Physician string `json:"physician,omitempty"`
	// TTLSeconds is the tokens' lifetime (default the server's token
	// lifetime; at most its maximum session length).
	TTLSeconds int `json:"ttl_seconds,omitempty"`
	// PatientReference and PhysicianReference bind the room to the FHIR
	// resources of its patient (Patient/<id>) and physician
	// (Practitioner/<id> or PractitionerRole/<id>), relative or as an
	// absolute URL ending so (see ValidReference). A prescription whose
	// subject or requester refers to another is refused. The server
	// keeps them in memory only; the session record carries their salted
	// commitments (ReferenceCommitment), with the salt in the answer.
	PatientReference   string `json:"patient_reference,omitempty"`
	PhysicianReference string `json:"physician_reference,omitempty"`
}

// MaxReference bounds a FHIR reference given to bind a room.
const MaxReference = 256

// referencePattern is a literal FHIR reference: [base URL/]Type/id.
var referencePattern = regexp.MustCompile(`^(https?://[!-~]+/)?(Patient|Practitioner|PractitionerRole)/[A-Za-z0-9\-.]{1,64}$`)

// ValidReference reports whether ref is a literal reference to a resource
// of one of the types given: [base URL/]Type/id, at most MaxReference
// bytes, without a version.
func ValidReference(ref string, types ...string) bool {
	m := referencePattern.FindStringSubmatch(ref)
	return len(ref) <= MaxReference && m != nil && slices.Contains(types, m[2])
}

// SameReference reports whether a prescription's literal reference got
// (relative or absolute, possibly of one version: .../_history/<v>) names
// the resource of want (as ValidReference takes it): the same type and
// id, and the same base URL when both have one.
func SameReference(got, want string) bool {
	if i := strings.Index(got, "/_history/"); i >= 0 {
		got = got[:i]
	}
	if got == want {
		return true
	}
	gotAbs, wantAbs := strings.Contains(got, "://"), strings.Contains(want, "://")
	switch {
	case gotAbs && !wantAbs:
		return strings.HasSuffix(got, "/"+want)
	case wantAbs && !gotAbs:
		return strings.HasSuffix(want, "/"+got)
	}
	return false
}

// ReferenceCommitment is the commitment a session record gives of a
// room's FHIR reference: notary.Commit over its UTF-8 bytes, with the
// salt of the room's CreateRoomResponse.
func ReferenceCommitment(salt notary.Salt, ref string) notary.Commitment {
	return notary.Commit(salt, []byte(ref))
}

// CreateRoomResponse answers POST /v1/rooms (HTTP 201).
type CreateRoomResponse struct {
	Room    string    `json:"room"`
	Expires time.Time `json:"expires"`
	// Tokens are the participants' room tokens, by role.
	Tokens map[Role]string `json:"tokens"`
	// ReferenceSalt, when the room was bound to FHIR references, salts
	// their commitments in the session record: keep it with the
	// references to show later which ones the consultation was bound to.
	ReferenceSalt *notary.Salt `json:"reference_salt,omitempty"`
}

// RoomsResponse answers GET /v1/rooms: the rooms the server holds, oldest
// first.
type RoomsResponse struct {
	Rooms []SessionInfo `json:"rooms"`
}

// EndRoomRequest is the optional body of POST /v1/rooms/{room}/end.
type EndRoomRequest struct {
	// Reason is recorded in the session-end record after "ended-by-app: "
	// (at most MaxReasonLength printable ASCII characters).
	Reason string `json:"reason,omitempty"`
}

// MaxEndRoomBody bounds the body of POST /v1/rooms/{room}/end.
const MaxEndRoomBody = 1024

// SessionsResponse answers GET /v1/sessions.
type SessionsResponse struct {
	// Sessions are the live consultations, oldest first.
	Sessions []SessionInfo `json:"sessions"`
	// Alerts are recent events an operator should see (fingerprint
	// mismatches, failed webhooks, notarizations that failed), oldest first.
	Alerts []Alert `json:"alerts"`
}

// SessionState is where a consultation stands.
type SessionState string

// States of a session.
const (
	// StateWaiting: for both participants to join and negotiate.
	StateWaiting SessionState = "waiting"
	// StateActive: the session started (its start record is notarized).
	StateActive SessionState = "active"
	// StateReconnecting: a participant is away, within its grace window.
	StateReconnecting SessionState = "reconnecting"
	// StateEnding: the end is decided; the end record is being notarized.
	StateEnding SessionState = "ending"
)

// SessionInfo describes a live consultation: no subjects, no documents.
type SessionInfo struct {
	Room    string    `json:"room"`
	Session string    `json:"session"`
	Created time.Time `json:"created"`
	// Instance names the signalling server that holds the room.
	Instance string `json:"instance,omitempty"`
	// Expires is when the session ends at the latest (the server's
	// maximum session length after the room opened).
	Expires             time.Time         `json:"expires"`
	Started             *time.Time        `json:"started,omitempty"`
	State               SessionState      `json:"state"`
	DurationMillis      int64             `json:"duration_ms"`
	Participants        []ParticipantInfo `json:"participants"`
	Receipts            int               `json:"receipts"`
	Prescriptions       int               `json:"prescriptions"`
	FingerprintMismatch bool              `json:"fingerprint_mismatch"`
}

// DTLSState is how far a participant's DTLS connection is, as the server
// sees it.
type DTLSState string

// DTLS states of a participant.
const (
	// DTLSNew: no SDP yet.
	DTLSNew DTLSState = "new"
	// DTLSNegotiating: the participant's SDP announced its certificate.
	DTLSNegotiating DTLSState = "negotiating"
	// DTLSConnected: the participant reported the other side's certificate.
	DTLSConnected DTLSState = "connected"
)

// ParticipantInfo is a participant's connection state.
type ParticipantInfo struct {
	Role      Role      `json:"role"`
	Connected bool      `json:"connected"`
	DTLS      DTLSState `json:"dtls"`
	// Path is the kind of the participant's candidate in the pair its ICE
	// selected, as it reports it: host, srflx, prflx or relay (through a
	// TURN server); empty before it reports one.
	Path string `json:"path,omitempty"`
}

// AlertKind says what an alert is about.
type AlertKind string

// Kinds of alert.
const (
	// AlertFingerprintMismatch: a participant saw a DTLS certificate the
	// other did not announce; someone may sit in the middle.
	AlertFingerprintMismatch AlertKind = "fingerprint-mismatch"
	// AlertNotaryUnavailable: a record or a prescription was not
	// notarized.
	AlertNotaryUnavailable AlertKind = "notary-unavailable"
	// AlertWebhookFailed: a webhook event was dropped or not delivered.
	AlertWebhookFailed AlertKind = "webhook-failed"
	// AlertInstanceUnavailable: an instance of the group did not list its
	// sessions; the list is missing its rooms.
	AlertInstanceUnavailable AlertKind = "instance-unavailable"
	// AlertTakeover: this instance took over a room whose instance went
	// away; its session was interrupted and continues as a new one.
	AlertTakeover AlertKind = "takeover"
)

// Alert is an event for the operator.
type Alert struct {
	Time    time.Time `json:"time"`
	Kind    AlertKind `json:"kind"`
	Room    string    `json:"room,omitempty"`
	Message string    `json:"message"`
}

// WebhookEvent is the body of a webhook delivery: a receipt bundle (the
// session record or the prescription, its salt and its receipt) with where
// it belongs.
type WebhookEvent struct {
	// Event is the bundle's kind: session-start, prescription or
	// session-end.
	Event   notary.Kind `json:"event"`
	Room    string      `json:"room"`
	Session string      `json:"session"`
	// Ref is the physician's reference of a prescription.
	Ref    string          `json:"ref,omitempty"`
	Bundle json.RawMessage `json:"bundle"`
}

// UndeliveredEvent is a webhook event the app's backend did not take:
// every attempt failed, or the queue was full. The server keeps it in
// memory until the app acknowledges it.
type UndeliveredEvent struct {
	// ID is the event's webhook-id.
	ID       string    `json:"id"`
	FailedAt time.Time `json:"failed_at"`
	// Error is why the last attempt failed.
	Error string `json:"error"`
	// Event is the body the webhook would have received (WebhookEvent).
	Event json.RawMessage `json:"event"`
}

// UndeliveredResponse answers GET /v1/undelivered.
type UndeliveredResponse struct {
	// Events are the events held, oldest first.
	Events []UndeliveredEvent `json:"events"`
}
