package session

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/signalapi"
)

// recordLocked builds the session record (signalapi.Record) as it stands.
func (r *room) recordLocked(phase signalapi.Phase) *signalapi.Record {
	rec := &signalapi.Record{
		Format: signalapi.RecordFormat, Phase: phase, Room: r.id, Session: r.session,
		Started: ms(r.startTime), FingerprintMismatch: r.mismatch,
		Participants: []signalapi.RecordParticipant{},
		Consents:     append([]signalapi.RecordConsent(nil), r.consents...),
		Continues:    r.continues,
	}
	if phase == signalapi.PhaseEnd {
		t := ms(r.endTime)
		rec.Ended, rec.EndReason = &t, r.endReason
		rec.Prescriptions = append(rec.Prescriptions, r.rx...)
	}
	for _, p := range r.parts {
		if p == nil {
			continue
		}
		rp := signalapi.RecordParticipant{Role: p.role, Subject: p.subject, Joined: ms(p.joined),
			Fingerprints: append([]signalapi.Fingerprint(nil), p.prints...), SawPeer: p.sawPeer,
			ReferenceCommitment: r.bound.commitment(p.role)}
		if phase == signalapi.PhaseEnd && !p.left.IsZero() {
			t := ms(p.left)
			rp.Left = &t
		}
		for _, t := range p.reconnects {
			rp.Reconnects = append(rp.Reconnects, ms(t))
		}
		rec.Participants = append(rec.Participants, rp)
	}
	return rec
}

// commit canonicalizes a record (RFC 8785) and commits it under a fresh
// salt. A record always encodes, and its size is bounded (participants,
// fingerprints, consents, prescriptions and reconnections all are) far
// below notary.MaxDocumentSize, so an error here is a bug.
func commit(rec *signalapi.Record) *document {
	data, err := json.Marshal(rec)
	if err == nil {
		data, err = notary.CanonicalJSON(data)
	}
	if err != nil {
		panic(fmt.Sprintf("session: a session record does not encode: %v", err))
	}
	return commitCanonical(data)
}

// ms truncates a time to milliseconds in UTC, the precision of records.
func ms(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }
