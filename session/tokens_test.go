package session_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/telenotary/telenotary/session"
	"github.com/telenotary/telenotary/session/internal/sessiontest"
	"github.com/telenotary/telenotary/session/signalapi"
)

// TestJoinLinkUsedTwice: the join links of a room the app's backend
// created, each used a second time while the consultation runs: the second
// use is refused (token_used) and the participant it would have replaced
// stays connected: the other side sees no one leave, and a prescription
// still reaches the patient.
func TestJoinLinkUsedTwice(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, nil)
	room, err := s.Client(sessiontest.AppKey, nil).CreateRoom(context.Background(), signalapi.CreateRoomRequest{})
	if err != nil {
		t.Fatal(err)
	}
	patient, physician := dial(t, s), dial(t, s)
	patient.join(room.Tokens[signalapi.RolePatient])
	physician.join(room.Tokens[signalapi.RolePhysician])
	startSession(t, patient, physician)

	for _, role := range signalapi.Roles {
		m := dial(t, s).refused(signalapi.Message{Type: signalapi.TypeJoin, Token: room.Tokens[role]}, signalapi.CodeTokenUsed)
		if !strings.Contains(m.Message, "ticket") {
			t.Errorf("token_used does not say how to come back: %q", m.Message)
		}
	}
	info := s.Server.Sessions().Sessions
	if len(info) != 1 || len(info[0].Participants) != 2 || !info[0].Participants[0].Connected || !info[0].Participants[1].Connected {
		t.Fatalf("after the second uses, the session is %+v; want both participants connected", info)
	}
	prescribe(t, patient, physician, "rx-after", medicationRequest(t))
	for _, c := range []*client{patient, physician} {
		for len(c.in) > 0 {
			if m := <-c.in; m.Type == signalapi.TypePeerLeft || m.Type == signalapi.TypeError {
				t.Errorf("a participant got %s %s: the second use touched the room", m.Type, m.Code)
			}
		}
	}
}

// TestResumeTicket: every joined carries a new ticket; a client whose
// joined was lost comes back with the ticket it holds, which dies once its
// successor is used; a ticket outlives its connection by the grace window
// and no more; a fresh token from the app's backend still seats the same
// subject.
func TestResumeTicket(t *testing.T) {
	const grace = 500 * time.Millisecond
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, func(c *session.Config) { c.Grace = grace })
	patientTok, _ := s.Tokens(t, "room-ticket")
	first := dial(t, s)
	t1 := first.join(patientTok).Ticket

	// Resumed with t1; its joined (t2) is "lost": t1 still works.
	second := dial(t, s)
	t2 := second.resume(t1).Ticket
	first.expectError(signalapi.CodeReplaced)
	third := dial(t, s)
	t3 := third.resume(t1).Ticket
	second.expectError(signalapi.CodeReplaced)
	if t1 == t2 || t2 == t3 || t1 == t3 {
		t.Fatal("tickets are not renewed on every join")
	}
	// t3 is used: t1 and t2 are dead.
	fourth := dial(t, s)
	t4 := fourth.resume(t3).Ticket
	third.expectError(signalapi.CodeReplaced)
	for _, old := range []string{t1, t2} {
		dial(t, s).refused(signalapi.Message{Type: signalapi.TypeJoin, Ticket: old}, signalapi.CodeTicketInvalid)
	}

	// The connection closes; the ticket lives for the grace window.
	fourth.ws.CloseNow()
	sessiontest.WaitFor(t, "the patient to be away", func() bool { return !patientConnected(s, "room-ticket") })
	<-time.After(grace) // the window itself is what is tested
	m := dial(t, s).refused(signalapi.Message{Type: signalapi.TypeJoin, Ticket: t4}, signalapi.CodeTicketInvalid)
	if !strings.Contains(m.Message, "expired") {
		t.Errorf("an expired ticket is refused with %q", m.Message)
	}

	// The backend's fresh token for the same subject seats it again.
	fresh, _ := s.Tokens(t, "room-ticket")
	dial(t, s).join(fresh)
}

// patientConnected reports whether the patient of a room is connected.
func patientConnected(s *sessiontest.Signal, room string) bool {
	for _, si := range s.Server.Sessions().Sessions {
		for _, p := range si.Participants {
			if si.Room == room && p.Role == signalapi.RolePatient {
				return p.Connected
			}
		}
	}
	return false
}

