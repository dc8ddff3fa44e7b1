//go:build linux

package session_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/internal/browser"
	"github.com/telenotary/telenotary/session/internal/sessiontest"
)

// TestBrowserPatientKeepsBundles: the patient's page (Chromium, the Go SDK
// as the physician) keeps every bundle it receives in the browser's
// storage. Reloaded in the middle of the consultation, and again after the
// end (its link used up), and opened later without its link, it still
// lists every bundle, verified, with the prescription's status and dosage; the page for the pharmacy shows the
// prescription and how to verify it; "Download all" gives a zip of every
// bundle, each of which the Go verifier accepts.
func TestBrowserPatientKeepsBundles(t *testing.T) {
	if inLoopbackNetns(t) {
		return
	}
	n := sessiontest.StartNotary(t)
	sig := sessiontest.StartSignal(t, n, nil)
	const room = "browser-patient-keeps"
	patientTok, physicianTok := sig.Tokens(t, room)

	ctx := browser.New(t, browserOptions())
	patient := openApp(t, ctx, "patient", sig, patientTok)
	patient.join(false)
	jctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	physician := newGoPhysician(t, jctx, sig.WS, physicianTok, &n.Policy)
	if err := physician.Connected(jctx); err != nil {
		t.Fatalf("Go physician: data channel: %v", err)
	}
	rxFile, err := os.ReadFile(rxExample)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := physician.Prescribe(jctx, "rx-kept", rxFile); err != nil {
		t.Fatalf("Go physician: prescribe: %v", err)
	}
	saved := func(kinds ...string) func(appState) bool {
		return func(s appState) bool {
			for _, k := range kinds {
				if s.verified(k, "") == nil || !slices.ContainsFunc(s.Receipts, func(r receiptState) bool { return r.Kind == k && r.Saved != nil && *r.Saved }) {
					return false
				}
			}
			return true
		}
	}
	s := patient.waitFor("the prescription, verified and kept", saved("session-start", "prescription"))
	rx := *s.verified("prescription", "rx-kept")
	if rx.Status != "completed" || !strings.HasPrefix(rx.Dosage, "one to two tablets every 4-6 hours") {
		t.Errorf("the prescription's status %q and dosage %q; want completed and the example's dosage text", rx.Status, rx.Dosage)
	}
	if row := patient.rowText(rx.Commitment); !strings.Contains(row, "Status: completed") || !strings.Contains(row, "Dosage: one to two tablets") {
		t.Errorf("the receipts list shows the prescription as %q; want its status and dosage", row)
	}

	// Closing the tab asks first while a bundle is not yet written, and
	// only then (the handler, called as the browser would).
	asks := func(saved bool) bool {
		t.Helper()
		ctx, cancel := context.WithTimeout(patient.ctx, 10*time.Second)
		defer cancel()
		prevented, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => {
			window.telenotaryApp.receipts[1].saved = %v;
			const ev = new Event('beforeunload', {cancelable: true});
			window.dispatchEvent(ev);
			window.telenotaryApp.receipts[1].saved = true;
			return ev.defaultPrevented;
		})()`, saved)))
		if err != nil {
			t.Fatal(err)
		}
		return prevented
	}
	if asks(true) {
		t.Error("closing the tab asks first though every bundle is kept")
	}
	if !asks(false) {
		t.Error("closing the tab does not ask first while a bundle is not yet kept")
	}

	// Reloaded in the middle of the consultation: before joining again,
	// the page lists what it kept, verified again.
	reload := func(when string, kinds ...string) appState {
		t.Helper()
		patient.do("reload "+when, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("join-data")),
			chromedp.WaitNotVisible(chromedp.ID("consultation")))
		s := patient.waitFor("the kept bundles "+when, func(s appState) bool {
			return s.KeptLoaded && len(s.Receipts) == len(kinds) && s.count("", true) == len(kinds)
		})
		for _, k := range kinds {
			if r := s.verified(k, ""); r == nil || r.Kept == nil || !*r.Kept {
				t.Errorf("%s: the page lists no kept and verified %s: %s", when, k, dump(s))
			}
		}
		if r := s.verified("prescription", ""); r == nil || r.Commitment != rx.Commitment || r.Status != rx.Status || r.Dosage != rx.Dosage {
			t.Errorf("%s: the kept prescription is %+v; want %+v", when, r, rx)
		}
		if v, _ := patient.visible("receipts"); !v {
			t.Errorf("%s: the receipts are not shown", when)
		}
		return s
	}
	reload("mid-consultation", "session-start", "prescription")

	// It joins again; the physician ends the consultation; the end is kept
	// too, and a reload after the end (the link used up) lists all three.
	patient.join(false)
	patient.waitFor("the rejoin", func(s appState) bool { return s.Signal == "joined" })
	if _, err := physician.Leave(jctx, "done"); err != nil {
		t.Fatalf("Go physician: leave: %v", err)
	}
	patient.waitFor("the end, verified and kept", saved("session-end"))
	reload("after the end", "session-start", "prescription", "session-end")

	// A later visit, without the link: the page still lists them.
	patient.do("a later visit without the link", chromedp.Navigate(sig.URL+"/app/"), chromedp.WaitVisible(chromedp.ID("join-data")))
	s = patient.waitFor("the kept bundles on a later visit", func(s appState) bool {
		return s.KeptLoaded && len(s.Receipts) == 3 && s.count("", true) == 3
	})

	// Download all: one zip, one bundle file per receipt listed, each
	// accepted by the Go verifier.
	patient.do("download all", chromedp.Click(chromedp.ID("download-all")))
	patient.waitJS("the archive", `!!document.getElementById('download-all-file').href`)
	zipped := patient.fetchBase64(`document.getElementById('download-all-file')`)
	zr, err := zip.NewReader(bytes.NewReader(zipped), int64(len(zipped)))
	if err != nil {
		t.Fatalf("the downloaded archive: %v", err)
	}
	var inZip []string
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatalf("%s in the archive: %v", f.Name, err)
		}
		text, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("%s in the archive: %v", f.Name, err)
		}
		b, err := notary.ParseBundle(text)
		if err != nil {
			t.Fatalf("%s in the archive does not parse: %v", f.Name, err)
		}
		res, err := notary.VerifyBundle(b, n.Policy)
		if err != nil {
			t.Fatalf("%s in the archive does not verify: %v", f.Name, err)
		}
		if want := fmt.Sprintf("%s-%d.json", res.Leaf.Kind, res.Index); f.Name != want {
			t.Errorf("the archive holds %s as %s; want %s", res.Leaf.Kind, f.Name, want)
		}
		inZip = append(inZip, res.Leaf.Kind.String())
	}
	slices.Sort(inZip)
	if want := []string{"prescription", "session-end", "session-start"}; !slices.Equal(inZip, want) {
		t.Errorf("the archive holds %v; want %v", inZip, want)
	}
	if status := patient.text("download-all-status"); !strings.Contains(status, "3 bundles") {
		t.Errorf("after download all the page says %q", status)
	}

	// The page for the pharmacy, opened from the prescription's row.
	lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
	href, err := chromedp.Run(lctx, chromedp.Evaluate[string](fmt.Sprintf(
		`document.querySelector('#receipt-rows tr[data-commitment=%q] a.print-link')?.href ?? ''`, rx.Commitment)))
	lcancel()
	if err != nil || href == "" {
		t.Fatalf("the prescription's row has no link to the pharmacy page (%v)", err)
	}
	pharmacy := &appPage{t: t, ctx: browser.NewTab(t, ctx), name: "pharmacy page"}
	pharmacy.do("open the pharmacy page", chromedp.Navigate(href), chromedp.WaitVisible(chromedp.ID("rx")))
	pharmacy.waitJS("the pharmacy page's check", `window.telenotaryPrint.valid === true`)
	file := fmt.Sprintf("prescription-%d.json", *rx.Index)
	for id, want := range map[string]string{
		"rx-medication": "Oral Form Oxycodone (product)",
		"rx-dosage":     "one to two tablets every 4-6 hours as needed for rib pain",
		"rx-status":     "completed",
		"rx-entry":      fmt.Sprintf("#%d", *rx.Index),
		"rx-time":       time.UnixMilli(*rx.Timestamp).UTC().Format("2006-01-02 15:04:05") + " UTC",
		"rx-verify-cmd": "telenotary verify " + file + " --keys keys.pub",
		"rx-verify-url": sig.URL + "/verify/",
		"rx-commitment": rx.Commitment,
		"rx-check":      "✓ verified in this browser",
	} {
		if got := pharmacy.text(id); !strings.HasPrefix(got, want) {
			t.Errorf("the pharmacy page shows #%s as %q; want %q", id, got, want)
		}
	}
	patient.screenshot("kept")
	pharmacy.screenshot("print")
	if s := patient.state(); len(s.Errors) > 0 {
		t.Errorf("the page shows errors: %+v", s.Errors)
	}
}

// rowText returns the text of the receipts list's row of a commitment.
func (p *appPage) rowText(commitment string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(
		`document.querySelector('#receipt-rows tr[data-commitment=%q]')?.innerText ?? ''`, commitment)))
	if err != nil {
		p.t.Fatalf("%s: the receipt row: %v", p.name, err)
	}
	return text
}

// visible reports whether the element with this id is displayed.
func (p *appPage) visible(id string) (bool, error) {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(
		`(e => !!e && e.checkVisibility())(document.getElementById(%q))`, id)))
}

// fetchBase64 fetches the href of the link an expression returns, in the
// page, and returns its bytes.
func (p *appPage) fetchBase64(link string) []byte {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	b64, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(async () => {
		const bytes = new Uint8Array(await (await fetch(%s.href)).arrayBuffer());
		let s = '';
		for (const b of bytes) s += String.fromCharCode(b);
		return btoa(s);
	})()`, link), chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("%s: fetching %s: %v", p.name, link, err)
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}
