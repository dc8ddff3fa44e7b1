package session_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/httpapi/openapitest"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session"
	"github.com/telenotary/telenotary/session/internal/sessiontest"
	"github.com/telenotary/telenotary/session/signalapi"
)

// threeRepeats is an HL7 example whose dispenseRequest allows 3 repeats:
// 4 fills.
func threeRepeats(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile("../notary/fhirdata/MedicationRequest-medrx0304.json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"numberOfRepeatsAllowed": 3`) {
		t.Fatal("medrx0304 no longer allows 3 repeats")
	}
	return data
}

// bundleOf parses the bundle a message carries.
func bundleOf(t testing.TB, m *signalapi.Message) *notary.Bundle {
	t.Helper()
	b, err := notary.ParseBundle(m.Bundle)
	if err != nil {
		t.Fatalf("%s: %v", m.Type, err)
	}
	return b
}

// verifiedStatus reads a prescription's status from the cluster (a
// linearizable read) and verifies it with the bundle.
func verifiedStatus(t testing.TB, n *sessiontest.Notary, b *notary.Bundle) *notary.StatusResult {
	t.Helper()
	st, err := n.Client.PrescriptionStatus(context.Background(), b.Receipt.Leaf.Commitment, true)
	if err != nil {
		t.Fatalf("status of %s: %v", b.Receipt.Leaf.Commitment, err)
	}
	return verifyStatus(t, n, st, b)
}

func verifyStatus(t testing.TB, n *sessiontest.Notary, st *notary.PrescriptionStatus, b *notary.Bundle) *notary.StatusResult {
	t.Helper()
	v, err := notary.NewVerifier(n.Policy)
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.VerifyStatus(st, b)
	if err != nil {
		t.Fatalf("status of %s does not verify: %v", b.Receipt.Leaf.Commitment, err)
	}
	return res
}

// checkRevoked checks a revoked message: for the prescription c, with a
// receipt of its revocation that verifies offline.
func checkRevoked(t testing.TB, n *sessiontest.Notary, m *signalapi.Message, c notary.Commitment) *notary.Receipt {
	t.Helper()
	if m.Commitment != c.String() {
		t.Fatalf("revoked %s, want %s", m.Commitment, c)
	}
	rc, err := notary.ParseReceipt(m.Receipt)
	if err != nil {
		t.Fatalf("revoked: receipt: %v", err)
	}
	return checkRevocationReceipt(t, n, rc, c)
}

func checkRevocationReceipt(t testing.TB, n *sessiontest.Notary, rc *notary.Receipt, c notary.Commitment) *notary.Receipt {
	t.Helper()
	if rc.Leaf.Kind != notary.KindRevocation || rc.Leaf.Link != c {
		t.Fatalf("the revocation's receipt is a %s linked to %s, want a revocation linked to %s", rc.Leaf.Kind, rc.Leaf.Link, c)
	}
	if _, err := notary.Verify(notary.Claim{Receipt: rc, Commitment: notary.RevocationCommitment(c)}, n.Policy); err != nil {
		t.Fatalf("the revocation's receipt does not verify: %v", err)
	}
	return rc
}

