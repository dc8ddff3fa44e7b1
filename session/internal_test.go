package session

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/telenotary/telenotary/session/signalapi"
)

// TestWebhookDialsOnlyItsTarget: the server's webhook client dials the
// configured host and port and nothing else, and plain http only to a
// loopback address, whatever a request or a resolver says.
func TestWebhookDialsOnlyItsTarget(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer target.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the webhook client reached another port: %s %s", r.Method, r.URL)
	}))
	defer other.Close()
	cfg := DefaultConfig().Webhook
	cfg.URL = target.URL + "/hook"
	c := webhookClient(cfg)
	for url, ok := range map[string]bool{target.URL + "/hook": true, other.URL + "/hook": false} {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, url, strings.NewReader("{}"))
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		if (err == nil) != ok {
			t.Errorf("POST %s: %v; want it to be sent: %v", url, err, ok)
		}
	}
	for addr, ok := range map[string]bool{"127.0.0.1:80": true, "[::1]:443": true, "127.9.9.9:1": true, "10.0.0.1:80": false, "[2001:db8::1]:80": false, "[::ffff:192.0.2.1]:80": false} {
		if err := loopbackOnly("tcp", addr, nil); (err == nil) != ok {
			t.Errorf("plain http to %s: %v; want it allowed: %v", addr, err, ok)
		}
	}
}

// TestUsedTokens: an id is refused while it is held, dropped once expired;
// at the cap new ids are refused with limit, and room comes back as ids
// expire.
func TestUsedTokens(t *testing.T) {
	u := newUsedTokens(2)
	t0 := time.Unix(1_800_000_000, 0)
	id := func(s string) [sha256.Size]byte { return sha256.Sum256([]byte(s)) }
	steps := []struct {
		id   string
		at   time.Duration
		code signalapi.Code // "" when taken
	}{
		{"a", 0, ""},
		{"a", time.Second, signalapi.CodeTokenUsed},
		{"b", time.Second, ""},
		{"c", time.Second, signalapi.CodeLimit},
		{"a", 9 * time.Second, signalapi.CodeTokenUsed},
		{"c", 10 * time.Second, ""}, // a expired at 10s
		{"a", 10 * time.Second, signalapi.CodeLimit},
		{"d", 30 * time.Second, ""}, // b and c expired
	}
	for i, st := range steps {
		err := u.take(id(st.id), t0.Add(st.at+10*time.Second), t0.Add(st.at))
		if st.code == "" && err != nil || st.code != "" && !errors.Is(err, st.code) {
			t.Fatalf("step %d: take %s at %v: %v, want %q", i, st.id, st.at, err, st.code)
		}
	}
	if u.len() != 1 || len(u.order) != 1 {
		t.Fatalf("%d ids and %d in the heap after the others expired, want 1", u.len(), len(u.order))
	}
}

// TestDefaultRetriesOutlastAMinute: with the default schedule, a delivery's
// attempts span more than a minute whatever the jitter draws, so a
// receiver down for a minute loses no event to the undelivered store.
func TestDefaultRetriesOutlastAMinute(t *testing.T) {
	cfg := DefaultConfig().Webhook
	shortest := time.Duration(1<<63 - 1)
	for range 2000 {
		schedule := retrySchedule(cfg)
		schedule.Reset()
		var span time.Duration
		for range cfg.MaxAttempts - 1 { // the waits between the attempts
			span += schedule.NextBackOff()
		}
		shortest = min(shortest, span)
	}
	if shortest <= time.Minute {
		t.Fatalf("the attempts of a delivery span as little as %v: a receiver down for a minute loses events to the store", shortest)
	}
}

// FuzzICEURL: an ICE URL is accepted or refused with a reason, never a
// panic; an accepted one has a known scheme and a host with nothing a
// client would read as another part of the URL.
func FuzzICEURL(f *testing.F) {
	for _, s := range []string{"stun:stun.example.org:3478", "turns:t.example.org:443?transport=tcp", "turn:[::1]:3478", "turn:h?transport=sctp", "stun://x", "https://x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, u string) {
		turn, err := checkICEURL(u)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("a refusal without a reason")
			}
			return
		}
		if turn != strings.HasPrefix(u, "turn") || strings.ContainsAny(u, " /@") || len(u) > maxICEURLLength {
			t.Fatalf("accepted %q (turn %v)", u, turn)
		}
	})
}
