//go:build linux

package session_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/chromedp/chromedp"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/internal/browser"
	"github.com/telenotary/telenotary/session/internal/sessiontest"
	"github.com/telenotary/telenotary/session/peer"
	"github.com/telenotary/telenotary/session/signalapi"
)

// The browser tests drive the consultation client of /app/ in headless
// Chromium, against the real signalling server and a real one-node notary:
// pages are clicked and typed into as a person would, and what they show is
// read from window.telenotaryApp, the state the page keeps for tests.
//
// Each test runs in a network namespace of its own that has only loopback
// (see inLoopbackNetns): Chromium gathers ICE candidates on every interface
// it sees and prefers a pair from the machine's Ethernet address to the
// other side's loopback candidate, so on the host the media would not stay
// on 127.0.0.1 or ::1.

// rxExample is the prescription the tests send: an official FHIR R4 example
// whose narrative holds HTML, which the server's JSON encoder escapes, so
// the page must verify the bundle's bytes as sent.
const rxExample = "../notary/fhirdata/MedicationRequest-medrx0301.json"

// TestBrowserToBrowser runs a consultation between two Chromium tabs with
// fake cameras: they join through the server, connect peer to peer on
// loopback, chat, and the physician prescribes; every receipt verifies in
// both pages; each browser reports the DTLS certificate it received, which
// must be the one the other side announced; then the patient leaves, and
// the link no longer lets anyone in.
func TestBrowserToBrowser(t *testing.T) {
	if inLoopbackNetns(t) {
		return
	}
	// In Tokyo, so that the page's local times differ from UTC (the
	// browser takes its time zone from the environment it starts in).
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Skipf("SKIPPED: no time zone data: %v", err)
	}
	t.Setenv("TZ", "Asia/Tokyo")
	n := sessiontest.StartNotary(t)
	sig := sessiontest.StartSignal(t, n, nil)
	patientTok, physicianTok := sig.Tokens(t, "browser-to-browser")

	ctx := browser.New(t, browserOptions())
	patient := openApp(t, ctx, "patient", sig, patientTok)
	physician := openApp(t, browser.NewTab(t, ctx), "physician", sig, physicianTok)
	patient.join(true)
	physician.join(true)

	// The data channel opens on a loopback candidate pair. (A pair's remote
	// candidate may first be peer-reflexive, its address hidden, until the
	// other side's candidate arrives through the server.)
	for _, p := range []*appPage{patient, physician} {
		s := p.waitFor("the data channel to open and a candidate pair to be selected", func(s appState) bool {
			return s.Connected && s.SelectedPair.known()
		})
		checkLoopback(t, p.name, s.SelectedPair)
		if !s.Media {
			t.Errorf("%s: the page has no camera and microphone", p.name)
		}
	}

	// Each shows the other's (fake) camera, and names the other under it.
	for _, p := range []*appPage{patient, physician} {
		p.waitJS("the other side's video", `document.getElementById('remote-video').videoWidth > 0`)
	}
	patient.waitJS("the caption of the physician's video", `document.getElementById('remote-caption').textContent === 'The physician'`)
	physician.waitJS("the caption of the patient's video", `document.getElementById('remote-caption').textContent === 'The patient'`)

	// Both see the session-start record, verified in the page.
	var start [2]receiptState
	for i, p := range []*appPage{patient, physician} {
		s := p.waitFor("a verified session-start receipt", func(s appState) bool { return s.verified("session-start", "") != nil })
		start[i] = *s.verified("session-start", "")
	}
	if start[0].Commitment != start[1].Commitment {
		t.Errorf("the pages show different session-start receipts: %s and %s", start[0].Commitment, start[1].Commitment)
	}
	checkTimes(t, patient, start[0], tokyo)

	// Chat over the data channel, both ways.
	patient.chat("Good morning, doctor.")
	physician.waitFor("the patient's chat message", func(s appState) bool { return s.said("peer", "Good morning, doctor.") })
	physician.chat("Good morning. How can I help?")
	patient.waitFor("the physician's chat message", func(s appState) bool { return s.said("peer", "Good morning. How can I help?") })

	// Each browser reported the certificate it received on DTLS: the one
	// the other side's SDP announced; the server agrees.
	ps := patient.waitFor("the fingerprint report", func(s appState) bool { return s.ReportedFingerprint != "" })
	ds := physician.waitFor("the fingerprint report", func(s appState) bool { return s.ReportedFingerprint != "" })
	checkFingerprints(t, ps, ds)
	sessiontest.WaitFor(t, "the server to record both DTLS connections", func() bool {
		info := sessionInfo(t, sig, "browser-to-browser")
		return info != nil && len(info.Participants) == 2 &&
			info.Participants[0].DTLS == "connected" && info.Participants[1].DTLS == "connected"
	})
	if info := sessionInfo(t, sig, "browser-to-browser"); info.FingerprintMismatch || info.State != "active" {
		t.Errorf("server's view of the session: state %s, fingerprint_mismatch %v; want active, false", info.State, info.FingerprintMismatch)
	}

	// The physician prescribes twice: the page's own example as it is, then
	// an official FHIR example loaded into the form.
	physician.prescribe("")
	rxFile, err := os.ReadFile(rxExample)
	if err != nil {
		t.Fatal(err)
	}
	physician.prescribe(string(rxFile))
	ds = physician.waitFor("two verified prescription receipts", func(s appState) bool {
		return len(s.Sent) == 2 && s.Sent[0].Status == "notarized" && s.Sent[1].Status == "notarized"
	})
	ps = patient.waitFor("two verified prescriptions", func(s appState) bool { return s.count("prescription", true) == 2 })
	for i, sent := range ds.Sent {
		mine := ds.verified("prescription", sent.Ref)
		theirs := ps.verified("prescription", sent.Ref)
		if mine == nil || theirs == nil || mine.Commitment != theirs.Commitment || *mine.Index != *theirs.Index {
			t.Fatalf("prescription %d (%s): physician has %+v, patient %+v; want the same verified receipt", i, sent.Ref, mine, theirs)
		}
		if theirs.Medication == "" {
			t.Errorf("prescription %d: the patient's page names no medication", i)
		}
	}
	// The bundle the patient downloads is the prescription as sent, and the
	// Go verifier accepts it too.
	b := verifyDownload(t, patient, ps.verified("prescription", ds.Sent[1].Ref).Commitment, n.Policy, notary.KindPrescription)
	want, err := notary.CanonicalJSON(rxFile)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.Canonical(); err != nil || !bytes.Equal(got, want) {
		t.Errorf("the downloaded prescription is not the FHIR file the physician loaded (%v)", err)
	}
	if b.Receipt.Leaf.Link != mustCommitment(t, start[0].Commitment) {
		t.Errorf("the prescription's receipt links to %x, not to the session start %s", b.Receipt.Leaf.Link, start[0].Commitment)
	}

	patient.screenshot("consultation")
	physician.screenshot("consultation")

	// The patient leaves; both see the end, with a verified receipt.
	patient.leave()
	var end [2]appState
	for i, p := range []*appPage{patient, physician} {
		end[i] = p.waitFor("the end of the session with a verified receipt", func(s appState) bool {
			return s.Ended != nil && s.Ended.Valid != nil && s.Signal == "closed"
		})
		if !*end[i].Ended.Valid || end[i].Ended.Reason != "patient-left" {
			t.Errorf("%s: session-end %+v; want reason patient-left and a valid receipt", p.name, *end[i].Ended)
		}
		if end[i].Connected {
			t.Errorf("%s: the data channel is still open after the session ended", p.name)
		}
	}
	endEntry := end[1].verified("session-end", "")
	if endEntry == nil {
		t.Fatal("the physician's page has no verified session-end receipt")
	}
	// The end record, as the physician downloads it, holds the fingerprints
	// each browser announced and each saw: they agree, no mismatch.
	eb := verifyDownload(t, physician, endEntry.Commitment, n.Policy, notary.KindSessionEnd)
	var rec signalapi.Record
	if err := json.Unmarshal(eb.Document, &rec); err != nil {
		t.Fatalf("session-end record: %v", err)
	}
	if rec.Phase != "end" || rec.EndReason != "patient-left" || rec.FingerprintMismatch || len(rec.Prescriptions) != 2 || len(rec.Participants) != 2 {
		t.Fatalf("session-end record: phase %q, reason %q, mismatch %v, %d prescriptions, %d participants",
			rec.Phase, rec.EndReason, rec.FingerprintMismatch, len(rec.Prescriptions), len(rec.Participants))
	}
	pages := map[signalapi.Role]appState{signalapi.RolePatient: ps, signalapi.RolePhysician: ds}
	for i, p := range rec.Participants {
		other := rec.Participants[1-i]
		if len(p.Fingerprints) != 1 || p.SawPeer == nil || len(other.Fingerprints) != 1 {
			t.Fatalf("record of the %s: fingerprints %v, saw %v; want one each", p.Role, p.Fingerprints, p.SawPeer)
		}
		if p.Fingerprints[0].String() != pages[p.Role].LocalFingerprint {
			t.Errorf("record of the %s: announced %s, the page's SDP says %s", p.Role, p.Fingerprints[0], pages[p.Role].LocalFingerprint)
		}
		if *p.SawPeer != other.Fingerprints[0] || p.SawPeer.String() != pages[p.Role].ReportedFingerprint {
			t.Errorf("record of the %s: saw %s, the page reported %s, the %s announced %s",
				p.Role, p.SawPeer, pages[p.Role].ReportedFingerprint, other.Role, other.Fingerprints[0])
		}
	}
	for _, p := range []*appPage{patient, physician} {
		checkEndedDetails(t, p)
	}
	patient.screenshot("ended")

	// The link no longer works: a page opened with it shows why and does
	// not try again.
	late := openApp(t, browser.NewTab(t, ctx), "patient", sig, patientTok)
	late.join(false)
	ls := late.poll("the refusal", false, func(s appState) bool { return len(s.Errors) > 0 && s.Signal == "closed" })
	if ls.Errors[0].Code != "room_ended" || len(ls.Errors) != 2 || ls.Errors[1].Code != "disconnected" || ls.Rejoins != 0 {
		t.Errorf("a page joining the ended room shows %+v; want room_ended, then disconnected", ls.Errors)
	}
	for _, p := range []*appPage{patient, physician} {
		if s := p.state(); len(s.Errors) > 0 {
			t.Errorf("%s: the page shows errors: %+v", p.name, s.Errors)
		}
	}
}

