package session_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
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
	"github.com/telenotary/telenotary/session/signalapi"
)

// client is a raw WebSocket client of the protocol, for tests that send
// what no SDK would.
type client struct {
	t  *testing.T
	ws *websocket.Conn
	in chan *signalapi.Message
	// closed is closed when the server closes the connection.
	closed chan struct{}
	status websocket.StatusCode
}

func dial(t *testing.T, s *sessiontest.Signal) *client {
	t.Helper()
	c, err := tryDial(t, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tryDial opens a WebSocket to the server with an HTTP client (nil: the
// default one).
func tryDial(t *testing.T, s *sessiontest.Signal, hc *http.Client) (*client, error) {
	return dialOptions(t, s, &websocket.DialOptions{HTTPClient: hc})
}

// dialOptions opens a WebSocket to the server with the options given.
func dialOptions(t *testing.T, s *sessiontest.Signal, opts *websocket.DialOptions) (*client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, s.WS, opts)
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(8 << 20)
	c := &client{t: t, ws: ws, in: make(chan *signalapi.Message, 256), closed: make(chan struct{})}
	go func() {
		defer close(c.closed)
		for {
			_, data, err := ws.Read(context.Background())
			if err != nil {
				c.status = websocket.CloseStatus(err)
				return
			}
			var m signalapi.Message
			if err := json.Unmarshal(data, &m); err != nil {
				t.Errorf("server sent a message that is not JSON: %q", data)
				return
			}
			c.in <- &m
		}
	}()
	t.Cleanup(func() { ws.CloseNow() })
	return c, nil
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
func (c *client) expect(typ signalapi.Type) *signalapi.Message {
	c.t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m := <-c.in:
			if m.Type == typ {
				return m
			}
			if m.Type == signalapi.TypeError && typ != signalapi.TypeError {
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

// keep says, as a patient's app does once it stored the bundle, that the
// patient keeps a relayed prescription: the physician's receipt waits for
// it (or for the webhook).
func (c *client) keep(relayed *signalapi.Message) {
	c.t.Helper()
	b, err := notary.ParseBundle(relayed.Bundle)
	if err != nil {
		c.t.Fatalf("relayed prescription %q: %v", relayed.Ref, err)
	}
	c.send(signalapi.Message{Type: signalapi.TypeKept, Commitment: b.Receipt.Leaf.Commitment.String()})
}

// prescribe has the physician send a prescription and the patient keep it
// when it is relayed, and returns the physician's receipt and the
// patient's message.
func prescribe(t *testing.T, patient, physician *client, ref string, resource []byte) (receipt, relayed *signalapi.Message) {
	t.Helper()
	physician.send(signalapi.Message{Type: signalapi.TypePrescription, Ref: ref, Resource: resource})
	relayed = patient.expect(signalapi.TypePrescription)
	if relayed.Ref != ref || len(relayed.Bundle) == 0 {
		t.Fatalf("the patient got %+v, want the bundle of %q", relayed, ref)
	}
	patient.keep(relayed)
	receipt = physician.expect(signalapi.TypeReceipt)
	if receipt.Ref != ref || receipt.Holder != signalapi.HolderPatient {
		t.Fatalf("the physician got the receipt of %q held by %q, want %q held by the patient", receipt.Ref, receipt.Holder, ref)
	}
	return receipt, relayed
}

// expectError waits for an error message with the code.
func (c *client) expectError(code signalapi.Code) *signalapi.Message {
	c.t.Helper()
	m := c.expect(signalapi.TypeError)
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

func (c *client) join(token string) *signalapi.Message {
	c.t.Helper()
	c.send(signalapi.Message{Type: signalapi.TypeJoin, Token: token})
	return c.joined()
}

// resume joins with a resume ticket.
func (c *client) resume(ticket string) *signalapi.Message {
	c.t.Helper()
	c.send(signalapi.Message{Type: signalapi.TypeJoin, Ticket: ticket})
	return c.joined()
}

// joined waits for the joined message, which must carry a ticket.
func (c *client) joined() *signalapi.Message {
	c.t.Helper()
	j := c.expect(signalapi.TypeJoined)
	if j.Ticket == "" {
		c.t.Fatalf("joined has no resume ticket: %+v", j)
	}
	return j
}

// refused sends a join and expects the fatal error code, then the close
// with the code as its reason.
func (c *client) refused(join signalapi.Message, code signalapi.Code) *signalapi.Message {
	c.t.Helper()
	c.send(join)
	var m *signalapi.Message
	select {
	case m = <-c.in:
	case <-time.After(20 * time.Second):
		c.t.Fatalf("no answer to join; want error %s", code)
	}
	if m.Type != signalapi.TypeError || m.Code != code || m.Message == "" {
		c.t.Fatalf("join answered %s %s (%s); want error %s", m.Type, m.Code, m.Message, code)
	}
	c.expectClosed()
	if c.status != websocket.StatusPolicyViolation {
		c.t.Errorf("closed with %v after %s", c.status, code)
	}
	return m
}

// sdpOffer returns a real offer made by pion, with its DTLS fingerprint.
func sdpOffer(t testing.TB) (string, signalapi.Fingerprint) {
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
func started(t *testing.T, s *sessiontest.Signal, room string) (patient, physician *client) {
	t.Helper()
	patientTok, physicianTok := s.Tokens(t, room)
	patient, physician = dial(t, s), dial(t, s)
	patient.join(patientTok)
	physician.join(physicianTok)
	startSession(t, patient, physician)
	return patient, physician
}

// startSession exchanges offer and answer between two joined clients and
// waits for their session-start receipts.
func startSession(t *testing.T, patient, physician *client) {
	t.Helper()
	offer, _ := sdpOffer(t)
	answer, _ := sdpOffer(t)
	physician.send(signalapi.Message{Type: signalapi.TypeOffer, SDP: offer})
	patient.expect(signalapi.TypeOffer)
	patient.send(signalapi.Message{Type: signalapi.TypeAnswer, SDP: answer})
	physician.expect(signalapi.TypeAnswer)
	patient.expect(signalapi.TypeReceipt)
	physician.expect(signalapi.TypeReceipt)
}

func medicationRequest(t testing.TB) []byte {
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
	patient, physician := started(t, s, "room-bad")
	other, otherPhysician := started(t, s, "room-other")
	before := logSize(t, n)

	// Errors that keep the connection open.
	physician.sendRaw([]byte(`{"type":"shout"}`))
	physician.expectError(signalapi.CodeUnknownType)
	physician.sendRaw([]byte(`not json`))
	physician.expectError(signalapi.CodeBadMessage)
	physician.sendRaw([]byte(`{"type":"offer","sdp":"v=0 nonsense"}`))
	physician.expectError(signalapi.CodeBadSDP)
	offer, _ := sdpOffer(t)
	var noFingerprint []string
	for _, line := range strings.Split(offer, "\r\n") {
		if !strings.HasPrefix(line, "a=fingerprint:") {
			noFingerprint = append(noFingerprint, line)
		}
	}
	physician.send(signalapi.Message{Type: signalapi.TypeOffer, SDP: strings.Join(noFingerprint, "\r\n")})
	if m := physician.expectError(signalapi.CodeBadSDP); !strings.Contains(m.Message, "fingerprint") {
		t.Fatalf("SDP without fingerprint: %q does not say why", m.Message)
	}
	physician.sendRaw([]byte(`{"type":"offer","sdp":7}`))
	if m := physician.expectError(signalapi.CodeBadMessage); !strings.Contains(m.Message, `"sdp"`) {
		t.Fatalf("wrong type: %q does not name the field", m.Message)
	}
	physician.sendRaw([]byte(`{"type":"candidate","candidate":{"candidate":"hello"}}`))
	physician.expectError(signalapi.CodeBadCandidate)
	physician.send(signalapi.Message{Type: signalapi.TypeJoin, Token: "x.y.z"})
	physician.expectError(signalapi.CodeAlreadyJoined)
	patient.send(signalapi.Message{Type: signalapi.TypePrescription, Ref: "p1", Resource: medicationRequest(t)})
	if m := patient.expectError(signalapi.CodeForbidden); m.Ref != "p1" {
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
		physician.send(signalapi.Message{Type: signalapi.TypePrescription, Ref: "bad-" + field, Resource: bad})
		m := physician.expectError(signalapi.CodeInvalidResource)
		if !strings.Contains(m.Message, field) || m.Ref != "bad-"+field {
			t.Fatalf("invalid %s: %q (ref %q) does not name the field", field, m.Message, m.Ref)
		}
	}
	physician.sendRaw([]byte(`{"type":"prescription","ref":"dup","resource":{"resourceType":"MedicationRequest","resourceType":"MedicationRequest"}}`))
	physician.expectError(signalapi.CodeInvalidResource)
	if after := logSize(t, n); after != before {
		t.Fatalf("refused messages notarized %d entries", after-before)
	}

	// A message over 64 KiB closes the connection with too_large.
	big := bytes.Repeat([]byte("a"), signalapi.MaxMessageSize)
	physician.sendRaw([]byte(`{"type":"leave","reason":"` + string(big) + `"}`))
	physician.expectError(signalapi.CodeTooLarge)
	physician.expectClosed()

	// The room carries on: the physician comes back and prescribes.
	_, physicianTok := s.Tokens(t, "room-bad")
	physician = dial(t, s)
	if j := physician.join(physicianTok); !j.Resumed {
		t.Fatal("the physician's return is not a resumption")
	}
	prescribe(t, patient, physician, "ok", medicationRequest(t))

	// A flood over the rate limit closes the flooding connection only.
	flood, _ := s.Tokens(t, "room-bad")
	patient.ws.CloseNow()
	patient = dial(t, s)
	patient.join(flood)
	for range 100 {
		if err := patient.ws.Write(context.Background(), websocket.MessageText, []byte(`{"type":"consent","scope":"recording","granted":true}`)); err != nil {
			break
		}
	}
	patient.expectError(signalapi.CodeRateLimited)
	patient.expectClosed()

	// Every other room is untouched.
	prescribe(t, other, otherPhysician, "other", medicationRequest(t))
}

// TestJoinRefusals covers tokens and seats: before joining, expired,
// forged, for another room, a third participant, a room that ended.
func TestJoinRefusals(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, nil)
	patientTok, _ := s.Tokens(t, "room-a")

	c := dial(t, s)
	c.send(signalapi.Message{Type: signalapi.TypeCandidate, Candidate: &signalapi.Candidate{Candidate: ""}})
	c.expectError(signalapi.CodeNotJoined)

	expired, err := s.TokenKey.Issue("room-a", signalapi.RolePatient, "p1", time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c.send(signalapi.Message{Type: signalapi.TypeJoin, Token: expired})
	c.expectError(signalapi.CodeTokenExpired)
	c.expectClosed()

	otherKey := make([]byte, 32)
	rand.Read(otherKey)
	forger, _ := session.NewTokenKey(otherKey)
	forged, _ := forger.Issue("room-a", signalapi.RolePatient, "p1", time.Now().Add(time.Hour))
	c = dial(t, s)
	c.send(signalapi.Message{Type: signalapi.TypeJoin, Token: forged})
	c.expectError(signalapi.CodeTokenInvalid)
	c.expectClosed()

	for _, tok := range []string{"", "abc", strings.Repeat("a", signalapi.MaxTokenSize+1)} {
		c = dial(t, s)
		c.send(signalapi.Message{Type: signalapi.TypeJoin, Token: tok})
		c.expectError(signalapi.CodeTokenInvalid)
		c.expectClosed()
	}

	c = dial(t, s)
	c.send(signalapi.Message{Type: signalapi.TypeJoin, Token: patientTok, Room: "room-b"})
	c.expectError(signalapi.CodeWrongRoom)
	c.expectClosed()

	first := dial(t, s)
	firstJoined := first.join(patientTok)
	intruder, _ := s.TokenKey.Issue("room-a", signalapi.RolePatient, "someone-else", time.Now().Add(time.Hour))
	c = dial(t, s)
	c.send(signalapi.Message{Type: signalapi.TypeJoin, Token: intruder})
	c.expectError(signalapi.CodeRoomFull)
	c.expectClosed()

	// The token joins once; tickets are checked.
	dial(t, s).refused(signalapi.Message{Type: signalapi.TypeJoin, Token: patientTok}, signalapi.CodeTokenUsed)
	for _, tc := range []struct {
		name string
		join signalapi.Message
		code signalapi.Code
	}{
		{"not a ticket", signalapi.Message{Type: signalapi.TypeJoin, Ticket: "not-a-ticket"}, signalapi.CodeTicketInvalid},
		{"another seat's", signalapi.Message{Type: signalapi.TypeJoin, Ticket: "room-a." + strings.Repeat("A", 43)}, signalapi.CodeTicketInvalid},
		{"no such room", signalapi.Message{Type: signalapi.TypeJoin, Ticket: "room-z" + strings.TrimPrefix(firstJoined.Ticket, "room-a")}, signalapi.CodeTicketInvalid},
		{"room mismatch", signalapi.Message{Type: signalapi.TypeJoin, Ticket: firstJoined.Ticket, Room: "room-b"}, signalapi.CodeWrongRoom},
		{"token and ticket", signalapi.Message{Type: signalapi.TypeJoin, Ticket: firstJoined.Ticket, Token: patientTok}, signalapi.CodeBadMessage},
	} {
		if m := dial(t, s).refused(tc.join, tc.code); !strings.Contains(m.Message, "ticket") && tc.code != signalapi.CodeWrongRoom {
			t.Errorf("%s: %q does not name the ticket", tc.name, m.Message)
		}
	}

	// The same participant on a new connection, with its ticket, replaces
	// the old one.
	again := dial(t, s)
	againJoined := again.resume(firstJoined.Ticket)
	first.expectError(signalapi.CodeReplaced)
	first.expectClosed()
	if againJoined.Ticket == firstJoined.Ticket {
		t.Fatal("the ticket was not renewed")
	}

	again.send(signalapi.Message{Type: signalapi.TypeLeave})
	if end := again.expect(signalapi.TypeSessionEnd); len(end.Bundle) != 0 {
		t.Fatal("a session that never started has an end receipt")
	}
	c = dial(t, s)
	c.send(signalapi.Message{Type: signalapi.TypeJoin, Token: patientTok})
	c.expectError(signalapi.CodeRoomEnded)
	dial(t, s).refused(signalapi.Message{Type: signalapi.TypeJoin, Ticket: againJoined.Ticket}, signalapi.CodeRoomEnded)
}

// TestReconnect: a participant whose connection drops comes back within
// the grace window with its resume ticket, resumes, and the record counts
// the reconnection; one that does not come back ends the session with a
// notarized record.
func TestReconnect(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, func(c *session.Config) { c.Grace = 2 * time.Second })
	patientTok, physicianTok := s.Tokens(t, "room-r")
	patient, physician := dial(t, s), dial(t, s)
	ticket := patient.join(patientTok).Ticket
	physician.join(physicianTok)
	startSession(t, patient, physician)
	patient.ws.CloseNow()
	if left := physician.expect(signalapi.TypePeerLeft); left.Role != signalapi.RolePatient || left.GraceMillis != 2000 {
		t.Fatalf("peer-left: %+v", left)
	}
	patient = dial(t, s)
	j := patient.resume(ticket)
	if !j.Resumed || !*j.PeerPresent || j.Ticket == ticket {
		t.Fatalf("joined: %+v", j)
	}
	if back := physician.expect(signalapi.TypePeerJoined); !back.Resumed {
		t.Fatalf("peer-joined: %+v", back)
	}
	// ICE restart: a new offer is relayed.
	offer, _ := sdpOffer(t)
	physician.send(signalapi.Message{Type: signalapi.TypeOffer, SDP: offer})
	patient.expect(signalapi.TypeOffer)

	// Now the physician vanishes for good.
	physician.ws.CloseNow()
	patient.expect(signalapi.TypePeerLeft)
	end := patient.expect(signalapi.TypeSessionEnd)
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
	var rec signalapi.Record
	json.Unmarshal(b.Document, &rec)
	for _, p := range rec.Participants {
		want := 0
		if p.Role == signalapi.RolePatient {
			want = 1
		}
		if len(p.Reconnects) != want {
			t.Fatalf("%s has %d reconnects, want %d", p.Role, len(p.Reconnects), want)
		}
		if len(p.Fingerprints) == 0 {
			t.Fatalf("%s has no fingerprint", p.Role)
		}
		// The patient came back: only the physician left for good.
		if gone := p.Role == signalapi.RolePhysician; (p.Left != nil) != gone {
			t.Errorf("%s: left %v; want a left time: %v", p.Role, p.Left, gone)
		}
	}
	patient.expectClosed()
}

// TestLeaveRecordsLeft: the end record gives the time a participant who
// sent leave left (as docs/PROTOCOL.md's example shows), and no left time
// for the other, who was still there when the session ended.
func TestLeaveRecordsLeft(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, nil)
	patient, physician := started(t, s, "room-leave")
	patient.send(signalapi.Message{Type: signalapi.TypeLeave, Reason: "feeling better"})
	rec := endRecord(t, n, physician.expect(signalapi.TypeSessionEnd))
	if rec.EndReason != "patient-left: feeling better" || rec.Ended == nil {
		t.Fatalf("end record: reason %q, ended %v", rec.EndReason, rec.Ended)
	}
	for _, p := range rec.Participants {
		switch p.Role {
		case signalapi.RolePatient:
			if p.Left == nil || p.Left.Before(p.Joined) || p.Left.After(*rec.Ended) {
				t.Errorf("the patient, who left, has left %v; want a time between joined %v and ended %v", p.Left, p.Joined, *rec.Ended)
			}
		case signalapi.RolePhysician:
			if p.Left != nil {
				t.Errorf("the physician, there at the end, has left %v; want none", *p.Left)
			}
		}
	}
}

// endRecord verifies the bundle of a session-end message and returns the
// record it notarizes.
func endRecord(t *testing.T, n *sessiontest.Notary, end *signalapi.Message) signalapi.Record {
	t.Helper()
	b, err := notary.ParseBundle(end.Bundle)
	if err != nil {
		t.Fatalf("session-end bundle: %v", err)
	}
	if _, err := notary.VerifyBundle(b, n.Policy); err != nil {
		t.Fatal(err)
	}
	var rec signalapi.Record
	if err := json.Unmarshal(b.Document, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestWebhook: every receipt reaches the app's webhook, signed as Standard
// Webhooks has it (verified with VerifyWebhook, and refused under another
// secret), after the webhook's failures are retried with the same
// webhook-id, and signalling never waits for it.
func TestWebhook(t *testing.T) {
	secret := bytes.Repeat([]byte("k"), 32)
	var mu sync.Mutex
	var events []signalapi.WebhookEvent
	failures := 2
	ids := map[string]int{} // deliveries seen, by webhook-id
	hook := newHook(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, err := signalapi.VerifyWebhook(bytes.Repeat([]byte("x"), 32), r.Header, body, time.Now()); err == nil {
			t.Error("a delivery verifies under another secret")
		}
		// A Standard Webhooks library is given the secret as whsec_<base64>.
		id, err := signalapi.VerifyWebhook([]byte("whsec_"+base64.StdEncoding.EncodeToString(secret)), r.Header, body, time.Now())
		if err != nil {
			t.Errorf("delivery not verified: %v", err)
			w.WriteHeader(400)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		ids[id]++
		if failures > 0 {
			failures--
			w.WriteHeader(503)
			return
		}
		var e signalapi.WebhookEvent
		json.Unmarshal(body, &e)
		events = append(events, e)
	})
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, func(c *session.Config) { c.Webhook.URL, c.Webhook.Secret = hook, secret })
	patient, physician := started(t, s, "room-w")
	physician.send(signalapi.Message{Type: signalapi.TypePrescription, Ref: "rx", Resource: medicationRequest(t)})
	// The patient does not say it keeps the bundle: the webhook, once it
	// takes the event, is the holder the physician hears of.
	if m := physician.expect(signalapi.TypeReceipt); m.Holder != signalapi.HolderWebhook {
		t.Fatalf("the receipt names %q as the bundle's holder, want the webhook", m.Holder)
	}
	patient.send(signalapi.Message{Type: signalapi.TypeLeave})
	patient.expect(signalapi.TypeSessionEnd)
	sessiontest.WaitFor(t, "three webhook events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(events) == 3
	})
	kinds := map[notary.Kind]bool{}
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
	if !kinds[notary.KindSessionStart] || !kinds[notary.KindPrescription] || !kinds[notary.KindSessionEnd] {
		t.Fatalf("events: %v", kinds)
	}
	// Three events, two retried deliveries: three ids, five deliveries.
	total := 0
	for _, n := range ids {
		total += n
	}
	if len(ids) != 3 || total != 5 {
		t.Fatalf("deliveries by webhook-id: %v; want 3 ids, one delivered 3 times or two twice", ids)
	}
}

// TestVerifyWebhook: a delivery verifies only with its own id, time, body
// and secret, and within the tolerance of the receiver's clock.
func TestVerifyWebhook(t *testing.T) {
	secret, body, now := []byte("0123456789abcdef0123456789abcdef"), []byte(`{"event":"prescription"}`), time.Now()
	signed := func(id string, at time.Time) http.Header {
		h := http.Header{}
		signalapi.SetWebhookHeaders(h, secret, id, at, body)
		return h
	}
	if id, err := signalapi.VerifyWebhook(secret, signed("msg_1", now), body, now); err != nil || id != "msg_1" {
		t.Fatalf("a good delivery: %q %v", id, err)
	}
	h := signed("msg_1", now)
	h.Set(signalapi.HeaderWebhookID, "msg_2")
	for name, c := range map[string]struct {
		h    http.Header
		body []byte
		now  time.Time
		want string
	}{
		"another id":      {h, body, now, signalapi.HeaderWebhookSignature},
		"another body":    {signed("msg_1", now), []byte(`{}`), now, signalapi.HeaderWebhookSignature},
		"too old":         {signed("msg_1", now.Add(-6*time.Minute)), body, now, signalapi.HeaderWebhookTimestamp},
		"from the future": {signed("msg_1", now.Add(6*time.Minute)), body, now, signalapi.HeaderWebhookTimestamp},
		"no id":           {http.Header{}, body, now, signalapi.HeaderWebhookID},
	} {
		if _, err := signalapi.VerifyWebhook(secret, c.h, c.body, c.now); !errors.Is(err, signalapi.ErrWebhookSignature) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a refusal naming %s", name, err, c.want)
		}
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
	patientTok, physicianTok := s.Tokens(t, "room-silent")
	physician := dial(t, s)
	physician.join(physicianTok)

	// The patient joins, then never reads again: pings go unanswered.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, s.WS, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	join, _ := json.Marshal(signalapi.Message{Type: signalapi.TypeJoin, Token: patientTok})
	if err := ws.Write(ctx, websocket.MessageText, join); err != nil {
		t.Fatal(err)
	}
	if _, data, err := ws.Read(ctx); err != nil || !bytes.Contains(data, []byte(`"joined"`)) {
		t.Fatalf("join: %q %v", data, err)
	}
	physician.expect(signalapi.TypePeerJoined)
	if left := physician.expect(signalapi.TypePeerLeft); left.Role != signalapi.RolePatient {
		t.Fatalf("peer-left %+v", left)
	}
	sessiontest.WaitFor(t, "the silent patient to be shown away", func() bool {
		for _, si := range s.Server.Sessions().Sessions {
			for _, p := range si.Participants {
				if p.Role == signalapi.RolePatient && !p.Connected {
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
		c.Webhook.URL, c.Webhook.Secret = hook, bytes.Repeat([]byte("k"), 32)
		c.Webhook.Queue, c.Webhook.Timeout = 4, time.Hour
	})
	for i := range 3 {
		patient, physician := started(t, s, fmt.Sprintf("room-hook-%d", i))
		for j := range 3 {
			prescribe(t, patient, physician, fmt.Sprint(j), medicationRequest(t))
		}
	}
	// The queue of 4 is full behind 4 hung deliveries: later events were
	// dropped, counted and shown to the operator, not waited for.
	alerts := s.Server.Sessions().Alerts
	if len(alerts) == 0 || alerts[len(alerts)-1].Kind != "webhook-failed" {
		t.Fatalf("no webhook-failed alert: %+v", alerts)
	}
}