// TestAllowanceAndRevocationInRoom: a prescription with 3 repeats is
// notarized with an allowance of 4 fills (the cluster's status says so,
// and verifies with the bundle: its lock is the one the bundle's salt
// gives); the patient may not revoke it, nor the physician a prescription
// of no room; the physician revokes it, both participants get revoked with
// a receipt that verifies, and its status is revoked; revoking again
// answers the same revocation and logs nothing.
func TestAllowanceAndRevocationInRoom(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, nil)
	patient, physician := started(t, s, "room-revoke")

	_, relayed := prescribe(t, patient, physician, "rx-3", threeRepeats(t))
	b := bundleOf(t, relayed)
	c := b.Receipt.Leaf.Commitment
	res := verifiedStatus(t, n, b)
	if res.State != notary.StateActive || res.FillsAllowed != 4 || res.FillsUsed != 0 || !res.RevokedAt.IsZero() {
		t.Fatalf("status %s, %d of %d fills used; want active with 0 of 4", res.State, res.FillsUsed, res.FillsAllowed)
	}
	// One fill for a prescription without repeats.
	_, once := prescribe(t, patient, physician, "rx-once", medicationRequestWith(t, nil))
	if res := verifiedStatus(t, n, bundleOf(t, once)); res.State != notary.StateActive || res.FillsAllowed != 1 {
		t.Fatalf("a prescription without repeats: %s with %d fills, want active with 1", res.State, res.FillsAllowed)
	}

	before := logSize(t, n)
	revoke := signalapi.Message{Type: signalapi.TypeRevoke, Commitment: c.String()}
	patient.send(revoke)
	if m := patient.expectError(signalapi.CodeForbidden); m.Commitment != c.String() || !strings.Contains(m.Message, "physician") {
		t.Fatalf("the patient's revoke: %+v, want forbidden naming the physician and echoing the commitment", m)
	}
	other := notary.Commit(notary.NewSalt(), []byte("not a prescription of this room"))
	physician.send(signalapi.Message{Type: signalapi.TypeRevoke, Commitment: other.String()})
	if m := physician.expectError(signalapi.CodeUnknownPrescription); m.Commitment != other.String() {
		t.Fatalf("revoking another room's prescription: %+v", m)
	}
	physician.sendRaw([]byte(`{"type":"revoke","commitment":"` + strings.ToUpper(c.String()) + `"}`))
	if m := physician.expectError(signalapi.CodeBadMessage); !strings.Contains(m.Message, "commitment") {
		t.Fatalf("an upper-case commitment: %q does not name the field", m.Message)
	}
	if after := logSize(t, n); after != before {
		t.Fatalf("refused revocations logged %d entries", after-before)
	}
	if res := verifiedStatus(t, n, b); res.State != notary.StateActive {
		t.Fatalf("after refused revocations: %s", res.State)
	}

	physician.send(revoke)
	first := checkRevoked(t, n, physician.expect(signalapi.TypeRevoked), c)
	checkRevoked(t, n, patient.expect(signalapi.TypeRevoked), c)
	res = verifiedStatus(t, n, b)
	if res.State != notary.StateRevoked || res.RevokedAt.IsZero() || res.FillsAllowed != 4 {
		t.Fatalf("after the revocation: %s (revoked at %v), %d fills; want revoked, 4 fills", res.State, res.RevokedAt, res.FillsAllowed)
	}
	if !res.RevokedAt.Equal(first.Leaf.Time()) {
		t.Fatalf("the status's revocation time %v is not the receipt's %v", res.RevokedAt, first.Leaf.Time())
	}
	// Again: the same revocation, to the asker, and nothing logged.
	size := logSize(t, n)
	physician.send(revoke)
	if again := checkRevoked(t, n, physician.expect(signalapi.TypeRevoked), c); again.Index != first.Index {
		t.Fatalf("a second revoke answered the revocation at index %d, want %d", again.Index, first.Index)
	}
	if after := logSize(t, n); after != size {
		t.Fatalf("a second revoke logged %d entries", after-size)
	}
	// The other prescription is untouched.
	if res := verifiedStatus(t, n, bundleOf(t, once)); res.State != notary.StateActive {
		t.Fatalf("the other prescription is %s", res.State)
	}

	// Over the room's end, the session-end record is still notarized.
	physician.send(signalapi.Message{Type: signalapi.TypeLeave})
	if end := patient.expect(signalapi.TypeSessionEnd); end.Kind != notary.KindSessionEnd {
		t.Fatalf("session-end without the end record: %+v", end)
	}
}

// medicationRequestWith returns the HL7 example medrx0302 with the given
// numberOfRepeatsAllowed (nil: none).
func medicationRequestWith(t testing.TB, repeats any) []byte {
	t.Helper()
	return editedMedicationRequest(t, func(r map[string]any) {
		dr := r["dispenseRequest"].(map[string]any)
		if repeats == nil {
			delete(dr, "numberOfRepeatsAllowed")
		} else {
			dr["numberOfRepeatsAllowed"] = repeats
		}
	})
}

