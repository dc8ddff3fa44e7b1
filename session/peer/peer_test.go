package peer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/internal/sessiontest"
	"github.com/telenotary/telenotary/session/peer"
	"github.com/telenotary/telenotary/session/signalapi"
)

// fhirExamples returns the HL7 FHIR R4 MedicationRequest examples.
func fhirExamples(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("../../notary/fhirdata/MedicationRequest-*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no FHIR examples: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = data
	}
	return out
}

// consultation joins a patient and a physician to a new room and waits
// until their data channel is open.
func consultation(t *testing.T, ctx context.Context, n *sessiontest.Notary, s *sessiontest.Signal, room string) (patient, physician *peer.Peer) {
	t.Helper()
	patientCfg, physicianCfg := pairConfigs(t, n, s, room)
	patient, physician, err := peer.Pair(ctx, patientCfg, physicianCfg)
	if err != nil {
		t.Fatalf("consultation %s: %v", room, err)
	}
	t.Cleanup(func() { patient.Close(); physician.Close() })
	return patient, physician
}

// pairConfigs returns the patient's and the physician's configs for a room.
func pairConfigs(t *testing.T, n *sessiontest.Notary, s *sessiontest.Signal, room string) (patient, physician peer.Config) {
	patientTok, physicianTok := s.Tokens(t, room)
	cfg := peer.Config{URL: s.WS, Policy: &n.Policy, Loopback: true, Logger: sessiontest.Logger(t)}
	patient, physician = cfg, cfg
	patient.Token, physician.Token = patientTok, physicianTok
	return patient, physician
}

// nextReceipt waits for the next receipt of a kind, failing on a receipt
// that does not verify.
func nextReceipt(t *testing.T, ctx context.Context, p *peer.Peer, kind notary.Kind) peer.Receipt {
	t.Helper()
	for {
		select {
		case r := <-p.Receipts():
			if r.Err != nil {
				t.Fatalf("%s: %s receipt does not verify: %v", p.Role(), r.Kind, r.Err)
			}
			if r.Kind == kind {
				return r
			}
		case <-ctx.Done():
			t.Fatalf("%s: no %s receipt: %v", p.Role(), kind, ctx.Err())
		}
	}
}

func record(t *testing.T, r peer.Receipt) signalapi.Record {
	t.Helper()
	rec, err := parseRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func parseRecord(r peer.Receipt) (signalapi.Record, error) {
	var rec signalapi.Record
	if err := json.Unmarshal(r.Bundle.Document, &rec); err != nil {
		return rec, fmt.Errorf("session record: %w", err)
	}
	return rec, nil
}

// TestConsultation runs a pion-to-pion consultation through the server:
// the data channel opens on loopback, each FHIR example is prescribed,
// notarized and relayed, every receipt verifies offline, and the notarized
// record holds the fingerprints each peer's DTLS transport saw.
func TestConsultation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, nil)
	patient, physician := consultation(t, ctx, n, s, "room-consult")

	// The data channel carries the consultation's chat.
	got := make(chan string, 1)
	patient.OnMessage(func(b []byte) { got <- string(b) })
	if err := physician.Send([]byte("hello from the physician")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "hello from the physician" {
			t.Fatalf("patient got %q", m)
		}
	case <-ctx.Done():
		t.Fatal("no data channel message")
	}
	for _, p := range []*peer.Peer{patient, physician} {
		pair, err := p.SelectedPair()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{pair.Local.Address, pair.Remote.Address} {
			if ip := net.ParseIP(c); ip == nil || !ip.IsLoopback() {
				t.Fatalf("%s: selected pair %s is not on loopback", p.Role(), pair)
			}
		}
	}

	start := nextReceipt(t, ctx, patient, notary.KindSessionStart)
	if physicianStart := nextReceipt(t, ctx, physician, notary.KindSessionStart); physicianStart.Bundle.Receipt.Index != start.Bundle.Receipt.Index {
		t.Fatalf("the peers got different session-start receipts")
	}
	startCommit := start.Bundle.Receipt.Leaf.Commitment

	examples := fhirExamples(t)
	indexes := map[uint64]string{}
	for name, resource := range examples {
		r, err := physician.Prescribe(ctx, name, resource)
		if err != nil {
			t.Fatalf("prescribe %s: %v", name, err)
		}
		if r.Bundle.Receipt.Leaf.Kind != notary.KindPrescription || r.Bundle.Receipt.Leaf.Link != startCommit {
			t.Fatalf("%s: receipt kind %v link %v, want a prescription linked to the session start", name, r.Bundle.Receipt.Leaf.Kind, r.Bundle.Receipt.Leaf.Link)
		}
		canonical, _ := notary.CanonicalJSON(resource)
		if document, _ := r.Bundle.Canonical(); string(document) != string(canonical) {
			t.Fatalf("%s: the bundle's document is not the prescription", name)
		}
		indexes[r.Bundle.Receipt.Index] = name
		relayed := nextReceipt(t, ctx, patient, notary.KindPrescription)
		if !relayed.Relayed || relayed.Ref != name || relayed.Bundle.Receipt.Index != r.Bundle.Receipt.Index {
			t.Fatalf("patient got %+v for %s", relayed, name)
		}
		// The bundle the patient holds verifies offline, with nothing but
		// the cluster's keys.
		b, err := notary.ParseBundle(relayed.Raw)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := notary.VerifyBundle(b, n.Policy); err != nil {
			t.Fatalf("%s: relayed bundle: %v", name, err)
		}
	}
	if len(indexes) != len(examples) {
		t.Fatalf("%d prescriptions got %d distinct indexes", len(examples), len(indexes))
	}

	patientSaw, ok1 := patient.SawPeer()
	physicianSaw, ok2 := physician.SawPeer()
	patientOwn, err1 := patient.LocalFingerprint()
	physicianOwn, err2 := physician.LocalFingerprint()
	if !ok1 || !ok2 || err1 != nil || err2 != nil {
		t.Fatalf("fingerprints: %v %v %v %v", ok1, ok2, err1, err2)
	}
	if patientSaw != physicianOwn || physicianSaw != patientOwn {
		t.Fatalf("DTLS: patient saw %s, physician announced %s; physician saw %s, patient announced %s", patientSaw, physicianOwn, physicianSaw, patientOwn)
	}

	end, err := physician.Leave(ctx, "consultation over")
	if err != nil {
		t.Fatal(err)
	}
	if end == nil || end.Err != nil {
		t.Fatalf("no verified session-end receipt: %+v", end)
	}
	patientEnd, err := patient.WaitEnd(ctx)
	if err != nil || patientEnd == nil || patientEnd.Bundle.Receipt.Index != end.Bundle.Receipt.Index {
		t.Fatalf("patient's session-end: %+v, %v", patientEnd, err)
	}
	if end.Bundle.Receipt.Leaf.Link != startCommit {
		t.Fatal("the session-end receipt is not linked to the session start")
	}
	rec := record(t, *end)
	if rec.Phase != "end" || rec.EndReason != "physician-left: consultation over" || rec.FingerprintMismatch {
		t.Fatalf("end record: phase %q reason %q mismatch %v", rec.Phase, rec.EndReason, rec.FingerprintMismatch)
	}
	if len(rec.Prescriptions) != len(examples) {
		t.Fatalf("end record lists %d prescriptions, want %d", len(rec.Prescriptions), len(examples))
	}
	for _, rx := range rec.Prescriptions {
		if _, ok := indexes[rx.Index]; !ok {
			t.Fatalf("end record lists prescription index %d that was not issued", rx.Index)
		}
	}
	saw := map[signalapi.Role]signalapi.Fingerprint{signalapi.RolePatient: patientSaw, signalapi.RolePhysician: physicianSaw}
	own := map[signalapi.Role]signalapi.Fingerprint{signalapi.RolePatient: patientOwn, signalapi.RolePhysician: physicianOwn}
	for _, p := range rec.Participants {
		if p.SawPeer == nil || *p.SawPeer != saw[p.Role] {
			t.Fatalf("record: %s saw %v, its transport saw %s", p.Role, p.SawPeer, saw[p.Role])
		}
		if len(p.Fingerprints) != 1 || p.Fingerprints[0] != own[p.Role] {
			t.Fatalf("record: %s fingerprints %v, its certificate is %s", p.Role, p.Fingerprints, own[p.Role])
		}
		if p.Subject != string(p.Role)+"-room-consult" {
			t.Fatalf("record: %s subject %q", p.Role, p.Subject)
		}
	}
	startRec := record(t, start)
	if startRec.Phase != "start" || len(startRec.Participants) != 2 {
		t.Fatalf("start record: %+v", startRec)
	}
}

