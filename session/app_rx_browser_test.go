//go:build linux

package session_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chromedp/chromedp"
	"github.com/telenotary/telenotary/session/internal/browser"
	"github.com/telenotary/telenotary/session/internal/sessiontest"
	"github.com/telenotary/telenotary/session/peer"
	"github.com/telenotary/telenotary/session/signalapi/prescription/prescriptiontest"
)

// TestBrowserPrescriptionChecks: the physician's page in Chromium, with the
// Go SDK as the patient. Each invalid prescription of prescriptiontest (the
// inputs the server's and the SDK's tests refuse) is refused with its FHIR
// path: by the page itself for what JSON.parse would hide or change
// (repeated members, numbers canonical JSON would change, a byte order
// mark, not JSON) and for a size over the limit (the real size and the
// limit, for a person), by the server for the FHIR rules; none is left
// waiting. A double click on "Notarize and send" notarizes one copy, and
// the same document sent again at once is flagged, not sent, until the
// physician clicks once more.
func TestBrowserPrescriptionChecks(t *testing.T) {
	if inLoopbackNetns(t) {
		return
	}
	n := sessiontest.StartNotary(t)
	sig := sessiontest.StartSignal(t, n, nil)
	patientTok, physicianTok := sig.Tokens(t, "browser-rx-checks")
	ctx := browser.New(t, browserOptions())
	physician := openApp(t, ctx, "physician", sig, physicianTok)
	physician.join(true)
	jctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	patient, err := peer.Join(jctx, peer.Config{URL: sig.WS, Token: patientTok, Policy: &n.Policy, Media: true, Loopback: true, Logger: sessiontest.Logger(t)})
	if err != nil {
		t.Fatalf("Go patient: join: %v", err)
	}
	t.Cleanup(func() { patient.Close() })
	physician.waitFor("the session to start", func(s appState) bool { return s.Connected && s.verified("session-start", "") != nil })

	for _, c := range prescriptiontest.Invalid() {
		if !utf8.Valid(c.Doc) {
			continue // a textarea holds text: the page refuses such a file when it loads it
		}
		before := physician.state()
		physician.do("fill the prescription", chromedp.SetValue(chromedp.ID("prescription"), string(c.Doc)))
		physician.do("send "+c.Name, chromedp.Click(chromedp.ID("prescription-send")))
		s := physician.poll("the refusal of "+c.Name, false, func(s appState) bool {
			return len(s.NotSent) > len(before.NotSent) ||
				(len(s.Sent) > len(before.Sent) && s.Sent[len(s.Sent)-1].Status != "sending")
		})
		status := physician.text("prescribe-status")
		switch {
		case len(s.NotSent) > len(before.NotSent): // refused by the page
			if len(s.Sent) != len(before.Sent) {
				t.Errorf("%s: the page refused it and still sent it", c.Name)
			}
			if strings.Contains(c.Name, "48 KiB") {
				if !strings.Contains(status, "bytes); the limit is 48 KiB (49,152 bytes)") {
					t.Errorf("%s: the page says %q; want the real size and the limit", c.Name, status)
				}
				continue
			}
		case s.Sent[len(s.Sent)-1].Status != "refused":
			t.Errorf("%s: the prescription was %s", c.Name, s.Sent[len(s.Sent)-1].Status)
		}
		if !strings.HasPrefix(status, "Not sent: "+c.Path+": ") && !strings.HasPrefix(status, "Not notarized: "+c.Path+": ") {
			t.Errorf("%s: the page says %q; want the refusal at %s", c.Name, status, c.Path)
		}
	}

	// A double click notarizes one prescription: the second click finds the
	// button waiting for the receipt or, when the receipt came first, the
	// same document just sent.
	rx, err := os.ReadFile(rxExample)
	if err != nil {
		t.Fatal(err)
	}
	before := physician.state()
	physician.do("fill the prescription", chromedp.SetValue(chromedp.ID("prescription"), string(rx)))
	physician.do("double click", chromedp.Click(chromedp.ID("prescription-send")), chromedp.Click(chromedp.ID("prescription-send")))
	s := physician.poll("the receipt", false, func(s appState) bool {
		return len(s.Sent) > len(before.Sent) && s.Sent[len(s.Sent)-1].Status == "notarized"
	})
	if len(s.Sent) != len(before.Sent)+1 {
		t.Fatalf("a double click sent %d prescriptions", len(s.Sent)-len(before.Sent))
	}

	// Another prescription, sent once, then the same again at once: flagged,
	// not sent; a second click sends the copy.
	before = s
	physician.do("fill the prescription", chromedp.SetValue(chromedp.ID("prescription"), string(prescriptiontest.Base())))
	physician.do("send", chromedp.Click(chromedp.ID("prescription-send")))
	physician.poll("the receipt", false, func(s appState) bool {
		return len(s.Sent) == len(before.Sent)+1 && s.Sent[len(s.Sent)-1].Status == "notarized"
	})
	physician.do("send the same again", chromedp.Click(chromedp.ID("prescription-send")))
	if s := physician.state(); len(s.Sent) != len(before.Sent)+1 || len(s.NotSent) != len(before.NotSent)+1 {
		t.Fatalf("the same prescription again: %d sent, %d not sent; want it flagged", len(s.Sent)-len(before.Sent), len(s.NotSent)-len(before.NotSent))
	}
	if status := physician.text("prescribe-status"); !strings.HasPrefix(status, "Not sent again: ") {
		t.Errorf("the page says %q", status)
	}
	physician.do("send a second copy on purpose", chromedp.Click(chromedp.ID("prescription-send")))
	physician.poll("the second copy's receipt", false, func(s appState) bool {
		return len(s.Sent) == len(before.Sent)+2 && s.Sent[len(s.Sent)-1].Status == "notarized"
	})
	for _, sent := range physician.state().Sent {
		if sent.Status == "sending" {
			t.Errorf("prescription %s is still waiting", sent.Ref)
		}
	}
}