// editedMedicationRequest returns the HL7 example medrx0302 as edit
// changed it.
func editedMedicationRequest(t testing.TB, edit func(map[string]any)) []byte {
	t.Helper()
	var r map[string]any
	if err := json.Unmarshal(medicationRequest(t), &r); err != nil {
		t.Fatal(err)
	}
	edit(r)
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestTooManyRepeatsRefused: a prescription allowing more fills than the
// notary counts is refused before anything is notarized, naming
// numberOfRepeatsAllowed and echoing its ref.
func TestTooManyRepeatsRefused(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, nil)
	patient, physician := started(t, s, "room-repeats")
	before := logSize(t, n)
	physician.send(signalapi.Message{Type: signalapi.TypePrescription, Ref: "rx-many", Resource: medicationRequestWith(t, notary.MaxFills)})
	m := physician.expectError(signalapi.CodeInvalidResource)
	if !strings.HasPrefix(m.Message, "MedicationRequest.dispenseRequest.numberOfRepeatsAllowed:") || m.Ref != "rx-many" {
		t.Fatalf("%+v: want a refusal at MedicationRequest.dispenseRequest.numberOfRepeatsAllowed echoing the ref", m)
	}
	if after := logSize(t, n); after != before {
		t.Fatalf("the refused prescription logged %d entries", after-before)
	}
	// The most allowed is notarized, with its allowance.
	_, relayed := prescribe(t, patient, physician, "rx-most", medicationRequestWith(t, notary.MaxFills-1))
	if res := verifiedStatus(t, n, bundleOf(t, relayed)); res.FillsAllowed != notary.MaxFills {
		t.Fatalf("%d fills allowed, want %d", res.FillsAllowed, notary.MaxFills)
	}
}