// TestConsultationsInParallel runs several consultations at once; each
// gets its own receipts.
func TestConsultationsInParallel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, nil)
	resource := fhirExamples(t)["MedicationRequest-medrx0302.json"]
	const rooms = 6
	errs := make(chan error, rooms)
	for i := range rooms {
		go func() {
			errs <- func() error {
				room := fmt.Sprintf("room-%d", i)
				patientCfg, physicianCfg := pairConfigs(t, n, s, room)
				patient, physician, err := peer.Pair(ctx, patientCfg, physicianCfg)
				if err != nil {
					return err
				}
				defer patient.Close()
				defer physician.Close()
				r, err := physician.Prescribe(ctx, "rx", resource)
				if err != nil {
					return err
				}
				end, err := physician.Leave(ctx, "")
				if err != nil || end == nil || end.Err != nil {
					return fmt.Errorf("%s: end %+v %v", room, end, err)
				}
				if rec, err := parseRecord(*end); err != nil || rec.Room != room || len(rec.Prescriptions) != 1 || rec.Prescriptions[0].Index != r.Bundle.Receipt.Index {
					return fmt.Errorf("%s: end record %+v %v", room, rec, err)
				}
				return nil
			}()
		}()
	}
	for range rooms {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestCancelledCallKeepsTheSession: a call whose context ends does not
// close the signalling connection (the WebSocket library closes a
// connection whose write is cancelled midway).
func TestCancelledCallKeepsTheSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, nil)
	patient, physician := consultation(t, ctx, n, s, "room-cancel")
	resource := fhirExamples(t)["MedicationRequest-medrx0302.json"]
	// A context that ends just as the message is written: its Err says
	// nothing yet, its Done is closed.
	if _, err := physician.Prescribe(endingContext{ctx}, "early", resource); err == nil {
		t.Fatal("a prescription with an ended context got its receipt")
	}
	if _, err := physician.Prescribe(ctx, "after", resource); err != nil {
		t.Fatalf("after cancelled calls: %v", err)
	}
	if _, err := physician.Leave(ctx, ""); err != nil {
		t.Fatal(err)
	}
	patient.WaitEnd(ctx)
}

// endingContext is a context that ends while it is being used: Err reports
// nothing the first time, and Done is already closed.
type endingContext struct{ context.Context }

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (endingContext) Done() <-chan struct{} { return closedChan }
func (c endingContext) Err() error          { return nil }
