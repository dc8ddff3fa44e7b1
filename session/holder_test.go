package session_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session"
	"github.com/telenotary/telenotary/session/internal/sessiontest"
	"github.com/telenotary/telenotary/session/signalapi"
)

// noReceiptYet shows that the physician has not been sent a receipt: the
// server answers a refused message in order, after anything it queued for
// the physician before.
func noReceiptYet(t *testing.T, physician *client) {
	t.Helper()
	physician.send(signalapi.Message{Type: signalapi.TypeConsent, Scope: "BAD"})
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m := <-physician.in:
			if m.Type == signalapi.TypeReceipt {
				t.Fatalf("the physician got the receipt of %q before any holder had its bundle", m.Ref)
			}
			if m.Type == signalapi.TypeError && m.Code == signalapi.CodeBadMessage {
				return
			}
		case <-timeout:
			t.Fatal("no answer to a bad consent")
		}
	}
}

// TestReceiptWaitsForAHolder: the physician is told a prescription is
// done only once its bundle is out of the server's memory: the patient's
// app keeps it (kept), after a reconnection if need be, since the server
// sends it again; a session that ends with no holder leaves the bundle in
// the undelivered store, and the physician's receipt says so.
func TestReceiptWaitsForAHolder(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, func(c *session.Config) { c.HolderWait = 300 * time.Millisecond })
	patientTok, physicianTok := s.Tokens(t, "room-holder")
	patient, physician := dial(t, s), dial(t, s)
	ticket := patient.join(patientTok).Ticket
	physician.join(physicianTok)
	startSession(t, patient, physician)

	// Only the patient keeps a bundle, and only by its commitment.
	physician.send(signalapi.Message{Type: signalapi.TypeKept, Commitment: notary.Commitment{}.String()})
	physician.expectError(signalapi.CodeForbidden)
	patient.sendRaw([]byte(`{"type":"kept","commitment":"abc"}`))
	if m := patient.expectError(signalapi.CodeBadMessage); !strings.Contains(m.Message, "commitment") {
		t.Fatalf("a bad commitment is refused with %q, which does not name the field", m.Message)
	}

	physician.send(signalapi.Message{Type: signalapi.TypePrescription, Ref: "rx-1", Resource: medicationRequest(t)})
	first := patient.expect(signalapi.TypePrescription)
	noReceiptYet(t, physician)

	// The patient's connection drops before it says it keeps the bundle:
	// coming back, it is sent the bundle again, and keeps it then.
	patient.ws.CloseNow()
	physician.expect(signalapi.TypePeerLeft)
	patient = dial(t, s)
	ticket = patient.resume(ticket).Ticket
	again := patient.expect(signalapi.TypePrescription)
	if string(again.Bundle) != string(first.Bundle) {
		t.Fatal("the bundle sent again is not the one sent first")
	}
	noReceiptYet(t, physician)
	patient.keep(again)
	if m := physician.expect(signalapi.TypeReceipt); m.Ref != "rx-1" || m.Holder != signalapi.HolderPatient || string(m.Bundle) != string(first.Bundle) {
		t.Fatalf("the physician got %q held by %q, want rx-1 held by the patient", m.Ref, m.Holder)
	}
	patient.keep(again) // twice is harmless

	// A bundle the patient never keeps, in a session that ends: the
	// server holds it for the app, and the physician is told so before
	// session-end.
	physician.send(signalapi.Message{Type: signalapi.TypePrescription, Ref: "rx-2", Resource: medicationRequest(t)})
	second := patient.expect(signalapi.TypePrescription)
	patient.send(signalapi.Message{Type: signalapi.TypeLeave})
	if m := physician.expect(signalapi.TypeReceipt); m.Ref != "rx-2" || m.Holder != signalapi.HolderServer {
		t.Fatalf("the physician got %q held by %q, want rx-2 held by the server", m.Ref, m.Holder)
	}
	physician.expect(signalapi.TypeSessionEnd)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u, err := s.Client(sessiontest.AppKey, nil).Undelivered(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Events) != 1 {
		t.Fatalf("%d events held, want the one bundle no holder took", len(u.Events))
	}
	var e signalapi.WebhookEvent
	if err := json.Unmarshal(u.Events[0].Event, &e); err != nil {
		t.Fatal(err)
	}
	if e.Event != notary.KindPrescription || e.Ref != "rx-2" || string(e.Bundle) != string(second.Bundle) {
		t.Fatalf("held event %s %q, want the bundle of rx-2", e.Event, e.Ref)
	}
	alerts := s.Server.Sessions().Alerts
	if len(alerts) == 0 || !strings.Contains(alerts[len(alerts)-1].Message, "rx-2") {
		t.Fatalf("no alert names the bundle held: %+v", alerts)
	}
}