// TestBrowserPatientGoPhysician runs a consultation between the Go SDK as
// the physician and Chromium as the patient: the browser answers a pion
// offer, sends its camera to a receive-only physician, and verifies the
// receipts the SDK's prescriptions produce.
func TestBrowserPatientGoPhysician(t *testing.T) {
	if inLoopbackNetns(t) {
		return
	}
	n := sessiontest.StartNotary(t)
	sig := sessiontest.StartSignal(t, n, nil)
	const room = "browser-patient-go-physician"
	patientTok, physicianTok := sig.Tokens(t, room)

	ctx := browser.New(t, browserOptions())
	patient := openApp(t, ctx, "patient", sig, patientTok)
	patient.join(true)
	patient.waitFor("the join", func(s appState) bool { return s.Signal == "joined" })

	jctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	physician := newGoPhysician(t, jctx, sig.WS, physicianTok, &n.Policy)
	if err := physician.Connected(jctx); err != nil {
		t.Fatalf("Go physician: data channel: %v", err)
	}
	s := patient.waitFor("the data channel to open and a candidate pair to be selected", func(s appState) bool {
		return s.Connected && s.SelectedPair.known() && s.verified("session-start", "") != nil
	})
	checkLoopback(t, "patient", s.SelectedPair)

	// Chat between the SDK and the page.
	got := make(chan string, 4)
	physician.OnMessage(func(b []byte) { got <- string(b) })
	patient.chat("Hello from the browser")
	select {
	case m := <-got:
		if !strings.Contains(m, "Hello from the browser") {
			t.Errorf("the Go physician received %q", m)
		}
	case <-jctx.Done():
		t.Fatal("the Go physician received no chat message")
	}
	if err := physician.Send([]byte(`{"type":"chat","text":"Hello from Go"}`)); err != nil {
		t.Fatal(err)
	}
	patient.waitFor("the Go physician's chat message", func(s appState) bool { return s.said("peer", "Hello from Go") })

	// Both fingerprints as each side saw them.
	s = patient.waitFor("the fingerprint report", func(s appState) bool { return s.ReportedFingerprint != "" })
	local, err := physician.LocalFingerprint()
	if err != nil {
		t.Fatal(err)
	}
	if s.PeerFingerprint != local.String() || s.RemoteSdpFingerprint != local.String() {
		t.Errorf("the browser saw %s (SDP announced %s); the Go physician's certificate is %s", s.PeerFingerprint, s.RemoteSdpFingerprint, local)
	}
	if saw, ok := physician.SawPeer(); !ok || saw.String() != s.LocalFingerprint {
		t.Errorf("the Go physician saw %v (%v); the browser's SDP announced %s", saw, ok, s.LocalFingerprint)
	}

	// A prescription from the SDK reaches the page verified.
	rxFile, err := os.ReadFile(rxExample)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := physician.Prescribe(jctx, "rx-from-go", rxFile)
	if err != nil {
		t.Fatalf("Go physician: prescribe: %v", err)
	}
	if rc.Holder != signalapi.HolderPatient {
		t.Fatalf("the receipt names %q as the bundle's holder: the patient's page keeps it and says so", rc.Holder)
	}
	s = patient.waitFor("the verified prescription", func(s appState) bool { return s.verified("prescription", "rx-from-go") != nil })
	if e := s.verified("prescription", "rx-from-go"); e.Index == nil || *e.Index != rc.Bundle.Receipt.Index {
		t.Errorf("the page shows prescription entry %v; the physician's receipt is entry %d", e.Index, rc.Bundle.Receipt.Index)
	}

	// The Go physician leaves; the page shows the end, verified.
	end, err := physician.Leave(jctx, "done")
	if err != nil {
		t.Fatalf("Go physician: leave: %v", err)
	}
	s = patient.waitFor("the end of the session with a verified receipt", func(s appState) bool {
		return s.Ended != nil && s.Ended.Valid != nil
	})
	if !*s.Ended.Valid || s.Ended.Reason != "physician-left: done" {
		t.Errorf("session-end %+v; want reason \"physician-left: done\" and a valid receipt", *s.Ended)
	}
	if e := s.verified("session-end", ""); end == nil || e == nil || *e.Index != end.Bundle.Receipt.Index {
		t.Errorf("the page's session-end receipt %+v is not the physician's (%+v)", e, end)
	}
	if len(s.Errors) > 0 {
		t.Errorf("the page shows errors: %+v", s.Errors)
	}
}

// TestBrowserReconnect cuts each page's connection to the server, then
// reloads each page: the pages rejoin with their tokens within the grace
// window, the physician restarts ICE (or, when a page was reloaded, offers a
// new peer connection), the chat goes on, and the end record counts the
// reconnections and certificates without a fingerprint mismatch.
func TestBrowserReconnect(t *testing.T) {
	if inLoopbackNetns(t) {
		return
	}
	n := sessiontest.StartNotary(t)
	sig := sessiontest.StartSignal(t, n, nil)
	const room = "browser-reconnect"
	patientTok, physicianTok := sig.Tokens(t, room)
	patientProxy := startCutProxy(t, sig.HTTP.Listener.Addr().String())
	physicianProxy := startCutProxy(t, sig.HTTP.Listener.Addr().String())

	ctx := browser.New(t, browserOptions())
	patient := openAppAt(t, ctx, "patient", patientProxy.url(), patientTok)
	physician := openAppAt(t, browser.NewTab(t, ctx), "physician", physicianProxy.url(), physicianTok)
	patient.join(true)
	physician.join(false) // a physician without camera still receives the patient's
	for _, p := range []*appPage{patient, physician} {
		p.waitFor("the session to start", func(s appState) bool {
			return s.Connected && s.verified("session-start", "") != nil && s.ReportedFingerprint != ""
		})
	}
	physician.waitJS("the patient's video", `document.getElementById('remote-video').videoWidth > 0`)

	// The physician's connection drops: it rejoins and restarts ICE on the
	// same peer connection; the patient sees it leave and come back.
	physicianProxy.cut()
	ds := physician.waitFor("its rejoin and an ICE restart", func(s appState) bool {
		return s.Rejoins == 1 && s.Restarts == 1 && s.Ice == "connected" && s.Signal == "joined"
	})
	patient.waitFor("the physician to come back", func(s appState) bool { return s.PeerReturns == 1 && s.PeerPresent })
	if ds.Negotiations != 2 {
		t.Errorf("physician: %d offers after a reconnection; want 2 (the first and an ICE restart)", ds.Negotiations)
	}
	physician.chat("Can you hear me again?")
	patient.waitFor("the chat after the physician's reconnection", func(s appState) bool { return s.said("peer", "Can you hear me again?") })

	// The patient's connection drops: the physician restarts ICE when it
	// is back.
	patientProxy.cut()
	patient.waitFor("its rejoin", func(s appState) bool { return s.Rejoins == 1 && s.Signal == "joined" })
	physician.waitFor("the patient to come back and ICE to restart", func(s appState) bool {
		return s.PeerReturns == 1 && s.Restarts == 2 && s.Ice == "connected"
	})
	patient.chat("Yes, I am back.")
	physician.waitFor("the chat after the patient's reconnection", func(s appState) bool { return s.said("peer", "Yes, I am back.") })

	// The physician reloads the page: a new page, a new certificate, a new
	// peer connection, which the patient accepts in place of the old one.
	old := physician.state().LocalFingerprint
	physician.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("join-data")),
		chromedp.WaitNotVisible(chromedp.ID("consultation")))
	physician.join(false)
	ds = physician.waitFor("a connection from the reloaded page", func(s appState) bool {
		return s.Connected && s.ReportedFingerprint != "" && s.Rejoins == 1
	})
	ps := patient.waitFor("the new peer connection", func(s appState) bool {
		return s.Connected && s.ReportedFingerprint == ds.LocalFingerprint
	})
	if ds.LocalFingerprint == old {
		t.Error("the reloaded page has the certificate of the page before")
	}
	checkFingerprints(t, ps, ds)
	physician.chat("Sorry, my browser restarted.")
	patient.waitFor("the chat from the reloaded page", func(s appState) bool { return s.said("peer", "Sorry, my browser restarted.") })

	// Then the patient reloads: the physician's ICE restart reaches a new
	// peer connection, whose answer it cannot take; it offers a new one.
	old = patient.state().LocalFingerprint
	patient.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("join-data")),
		chromedp.WaitNotVisible(chromedp.ID("consultation")))
	patient.join(true)
	ps = patient.waitFor("a connection from the reloaded page", func(s appState) bool {
		return s.Connected && s.ReportedFingerprint != "" && s.Rejoins == 1
	})
	ds = physician.waitFor("the new peer connection", func(s appState) bool {
		return s.Connected && s.ReportedFingerprint == ps.LocalFingerprint
	})
	if ps.LocalFingerprint == old {
		t.Error("the reloaded page has the certificate of the page before")
	}
	checkFingerprints(t, ps, ds)
	if log := physician.text("event-log"); !strings.Contains(log, "the patient has a new connection") {
		t.Errorf("the physician's event log does not show a new connection for the reloaded patient:\n%s", log)
	}
	patient.chat("Me too.")
	physician.waitFor("the chat from the reloaded page", func(s appState) bool { return s.said("peer", "Me too.") })
	if info := sessionInfo(t, sig, room); info == nil || info.FingerprintMismatch {
		t.Errorf("server's view of the session: %+v; want no fingerprint mismatch", info)
	}

	// The physician ends it; the record counts the reconnections.
	physician.leave()
	var end [2]appState
	for i, p := range []*appPage{patient, physician} {
		end[i] = p.waitFor("the end of the session with a verified receipt", func(s appState) bool {
			return s.Ended != nil && s.Ended.Valid != nil
		})
		if !*end[i].Ended.Valid || end[i].Ended.Reason != "physician-left" {
			t.Errorf("%s: session-end %+v; want reason physician-left and a valid receipt", p.name, *end[i].Ended)
		}
	}
	eb := verifyDownload(t, patient, end[0].verified("session-end", "").Commitment, n.Policy, notary.KindSessionEnd)
	var rec signalapi.Record
	if err := json.Unmarshal(eb.Document, &rec); err != nil {
		t.Fatal(err)
	}
	want := map[signalapi.Role][2]int{signalapi.RolePatient: {2, 2}, signalapi.RolePhysician: {2, 2}} // reconnects, certificates
	for _, p := range rec.Participants {
		w := want[p.Role]
		if len(p.Reconnects) != w[0] || len(p.Fingerprints) != w[1] {
			t.Errorf("record of the %s: %d reconnections and %d certificates; want %d and %d",
				p.Role, len(p.Reconnects), len(p.Fingerprints), w[0], w[1])
		}
	}
	if rec.FingerprintMismatch {
		t.Error("the end record has a fingerprint mismatch")
	}
}

