package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/telenotary/telenotary/notary"
)

// TestVerifyPageWording opens the /verify/ page in Chromium, in Tokyo's time
// zone, and checks what issue 21's newcomer tripped on: one signer "vouches"
// (not "vouch"); the page says what it checks is the document's canonical
// form, not its bytes, and a reformatted bundle is indeed VALID; times are
// in UTC, as the page states, with the local time of notarization beside.
func TestVerifyPageWording(t *testing.T) {
	chromium := os.Getenv("CHROMIUM")
	for _, p := range []string{"chromium", "chromium-browser"} {
		if chromium == "" {
			chromium, _ = exec.LookPath(p)
		}
	}
	if chromium == "" {
		t.Skip("SKIPPED: chromium not installed (apt-get install -y chromium, or set $CHROMIUM)")
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	vectors := filepath.Join(root, "notary", "testdata", "vectors")
	keys, err := os.ReadFile(filepath.Join(vectors, "keys.pub"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/verify/", http.FileServer(http.Dir(filepath.Join(root, "session", "web"))))
	mux.HandleFunc("/v1/keys", func(w http.ResponseWriter, _ *http.Request) { w.Write(keys) })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// One trusted signature (with one required), and the valid bundle
	// reformatted: indented anew, as an editor or a mail client might.
	dir := t.TempDir()
	valid, err := os.ReadFile(filepath.Join(vectors, "valid.json"))
	if err != nil {
		t.Fatal(err)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, valid, "", "\t\t"); err != nil {
		t.Fatal(err)
	}
	reformatted := filepath.Join(dir, "reformatted.json")
	if bytes.Equal(indented.Bytes(), valid) || os.WriteFile(reformatted, indented.Bytes(), 0o600) != nil {
		t.Fatal("could not write a reformatted bundle")
	}
	oneSigner := filepath.Join(vectors, "signature-removed.json")
	b, err := os.ReadFile(oneSigner)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := notary.ParseBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Skipf("SKIPPED: no time zone data: %v", err)
	}
	notarized := time.UnixMilli(bundle.Receipt.Leaf.Timestamp).UTC()

	life, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(life, chromedp.ExecPath(chromium), chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true), chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("lang", "en-US"),
		chromedp.Env("TZ=Asia/Tokyo", "LANG=en_US.UTF-8"))
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(alloc)
	defer cancelTab()
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/verify/")); err != nil {
		t.Fatal(err)
	}
	poll := func(cond string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("waiting for %s: %v", cond, err)
		}
	}
	text := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	poll(`document.body.dataset.keys === 'loaded'`)
	help := text(`document.querySelector('.help').textContent`)
	if !strings.Contains(help, "in its canonical form") || strings.Contains(help, "byte for byte") {
		t.Errorf("what the page says it checks: %q", help)
	}

	choose := func(path string, done int) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS("#bundle-file"), []string{path})); err != nil {
			t.Fatal(err)
		}
		poll(fmt.Sprintf(`Number(document.getElementById('result').dataset.done) >= %d`, done))
	}
	choose(oneSigner, 1)
	if state := text(`document.getElementById('result').dataset.state`); state != "valid" {
		t.Fatalf("%s with one signature required: %s: %s", filepath.Base(oneSigner), state, text(`document.getElementById('result').textContent`))
	}
	summary := text(`document.getElementById('summary').textContent`)
	if !strings.Contains(summary, "1 trusted key vouches for it (1 required).") {
		t.Errorf("summary: %q", summary)
	}
	field := func(name string) string {
		return text(fmt.Sprintf(`document.querySelector('#details dd[data-field=%q]').textContent`, name))
	}
	if got, want := field("time"), notarized.Format("2006-01-02T15:04:05.000Z"); got != want {
		t.Errorf("notarized at (UTC): %q, want %q", got, want)
	}
	local := notarized.In(tokyo)
	hour := local.Hour() % 12
	if hour == 0 {
		hour = 12
	}
	if got, want := field("time-local"), fmt.Sprintf("%d:%02d:%02d", hour, local.Minute(), local.Second()); !strings.Contains(got, want) || !strings.Contains(got, "GMT+9") {
		t.Errorf("notarized at (your time), in Tokyo: %q, want %s GMT+9", got, want)
	}
	if note := text(`document.getElementById('local-note').textContent`); !strings.Contains(note, "Times are in UTC") {
		t.Errorf("the page states no time zone rule: %q", note)
	}

	choose(reformatted, 2)
	if state := text(`document.getElementById('result').dataset.state`); state != "valid" {
		t.Errorf("a reformatted bundle: %s: %s", state, text(`document.getElementById('summary').textContent`))
	}
}
