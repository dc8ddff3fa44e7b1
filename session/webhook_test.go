package session_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/telenotary/telenotary/session"
	"github.com/telenotary/telenotary/session/internal/sessiontest"
	"github.com/telenotary/telenotary/session/signalapi"
)

// TestWebhookRedirectIsNotFollowed: a webhook target that answers 307 to
// another port: that port receives nothing; the redirect is one failed
// delivery (not retried), counted and shown as an alert with its status.
// With the server's own client and with a client the app configured
// (whose redirect policy would follow).
func TestWebhookRedirectIsNotFollowed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client *http.Client
	}{
		{"default client", nil},
		{"configured client", &http.Client{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var elsewhere, redirector atomic.Int32
			other := newHook(t, func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) })
			hook := newHook(t, func(w http.ResponseWriter, r *http.Request) {
				redirector.Add(1)
				http.Redirect(w, r, other+"/stolen", http.StatusTemporaryRedirect)
			})
			n := sessiontest.StartNotary(t)
			s := sessiontest.StartSignal(t, n, func(c *session.Config) {
				c.Webhook.URL, c.Webhook.Secret, c.Webhook.HTTPClient = hook, bytes.Repeat([]byte("k"), 32), tc.client
			})
			started(t, s, "room-redirect") // a session-start event
			var alert signalapi.Alert
			sessiontest.WaitFor(t, "the failed delivery's alert", func() bool {
				if elsewhere.Load() > 0 {
					return true // failed: checked below
				}
				for _, a := range s.Server.Sessions().Alerts {
					if a.Kind == signalapi.AlertWebhookFailed {
						alert = a
						return true
					}
				}
				return false
			})
			if got := elsewhere.Load(); got != 0 {
				t.Fatalf("the port the webhook redirected to received %d requests", got)
			}
			if !strings.Contains(alert.Message, "307") || !strings.Contains(alert.Message, "redirect") {
				t.Errorf("the alert %q does not give the status", alert.Message)
			}
			if got := redirector.Load(); got != 1 {
				t.Errorf("the redirecting target got %d attempts; a redirect is not retried", got)
			}
			if m := metric(t, s, `telenotary_signal_webhooks_total{result="failed"}`); m != "1" {
				t.Errorf("failed webhooks: %q, want 1", m)
			}
		})
	}
}

// TestWebhookURL: the webhook must be https, or plain http to a loopback
// address; a refusal names Webhook.URL and says why.
func TestWebhookURL(t *testing.T) {
	secret := bytes.Repeat([]byte("k"), 32)
	for _, tc := range []struct {
		url  string
		want string // "" when accepted, else in the error
	}{
		{"https://app.example/telenotary", ""},
		{"https://203.0.113.7:8443/hook", ""},
		{"http://127.0.0.1:8080/hook", ""},
		{"http://127.1.2.3/hook", ""},
		{"http://[::1]:8080/hook", ""},
		{"http://localhost:8080/hook", ""},
		{"http://LOCALHOST/hook", ""},
		{"http://app.example/telenotary", "not a loopback address: use https"},
		{"http://10.0.0.5/hook", "not a loopback address: use https"},
		{"http://[::ffff:10.0.0.5]/hook", "not a loopback address: use https"},
		{"http://localhost.app.example/hook", "not a loopback address: use https"},
		{"http://127.0.0.1.nip.io/hook", "not a loopback address: use https"},
		{"https://user:secret@app.example/hook", "user name or password"},
		{"ftp://app.example/hook", "not an http(s) URL"},
		{"https:///hook", "not an http(s) URL"},
		{"app.example/hook", "not an http(s) URL"},
		{"https://bücher.example/hook", "not ASCII"},
	} {
		cfg := session.DefaultConfig()
		cfg.Notary, cfg.TokenKey = newMemNotary(t), mustTokenKey(t)
		cfg.Webhook.URL, cfg.Webhook.Secret = tc.url, secret
		err := cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.url, err)
		case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), "Webhook.URL") || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v; want an error naming Webhook.URL that says %q", tc.url, err, tc.want)
		}
		if strings.Contains(tc.url, "secret") && err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows the password: %v", tc.url, err)
		}
	}
}

