package session

import (
	"encoding/json"
	"time"

	"github.com/telenotary/telenotary/notary"
)

// RecordFormat names the version of the session record document.
const RecordFormat = "telenotary.session-record/v1"

// Record is the session record: what the server knows of one consultation.
// It lives in memory only; at the start and at the end of the session its
// RFC 8785 form is committed with a fresh salt and notarized, and the app
// receives it with its salt and receipt (webhook, and the peers' receipt
// messages). It holds pseudonymous subject ids, never names or documents.
type Record struct {
	Format string `json:"format"`
	// Phase is "start" or "end".
	Phase   string `json:"phase"`
	Room    string `json:"room"`
	Session string `json:"session"`
	// Started is when both participants had joined.
	Started time.Time `json:"started"`
	// Ended is when the session ended (end phase only).
	Ended        *time.Time          `json:"ended,omitempty"`
	EndReason    string              `json:"end_reason,omitempty"`
	Participants []RecordParticipant `json:"participants"`
	// FingerprintMismatch is set when a participant reported a DTLS
	// certificate that is not the one the other participant's SDP announced:
	// someone may have sat in the middle.
	FingerprintMismatch bool                 `json:"fingerprint_mismatch"`
	Consents            []RecordConsent      `json:"consents,omitempty"`
	Prescriptions       []RecordPrescription `json:"prescriptions,omitempty"`
}

// RecordParticipant is one participant in a session record.
type RecordParticipant struct {
	Role    string `json:"role"`
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
}

// RecordConsent is a consent event.
type RecordConsent struct {
	Time    time.Time `json:"time"`
	Role    string    `json:"role"`
	Scope   string    `json:"scope"`
	Granted bool      `json:"granted"`
}

// RecordPrescription is a prescription notarized in the session.
type RecordPrescription struct {
	Commitment notary.Commitment `json:"commitment"`
	Index      uint64            `json:"index"`
}

// canonical returns the record's RFC 8785 bytes.
func (r *Record) canonical() ([]byte, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return notary.CanonicalJSON(data)
}

// ms truncates a time to milliseconds in UTC, the precision of records.
func ms(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }
