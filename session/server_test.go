package session_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session"
	"github.com/telenotary/telenotary/session/internal/sessiontest"
)

// client is a raw WebSocket client of the protocol, for tests that send
// what no SDK would.
type client struct {
	t  *testing.T
	ws *websocket.Conn
	in chan *session.Message
	// closed is closed when the server closes the connection.
	closed chan struct{}
	status websocket.StatusCode
}

func dial(t *testing.T, s *sessiontest.Signal) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, s.WS, nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(8 << 20)
	c := &client{t: t, ws: ws, in: make(chan *session.Message, 256), closed: make(chan struct{})}
	go func() {
		defer close(c.closed)
		for {
			_, data, err := ws.Read(context.Background())
			if err != nil {
				c.status = websocket.CloseStatus(err)
				return
			}
			var m session.Message
			if err := json.Unmarshal(data, &m); err != nil {
				t.Errorf("server sent a message that is not JSON: %q", data)
				return
			}
			c.in <- &m
		}
	}()
	t.Cleanup(func() { ws.CloseNow() })
	return c
}

func (c *client) sendRaw(data []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, data); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) send(m any) {
	c.t.Helper()
	data, err := json.Marshal(m)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(data)
}

// expect waits for the next message of a type, skipping others.
func (c *client) expect(typ string) *session.Message {
	c.t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m := <-c.in:
			if m.Type == typ {
				return m
			}
			if m.Type == session.TypeError && typ != session.TypeError {
				c.t.Fatalf("waiting for %s: error %s: %s", typ, m.Code, m.Message)
			}
		case <-c.closed:
			if len(c.in) > 0 {
				continue // messages that came before the close
			}
			c.t.Fatalf("waiting for %s: connection closed (%v)", typ, c.status)
		case <-timeout:
			c.t.Fatalf("no %s message", typ)
		}
	}
}

// expectError waits for an error message with the code.
func (c *client) expectError(code string) *session.Message {
	c.t.Helper()
	m := c.expect(session.TypeError)
	if m.Code != code {
		c.t.Fatalf("error %s (%s), want %s", m.Code, m.Message, code)
	}
	if m.Message == "" {
		c.t.Fatalf("error %s has no human text", code)
	}
	return m
}

// expectClosed waits until the server closes the connection.
func (c *client) expectClosed() {
	c.t.Helper()
	select {
	case <-c.closed:
	case <-time.After(20 * time.Second):
		c.t.Fatal("the server did not close the connection")
	}
}

func (c *client) join(token string) *session.Message {
	c.t.Helper()
	c.send(session.Message{Type: session.TypeJoin, Token: token})
	return c.expect(session.TypeJoined)
}

// sdpOffer returns a real offer made by pion, with its DTLS fingerprint.
func sdpOffer(t *testing.T) (string, session.Fingerprint) {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.CreateDataChannel("x", nil); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := session.CheckSDP(offer.SDP)
	if err != nil {
		t.Fatalf("pion's offer: %v", err)
	}
	return offer.SDP, fp
}

// started joins both participants of a room and exchanges offer and
// answer, so the session starts; it returns both clients after their
// session-start receipts.
func started(t *testing.T, s *sessiontest.Signal, room string) (pat, doc *client) {
	t.Helper()
	patTok, docTok := s.Tokens(t, room)
	pat, doc = dial(t, s), dial(t, s)
	pat.join(patTok)
	doc.join(docTok)
	offer, _ := sdpOffer(t)
	answer, _ := sdpOffer(t)
	doc.send(session.Message{Type: session.TypeOffer, SDP: offer})
	pat.expect(session.TypeOffer)
	pat.send(session.Message{Type: session.TypeAnswer, SDP: answer})
	doc.expect(session.TypeAnswer)
	pat.expect(session.TypeReceipt)
	doc.expect(session.TypeReceipt)
	return pat, doc
}

func medicationRequest(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile("../notary/fhirdata/MedicationRequest-medrx0302.json")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func logSize(t *testing.T, n *sessiontest.Notary) uint64 {
	t.Helper()
	st, err := n.Client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.LogSize
}

// TestBadInput sends each kind of bad message: each gets an error with
// its stable code and a human text; the room and other rooms carry on;
// nothing is notarized by a refused message.
func TestBadInput(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, func(c *session.Config) { c.MessagesPerSecond, c.MessageBurst = 20, 40 })
	pat, doc := started(t, s, "room-bad")
	other, otherDoc := started(t, s, "room-other")
	before := logSize(t, n)

	// Errors that keep the connection open.
	doc.sendRaw([]byte(`{"type":"shout"}`))
	doc.expectError(session.CodeUnknownType)
	doc.sendRaw([]byte(`not json`))
	doc.expectError(session.CodeBadMessage)
	doc.sendRaw([]byte(`{"type":"offer","sdp":"v=0 nonsense"}`))
	doc.expectError(session.CodeBadSDP)
	offer, _ := sdpOffer(t)
	var noFingerprint []string
	for _, line := range strings.Split(offer, "\r\n") {
		if !strings.HasPrefix(line, "a=fingerprint:") {
			noFingerprint = append(noFingerprint, line)
		}
	}
	doc.send(session.Message{Type: session.TypeOffer, SDP: strings.Join(noFingerprint, "\r\n")})
	if m := doc.expectError(session.CodeBadSDP); !strings.Contains(m.Message, "fingerprint") {
		t.Fatalf("SDP without fingerprint: %q does not say why", m.Message)
	}
	doc.sendRaw([]byte(`{"type":"offer","sdp":7}`))
	if m := doc.expectError(session.CodeBadMessage); !strings.Contains(m.Message, `"sdp"`) {
		t.Fatalf("wrong type: %q does not name the field", m.Message)
	}
	doc.sendRaw([]byte(`{"type":"candidate","candidate":{"candidate":"hello"}}`))
	doc.expectError(session.CodeBadCandidate)
	doc.send(session.Message{Type: session.TypeJoin, Token: "x.y.z"})
	doc.expectError(session.CodeAlreadyJoined)
	pat.send(session.Message{Type: session.TypePrescription, Ref: "p1", Resource: medicationRequest(t)})
	if m := pat.expectError(session.CodeForbidden); m.Ref != "p1" {
		t.Fatalf("error does not echo the ref: %+v", m)
	}
	for field, edit := range map[string]func(map[string]any){
		"resourceType": func(r map[string]any) { r["resourceType"] = "Patient" },
		"status":       func(r map[string]any) { r["status"] = "finished" },
		"intent":       func(r map[string]any) { delete(r, "intent") },
		"subject":      func(r map[string]any) { r["subject"] = "Patient/1" },
		"requester":    func(r map[string]any) { delete(r, "requester") },
		"medication":   func(r map[string]any) { delete(r, "medicationReference") },
		"authoredOn":   func(r map[string]any) { r["authoredOn"] = "yesterday" },
	} {
		var r map[string]any
		json.Unmarshal(medicationRequest(t), &r)
		edit(r)
		bad, _ := json.Marshal(r)
		doc.send(session.Message{Type: session.TypePrescription, Ref: "bad-" + field, Resource: bad})
		m := doc.expectError(session.CodeInvalidFHIR)
		if !strings.Contains(m.Message, field) || m.Ref != "bad-"+field {
			t.Fatalf("invalid %s: %q (ref %q) does not name the field", field, m.Message, m.Ref)
		}
	}
	doc.sendRaw([]byte(`{"type":"prescription","ref":"dup","resource":{"resourceType":"MedicationRequest","resourceType":"MedicationRequest"}}`))
	doc.expectError(session.CodeInvalidFHIR)
	if after := logSize(t, n); after != before {
		t.Fatalf("refused messages notarized %d entries", after-before)
	}

	// A message over 64 KiB closes the connection with too_large.
	big := bytes.Repeat([]byte("a"), session.MaxMessageSize)
	doc.sendRaw([]byte(`{"type":"leave","reason":"` + string(big) + `"}`))
	doc.expectError(session.CodeTooLarge)
	doc.expectClosed()

	// The room carries on: the physician comes back and prescribes.
	_, docTok := s.Tokens(t, "room-bad")
	doc = dial(t, s)
	if j := doc.join(docTok); !j.Resumed {
		t.Fatal("the physician's return is not a resumption")
	}
	doc.send(session.Message{Type: session.TypePrescription, Ref: "ok", Resource: medicationRequest(t)})
	if r := doc.expect(session.TypeReceipt); r.Ref != "ok" {
		t.Fatalf("receipt for %q", r.Ref)
	}
	if p := pat.expect(session.TypePrescription); p.Ref != "ok" || len(p.Bundle) == 0 {
		t.Fatalf("patient got %+v", p)
	}

	// A flood over the rate limit closes the flooding connection only.
	flood, _ := s.Tokens(t, "room-bad")
	pat.ws.CloseNow()
	pat = dial(t, s)
	pat.join(flood)
	for range 100 {
		if err := pat.ws.Write(context.Background(), websocket.MessageText, []byte(`{"type":"consent","scope":"recording","granted":true}`)); err != nil {
			break
		}
	}
	pat.expectError(session.CodeRateLimited)
	pat.expectClosed()

	// Every other room is untouched.
	otherDoc.send(session.Message{Type: session.TypePrescription, Ref: "other", Resource: medicationRequest(t)})
	otherDoc.expect(session.TypeReceipt)
	other.expect(session.TypePrescription)
}

// TestJoinRefusals covers tokens and seats: before joining, expired,
// forged, for another room, a third participant, a room that ended.
func TestJoinRefusals(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, nil)
	patTok, _ := s.Tokens(t, "room-a")

	c := dial(t, s)
	c.send(session.Message{Type: session.TypeCandidate, Candidate: &session.Candidate{Candidate: ""}})
	c.expectError(session.CodeNotJoined)

	expired, err := s.TokenKey.Issue("room-a", session.RolePatient, "p1", time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c.send(session.Message{Type: session.TypeJoin, Token: expired})
	c.expectError(session.CodeTokenExpired)
	c.expectClosed()

	otherKey := make([]byte, 32)
	rand.Read(otherKey)
	forger, _ := session.NewTokenKey(otherKey)
	forged, _ := forger.Issue("room-a", session.RolePatient, "p1", time.Now().Add(time.Hour))
	c = dial(t, s)
	c.send(session.Message{Type: session.TypeJoin, Token: forged})
	c.expectError(session.CodeTokenInvalid)
	c.expectClosed()

	for _, tok := range []string{"", "abc", strings.Repeat("a", session.MaxTokenSize+1)} {
		c = dial(t, s)
		c.send(session.Message{Type: session.TypeJoin, Token: tok})
		c.expectError(session.CodeTokenInvalid)
		c.expectClosed()
	}

	c = dial(t, s)
	c.send(session.Message{Type: session.TypeJoin, Token: patTok, Room: "room-b"})
	c.expectError(session.CodeWrongRoom)
	c.expectClosed()

	first := dial(t, s)
	first.join(patTok)
	intruder, _ := s.TokenKey.Issue("room-a", session.RolePatient, "someone-else", time.Now().Add(time.Hour))
	c = dial(t, s)
	c.send(session.Message{Type: session.TypeJoin, Token: intruder})
	c.expectError(session.CodeRoomFull)
	c.expectClosed()

	// The same participant on a new connection replaces the old one.
	again := dial(t, s)
	again.join(patTok)
	first.expectError(session.CodeReplaced)
	first.expectClosed()

	again.send(session.Message{Type: session.TypeLeave})
	if end := again.expect(session.TypeSessionEnd); len(end.Bundle) != 0 {
		t.Fatal("a session that never started has an end receipt")
	}
	c = dial(t, s)
	c.send(session.Message{Type: session.TypeJoin, Token: patTok})
	c.expectError(session.CodeRoomEnded)
}

// TestReconnect: a participant whose connection drops comes back within
// the grace window, resumes, and the record counts the reconnection; one
// that does not come back ends the session with a notarized record.
func TestReconnect(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, func(c *session.Config) { c.Grace = 2 * time.Second })
	pat, doc := started(t, s, "room-r")
	patTok, _ := s.Tokens(t, "room-r")
	pat.ws.CloseNow()
	if left := doc.expect(session.TypePeerLeft); left.Role != session.RolePatient || left.GraceMillis != 2000 {
		t.Fatalf("peer-left: %+v", left)
	}
	pat = dial(t, s)
	if j := pat.join(patTok); !j.Resumed || !*j.PeerPresent {
		t.Fatalf("joined: %+v", j)
	}
	if back := doc.expect(session.TypePeerJoined); !back.Resumed {
		t.Fatalf("peer-joined: %+v", back)
	}
	// ICE restart: a new offer is relayed.
	offer, _ := sdpOffer(t)
	doc.send(session.Message{Type: session.TypeOffer, SDP: offer})
	pat.expect(session.TypeOffer)

	// Now the physician vanishes for good.
	doc.ws.CloseNow()
	pat.expect(session.TypePeerLeft)
	end := pat.expect(session.TypeSessionEnd)
	if end.Reason != "physician-disconnected" || len(end.Bundle) == 0 {
		t.Fatalf("session-end: reason %q, bundle %d bytes", end.Reason, len(end.Bundle))
	}
	b, err := notary.ParseBundle(end.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := notary.VerifyBundle(b, n.Policy); err != nil {
		t.Fatal(err)
	}
	var rec session.Record
	json.Unmarshal(b.Document, &rec)
	for _, p := range rec.Participants {
		want := 0
		if p.Role == session.RolePatient {
			want = 1
		}
		if len(p.Reconnects) != want {
			t.Fatalf("%s has %d reconnects, want %d", p.Role, len(p.Reconnects), want)
		}
		if len(p.Fingerprints) == 0 {
			t.Fatalf("%s has no fingerprint", p.Role)
		}
	}
	pat.expectClosed()
}

