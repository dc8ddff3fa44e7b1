package browser_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/telenotary/telenotary/session/internal/browser"
)

// TestNewAfterLaunchCrash: a Chromium that dies at its first launch, before
// DevTools answers (a wrapper script that exits once, then runs the real
// browser), is started again, and the tab works.
func TestNewAfterLaunchCrash(t *testing.T) {
	real, err := browser.Path()
	if err != nil {
		t.Fatal(err)
	}
	if real == "" {
		t.Skip("SKIPPED: chromium not installed")
	}
	dir := t.TempDir()
	marker := filepath.Join(dir, "crashed-once")
	wrapper := filepath.Join(dir, "chromium")
	script := "#!/bin/sh\nif [ ! -e " + marker + " ]; then\n  touch " + marker +
		"\n  echo 'Received signal 11 SEGV_MAPERR' >&2\n  exit 139\nfi\nexec " + real + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CHROMIUM", wrapper)

	ctx := browser.New(t, nil)
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the first launch did not happen: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("data:text/html,<title>up</title>")); err != nil {
		t.Fatal(err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	if title != "up" {
		t.Fatalf("title %q, want up", title)
	}
}