// TestEndWaitsForKept: a patient who leaves right after a prescription
// and says it keeps the bundle a moment later is still its holder; the
// end waits for it (within HolderWait).
func TestEndWaitsForKept(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, func(c *session.Config) { c.HolderWait = time.Minute })
	patient, physician := started(t, s, "room-late-kept")
	physician.send(signalapi.Message{Type: signalapi.TypePrescription, Ref: "rx", Resource: medicationRequest(t)})
	relayed := patient.expect(signalapi.TypePrescription)
	patient.send(signalapi.Message{Type: signalapi.TypeLeave})
	patient.keep(relayed)
	if m := physician.expect(signalapi.TypeReceipt); m.Holder != signalapi.HolderPatient {
		t.Fatalf("the receipt names %q as the holder, want the patient", m.Holder)
	}
	physician.expect(signalapi.TypeSessionEnd)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if u, err := s.Client(sessiontest.AppKey, nil).Undelivered(ctx); err != nil || len(u.Events) != 0 {
		t.Fatalf("held after the patient kept every bundle: %+v, %v", u, err)
	}
}

// numberedRx is the HL7 example with its id made unique by i, so that
// many prescriptions of one session are different documents.
func numberedRx(t testing.TB, i int) []byte {
	t.Helper()
	return editedMedicationRequest(t, func(r map[string]any) { r["id"] = fmt.Sprintf("away-%d", i) })
}

// TestAwayParticipantMissesNothing: what the server keeps for a
// participant who is away, and what it sends again on the return, is
// bounded by the session's own limits, not by a smaller queue. A
// physician away while the patient keeps 70 bundles gets all 70 receipts
// on coming back; a patient away for every prescription a session allows
// gets them all on coming back, and is not dropped as a client too slow to
// read them.
func TestAwayParticipantMissesNothing(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, func(c *session.Config) { c.HolderWait = 300 * time.Millisecond })

	t.Run("physician away", func(t *testing.T) {
		patientTok, physicianTok := s.Tokens(t, "room-physician-away")
		patient, physician := dial(t, s), dial(t, s)
		patient.join(patientTok)
		ticket := physician.join(physicianTok).Ticket
		startSession(t, patient, physician)
		const count = 70
		var relayed []*signalapi.Message
		for i := range count {
			physician.send(signalapi.Message{Type: signalapi.TypePrescription, Ref: fmt.Sprintf("rx-%d", i), Resource: numberedRx(t, i)})
			relayed = append(relayed, patient.expect(signalapi.TypePrescription))
		}
		physician.ws.CloseNow()
		patient.expect(signalapi.TypePeerLeft)
		for _, m := range relayed {
			patient.keep(m)
		}
		physician = dial(t, s)
		physician.resume(ticket)
		refs := map[string]bool{}
		for len(refs) < count {
			m := physician.expect(signalapi.TypeReceipt)
			if m.Kind == notary.KindPrescription {
				refs[m.Ref] = true
			}
		}
	})

	t.Run("patient away", func(t *testing.T) {
		patientTok, physicianTok := s.Tokens(t, "room-patient-away")
		patient, physician := dial(t, s), dial(t, s)
		ticket := patient.join(patientTok).Ticket
		physician.join(physicianTok)
		startSession(t, patient, physician)
		patient.ws.CloseNow()
		physician.expect(signalapi.TypePeerLeft)
		count := signalapi.MaxSessionPrescriptions
		for i := range count {
			physician.send(signalapi.Message{Type: signalapi.TypePrescription, Ref: fmt.Sprintf("rx-%d", i), Resource: numberedRx(t, i)})
		}
		// The prescriptions were taken in order: a refused message is
		// answered after them.
		noReceiptYet(t, physician)
		patient = dial(t, s)
		patient.resume(ticket)
		bundles := map[string]bool{}
		for len(bundles) < count {
			m := patient.expect(signalapi.TypePrescription)
			bundles[string(m.Bundle)] = true
		}
	})
}