// TestBrowserLinkUsedTwice: the patient's link, opened again in another
// tab (or by whoever it leaked to) once the patient joined: that tab is
// refused (token_used) and stops, and the patient's page stays in the
// consultation: it still receives the physician's prescription.
func TestBrowserLinkUsedTwice(t *testing.T) {
	if inLoopbackNetns(t) {
		return
	}
	n := sessiontest.StartNotary(t)
	sig := sessiontest.StartSignal(t, n, nil)
	const room = "browser-link-twice"
	patientTok, physicianTok := sig.Tokens(t, room)
	ctx := browser.New(t, browserOptions())
	patient := openApp(t, ctx, "patient", sig, patientTok)
	patient.join(false)
	jctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	physician := newGoPhysician(t, jctx, sig.WS, physicianTok, &n.Policy)
	if err := physician.Connected(jctx); err != nil {
		t.Fatalf("Go physician: data channel: %v", err)
	}
	patient.waitFor("the session to start", func(s appState) bool { return s.Connected && s.verified("session-start", "") != nil })
	// Neither side sends video: the box says the physician is here, as the
	// badge does, not that the page waits for them.
	patient.waitJS("the caption of a physician without video",
		`document.getElementById('remote-caption').textContent === 'The physician is here, without video: chat only'`)
	if badge := patient.text("badge-peer"); badge != "here" {
		t.Errorf("the badge says the physician is %q; want here", badge)
	}

	leaked := openApp(t, browser.NewTab(t, ctx), "patient", sig, patientTok)
	leaked.join(false)
	s := leaked.poll("the refusal", false, func(s appState) bool { return s.Signal == "closed" && len(s.Errors) > 0 })
	if !slices.ContainsFunc(s.Errors, func(e struct{ Code, Message, Ref string }) bool {
		return e.Code == "token_used" || strings.Contains(e.Message, "token_used")
	}) {
		t.Errorf("the second tab shows %+v; want token_used", s.Errors)
	}

	rxFile, err := os.ReadFile(rxExample)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := physician.Prescribe(jctx, "rx-after-leak", rxFile); err != nil {
		t.Fatalf("Go physician: prescribe: %v", err)
	}
	s = patient.waitFor("the prescription after the second use", func(s appState) bool { return s.verified("prescription", "rx-after-leak") != nil })
	if s.Signal != "joined" || s.Rejoins != 0 || !s.Connected {
		t.Errorf("the patient's page after the second use: signal %s, %d rejoins, connected %v", s.Signal, s.Rejoins, s.Connected)
	}
}