// metric returns the value of a metric line of the server's /metrics.
func metric(t *testing.T, s *sessiontest.Signal, name string) string {
	t.Helper()
	text := fetch(t, http.DefaultClient, s.URL+"/metrics", "")
	for _, line := range strings.Split(string(text), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

func mustTokenKey(t testing.TB) *session.TokenKey {
	t.Helper()
	tk, err := session.NewTokenKey(bytes.Repeat([]byte("t"), 32))
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// TestWebhookReceiverDownThenBack: the app's backend is down while
// consultations run (the events being sent are refused three times or more:
// the default schedule, scaled down here, that outlasts a minute), then
// back, and answers some deliveries it took with an error, as if the
// answer were lost: every bundle arrives, once by webhook-id, and nothing
// is left held.
func TestWebhookReceiverDownThenBack(t *testing.T) {
	secret := bytes.Repeat([]byte("k"), 32)
	const rooms, prescriptionsPerRoom = 3, 2
	const events = rooms * (2 + prescriptionsPerRoom)
	var mu sync.Mutex
	down := true
	refusals := map[string]int{} // by webhook-id, while down
	taken := map[string][]byte{} // the body first taken, by webhook-id
	again := map[string]int{}    // deliveries of an id already taken
	hook := newHook(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id, err := signalapi.VerifyWebhook(secret, r.Header, body, time.Now())
		if err != nil {
			t.Errorf("delivery not verified: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case down:
			refusals[id]++
			w.WriteHeader(http.StatusServiceUnavailable)
		case taken[id] != nil:
			again[id]++
			w.WriteHeader(http.StatusNoContent) // seen: acknowledged, not taken twice
		default:
			taken[id] = body
			if len(taken)%3 == 0 {
				w.WriteHeader(http.StatusBadGateway) // taken, but the sender hears a failure
			}
		}
	})
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, func(c *session.Config) {
		c.Webhook.URL, c.Webhook.Secret = hook, secret
		// The default schedule (500ms to 30s), 25 times faster.
		c.Webhook.RetryInterval, c.Webhook.MaxRetryInterval = 20*time.Millisecond, 1200*time.Millisecond
	})
	var bundles [][]byte
	for i := range rooms {
		patient, physician := started(t, s, fmt.Sprintf("room-down-%d", i))
		for j := range prescriptionsPerRoom {
			receipt, _ := prescribe(t, patient, physician, fmt.Sprint("rx-", j), medicationRequest(t))
			bundles = append(bundles, receipt.Bundle)
		}
		patient.send(signalapi.Message{Type: signalapi.TypeLeave})
		patient.expect(signalapi.TypeSessionEnd)
	}
	// Four senders retry an event each; the others wait in the queue.
	sessiontest.WaitFor(t, "the events being sent refused three times each", func() bool {
		mu.Lock()
		defer mu.Unlock()
		thrice := 0
		for _, n := range refusals {
			if n >= 3 {
				thrice++
			}
		}
		return thrice >= 4
	})
	mu.Lock()
	down = false
	mu.Unlock()
	sessiontest.WaitFor(t, "every event taken, and every delivery heard", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(taken) == events && metric(t, s, `telenotary_signal_webhooks_total{result="delivered"}`) == fmt.Sprint(events)
	})
	mu.Lock()
	defer mu.Unlock()
	for id := range refusals {
		if taken[id] == nil {
			t.Errorf("event %s refused while down never arrived", id)
		}
	}
	if len(again) == 0 {
		t.Error("no delivery whose answer was lost came again: the test did not exercise retries after a take")
	}
	for _, b := range bundles {
		found := false
		for _, body := range taken {
			var e signalapi.WebhookEvent
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatal(err)
			}
			found = found || string(e.Bundle) == string(b)
		}
		if !found {
			t.Errorf("a prescription's bundle never reached the webhook")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if u, err := s.Client(sessiontest.AppKey, nil).Undelivered(ctx); err != nil || len(u.Events) != 0 {
		t.Fatalf("held after the receiver came back: %+v, %v", u, err)
	}
}
