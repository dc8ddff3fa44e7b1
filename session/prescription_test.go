package session_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/telenotary/telenotary/session"
	"github.com/telenotary/telenotary/session/internal/sessiontest"
	"github.com/telenotary/telenotary/session/signalapi"
	"github.com/telenotary/telenotary/session/signalapi/prescription/prescriptiontest"
)

// TestInvalidPrescriptions: the server refuses each invalid prescription
// of prescriptiontest (the peer SDK's TestPrescribeRefusesInvalid refuses
// the same inputs) with invalid_resource and a message that starts with
// the FHIR path of the fault; nothing is notarized. A resource that cannot
// stand inside a JSON message (a byte order mark, invalid UTF-8, cut
// short) is tried on the server's check directly.
func TestInvalidPrescriptions(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, nil)
	patient, physician := started(t, s, "room-invalid")
	before := logSize(t, n)
	cases := prescriptiontest.Invalid()
	if len(cases) < 20 {
		t.Fatalf("%d cases", len(cases))
	}
	for i, c := range cases {
		_, err := session.CheckMedicationRequest(c.Doc)
		var pe *signalapi.ProtocolError
		if !errors.As(err, &pe) || pe.Code != signalapi.CodeInvalidResource || !strings.HasPrefix(pe.Message, c.Path+": ") {
			t.Errorf("%s: the server's check gave %v, want invalid_resource at %s", c.Name, err, c.Path)
		}
		if !json.Valid(c.Doc) || !utf8.Valid(c.Doc) {
			continue
		}
		ref := fmt.Sprintf("bad-%d", i)
		physician.sendRaw([]byte(`{"type":"prescription","ref":"` + ref + `","resource":` + string(c.Doc) + `}`))
		m := physician.expectError(signalapi.CodeInvalidResource)
		if m.Ref != ref || !strings.HasPrefix(m.Message, c.Path+": ") {
			t.Errorf("%s: the server answered %q (ref %q), want a refusal at %s", c.Name, m.Message, m.Ref, c.Path)
		}
	}
	if after := logSize(t, n); after != before {
		t.Fatalf("invalid prescriptions notarized %d entries", after-before)
	}
	for i, c := range prescriptiontest.Valid() {
		ref := fmt.Sprintf("ok-%d", i)
		prescribe(t, patient, physician, ref, c.Doc)
	}
}
