package session

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
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

// TestTicketSealExpiry: a sealed seat opens until its expiry, and not
// after, with a message that says so.
func TestTicketSealExpiry(t *testing.T) {
	key, err := NewTokenKey([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	sealer := newTicketSealer(key)
	now := time.Now()
	plain, _ := newTicket("room1")
	ticket := sealer.seal(plain, &ticketSeat{Instance: "a", Epoch: 1, Expires: now.Add(time.Minute).Unix(), Role: "patient", Subject: "s1", Session: "ses1"})
	room, _, sealed, err := ticketRoom(ticket)
	if err != nil || room != "room1" {
		t.Fatalf("ticketRoom: %q %v", room, err)
	}
	seat, err := sealer.open(ticket, sealed, now)
	if err != nil || seat.Subject != "s1" || seat.Instance != "a" {
		t.Fatalf("open: %+v %v", seat, err)
	}
	if _, err := sealer.open(ticket, sealed, now.Add(2*time.Minute)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("an expired ticket opens: %v", err)
	}
	if len(ticket) > signalapi.MaxTicketSize {
		t.Fatalf("a sealed ticket has %d bytes, over MaxTicketSize", len(ticket))
	}
}

// TestSuccessorMovesOnlyTheGonesRooms: rendezvous hashing spreads rooms
// over the group, and an instance that goes away moves only its own rooms,
// each to one of the others.
func TestSuccessorMovesOnlyTheGonesRooms(t *testing.T) {
	g := newGroup("a", 1, []Peer{{Name: "b", URL: "http://b"}, {Name: "c", URL: "http://c"}}, nil, time.Second, slog.New(slog.DiscardHandler), nil)
	for _, m := range g.members {
		m.up = true
	}
	name := func(m *member) string {
		if m == nil {
			return "a"
		}
		return m.Name
	}
	const rooms = 3000
	before := map[string]string{}
	count := map[string]int{}
	for i := range rooms {
		id := fmt.Sprintf("room-%d", i)
		before[id] = name(g.successor(id, ""))
		count[before[id]]++
	}
	for _, n := range []string{"a", "b", "c"} {
		if count[n] < rooms/5 || count[n] > rooms/2 {
			t.Errorf("instance %s is first for %d of %d rooms", n, count[n], rooms)
		}
	}
	g.find("c").up = false
	for id, was := range before {
		now := name(g.successor(id, ""))
		switch {
		case was != "c" && now != was:
			t.Fatalf("room %s moved from %s to %s when c went away", id, was, now)
		case was == "c" && now == "c":
			t.Fatalf("room %s stays with c, which is gone", id)
		}
		if got := name(g.successor(id, "b")); got == "b" || (was != "b" && was != "c" && got != was) {
			t.Fatalf("room %s: the successor of b is %s (first was %s)", id, got, was)
		}
	}
}

// FuzzTicket: whatever a client sends as a ticket, reading it and opening
// its sealed part never panics, and a ticket that opens stops opening
// when any character of it changes.
func FuzzTicket(f *testing.F) {
	key, err := NewTokenKey([]byte(strings.Repeat("k", 32)))
	if err != nil {
		f.Fatal(err)
	}
	sealer := newTicketSealer(key)
	now := time.Now()
	plain, _ := newTicket("room1")
	good := sealer.seal(plain, &ticketSeat{Instance: "a", Epoch: 1, Expires: now.Add(time.Hour).Unix(), Role: "patient", Subject: "s1", Session: "ses1"})
	f.Add(good)
	f.Add(plain)
	f.Add("room1..x")
	f.Add("room1." + strings.Repeat("A", 43) + ".")
	f.Fuzz(func(t *testing.T, ticket string) {
		_, _, sealed, err := ticketRoom(ticket)
		if err != nil {
			return
		}
		seat, err := sealer.open(ticket, sealed, now)
		if err != nil || seat == nil {
			return
		}
		for i := range len(ticket) {
			b := []byte(ticket)
			if b[i] = 'A'; ticket[i] == 'A' {
				b[i] = 'B'
			}
			if _, _, sealed, err := ticketRoom(string(b)); err == nil {
				if seat, err := sealer.open(string(b), sealed, now); err == nil && seat != nil {
					t.Fatalf("%q opens, and so does it changed at %d: %q", ticket, i, b)
				}
			}
		}
	})
}

// FuzzPeers: a --peers list parses or says why, and a list that parses
// and validates names each peer once, with an http(s) base URL.
func FuzzPeers(f *testing.F) {
	f.Add("b=http://127.0.0.1:1,c=https://c.internal:8443")
	f.Add("b=,=c")
	f.Add("a=http://x")
	f.Fuzz(func(t *testing.T, list string) {
		peers, err := ParsePeers(list)
		if err != nil || validatePeers("a", peers) != nil {
			return
		}
		seen := map[string]bool{"a": true}
		for _, p := range peers {
			if seen[p.Name] || !(strings.HasPrefix(p.URL, "http://") || strings.HasPrefix(p.URL, "https://")) {
				t.Fatalf("validated peers %+v", peers)
			}
			seen[p.Name] = true
		}
	})
}

// TestRelayedCandidateEncodesAsAMessage: the small type the room relays
// candidates with encodes byte for byte as a Message with the same
// fields, so a client cannot tell them apart, and pooled encoders hand
// out bytes of their own (a later encoding does not change an earlier
// one's).
func TestRelayedCandidateEncodesAsAMessage(t *testing.T) {
	mid, idx, ufrag := "0", uint16(0), "a<b>&c"
	for _, c := range []*signalapi.Candidate{
		{Candidate: "candidate:1 1 udp 2130706431 192.0.2.10 50000 typ host", SDPMid: &mid, SDPMLineIndex: &idx, UsernameFragment: &ufrag},
		{Candidate: ""},
	} {
		small := encodeValue(relayedCandidate{Type: signalapi.TypeCandidate, Candidate: c})
		want := encode(&signalapi.Message{Type: signalapi.TypeCandidate, Candidate: c})
		if string(small) != string(want) {
			t.Errorf("relayed candidate encodes as\n%s\nwant\n%s", small, want)
		}
		before := string(small)
		encode(&signalapi.Message{Type: signalapi.TypeError, Message: strings.Repeat("x", len(small))})
		if string(small) != before {
			t.Fatal("a pooled encoder's next message changed the bytes an earlier one returned")
		}
	}
}