// TestRevokeWithAppKey: the app's backend revokes with a bundle. One
// revoked while its room lives is announced to both participants; one
// revoked after its room ended is revoked all the same; again answers the
// same receipt (existing). A bundle that is not a prescription's as
// notarized, a prescription the log does not hold, and requests without
// an app key are refused, each naming its fault, and log nothing.
func TestRevokeWithAppKey(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, nil)
	spec := openapitest.Load(t, "../docs/openapi-signal.json")
	checked := spec.Transport(t, nil)
	app := s.Client(sessiontest.AppKey, checked)
	ctx := context.Background()
	patient, physician := started(t, s, "room-app-revoke")
	_, live := prescribe(t, patient, physician, "rx-live", threeRepeats(t))
	_, later := prescribe(t, patient, physician, "rx-later", medicationRequest(t))
	liveC, laterC := bundleOf(t, live).Receipt.Leaf.Commitment, bundleOf(t, later).Receipt.Leaf.Commitment

	// In the room's life: the participants are told.
	resp, err := app.Revoke(ctx, live.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Existing || resp.Commitment != liveC {
		t.Fatalf("revoke: %+v", resp)
	}
	checkRevocationReceipt(t, n, resp.Receipt, liveC)
	for _, c := range []*client{physician, patient} {
		if got := checkRevoked(t, n, c.expect(signalapi.TypeRevoked), liveC); got.Index != resp.Receipt.Index {
			t.Fatalf("the room was told of the revocation at %d, the app got %d", got.Index, resp.Receipt.Index)
		}
	}
	// The physician's revoke now answers the same revocation.
	physician.send(signalapi.Message{Type: signalapi.TypeRevoke, Commitment: liveC.String()})
	if got := checkRevoked(t, n, physician.expect(signalapi.TypeRevoked), liveC); got.Index != resp.Receipt.Index {
		t.Fatalf("the physician's revoke after the app's answered index %d, want %d", got.Index, resp.Receipt.Index)
	}

	physician.send(signalapi.Message{Type: signalapi.TypeLeave})
	end := patient.expectBundle(t, signalapi.TypeSessionEnd)
	physician.expect(signalapi.TypeSessionEnd)

	// Refusals: nothing is logged.
	before := logSize(t, n)
	var doc map[string]any
	json.Unmarshal(bundleOf(t, later).Document, &doc)
	doc["status"] = "on-hold"
	tampered := rebundle(t, later.Bundle, func(b map[string]any) { b["document"] = doc })
	otherSalt := rebundle(t, later.Bundle, func(b map[string]any) { b["salt"] = notary.NewSalt() })
	// A bundle whose document and salt give its receipt's commitment, of
	// a prescription the log never held.
	unknownDoc, err := notary.CanonicalJSON([]byte(`{"resourceType":"MedicationRequest","id":"never-notarized"}`))
	if err != nil {
		t.Fatal(err)
	}
	salt := notary.NewSalt()
	unknown := rebundle(t, later.Bundle, func(b map[string]any) {
		b["document"] = json.RawMessage(unknownDoc)
		b["salt"] = salt
		b["receipt"].(map[string]any)["commitment"] = notary.Commit(salt, unknownDoc).String()
	})
	for _, tc := range []struct {
		name   string
		bundle []byte
		field  string
	}{
		{"tampered document", tampered, "bundle.document"},
		{"another salt", otherSalt, "bundle.document"},
		{"a session record's bundle", end.Bundle, "bundle.receipt.kind"},
		{"not a bundle", []byte(`{"version":1}`), "bundle"},
		{"no bundle", nil, "bundle"},
	} {
		_, err := app.Revoke(ctx, tc.bundle)
		var p *httpapi.Problem
		if !errors.As(err, &p) || !errors.Is(err, httpapi.ErrBadRequest) || p.Field != tc.field || p.Detail == "" {
			t.Errorf("%s: %v (%+v), want bad_request on field %s", tc.name, err, p, tc.field)
		}
	}
	if _, err := app.Revoke(ctx, unknown); !errors.Is(err, signalapi.ErrUnknownPrescription) {
		t.Errorf("a prescription the log does not hold: %v, want unknown_prescription", err)
	}
	raw := &http.Client{Transport: checked}
	for _, tc := range []struct {
		name, key, body string
		want            *httpapi.Code
	}{
		{"no key", "", `{"bundle":` + string(later.Bundle) + `}`, httpapi.ErrUnauthorized},
		{"unknown key", "not-a-key-0123456789", `{"bundle":` + string(later.Bundle) + `}`, httpapi.ErrUnauthorized},
		{"unknown member", sessiontest.AppKey, `{"bundle":` + string(later.Bundle) + `,"reason":"x"}`, httpapi.ErrBadRequest},
		{"too large", sessiontest.AppKey, `{"bundle":"` + strings.Repeat("a", signalapi.MaxRevokeBody) + `"}`, httpapi.ErrTooLarge},
	} {
		if p := problem(t, raw, http.MethodPost, s.URL+signalapi.PathRevoke, tc.key, tc.body); !errors.Is(p, tc.want) || p.Status != tc.want.Status {
			t.Errorf("%s: %+v, want %s", tc.name, p, tc.want.Name)
		}
	}
	if after := logSize(t, n); after != before {
		t.Fatalf("refused revocations logged %d entries", after-before)
	}
	if res := verifiedStatus(t, n, bundleOf(t, later)); res.State != notary.StateActive {
		t.Fatalf("after refused revocations, the prescription is %s", res.State)
	}

	// After the room: the bundle is the proof.
	resp, err = app.Revoke(ctx, later.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	checkRevocationReceipt(t, n, resp.Receipt, laterC)
	again, err := app.Revoke(ctx, later.Bundle)
	if err != nil || !again.Existing || again.Receipt.Index != resp.Receipt.Index {
		t.Fatalf("revoking again: %+v %v, want the same receipt, existing", again, err)
	}
	for _, b := range []*notary.Bundle{bundleOf(t, live), bundleOf(t, later)} {
		if res := verifiedStatus(t, n, b); res.State != notary.StateRevoked {
			t.Fatalf("%s is %s, want revoked", b.Receipt.Leaf.Commitment, res.State)
		}
	}
}

// expectBundle waits for a message of a type that carries a bundle.
func (c *client) expectBundle(t testing.TB, typ signalapi.Type) *signalapi.Message {
	t.Helper()
	m := c.expect(typ)
	if len(m.Bundle) == 0 {
		t.Fatalf("%s without a bundle", typ)
	}
	return m
}

// rebundle returns a bundle's JSON changed by edit.
func rebundle(t testing.TB, bundle []byte, edit func(map[string]any)) []byte {
	t.Helper()
	var b map[string]any
	if err := json.Unmarshal(bundle, &b); err != nil {
		t.Fatal(err)
	}
	edit(b)
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestStatusRoute: the signalling server relays the cluster's status of a
// prescription, byte for byte the cluster's answer, which verifies with
// the bundle, and the cluster's problem with its status for
// a commitment it holds no prescription for; it refuses a malformed
// commitment or consistent parameter, and an address over its rate.
func TestStatusRoute(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, func(c *session.Config) { c.StatusRate, c.StatusBurst = 0.001, 6 })
	spec := openapitest.Load(t, "../docs/openapi-signal.json")
	checked := spec.Transport(t, nil)
	public := s.Client("", checked)
	ctx := context.Background()
	patient, physician := started(t, s, "room-status")
	_, relayed := prescribe(t, patient, physician, "rx-3", threeRepeats(t))
	b := bundleOf(t, relayed)
	c := b.Receipt.Leaf.Commitment

	raw := &http.Client{Transport: checked}
	st, err := public.PrescriptionStatus(ctx, c) // 1
	if err != nil {
		t.Fatal(err)
	}
	res := verifyStatus(t, n, st, b)
	direct := verifiedStatus(t, n, b)
	if res.State != notary.StateActive || res.FillsAllowed != 4 || res.State != direct.State || res.FillsAllowed != direct.FillsAllowed ||
		st.Prescription.Index != b.Receipt.Index {
		t.Fatalf("relayed status %s %d/%d, the cluster's %s %d/%d", res.State, res.FillsUsed, res.FillsAllowed, direct.State, direct.FillsUsed, direct.FillsAllowed)
	}

	// Byte for byte the node's answer.
	relayedBytes := fetch(t, raw, s.URL+signalapi.StatusPath(c), "") // 2
	if nodeBytes := fetch(t, http.DefaultClient, n.URL+signalapi.StatusPath(c), ""); !bytes.Equal(relayedBytes, nodeBytes) {
		t.Fatalf("relayed:\n%s\nthe node's:\n%s", relayedBytes, nodeBytes)
	}

	// The cluster's 404, relayed with its status and code.
	unknown := notary.Commit(notary.NewSalt(), []byte("no such prescription"))
	_, err = public.PrescriptionStatus(ctx, unknown) // 3
	_, nodeErr := n.Client.PrescriptionStatus(ctx, unknown, false)
	var relayedP, nodeP *httpapi.Problem
	if !errors.As(err, &relayedP) || !errors.As(nodeErr, &nodeP) || relayedP.Status != http.StatusNotFound || relayedP.Code != nodeP.Code || relayedP.Detail != nodeP.Detail {
		t.Fatalf("an unknown prescription: relayed %v, the cluster's %v; want the cluster's 404", err, nodeErr)
	}

	if p := problem(t, raw, http.MethodGet, s.URL+signalapi.PathPrescriptions+"/"+strings.ToUpper(c.String())+"/status", "", ""); p.Status != http.StatusBadRequest || p.Field != "commitment" { // 4
		t.Errorf("an upper-case commitment: %+v, want bad_request on commitment", p)
	}
	if p := problem(t, raw, http.MethodGet, s.URL+signalapi.StatusPath(c)+"?consistent=maybe", "", ""); p.Status != http.StatusBadRequest || p.Field != "consistent" { // 5
		t.Errorf("consistent=maybe: %+v, want bad_request on consistent", p)
	}
	fetch(t, raw, s.URL+signalapi.StatusPath(c)+"?consistent=1", "") // 6: the burst is spent
	p, header := problemOf(t, raw, http.MethodGet, s.URL+signalapi.StatusPath(c), "", "")
	if !errors.Is(p, httpapi.ErrRateLimited) || p.Status != http.StatusTooManyRequests || header.Get("Retry-After") == "" {
		t.Fatalf("over the rate: %+v, Retry-After %q; want 429 rate_limited with Retry-After", p, header.Get("Retry-After"))
	}
	// Other routes are not limited by it.
	if _, err := public.Keys(ctx); err != nil {
		t.Fatal(err)
	}
}