// newGoPhysician joins as the physician with the Go SDK, on loopback, with
// receive-only media for the browser's camera.
func newGoPhysician(t *testing.T, ctx context.Context, url, token string, policy *notary.Policy) *peer.Peer {
	t.Helper()
	p, err := peer.Join(ctx, peer.Config{URL: url, Token: token, Policy: policy, Media: true, Loopback: true, Logger: sessiontest.Logger(t)})
	if err != nil {
		t.Fatalf("Go physician: join: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// --- the page -------------------------------------------------------------

func browserOptions() *browser.Options {
	return &browser.Options{
		FakeMedia: true,
		Flags: map[string]any{
			// Host candidates with their addresses, not mDNS names.
			"disable-features":                       "WebRtcHideLocalIpsWithMdns",
			"autoplay-policy":                        "no-user-gesture-required",
			"disable-background-timer-throttling":    true,
			"disable-renderer-backgrounding":         true,
			"disable-backgrounding-occluded-windows": true,
		},
		Timeout: 2 * time.Minute,
	}
}

// appPage is a tab running the consultation client.
type appPage struct {
	t    *testing.T
	ctx  context.Context
	name string
}

// appState is window.telenotaryApp.
type appState struct {
	Role, Room, Session, Signal string
	Media, PeerPresent          bool
	Rejoins, PeerReturns        int
	Negotiations, Restarts      int
	Connected                   bool
	Ice, Dtls                   string
	SelectedPair                *candidatePair
	LocalFingerprint            string
	RemoteSdpFingerprint        string
	PeerFingerprint             string
	ReportedFingerprint         string
	Receipts                    []receiptState
	KeptLoaded                  bool
	Sent                        []struct{ Ref, Status string }
	NotSent                     []struct{ Path, Reason string }
	Chat                        []struct{ From, Text string }
	Errors                      []struct{ Code, Message, Ref string }
	Ended                       *struct {
		Reason string
		Index  *uint64
		Valid  *bool
	}
}

type receiptState struct {
	Kind, Ref, Commitment, Medication, Reason string
	Status, Dosage, Room                      string
	Saved, Kept                               *bool
	Index                                     *uint64
	Timestamp                                 *int64 // ms since the epoch
	Valid                                     *bool
}

type candidatePair struct {
	Local, Remote struct {
		Address, Type, Protocol string
		Port                    int
	}
}

// known reports whether a pair is selected and both its addresses are known.
func (p *candidatePair) known() bool {
	return p != nil && p.Local.Address != "" && p.Remote.Address != ""
}

// verified returns the page's verified receipt of a kind (and ref, if set).
func (s appState) verified(kind, ref string) *receiptState {
	for i, r := range s.Receipts {
		if r.Kind == kind && (ref == "" || r.Ref == ref) && r.Valid != nil && *r.Valid {
			return &s.Receipts[i]
		}
	}
	return nil
}

func (s appState) count(kind string, valid bool) int {
	c := 0
	for _, r := range s.Receipts {
		if (kind == "" || r.Kind == kind) && r.Valid != nil && *r.Valid == valid {
			c++
		}
	}
	return c
}

func (s appState) said(from, text string) bool {
	return slices.ContainsFunc(s.Chat, func(c struct{ From, Text string }) bool { return c.From == from && c.Text == text })
}

func openApp(t *testing.T, ctx context.Context, name string, sig *sessiontest.Signal, token string) *appPage {
	t.Helper()
	return openAppAt(t, ctx, name, sig.URL, token)
}

// openAppAt opens the client served at base (the server, or a proxy to it).
func openAppAt(t *testing.T, ctx context.Context, name, base, token string) *appPage {
	t.Helper()
	p := &appPage{t: t, ctx: ctx, name: name}
	p.do("open the page", chromedp.Navigate(base+"/app/#token="+token+"&loopback=1"),
		chromedp.WaitVisible(chromedp.ID("join-media")), chromedp.WaitNotVisible(chromedp.ID("consultation")))
	info, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("token-info")))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if !strings.Contains(info, "as the "+name) {
		t.Fatalf("%s: the page reads the token as %q", name, info)
	}
	p.screenshot("join")
	return p
}

func (p *appPage) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, what, err)
	}
}

