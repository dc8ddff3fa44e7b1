package session_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/session"
	"github.com/telenotary/telenotary/session/internal/sessiontest"
	"github.com/telenotary/telenotary/session/signalapi"
)

// held returns the instances of a group that hold a room.
func held(group []*sessiontest.Signal, names []string, room string) []string {
	var out []string
	for i, s := range group {
		for _, r := range s.Server.Sessions().Sessions {
			if r.Room == room {
				out = append(out, names[i])
			}
		}
	}
	return out
}

// TestGroupRelaysToTheRoomsInstance: three instances as one group. A room
// created on a is joined through b (the patient) and c (the physician):
// both are relayed to a, which alone holds the room, lists it with its
// instance, and runs the session (offer and answer, receipts, a
// prescription); each connection's tickets are sealed and a fresh one
// comes once the session started, and it brings its holder back through
// any instance.
func TestGroupRelaysToTheRoomsInstance(t *testing.T) {
	n := sessiontest.StartNotary(t)
	names := []string{"a", "b", "c"}
	group := sessiontest.StartGroup(t, n, names, nil)
	a, b, c := group[0], group[1], group[2]
	room, err := a.Client(sessiontest.AppKey, nil).CreateRoom(context.Background(), signalapi.CreateRoomRequest{})
	if err != nil {
		t.Fatal(err)
	}
	patient, physician := dial(t, b), dial(t, c)
	j := patient.join(room.Tokens[signalapi.RolePatient])
	physician.join(room.Tokens[signalapi.RolePhysician])
	if parts := strings.Split(j.Ticket, "."); len(parts) != 3 || parts[0] != room.Room {
		t.Fatalf("a group's ticket is %d dot-separated parts (room %q); want the room, the secret and the sealed seat", len(parts), parts[0])
	}
	startSession(t, patient, physician)
	if got := held(group, names, room.Room); len(got) != 1 || got[0] != "a" {
		t.Fatalf("room %s is held by %v; want a alone, where it was created", room.Room, got)
	}
	if info := a.Server.Sessions().Sessions[0]; info.Instance != "a" || len(info.Participants) != 2 || !info.Participants[0].Connected || !info.Participants[1].Connected {
		t.Fatalf("a lists the room as %+v", info)
	}
	// Any instance lists the whole group's consultations to an operator.
	list, err := b.Client(sessiontest.OperatorKey, nil).Sessions(context.Background())
	if err != nil || len(list.Sessions) != 1 || list.Sessions[0].Room != room.Room || list.Sessions[0].Instance != "a" {
		t.Fatalf("b lists the group's sessions as %+v (%v); want the room on a", list, err)
	}
	fresh := patient.expect(signalapi.TypeTicket)
	if fresh.Ticket == "" || fresh.Ticket == j.Ticket {
		t.Fatalf("the ticket sent after the start is %q", fresh.Ticket)
	}
	prescribe(t, patient, physician, "rx-1", medicationRequest(t))

	// The patient drops and comes back through c with the fresh ticket:
	// relayed to a again, same session.
	patient.ws.CloseNow()
	back := dial(t, c)
	if again := back.resume(fresh.Ticket); !again.Resumed || again.Session != j.Session {
		t.Fatalf("back through c: resumed %v in session %s; want the session %s resumed", again.Resumed, again.Session, j.Session)
	}
	physician.expect(signalapi.TypePeerJoined)
	if got := held(group, names, room.Room); len(got) != 1 || got[0] != "a" {
		t.Fatalf("after the return room %s is held by %v; want a alone", room.Room, got)
	}

	// The app controls the room through any instance.
	ctx := context.Background()
	if info, err := c.Client(sessiontest.AppKey, nil).Room(ctx, room.Room); err != nil || info.Instance != "a" {
		t.Fatalf("GET the room through c: %+v %v", info, err)
	}
	if _, err := b.Client(sessiontest.AppKey, nil).EndRoom(ctx, room.Room, "over"); err != nil {
		t.Fatalf("end the room through b: %v", err)
	}
	for _, p := range []*client{back, physician} {
		if end := p.expect(signalapi.TypeSessionEnd); end.Reason != "ended-by-app: over" || len(end.Bundle) == 0 {
			t.Fatalf("session-end: reason %q, bundle of %d bytes", end.Reason, len(end.Bundle))
		}
	}
	if _, err := c.Client(sessiontest.AppKey, nil).Room(ctx, "no-such-room"); !errors.Is(err, httpapi.ErrNotFound) {
		t.Fatalf("a room no instance holds: %v", err)
	}
}

