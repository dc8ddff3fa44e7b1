package peer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/internal/sessiontest"
	"github.com/telenotary/telenotary/session/signalapi"
)

// TestRevoke: through the SDK, a prescription with 3 repeats is
// notarized with 4 fills; the patient's Revoke is refused by the server
// (forbidden); the physician's returns the verified revocation, which the
// patient gets on Revocations once; the cluster's status says revoked and
// verifies with the patient's bundle.
func TestRevoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, nil)
	patient, physician := consultation(t, ctx, n, s, "room-sdk-revoke")
	rx := fhirExamples(t)["MedicationRequest-medrx0304.json"] // numberOfRepeatsAllowed 3
	receipt, err := physician.Prescribe(ctx, "rx-3", rx)
	if err != nil {
		t.Fatal(err)
	}
	kept := nextReceipt(t, ctx, patient, notary.KindPrescription)
	c := receipt.Bundle.Receipt.Leaf.Commitment
	if kept.Bundle.Receipt.Leaf.Commitment != c {
		t.Fatal("the patient kept another prescription")
	}
	v, err := notary.NewVerifier(n.Policy)
	if err != nil {
		t.Fatal(err)
	}
	status := func() *notary.StatusResult {
		t.Helper()
		st, err := n.Client.PrescriptionStatus(ctx, c, true)
		if err != nil {
			t.Fatal(err)
		}
		res, err := v.VerifyStatus(st, kept.Bundle)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := status(); res.State != notary.StateActive || res.FillsAllowed != 4 {
		t.Fatalf("status %s with %d fills, want active with 4", res.State, res.FillsAllowed)
	}

	if _, err := patient.Revoke(ctx, c); !errors.Is(err, signalapi.CodeForbidden) {
		t.Fatalf("the patient's revoke: %v, want forbidden", err)
	}
	r, err := physician.Revoke(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if r.Err != nil || r.Result == nil || r.Commitment != c || r.Receipt.Leaf.Kind != notary.KindRevocation || r.Receipt.Leaf.Link != c {
		t.Fatalf("revocation %+v", r)
	}
	select {
	case got := <-patient.Revocations():
		if got.Err != nil || got.Commitment != c || got.Receipt.Index != r.Receipt.Index {
			t.Fatalf("the patient's revocation: %+v", got)
		}
	case <-ctx.Done():
		t.Fatal("the patient was not told of the revocation")
	}
	if res := status(); res.State != notary.StateRevoked || !res.RevokedAt.Equal(r.Receipt.Leaf.Time()) {
		t.Fatalf("status %s revoked at %v, want revoked at %v", res.State, res.RevokedAt, r.Receipt.Leaf.Time())
	}
	// Again: the same revocation, published once.
	again, err := physician.Revoke(ctx, c)
	if err != nil || again.Receipt.Index != r.Receipt.Index {
		t.Fatalf("revoking again: %+v %v", again, err)
	}
	select {
	case got := <-physician.Revocations():
		if got.Receipt.Index != r.Receipt.Index {
			t.Fatalf("the physician's revocation: %+v", got)
		}
	default:
		t.Fatal("the physician's first revocation was not published")
	}
	select {
	case got := <-physician.Revocations():
		t.Fatalf("a revocation published twice: %+v", got)
	default:
	}
	if _, err := physician.Revoke(ctx, notary.Commit(notary.NewSalt(), []byte("x"))); !errors.Is(err, signalapi.CodeUnknownPrescription) {
		t.Fatalf("revoking a prescription of no room: %v", err)
	}
}