func (p *appPage) join(media bool) {
	p.t.Helper()
	button := "join-data"
	if media {
		button = "join-media"
	}
	p.do("join", chromedp.Click(chromedp.ID(button)), chromedp.WaitVisible(chromedp.ID("consultation")),
		chromedp.WaitNotVisible(chromedp.ID("join")))
}

func (p *appPage) chat(text string) {
	p.t.Helper()
	p.do("chat", chromedp.WaitEnabled(chromedp.ID("chat-input")),
		chromedp.SendKeys(chromedp.ID("chat-input"), text), chromedp.Click(chromedp.ID("chat-send")))
}

// prescribe sends the prescription form, with resource in it unless empty.
func (p *appPage) prescribe(resource string) {
	p.t.Helper()
	before := len(p.state().Sent)
	if resource != "" {
		p.do("fill the prescription", chromedp.SetValue(chromedp.ID("prescription"), resource))
	}
	// The button waits for the receipt of the prescription before.
	p.do("prescribe", chromedp.WaitEnabled(chromedp.ID("prescription-send")), chromedp.Click(chromedp.ID("prescription-send")))
	p.waitFor("the prescription to be sent", func(s appState) bool { return len(s.Sent) == before+1 })
}

// screenshot saves the page as NAME-STEP.png in $TELENOTARY_APP_SCREENSHOTS,
// when it is set: a way to look at the client as the tests leave it.
func (p *appPage) screenshot(step string) {
	p.t.Helper()
	dir := os.Getenv("TELENOTARY_APP_SCREENSHOTS")
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("%s: screenshot: %v", p.name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, p.name+"-"+step+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

func (p *appPage) leave() {
	p.t.Helper()
	p.do("leave", chromedp.Click(chromedp.ID("leave")))
}

// waitJS polls a JavaScript expression until it is true, for 20s.
func (p *appPage) waitJS(what, expr string) {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err != nil {
			p.t.Fatalf("%s: waiting for %s: %v", p.name, what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: timed out waiting for %s (%s)", p.name, what, expr)
		}
		time.Sleep(25 * time.Millisecond) // the poll interval
	}
}

// text returns the text of the element with this id.
func (p *appPage) text(id string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.ID(id)))
	if err != nil {
		p.t.Fatalf("%s: reading #%s: %v", p.name, id, err)
	}
	return text
}

