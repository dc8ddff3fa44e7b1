package session_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/internal/sessiontest"
	"github.com/telenotary/telenotary/session/signalapi"
)

// TestRoomBoundToReferences: a room created with the FHIR references of
// its patient and physician takes only prescriptions for that patient by
// that physician (relative, absolute or versioned references alike), and
// refuses one for another patient or by another physician at the FHIR
// path, notarizing nothing; its session record carries the references'
// salted commitments, which the salt in the answer reproduces, and not
// the references. References of the wrong type or shape are refused when
// the room is created, naming the field.
func TestRoomBoundToReferences(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	app := s.Client(sessiontest.AppKey, nil)
	for _, bad := range []signalapi.CreateRoomRequest{
		{PatientReference: "Practitioner/f007"},
		{PatientReference: "Patient/"},
		{PatientReference: "Patient/pat1/_history/2"},
		{PatientReference: "Patient/" + strings.Repeat("a", 65)},
		{PhysicianReference: "Patient/pat1"},
		{PhysicianReference: "https://fhir.example/r4/Practitioner/f 007"},
	} {
		field := "patient_reference"
		if bad.PhysicianReference != "" {
			field = "physician_reference"
		}
		var p *httpapi.Problem
		if _, err := app.CreateRoom(ctx, bad); !errors.As(err, &p) || p.Field != field {
			t.Errorf("%+v: %v, want a refusal naming %s", bad, err, field)
		}
	}
	const patientRef, physicianRef = "Patient/pat1", "https://fhir.example/r4/Practitioner/f007"
	room, err := app.CreateRoom(ctx, signalapi.CreateRoomRequest{PatientReference: patientRef, PhysicianReference: physicianRef})
	if err != nil {
		t.Fatal(err)
	}
	if room.ReferenceSalt == nil {
		t.Fatal("a bound room's answer has no reference salt")
	}
	patient, physician := dial(t, s), dial(t, s)
	patient.join(room.Tokens[signalapi.RolePatient])
	physician.join(room.Tokens[signalapi.RolePhysician])
	offer, _ := sdpOffer(t)
	answer, _ := sdpOffer(t)
	physician.send(signalapi.Message{Type: signalapi.TypeOffer, SDP: offer})
	patient.expect(signalapi.TypeOffer)
	patient.send(signalapi.Message{Type: signalapi.TypeAnswer, SDP: answer})
	physician.expect(signalapi.TypeAnswer)
	start := patient.expect(signalapi.TypeReceipt)
	physician.expect(signalapi.TypeReceipt)
	b, err := notary.ParseBundle(start.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	var rec signalapi.Record
	if err := json.Unmarshal(b.Document, &rec); err != nil {
		t.Fatal(err)
	}
	for _, p := range rec.Participants {
		want := signalapi.ReferenceCommitment(*room.ReferenceSalt, map[signalapi.Role]string{signalapi.RolePatient: patientRef, signalapi.RolePhysician: physicianRef}[p.Role])
		if p.ReferenceCommitment == nil || *p.ReferenceCommitment != want {
			t.Errorf("%s: reference commitment %v, want %v", p.Role, p.ReferenceCommitment, want)
		}
	}
	if bytes.Contains(b.Document, []byte("pat1")) || bytes.Contains(b.Document, []byte("f007")) {
		t.Fatalf("the session record names a reference: %s", b.Document)
	}

	rx := func(subject, requester string) []byte {
		var doc map[string]any
		if err := json.Unmarshal(medicationRequest(t), &doc); err != nil {
			t.Fatal(err)
		}
		doc["subject"] = map[string]any{"reference": subject}
		doc["requester"] = map[string]any{"reference": requester}
		out, _ := json.Marshal(doc)
		return out
	}
	before := logSize(t, n)
	for _, c := range []struct{ subject, requester, path string }{
		{"Patient/pat2", "Practitioner/f007", "MedicationRequest.subject.reference"},
		{"https://other.example/Patient/pat1x", "Practitioner/f007", "MedicationRequest.subject.reference"},
		{"Patient/pat1", "Practitioner/f008", "MedicationRequest.requester.reference"},
		{"Patient/pat1", "https://elsewhere.example/r4/Practitioner/f007", "MedicationRequest.requester.reference"},
		{"Patient/pat1", "PractitionerRole/f007", "MedicationRequest.requester.reference"},
	} {
		physician.send(signalapi.Message{Type: signalapi.TypePrescription, Ref: "bad", Resource: rx(c.subject, c.requester)})
		if m := physician.expectError(signalapi.CodeInvalidResource); !strings.HasPrefix(m.Message, c.path+": ") {
			t.Errorf("subject %s, requester %s: refused with %q, want at %s", c.subject, c.requester, m.Message, c.path)
		}
	}
	if after := logSize(t, n); after != before {
		t.Fatalf("prescriptions for another patient or by another physician notarized %d entries", after-before)
	}
	for i, c := range []struct{ subject, requester string }{
		{"Patient/pat1", "Practitioner/f007"},
		{"https://fhir.example/r4/Patient/pat1/_history/3", physicianRef},
	} {
		ref := []string{"ok-relative", "ok-absolute"}[i]
		prescribe(t, patient, physician, ref, rx(c.subject, c.requester))
	}
}
