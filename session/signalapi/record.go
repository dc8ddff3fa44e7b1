package signalapi

import (
	"time"

	"github.com/telenotary/telenotary/notary"
)

// RecordFormat names the version of the session record document.
const RecordFormat = "telenotary.session-record/v1"

// Phase is the moment of a session a record describes.
type Phase string

// The two records of a session.
const (
	// PhaseStart: both participants joined and announced their DTLS
	// fingerprints.
	PhaseStart Phase = "start"
	// PhaseEnd: the session ended; the record lists its prescriptions.
	PhaseEnd Phase = "end"
)

// Record is the session record: what the server knows of one
// consultation. The server keeps it in memory only; at the start and at
// the end of the session it commits the record's RFC 8785 form with a
// fresh salt and notarizes it, and the app receives it, with its salt and
// receipt, as the document of a session-start or session-end bundle
// (webhook, and the peers' receipt and session-end messages). It holds
// pseudonymous subject ids, never names or documents.
type Record struct {
	// Format is RecordFormat.
	Format  string `json:"format"`
	Phase   Phase  `json:"phase"`
	Room    string `json:"room"`
	Session string `json:"session"`
	// Started is when both participants had joined and announced their
	// fingerprints.
	Started time.Time `json:"started"`
	// Ended is when the session ended (end phase only).
	Ended        *time.Time          `json:"ended,omitempty"`
	EndReason    string              `json:"end_reason,omitempty"`
	Participants []RecordParticipant `json:"participants"`
	// FingerprintMismatch is set when a participant reported a DTLS
	// certificate that is not one the other participant's SDP announced:
	// someone may have sat in the middle.
	FingerprintMismatch bool                 `json:"fingerprint_mismatch"`
	Consents            []RecordConsent      `json:"consents,omitempty"`
	Prescriptions       []RecordPrescription `json:"prescriptions,omitempty"`
	// Continues, in the record of a session opened when the signalling
	// instance that held the room went away, is the session it continues.
	Continues string `json:"continues,omitempty"`
	// ContinuedBy, in the end record of an interrupted session (EndReason
	// EndInterrupted), is the session that continues it. That record is
	// written by the instance that took the room over, which knows only
	// the participants that came back: the interrupted session's own
	// prescriptions are in their own receipts, not listed in it.
	ContinuedBy string `json:"continued_by,omitempty"`
}

// EndInterrupted is the end reason of a session whose signalling instance
// went away (crashed, or lost from the others) while it was live.
const EndInterrupted = "interrupted"

// RecordParticipant is one participant in a session record.
type RecordParticipant struct {
	Role    Role   `json:"role"`
	Subject string `json:"subject"`
	// Joined is when the participant first joined; Left when it last left.
	Joined time.Time  `json:"joined"`
	Left   *time.Time `json:"left,omitempty"`
	// Reconnects are the times the participant came back within the grace
	// window.
	Reconnects []time.Time `json:"reconnects,omitempty"`
	// Fingerprints are the DTLS certificate fingerprints of the
	// participant's SDP, in order (more than one after a reload).
	Fingerprints []Fingerprint `json:"fingerprints"`
	// SawPeer is the fingerprint the participant reported seeing on its
	// DTLS transport for the other participant.
	SawPeer *Fingerprint `json:"saw_peer_fingerprint,omitempty"`
	// ReferenceCommitment, in a room bound to FHIR references, commits to
	// the participant's (ReferenceCommitment: the reference salted with
	// the room's ReferenceSalt), never the reference itself.
	ReferenceCommitment *notary.Commitment `json:"reference_commitment,omitempty"`
}

// RecordConsent is a consent event.
type RecordConsent struct {
	Time    time.Time `json:"time"`
	Role    Role      `json:"role"`
	Scope   string    `json:"scope"`
	Granted bool      `json:"granted"`
}

// RecordPrescription is a prescription notarized in the session: its
// commitment and its index in the log.
type RecordPrescription struct {
	Commitment notary.Commitment `json:"commitment"`
	Index      uint64            `json:"index"`
}