func (p *appPage) state() appState {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.telenotaryApp)`))
	if err != nil {
		p.t.Fatalf("%s: reading the page's state: %v", p.name, err)
	}
	var s appState
	if err := json.Unmarshal([]byte(text), &s); err != nil {
		p.t.Fatalf("%s: the page's state: %v", p.name, err)
	}
	return s
}

// waitFor polls the page's state until cond holds; it fails at once when
// the page shows an error, and after 20s.
func (p *appPage) waitFor(what string, cond func(appState) bool) appState {
	p.t.Helper()
	return p.poll(what, true, cond)
}

// poll polls the page's state until cond holds, failing after 20s, or at
// once on an error the page shows if errorsFail.
func (p *appPage) poll(what string, errorsFail bool, cond func(appState) bool) appState {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := p.state()
		if errorsFail && len(s.Errors) > 0 {
			p.t.Fatalf("%s: waiting for %s, the page shows errors: %+v", p.name, what, s.Errors)
		}
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: timed out waiting for %s; state: %s", p.name, what, dump(s))
		}
		select {
		case <-p.ctx.Done():
			p.t.Fatalf("%s: the browser is gone while waiting for %s", p.name, what)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func dump(s appState) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// verifyDownload fetches the bundle behind the page's download link for a
// receipt and verifies it with the Go verifier.
func verifyDownload(t *testing.T, p *appPage, commitment string, policy notary.Policy, kind notary.Kind) *notary.Bundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	expr := fmt.Sprintf(`(async () => {
		const a = document.querySelector('#receipt-rows tr[data-commitment=%q] a[download]');
		if (!a) throw new Error('no download link');
		return JSON.stringify({name: a.download, text: await (await fetch(a.href)).text()});
	})()`, commitment)
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: downloading the bundle of %s: %v", p.name, commitment, err)
	}
	var dl struct{ Name, Text string }
	if err := json.Unmarshal([]byte(text), &dl); err != nil {
		t.Fatal(err)
	}
	b, err := notary.ParseBundle([]byte(dl.Text))
	if err != nil {
		t.Fatalf("%s: the downloaded %s does not parse: %v", p.name, dl.Name, err)
	}
	res, err := notary.VerifyBundle(b, policy)
	if err != nil {
		t.Fatalf("%s: the downloaded %s does not verify: %v", p.name, dl.Name, err)
	}
	if res.Leaf.Kind != kind || !strings.HasPrefix(dl.Name, kind.String()+"-") {
		t.Errorf("%s: downloaded %s holds a %s receipt; want %s", p.name, dl.Name, res.Leaf.Kind, kind)
	}
	if want := fmt.Sprintf("%s-%d.json", kind, res.Index); dl.Name != want {
		t.Errorf("%s: the download is named %s; want %s", p.name, dl.Name, want)
	}
	return b
}

// cutProxy forwards TCP connections to the server until cut closes them
// all, as a network outage would.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]bool
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
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

func (p *cutProxy) url() string { return "http://" + p.ln.Addr().String() }

// cut closes every connection open through the proxy.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// checkTimes checks the time rule of the page, whose browser is in Tokyo:
// the page states it, and a receipt's time is shown in UTC with the local
// time beside it.
func checkTimes(t *testing.T, p *appPage, r receiptState, tokyo *time.Location) {
	t.Helper()
	if rule := p.text("time-rule"); !strings.Contains(rule, "in UTC") || !strings.Contains(rule, "local time beside") {
		t.Errorf("%s: the page states no time zone rule: %q", p.name, rule)
	}
	if r.Timestamp == nil {
		t.Fatalf("%s: the receipt %s has no time", p.name, r.Commitment)
	}
	at := time.UnixMilli(*r.Timestamp)
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(
		`document.querySelector('#receipt-rows tr[data-commitment=%q] td:nth-of-type(2)').textContent`, r.Commitment)))
	if err != nil {
		t.Fatalf("%s: the receipt's time: %v", p.name, err)
	}
	utc := at.UTC().Format("2006-01-02 15:04:05") + " UTC"
	local := at.In(tokyo).Format(":04:05")
	if !strings.HasPrefix(shown, utc) || !strings.Contains(shown[len(utc):], local) || !strings.Contains(shown, "GMT+9") {
		t.Errorf("%s: the receipt's time reads %q; want %s, then the time in Tokyo (…%s GMT+9)", p.name, shown, utc, local)
	}
	if log := p.text("event-log"); !strings.Contains(log, " UTC (") {
		t.Errorf("%s: the event log's times are not in UTC with the local time beside:\n%s", p.name, log)
	}
}

// checkEndedDetails checks a page after the consultation ended: the server
// badge reads closed without looking like an error, the connection details
// keep what they showed (not blanks), and no candidate in the event log or
// in the details has an empty address.
func checkEndedDetails(t *testing.T, p *appPage) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	badge, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`(b => b.textContent + '|' + b.dataset.state)(document.getElementById('badge-signal'))`))
	if err != nil {
		t.Fatal(err)
	}
	if badge != "closed|idle" {
		t.Errorf("%s: after the end the server badge is %q (text|state); want closed, idle, not an error", p.name, badge)
	}
	for _, id := range []string{"st-ice", "st-dtls", "st-pair", "st-local-fp", "st-peer-fp"} {
		if v := strings.TrimSpace(p.text(id)); v == "" || v == "—" || v == "new" {
			t.Errorf("%s: after the end the connection details show #%s as %q", p.name, id, v)
		}
	}
	if pair := p.text("st-pair"); !strings.Contains(pair, "127.0.0.1:") && !strings.Contains(pair, "::1:") {
		t.Errorf("%s: after the end the media path reads %q", p.name, pair)
	}
	if !strings.Contains(p.text("st-ended-note"), "when the consultation ended") {
		t.Errorf("%s: the details do not say they are those of the end", p.name)
	}
	for _, line := range strings.Split(p.text("event-log"), "UTC") {
		if strings.Contains(line, "⇄ :") || strings.Contains(line, "media path: :") {
			t.Errorf("%s: the event log shows a candidate without its address: %q", p.name, line)
		}
	}
	// A pair whose remote candidate is peer-reflexive, its address not yet
	// known (Chromium hides it until the other side's candidate arrives):
	// the page names it instead of showing ":0".
	described, err := chromedp.Run(ctx, chromedp.Evaluate[string](`import('./call.js').then((m) => m.describePair({
		local: {address: '127.0.0.1', port: 50000, type: 'host', protocol: 'udp'},
		remote: {address: '', port: 0, type: 'prflx', protocol: 'udp'}}))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: describing a pair: %v", p.name, err)
	}
	if want := "127.0.0.1:50000 (host) ⇄ peer-reflexive (address not yet known)"; described != want {
		t.Errorf("%s: a pair with a peer-reflexive candidate reads %q; want %q", p.name, described, want)
	}
}

