package session_test

import (
	"testing"
	"time"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session"
	"github.com/telenotary/telenotary/session/internal/sessiontest"
	"github.com/telenotary/telenotary/session/signalapi"
	"golang.org/x/mod/sumdb/note"
)

// startedReceipts joins both participants of a room, exchanges offer and
// answer, and returns the session-start bundles the patient and the
// physician receive.
func startedReceipts(t *testing.T, s *sessiontest.Signal) (patient, physician *notary.Bundle) {
	t.Helper()
	patientTok, physicianTok := s.Tokens(t, "room-w")
	pc, dc := dial(t, s), dial(t, s)
	pc.join(patientTok)
	dc.join(physicianTok)
	offer, _ := sdpOffer(t)
	answer, _ := sdpOffer(t)
	dc.send(signalapi.Message{Type: signalapi.TypeOffer, SDP: offer})
	pc.expect(signalapi.TypeOffer)
	pc.send(signalapi.Message{Type: signalapi.TypeAnswer, SDP: answer})
	dc.expect(signalapi.TypeAnswer)
	var out [2]*notary.Bundle
	for i, c := range []*client{pc, dc} {
		m := c.expect(signalapi.TypeReceipt)
		b, err := notary.ParseBundle(m.Bundle)
		if err != nil {
			t.Fatalf("receipt bundle %q: %v", m.Bundle, err)
		}
		out[i] = b
	}
	return out[0], out[1]
}

// TestReceiptWitnesses: with ReceiptWitnesses, the session-start bundles
// carry a checkpoint cosigned by the cluster's witness (verified with its
// key), and still verify under the nodes' keys.
func TestReceiptWitnesses(t *testing.T) {
	n, v := sessiontest.StartWitnessedNotary(t, false)
	s := sessiontest.StartSignal(t, n, func(c *session.Config) { c.ReceiptWitnesses, c.ReceiptSignatures = 1, 1 })
	patient, physician := startedReceipts(t, s)
	for _, b := range []*notary.Bundle{patient, physician} {
		if _, err := notary.VerifyBundle(b, n.Policy); err != nil {
			t.Fatalf("bundle does not verify: %v", err)
		}
		opened, err := note.Open(b.Receipt.Checkpoint, note.VerifierList(v))
		if err != nil || len(opened.Sigs) != 1 {
			t.Fatalf("the bundle's checkpoint is not cosigned by the witness (%v):\n%s", err, b.Receipt.Checkpoint)
		}
	}
}

// TestReceiptWitnessesTimeout: a witness that is down delays each receipt
// by ReceiptWitnessWait at most; the bundle then comes without a
// cosignature and verifies under the nodes' keys.
func TestReceiptWitnessesTimeout(t *testing.T) {
	n, v := sessiontest.StartWitnessedNotary(t, true)
	const wait = 300 * time.Millisecond
	s := sessiontest.StartSignal(t, n, func(c *session.Config) {
		c.ReceiptWitnesses, c.ReceiptWitnessWait, c.ReceiptSignatures = 1, wait, 1
	})
	patient, _ := startedReceipts(t, s)
	if _, err := notary.VerifyBundle(patient, n.Policy); err != nil {
		t.Fatalf("bundle does not verify: %v", err)
	}
	if _, err := note.Open(patient.Receipt.Checkpoint, note.VerifierList(v)); err == nil {
		t.Fatal("a cosignature by a witness that is down")
	}
}

// TestReceiptWitnessesRefused: a cluster with no witnesses refuses at once
// what the server asks: receipts are delivered without waiting out
// ReceiptWitnessWait.
func TestReceiptWitnessesRefused(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, func(c *session.Config) {
		c.ReceiptWitnesses, c.ReceiptWitnessWait, c.ReceiptSignatures = 1, time.Hour, 1
	})
	patient, _ := startedReceipts(t, s) // would wait an hour
	if _, err := notary.VerifyBundle(patient, n.Policy); err != nil {
		t.Fatalf("bundle does not verify: %v", err)
	}
}
