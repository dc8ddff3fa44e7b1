package peer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/telenotary/telenotary/session/internal/sessiontest"
	"github.com/telenotary/telenotary/session/signalapi"
	"github.com/telenotary/telenotary/session/signalapi/prescription"
	"github.com/telenotary/telenotary/session/signalapi/prescription/prescriptiontest"
)

// TestPrescribeRefusesInvalid: in a live consultation, the SDK refuses each
// invalid prescription before sending it, with the FHIR path the server
// names (session's TestInvalidPrescriptions tries the server on the same
// inputs); nothing reaches the server, and the session goes on: the valid
// variants are notarized.
func TestPrescribeRefusesInvalid(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, nil)
	patient, physician := consultation(t, ctx, n, s, "room-invalid")
	cases := prescriptiontest.Invalid()
	if len(cases) < 20 {
		t.Fatalf("%d cases", len(cases))
	}
	for _, c := range cases {
		_, err := physician.Prescribe(ctx, "bad", c.Doc)
		var perr *prescription.Error
		if !errors.As(err, &perr) || perr.Path != c.Path || !errors.Is(err, signalapi.CodeInvalidResource) {
			t.Errorf("%s: %v, want a refusal at %s", c.Name, err, c.Path)
		}
	}
	for i, c := range prescriptiontest.Valid() {
		if _, err := physician.Prescribe(ctx, "ok-"+string(rune('a'+i)), c.Doc); err != nil {
			t.Errorf("%s: %v", c.Name, err)
		}
	}
	if errs := physician.Errors(); len(errs) != 0 {
		t.Fatalf("the server refused what the SDK sent: %v", errs)
	}
	if _, err := physician.Leave(ctx, ""); err != nil {
		t.Fatal(err)
	}
	patient.WaitEnd(ctx)
}