func checkLoopback(t *testing.T, name string, pair *candidatePair) {
	t.Helper()
	loop := func(a string) bool { return strings.HasPrefix(a, "127.") || a == "::1" }
	if !loop(pair.Local.Address) || !loop(pair.Remote.Address) {
		t.Errorf("%s: selected candidate pair %+v is not on loopback", name, *pair)
	}
}

// checkFingerprints compares what each page announced and saw.
func checkFingerprints(t *testing.T, patient, physician appState) {
	t.Helper()
	for _, c := range []struct {
		who       string
		me, other appState
	}{{"patient", patient, physician}, {"physician", physician, patient}} {
		if _, err := signalapi.ParseFingerprint(c.me.PeerFingerprint); err != nil {
			t.Errorf("%s: reported fingerprint %q: %v", c.who, c.me.PeerFingerprint, err)
		}
		if c.me.PeerFingerprint != c.other.LocalFingerprint || c.me.ReportedFingerprint != c.me.PeerFingerprint ||
			c.me.RemoteSdpFingerprint != c.other.LocalFingerprint {
			t.Errorf("%s: saw %s and reported %s (SDP announced %s); the other side's certificate is %s",
				c.who, c.me.PeerFingerprint, c.me.ReportedFingerprint, c.me.RemoteSdpFingerprint, c.other.LocalFingerprint)
		}
	}
	if patient.LocalFingerprint == physician.LocalFingerprint {
		t.Error("both pages have the same certificate")
	}
}

func sessionInfo(t *testing.T, sig *sessiontest.Signal, room string) *signalapi.SessionInfo {
	t.Helper()
	for _, s := range sig.Server.Sessions().Sessions {
		if s.Room == room {
			return &s
		}
	}
	return nil
}

func mustCommitment(t *testing.T, s string) notary.Commitment {
	t.Helper()
	c, err := notary.ParseCommitment(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// netnsEnv marks the child process that runs a test in its own network
// namespace.
const netnsEnv = "TELENOTARY_TEST_LOOPBACK_NETNS"

// inLoopbackNetns runs the calling test again, alone, in a child process
// (the same test binary) in a new network namespace, whose only interface
// is loopback, and reports whether it did: the caller then returns, its
// outcome being the child's. In the child it brings loopback up and reports
// false, so the test runs there. Without the privileges for a network
// namespace (root, or user namespaces) the test is skipped, loudly.
func inLoopbackNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsEnv) == "1" {
		if err := loopbackUp(); err != nil {
			t.Fatalf("bringing loopback up in the test's network namespace: %v", err)
		}
		return false
	}
	timeout := 3 * time.Minute
	if d, ok := t.Deadline(); ok {
		timeout = time.Until(d) - 5*time.Second // the child fails first, with its goroutines
	}
	args := []string{"-test.run=^" + t.Name() + "$", "-test.count=1", "-test.v", "-test.timeout=" + timeout.String()}
	run := func(attr *syscall.SysProcAttr) ([]byte, error) {
		cmd := exec.CommandContext(t.Context(), os.Args[0], args...)
		cmd.Env = append(os.Environ(), netnsEnv+"=1")
		attr.Pdeathsig = syscall.SIGKILL // no child left behind if this process dies
		cmd.SysProcAttr = attr
		return cmd.CombinedOutput()
	}
	out, err := run(&syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET})
	if errors.Is(err, syscall.EPERM) { // not root: a user namespace may do
		out, err = run(&syscall.SysProcAttr{
			Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		})
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Skipf("SKIPPED: %s needs a network namespace with only loopback (root, or unprivileged user namespaces), "+
			"so that WebRTC stays on loopback; starting one failed: %v", t.Name(), err)
	}
	if testing.Verbose() || err != nil {
		t.Logf("%s in a loopback-only network namespace:\n%s", t.Name(), out)
	}
	switch {
	case err != nil:
		t.Errorf("%s failed in its network namespace: %v", t.Name(), err)
	case bytes.Contains(out, []byte("--- SKIP: "+t.Name())):
		t.Skipf("skipped in its network namespace:\n%s", out)
	case !bytes.Contains(out, []byte("--- PASS: "+t.Name())):
		t.Errorf("%s did not run in its network namespace:\n%s", t.Name(), out)
	}
	return true
}

// loopbackUp sets the loopback interface of this process's network
// namespace up (a new namespace starts with it down).
func loopbackUp() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var ifr struct {
		name  [syscall.IFNAMSIZ]byte
		flags uint16
		_     [22]byte // the rest of struct ifreq's union
	}
	copy(ifr.name[:], "lo")
	ifr.flags = syscall.IFF_UP | syscall.IFF_LOOPBACK | syscall.IFF_RUNNING
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCSIFFLAGS, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return fmt.Errorf("SIOCSIFFLAGS lo: %w", errno)
	}
	return nil
}