// TestGroupSealedTickets: a ticket whose sealed part was altered, or that
// another group (another token key) sealed, opens nothing, anywhere.
func TestGroupSealedTickets(t *testing.T) {
	n := sessiontest.StartNotary(t)
	names := []string{"a", "b"}
	group := sessiontest.StartGroup(t, n, names, nil)
	other := sessiontest.StartGroup(t, n, []string{"x", "y"}, nil)
	room, err := group[0].Client(sessiontest.AppKey, nil).CreateRoom(context.Background(), signalapi.CreateRoomRequest{})
	if err != nil {
		t.Fatal(err)
	}
	patient := dial(t, group[0])
	ticket := patient.join(room.Tokens[signalapi.RolePatient]).Ticket
	i := strings.LastIndexByte(ticket, '.')
	flip := []byte(ticket)
	if flip[i+5] = 'A'; ticket[i+5] == 'A' { // still base64url, another byte sealed
		flip[i+5] = 'B'
	}
	for _, s := range group {
		m := dial(t, s).refused(signalapi.Message{Type: signalapi.TypeJoin, Ticket: string(flip)}, signalapi.CodeTicketInvalid)
		if !strings.Contains(m.Message, "altered") {
			t.Errorf("an altered ticket is refused with %q; want it to say so", m.Message)
		}
	}
	xroom, err := other[0].Client(sessiontest.AppKey, nil).CreateRoom(context.Background(), signalapi.CreateRoomRequest{})
	if err != nil {
		t.Fatal(err)
	}
	foreign := dial(t, other[0]).join(xroom.Tokens[signalapi.RolePatient]).Ticket
	for _, s := range group {
		dial(t, s).refused(signalapi.Message{Type: signalapi.TypeJoin, Ticket: foreign}, signalapi.CodeTicketInvalid)
	}
}

// TestGroupRoomOfAGoneInstance: a room created on an instance that is
// gone before anyone joined cannot be joined elsewhere (its binding and
// state were there): the token is refused with a message that says why,
// and the instances that remain see one fewer instance answer.
func TestGroupRoomOfAGoneInstance(t *testing.T) {
	n := sessiontest.StartNotary(t)
	names := []string{"a", "b"}
	group := sessiontest.StartGroup(t, n, names, nil)
	room, err := group[0].Client(sessiontest.AppKey, nil).CreateRoom(context.Background(), signalapi.CreateRoomRequest{})
	if err != nil {
		t.Fatal(err)
	}
	group[0].HTTP.CloseClientConnections()
	group[0].HTTP.Close()
	sessiontest.WaitFor(t, "b to see a gone", func() bool { return group[1].InstancesUp(t) == 1 })
	m := dial(t, group[1]).refused(signalapi.Message{Type: signalapi.TypeJoin, Token: room.Tokens[signalapi.RolePatient]}, signalapi.CodeRoomEnded)
	if !strings.Contains(m.Message, "instance a") {
		t.Errorf("the refusal says %q; want it to name the instance that went away", m.Message)
	}
}

// TestGroupConfig: a group needs a name for each instance, unique, and
// peers' base URLs.
func TestGroupConfig(t *testing.T) {
	n := sessiontest.StartNotary(t)
	key, _ := session.NewTokenKey([]byte(strings.Repeat("k", 32)))
	for _, c := range []struct {
		name, instance string
		peers          []session.Peer
		want           string
	}{
		{"no name", "", []session.Peer{{Name: "b", URL: "http://127.0.0.1:1"}}, "Instance"},
		{"name twice", "a", []session.Peer{{Name: "b", URL: "http://127.0.0.1:1"}, {Name: "b", URL: "http://127.0.0.1:2"}}, "Peers[1].Name"},
		{"own name", "a", []session.Peer{{Name: "a", URL: "http://127.0.0.1:1"}}, "Peers[0].Name"},
		{"bad URL", "a", []session.Peer{{Name: "b", URL: "127.0.0.1:1"}}, "Peers[0].URL"},
		{"URL with a path", "a", []session.Peer{{Name: "b", URL: "http://127.0.0.1:1/v1/signal"}}, "Peers[0].URL"},
	} {
		cfg := session.DefaultConfig()
		cfg.Notary, cfg.TokenKey, cfg.Instance, cfg.Peers = n.Client, key, c.instance, c.peers
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Validate says %v; want an error naming %s", c.name, err, c.want)
		}
	}
	if _, err := session.ParsePeers("b=http://x:1,c"); err == nil {
		t.Error("ParsePeers takes a peer without NAME=")
	}
}

// TestGroupRelayHeaderForged: a client that sends the header instances
// relay with, without the group's proof, is relayed like any other: it
// cannot have an instance that does not hold its room take it over.
func TestGroupRelayHeaderForged(t *testing.T) {
	n := sessiontest.StartNotary(t)
	names := []string{"a", "b"}
	group := sessiontest.StartGroup(t, n, names, nil)
	a, b := group[0], group[1]
	room, err := a.Client(sessiontest.AppKey, nil).CreateRoom(context.Background(), signalapi.CreateRoomRequest{})
	if err != nil {
		t.Fatal(err)
	}
	patient, physician := dial(t, a), dial(t, a)
	ticket := patient.join(room.Tokens[signalapi.RolePatient]).Ticket
	session := physician.join(room.Tokens[signalapi.RolePhysician]).Session
	startSession(t, patient, physician)
	ticket = patient.expect(signalapi.TypeTicket).Ticket
	patient.ws.CloseNow()
	for _, forged := range []string{"a", "a AAAA", "b " + strings.Repeat("A", 43), "x y"} {
		c, err := dialOptions(t, b, &websocket.DialOptions{HTTPHeader: http.Header{signalapi.RelayHeader: {forged}}})
		if err != nil {
			t.Fatal(err)
		}
		j := c.resume(ticket)
		ticket = j.Ticket
		if j.Session != session || !j.Resumed {
			t.Fatalf("with %s %q the patient is in session %s (resumed %v); want session %s resumed at a", signalapi.RelayHeader, forged, j.Session, j.Resumed, session)
		}
		if got := held(group, names, room.Room); len(got) != 1 || got[0] != "a" {
			t.Fatalf("with a forged %s the room is held by %v; want a alone", signalapi.RelayHeader, got)
		}
		c.ws.CloseNow()
	}
}