// TestRoomsAndSessionsAPI: POST /v1/rooms needs an app key and issues
// tokens that join; GET /v1/sessions needs an operator key and shows no
// subject and no document.
func TestRoomsAndSessionsAPI(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, nil)
	call := func(method, path, key, body string) (int, []byte) {
		req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, data
	}
	if code, _ := call("POST", "/v1/rooms", "", `{}`); code != 401 {
		t.Fatalf("no key: HTTP %d", code)
	}
	if code, _ := call("POST", "/v1/rooms", "wrong-key-0123456789", `{}`); code != 401 {
		t.Fatalf("unknown key: HTTP %d", code)
	}
	if code, _ := call("GET", "/v1/sessions", sessiontest.AppKey, ""); code != 403 {
		t.Fatalf("app key on sessions: HTTP %d", code)
	}
	for body, field := range map[string]string{`{"patient":"has space"}`: "patient", `{"ttl_seconds":"x"}`: "ttl_seconds", `{"ttl_seconds":99999999}`: "ttl_seconds", `{"nurse":"x"}`: ""} {
		code, data := call("POST", "/v1/rooms", sessiontest.AppKey, body)
		var e session.ErrorResponse
		json.Unmarshal(data, &e)
		if code != 400 || e.Error.Field != field || e.Error.Message == "" {
			t.Fatalf("%s: HTTP %d %s", body, code, data)
		}
	}
	code, data := call("POST", "/v1/rooms", sessiontest.AppKey, `{"patient":"pseudo-patient-42","physician":"pseudo-doc-7"}`)
	if code != 201 {
		t.Fatalf("create room: HTTP %d %s", code, data)
	}
	var room session.CreateRoomResponse
	if err := json.Unmarshal(data, &room); err != nil {
		t.Fatal(err)
	}
	pat, doc := dial(t, s), dial(t, s)
	if j := pat.join(room.Tokens[session.RolePatient]); j.Room != room.Room || j.Role != session.RolePatient {
		t.Fatalf("joined %+v", j)
	}
	doc.join(room.Tokens[session.RolePhysician])
	code, data = call("GET", "/v1/sessions", sessiontest.OperatorKey, "")
	if code != 200 {
		t.Fatalf("sessions: HTTP %d", code)
	}
	var sessions session.SessionsResponse
	json.Unmarshal(data, &sessions)
	if len(sessions.Sessions) != 1 || sessions.Sessions[0].Room != room.Room || len(sessions.Sessions[0].Participants) != 2 {
		t.Fatalf("sessions: %s", data)
	}
	for _, secret := range []string{"pseudo-patient-42", "pseudo-doc-7"} {
		if bytes.Contains(data, []byte(secret)) {
			t.Fatalf("the sessions API shows the subject %q", secret)
		}
	}
	code, keys := call("GET", "/v1/keys", "", "")
	if code != 200 || !bytes.Contains(keys, n.Keys) {
		t.Fatalf("keys: HTTP %d %q", code, keys)
	}
	for _, path := range []string{"/healthz", "/metrics", "/app/", "/verify/"} {
		if code, _ := call("GET", path, "", ""); code != 200 {
			t.Fatalf("%s: HTTP %d", path, code)
		}
	}
}

