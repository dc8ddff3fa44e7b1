// Package browser runs headless Chromium for tests, through chromedp: the
// verification page's tests and the browser consultation-client tests use it.
//
//	ctx := browser.New(t, nil)
//	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
//		t.Fatal(err)
//	}
//
// New skips the test, loudly, when Chromium is not installed. Every tab it
// opens records its console: an error logged by the page or the browser, or an
// uncaught exception, fails the test when it ends (see Options.IgnoreConsole).
package browser

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// DefaultPath is where Chromium is looked for when $CHROMIUM is not set.
const DefaultPath = "/usr/bin/chromium"

// Options configure the browser that New starts. The zero value is a plain
// headless browser.
type Options struct {
	// FakeMedia gives pages a fake camera and microphone and grants
	// getUserMedia without a prompt (--use-fake-ui-for-media-stream and
	// --use-fake-device-for-media-stream).
	FakeMedia bool
	// Flags are further command-line flags, by name without dashes: true for
	// a bare flag, a string for --name=value, false to remove a default one.
	// A flag set here replaces New's own value (disable-features, say).
	Flags map[string]any
	// IgnoreConsole reports whether a console error or exception that the
	// test expects (a 404 it provokes, say) should not fail the test. It may
	// be nil.
	IgnoreConsole func(chromedp.ConsoleMessage) bool
	// Timeout bounds the browser's whole life; when it passes, the browser is
	// stopped and pending actions fail. Zero means one minute.
	Timeout time.Duration
}

// Path returns the Chromium executable tests use: $CHROMIUM if set, else
// DefaultPath, else chromium or chromium-browser on $PATH. It returns an
// error when $CHROMIUM names no executable, and "" when none is installed.
func Path() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		found, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("$CHROMIUM is %q, which is not an executable: %w", p, err)
		}
		return found, nil
	}
	for _, p := range []string{DefaultPath, "chromium", "chromium-browser"} {
		if found, err := exec.LookPath(p); err == nil {
			return found, nil
		}
	}
	return "", nil
}

// New starts headless Chromium, with a fresh profile in a temporary
// directory, and returns the chromedp context of its first tab. Actions run
// with it (chromedp.Run, chromedp.Do) drive that tab. The browser stops when
// the test ends, after the tab's console is checked (see CheckConsole).
//
// When Chromium is not installed, New skips the test with a message that
// says the browser tests did not run.
func New(t testing.TB, opts *Options) context.Context {
	t.Helper()
	if opts == nil {
		opts = &Options{}
	}
	path, err := Path()
	if err != nil {
		t.Fatal(err)
	}
	if path == "" {
		t.Skip("SKIPPED: chromium not installed; browser tests did not run " +
			"(apt-get install -y chromium, or set $CHROMIUM to a Chromium executable)")
	}
	profile := t.TempDir() // removed after the browser has stopped

	flags := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
	}
	if opts.FakeMedia {
		flags = append(flags,
			chromedp.Flag("use-fake-ui-for-media-stream", true),
			chromedp.Flag("use-fake-device-for-media-stream", true))
	}
	for name, value := range opts.Flags {
		flags = append(flags, chromedp.Flag(name, value))
	}

	timeout := opts.Timeout
	if timeout == 0 {
		timeout = time.Minute
	}
	ctx, err := start(t, flags, profile, timeout)
	if err != nil && strings.Contains(err.Error(), "chrome failed to start") {
		// Chromium exited before it served DevTools: a crash of the
		// browser itself at launch, before any page of ours is loaded
		// (a fresh-clone CI run saw one, its crash handler's lines in the
		// output, once in hundreds of launches). It says nothing about
		// the code under test, so the launch is tried once more, with a
		// new profile, and the first crash is logged.
		t.Logf("browser: %s crashed at launch; starting it again with a new profile: %v", path, err)
		ctx, err = start(t, flags, t.TempDir(), timeout)
	}
	if err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return watch(t, ctx, opts.IgnoreConsole)
}