// TestTokenClaims: the issuer is checked (the server's own and the app's
// configured one, nothing else), iat is required, a token may not live
// longer than a session, and a token issued before the server started is
// refused; each refusal names the claim.
func TestTokenClaims(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	const appIssuer = "https://app.example"
	tk, err := session.NewTokenKey(key, appIssuer, "") // an empty issuer (a flag not set) adds none
	if err != nil {
		t.Fatal(err)
	}
	if _, err := session.NewTokenKey(key, "app\n"); err == nil || !strings.Contains(err.Error(), "issuer") {
		t.Errorf("an issuer with a newline: %v, want an error naming the issuer", err)
	}
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, func(c *session.Config) { c.TokenKey = tk })
	now := time.Now()
	sign := func(room, iss string, iat, exp time.Time) string {
		c := session.Claims{Room: room, Role: signalapi.RolePatient, RegisteredClaims: jwt.RegisteredClaims{
			Issuer: iss, Subject: "p-" + room, Audience: jwt.ClaimStrings{session.TokenAudience}, ExpiresAt: jwt.NewNumericDate(exp),
		}}
		if !iat.IsZero() {
			c.IssuedAt = jwt.NewNumericDate(iat)
		}
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, tc := range []struct {
		name  string
		token string
		code  signalapi.Code // "" when the token joins
		names string
	}{
		{"the app's issuer", sign("room-app", appIssuer, now, now.Add(time.Hour)), "", ""},
		{"the server's issuer", sign("room-own", session.TokenIssuer, now, now.Add(time.Hour)), "", ""},
		{"another issuer", sign("room-x1", "https://evil.example", now, now.Add(time.Hour)), signalapi.CodeTokenInvalid, `"iss"`},
		{"no issuer", sign("room-x2", "", now, now.Add(time.Hour)), signalapi.CodeTokenInvalid, `"iss"`},
		{"no iat", sign("room-x3", appIssuer, time.Time{}, now.Add(time.Hour)), signalapi.CodeTokenInvalid, `"iat"`},
		{"longer than a session", sign("room-x4", appIssuer, now, now.Add(5*time.Hour)), signalapi.CodeTokenInvalid, `"exp"`},
		{"issued before the server started", sign("room-x5", appIssuer, now.Add(-time.Minute), now.Add(time.Hour)), signalapi.CodeTokenExpired, "before this signalling server started"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, s)
			if tc.code == "" {
				c.join(tc.token)
				return
			}
			if m := c.refused(signalapi.Message{Type: signalapi.TypeJoin, Token: tc.token}, tc.code); !strings.Contains(m.Message, tc.names) {
				t.Errorf("%q does not name %s", m.Message, tc.names)
			}
		})
	}
}

// TestRoomsStayEndedAcrossRestart: the signalling server restarts with
// the same token key (an app backend signs tokens with it). Nothing was
// written to disk, and still nothing from before the restart opens a
// room: the token that joined the ended room, its other participant's
// token that never joined, the ticket of a connection, a link of a room
// whose consultation never began. A new token after the restart joins.
func TestRoomsStayEndedAcrossRestart(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	tk, err := session.NewTokenKey(key)
	if err != nil {
		t.Fatal(err)
	}
	n := sessiontest.StartNotary(t)
	before := sessiontest.StartSignal(t, n, func(c *session.Config) { c.TokenKey = tk })
	ended, err := before.Client(sessiontest.AppKey, nil).CreateRoom(context.Background(), signalapi.CreateRoomRequest{})
	if err != nil {
		t.Fatal(err)
	}
	waiting, err := before.Client(sessiontest.AppKey, nil).CreateRoom(context.Background(), signalapi.CreateRoomRequest{})
	if err != nil {
		t.Fatal(err)
	}
	patient := dial(t, before)
	ticket := patient.join(ended.Tokens[signalapi.RolePatient]).Ticket
	patient.send(signalapi.Message{Type: signalapi.TypeLeave})
	patient.expect(signalapi.TypeSessionEnd)
	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := before.Server.Close(closeCtx); err != nil {
		t.Fatal(err)
	}
	before.HTTP.Close()

	after := sessiontest.StartSignal(t, n, func(c *session.Config) { c.TokenKey = tk })
	logBefore := logSize(t, n)
	for _, tc := range []struct {
		name string
		join signalapi.Message
		code signalapi.Code
	}{
		{"the used token of the ended room", signalapi.Message{Type: signalapi.TypeJoin, Token: ended.Tokens[signalapi.RolePatient]}, signalapi.CodeTokenExpired},
		{"the unused token of the ended room", signalapi.Message{Type: signalapi.TypeJoin, Token: ended.Tokens[signalapi.RolePhysician]}, signalapi.CodeTokenExpired},
		{"a ticket of the ended room", signalapi.Message{Type: signalapi.TypeJoin, Ticket: ticket}, signalapi.CodeTicketInvalid},
		{"a link of a room never joined", signalapi.Message{Type: signalapi.TypeJoin, Token: waiting.Tokens[signalapi.RolePatient]}, signalapi.CodeTokenExpired},
	} {
		t.Run(tc.name, func(t *testing.T) { dial(t, after).refused(tc.join, tc.code) })
	}
	if rooms := after.Server.Sessions().Sessions; len(rooms) != 0 {
		t.Fatalf("rooms opened after the restart: %+v", rooms)
	}
	if got := logSize(t, n); got != logBefore {
		t.Fatalf("%d entries notarized by refused joins", got-logBefore)
	}
	newRoom, err := after.Client(sessiontest.AppKey, nil).CreateRoom(context.Background(), signalapi.CreateRoomRequest{})
	if err != nil {
		t.Fatal(err)
	}
	dial(t, after).join(newRoom.Tokens[signalapi.RolePatient])
}

// TestUsedTokensCap: the record of used tokens is bounded; at its cap a
// join with a token is refused with a clear limit, while the seated
// participants carry on and come back with their tickets.
func TestUsedTokensCap(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, func(c *session.Config) { c.MaxUsedTokens = 2 })
	patientTok, physicianTok := s.Tokens(t, "room-cap")
	patient, physician := dial(t, s), dial(t, s)
	ticket := patient.join(patientTok).Ticket
	physician.join(physicianTok)
	other, _ := s.Tokens(t, "room-cap-2")
	if m := dial(t, s).refused(signalapi.Message{Type: signalapi.TypeJoin, Token: other}, signalapi.CodeLimit); !strings.Contains(m.Message, "used join tokens") {
		t.Errorf("the cap's refusal says %q", m.Message)
	}
	if rooms := s.Server.Sessions().Sessions; len(rooms) != 1 {
		t.Errorf("a refused token opened a room: %+v", rooms)
	}
	back := dial(t, s)
	back.resume(ticket)
	patient.expectError(signalapi.CodeReplaced)
	if !patientConnected(s, "room-cap") {
		t.Fatal("the patient is not back")
	}
}