// TestWebhook: every receipt reaches the app's webhook, signed, after the
// webhook's failures are retried, and signalling never waits for it.
func TestWebhook(t *testing.T) {
	secret := bytes.Repeat([]byte("k"), 32)
	var mu sync.Mutex
	var events []session.WebhookEvent
	failures := 2
	hook := newHook(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sig := r.Header.Get(session.SignatureHeader)
		var ts int64
		fmt.Sscanf(sig, "t=%d,", &ts)
		if sig != session.SignWebhook(secret, body, time.Unix(ts, 0)) {
			t.Errorf("bad signature %q", sig)
			w.WriteHeader(400)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if failures > 0 {
			failures--
			w.WriteHeader(503)
			return
		}
		var e session.WebhookEvent
		json.Unmarshal(body, &e)
		events = append(events, e)
	})
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, func(c *session.Config) { c.Webhook = session.WebhookConfig{URL: hook, Secret: secret} })
	pat, doc := started(t, s, "room-w")
	doc.send(session.Message{Type: session.TypePrescription, Ref: "rx", Resource: medicationRequest(t)})
	doc.expect(session.TypeReceipt)
	pat.send(session.Message{Type: session.TypeLeave})
	pat.expect(session.TypeSessionEnd)
	sessiontest.WaitFor(t, "three webhook events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(events) == 3
	})
	kinds := map[string]bool{}
	for _, e := range events {
		b, err := notary.ParseBundle(e.Bundle)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := notary.VerifyBundle(b, n.Policy); err != nil {
			t.Fatalf("%s: %v", e.Event, err)
		}
		if e.Room != "room-w" {
			t.Fatalf("event for room %q", e.Room)
		}
		kinds[e.Event] = true
	}
	if !kinds["session-start"] || !kinds["prescription"] || !kinds["session-end"] {
		t.Fatalf("events: %v", kinds)
	}
}

// newHook starts an HTTP server for webhook deliveries and returns its URL.
func newHook(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestSilentClientIsDropped: a client that stops answering pings (its
// network vanished) is disconnected, and the other participant is told.
func TestSilentClientIsDropped(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, func(c *session.Config) { c.PingInterval = 200 * time.Millisecond })
	patTok, docTok := s.Tokens(t, "room-silent")
	doc := dial(t, s)
	doc.join(docTok)

	// The patient joins, then never reads again: pings go unanswered.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, s.WS, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	join, _ := json.Marshal(session.Message{Type: session.TypeJoin, Token: patTok})
	if err := ws.Write(ctx, websocket.MessageText, join); err != nil {
		t.Fatal(err)
	}
	if _, data, err := ws.Read(ctx); err != nil || !bytes.Contains(data, []byte(`"joined"`)) {
		t.Fatalf("join: %q %v", data, err)
	}
	doc.expect(session.TypePeerJoined)
	if left := doc.expect(session.TypePeerLeft); left.Role != session.RolePatient {
		t.Fatalf("peer-left %+v", left)
	}
	sessiontest.WaitFor(t, "the silent patient to be shown away", func() bool {
		for _, si := range s.Server.Sessions().Sessions {
			for _, p := range si.Participants {
				if p.Role == session.RolePatient && !p.Connected {
					return true
				}
			}
		}
		return false
	})
}

// TestWebhookNeverBlocksSignalling: with a webhook that never answers,
// consultations carry on at full speed.
func TestWebhookNeverBlocksSignalling(t *testing.T) {
	release := make(chan struct{})
	hook := newHook(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, func(c *session.Config) {
		c.Webhook = session.WebhookConfig{URL: hook, Secret: bytes.Repeat([]byte("k"), 32), Queue: 4, HTTPClient: &http.Client{Timeout: time.Hour}}
	})
	for i := range 3 {
		pat, doc := started(t, s, fmt.Sprintf("room-hook-%d", i))
		for j := range 3 {
			doc.send(session.Message{Type: session.TypePrescription, Ref: fmt.Sprint(j), Resource: medicationRequest(t)})
			doc.expect(session.TypeReceipt)
			pat.expect(session.TypePrescription)
		}
	}
	// The queue of 4 is full behind 4 hung deliveries: later events were
	// dropped, counted and shown to the operator, not waited for.
	alerts := s.Server.Sessions().Alerts
	if len(alerts) == 0 || alerts[len(alerts)-1].Kind != "webhook-failed" {
		t.Fatalf("no webhook-failed alert: %+v", alerts)
	}
}