// start launches Chromium with flags and the profile directory, and returns
// the context of its first tab once DevTools answers. The browser stops when
// the test ends, or at once when it fails to start.
func start(t testing.TB, flags []chromedp.ExecAllocatorOption, profile string, timeout time.Duration) (context.Context, error) {
	t.Helper()
	flags = append(flags[:len(flags):len(flags)], chromedp.UserDataDir(profile))
	life, cancelLife := context.WithTimeout(context.Background(), timeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(life, flags...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	stop := func() {
		cancelTab()
		cancelAlloc()
		cancelLife()
	}
	started := time.Now()
	if err := chromedp.Do(ctx); err != nil {
		stop()
		return nil, err
	}
	t.Cleanup(stop)
	t.Logf("browser: started in %v", time.Since(started).Round(time.Millisecond))
	return ctx, nil
}

// NewTab opens another tab in the browser of ctx (from New) and returns its
// context; the tab closes when the test ends. Its console is checked as the
// first tab's is, with the same IgnoreConsole.
func NewTab(t testing.TB, ctx context.Context) context.Context {
	t.Helper()
	var ignore func(chromedp.ConsoleMessage) bool
	if c, ok := ctx.Value(consoleKey{}).(*console); ok {
		ignore = c.ignore
	}
	tab, cancel := chromedp.NewContext(ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	return watch(t, tab, ignore)
}

// ConsoleErrors returns the console errors, failed assertions and uncaught
// exceptions of the tab of ctx so far, except those Options.IgnoreConsole
// accepts. It first makes sure that every message the page wrote before the
// call has arrived.
func ConsoleErrors(t testing.TB, ctx context.Context) []chromedp.ConsoleMessage {
	t.Helper()
	c, ok := ctx.Value(consoleKey{}).(*console)
	if !ok {
		t.Fatal("browser.ConsoleErrors: the context does not come from browser.New or browser.NewTab")
	}
	if err := c.sync(ctx); err != nil {
		t.Errorf("browser: reading the console: %v", err)
	}
	return c.errors()
}

// Console returns every console message of the tab of ctx so far, errors or
// not, after making sure every earlier message has arrived.
func Console(t testing.TB, ctx context.Context) []chromedp.ConsoleMessage {
	t.Helper()
	c, ok := ctx.Value(consoleKey{}).(*console)
	if !ok {
		t.Fatal("browser.Console: the context does not come from browser.New or browser.NewTab")
	}
	if err := c.sync(ctx); err != nil {
		t.Errorf("browser: reading the console: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]chromedp.ConsoleMessage(nil), c.msgs...)
}

// CheckConsole fails the test for each console error or uncaught exception
// of the tab of ctx that has not been reported yet. New and NewTab call it
// when the test ends; call it earlier to see errors where they happen.
func CheckConsole(t testing.TB, ctx context.Context) {
	t.Helper()
	c, ok := ctx.Value(consoleKey{}).(*console)
	if !ok {
		t.Fatal("browser.CheckConsole: the context does not come from browser.New or browser.NewTab")
	}
	c.check(t, ctx)
}

type consoleKey struct{}

// console records a tab's console messages.
type console struct {
	ignore func(chromedp.ConsoleMessage) bool

	mu       sync.Mutex
	msgs     []chromedp.ConsoleMessage
	reported int                      // errors already reported by check
	marks    map[string]chan struct{} // sync markers awaited
	next     atomic.Int64
}

// markPrefix starts the console.debug lines that sync writes.
const markPrefix = "browser-test-sync-"

func watch(t testing.TB, ctx context.Context, ignore func(chromedp.ConsoleMessage) bool) context.Context {
	t.Helper()
	c := &console{ignore: ignore, marks: make(map[string]chan struct{})}
	messages := chromedp.Console(ctx) // subscribes now
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			c.add(m)
		}
	}()
	ctx = context.WithValue(ctx, consoleKey{}, c)
	t.Cleanup(func() {
		c.check(t, ctx)
	})
	return ctx
}

func (c *console) add(m chromedp.ConsoleMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.Type == chromedp.ConsoleDebug && strings.HasPrefix(m.Text, markPrefix) {
		if ch, ok := c.marks[m.Text]; ok {
			close(ch)
			delete(c.marks, m.Text)
		}
		return
	}
	c.msgs = append(c.msgs, m)
}

// sync writes a marker to the console and waits until it comes back: the
// console keeps its order, so every earlier message has arrived then.
func (c *console) sync(ctx context.Context) error {
	mark := fmt.Sprintf("%s%d", markPrefix, c.next.Add(1))
	ch := make(chan struct{})
	c.mu.Lock()
	c.marks[mark] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.marks, mark)
		c.mu.Unlock()
	}()
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(wait, chromedp.Evaluate[chromedp.Void](fmt.Sprintf("console.debug(%q)", mark))); err != nil {
		return err
	}
	select {
	case <-ch:
		return nil
	case <-wait.Done():
		return errors.New("the console did not deliver a marker within 10s")
	}
}

func isError(m chromedp.ConsoleMessage) bool {
	return m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException || m.Type == "assert"
}

func (c *console) errors() []chromedp.ConsoleMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []chromedp.ConsoleMessage
	for _, m := range c.msgs {
		if isError(m) && (c.ignore == nil || !c.ignore(m)) {
			out = append(out, m)
		}
	}
	return out
}

func (c *console) check(t testing.TB, ctx context.Context) {
	t.Helper()
	if ctx.Err() != nil {
		return // the browser is gone; the test has failed for that already
	}
	if err := c.sync(ctx); err != nil {
		t.Errorf("browser: reading the console: %v", err)
	}
	errs := c.errors()
	c.mu.Lock()
	fresh := errs[min(c.reported, len(errs)):]
	c.reported = len(errs)
	c.mu.Unlock()
	for _, m := range fresh {
		where := m.URL
		if where != "" {
			where = fmt.Sprintf(" (%s:%d)", m.URL, m.Line+1)
		}
		t.Errorf("browser console: %s%s", m, where)
	}
}
