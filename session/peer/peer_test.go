package peer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
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
		if r.Holder != signalapi.HolderPatient {
			t.Fatalf("%s: the receipt names %q as the bundle's holder; the patient's peer keeps it", name, r.Holder)
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

// TestRejoinWithTicket: the patient's signalling connection is cut; the
// peer comes back with the resume ticket the server handed it (its token
// joins once) and the consultation goes on. The patient's join link used
// again by another peer is refused, and the patient stays. A new Peer of
// the same app takes the seat back with the ticket after the first one
// closed.
func TestRejoinWithTicket(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, nil)
	proxy := startCutProxy(t, s.HTTP.Listener.Addr().String())
	patientCfg, physicianCfg := pairConfigs(t, n, s, "room-rejoin")
	patientCfg.URL = "ws://" + proxy.addr() + "/v1/signal"
	patient, physician, err := peer.Pair(ctx, patientCfg, physicianCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { patient.Close(); physician.Close() })
	resource := fhirExamples(t)["MedicationRequest-medrx0302.json"]
	prescribe := func(ref string, to *peer.Peer) {
		t.Helper()
		if _, err := physician.Prescribe(ctx, ref, resource); err != nil {
			t.Fatalf("prescribe %s: %v", ref, err)
		}
		if r := nextReceipt(t, ctx, to, notary.KindPrescription); r.Ref != ref {
			t.Fatalf("patient got %q, want %q", r.Ref, ref)
		}
	}

	// The leaked link.
	thief := patientCfg
	thief.URL = s.WS
	if p, err := peer.Join(ctx, thief); !errors.Is(err, signalapi.CodeTokenUsed) {
		if p != nil {
			p.Close()
		}
		t.Fatalf("a second join with the patient's token: %v, want token_used", err)
	}
	prescribe("rx-after-leak", patient)

	// The cut: back with the ticket.
	first := patient.Ticket()
	if first == "" {
		t.Fatal("the peer holds no resume ticket")
	}
	proxy.cut()
	sessiontest.WaitFor(t, "the patient to rejoin with a new ticket", func() bool { return patient.Ticket() != first && connected(s, signalapi.RolePatient) })
	prescribe("rx-after-cut", patient)

	// Another Peer takes the seat back with the ticket.
	ticket := patient.Ticket()
	patient.Close()
	sessiontest.WaitFor(t, "the patient to be away", func() bool { return !connected(s, signalapi.RolePatient) })
	again := patientCfg
	again.URL, again.Token, again.Ticket = s.WS, "", ticket
	back, err := peer.Join(ctx, again)
	if err != nil {
		t.Fatalf("join with the ticket: %v", err)
	}
	t.Cleanup(func() { back.Close() })
	if back.Role() != signalapi.RolePatient || back.Room() != "room-rejoin" || back.Ticket() == ticket {
		t.Fatalf("resumed as %s in %s with ticket renewed %v", back.Role(), back.Room(), back.Ticket() != ticket)
	}
	prescribe("rx-after-resume", back)
	if _, err := physician.Leave(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if end, err := back.WaitEnd(ctx); err != nil || end == nil || end.Err != nil {
		t.Fatalf("session end: %+v %v", end, err)
	}
}

// connected reports whether a role of the server's one room is connected.
func connected(s *sessiontest.Signal, role signalapi.Role) bool {
	for _, si := range s.Server.Sessions().Sessions {
		for _, p := range si.Participants {
			if p.Role == role {
				return p.Connected
			}
		}
	}
	return false
}

// cutProxy forwards TCP connections to the server until cut closes them
// all, as a network outage would.
type cutProxy struct {
	ln    net.Listener
	mu    sync.Mutex // guards conns
	conns map[net.Conn]bool
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, conns: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[s] = true, true
			p.mu.Unlock()
			wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer wg.Done()
				io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			go pipe(s, c)
			go pipe(c, s)
		}
	}()
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

// cut closes every connection open through the proxy.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}
