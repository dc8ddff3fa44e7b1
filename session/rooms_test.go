package session_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/session"
	"github.com/telenotary/telenotary/session/internal/sessiontest"
	"github.com/telenotary/telenotary/session/signalapi"
)

// TestRoomControl: an app's backend lists its rooms, looks at one,
// removes a participant (disconnected, its tickets void, its seat taken
// again only with a new token) and ends a room (both told, the end record
// notarized with the app's reason); nobody else can, and every refusal
// names what is wrong.
func TestRoomControl(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	app := s.Client(sessiontest.AppKey, nil)
	a, err := app.CreateRoom(ctx, signalapi.CreateRoomRequest{Patient: "pat-a"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := app.CreateRoom(ctx, signalapi.CreateRoomRequest{})
	if err != nil {
		t.Fatal(err)
	}
	rooms, err := app.Rooms(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rooms.Rooms) != 2 || rooms.Rooms[0].State != signalapi.StateWaiting || rooms.Rooms[0].Expires.Before(time.Now().Add(time.Hour)) {
		t.Fatalf("rooms %+v: want the two rooms, waiting, expiring after the session's maximum length", rooms.Rooms)
	}
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"without the app key", second(s.Client("", nil).Rooms(ctx)), httpapi.ErrUnauthorized},
		{"an unknown room", second(app.Room(ctx, "no-such-room")), httpapi.ErrNotFound},
		{"a bad room id", second(app.Room(ctx, "bad*id")), httpapi.ErrBadRequest},
		{"the patient of a room nobody joined", app.RemoveParticipant(ctx, b.Room, signalapi.RolePatient), httpapi.ErrNotFound},
		{"a role that is none", app.RemoveParticipant(ctx, b.Room, "nurse"), httpapi.ErrBadRequest},
		{"an end reason with a newline", second(app.EndRoom(ctx, b.Room, "a\nb")), httpapi.ErrBadRequest},
	} {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}

	patient, physician := dial(t, s), dial(t, s)
	ticket := patient.join(a.Tokens[signalapi.RolePatient]).Ticket
	physician.join(a.Tokens[signalapi.RolePhysician])
	startSession(t, patient, physician)
	if info, err := app.Room(ctx, a.Room); err != nil || info.State != signalapi.StateActive || len(info.Participants) != 2 {
		t.Fatalf("room %+v (%v): want active with both", info, err)
	}

	// Removed: the patient is told and disconnected, the physician sees
	// it leave, and the patient's ticket no longer seats it.
	if err := app.RemoveParticipant(ctx, a.Room, signalapi.RolePatient); err != nil {
		t.Fatal(err)
	}
	patient.expectError(signalapi.CodeRemoved)
	patient.expectClosed()
	physician.expect(signalapi.TypePeerLeft)
	dial(t, s).refused(signalapi.Message{Type: signalapi.TypeJoin, Ticket: ticket}, signalapi.CodeTicketInvalid)
	// A new token for the same subject (the app's backend signs one)
	// seats the patient again.
	newPatientToken, err := s.TokenKey.Issue(a.Room, signalapi.RolePatient, "pat-a", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	patient = dial(t, s)
	if j := patient.join(newPatientToken); !j.Resumed {
		t.Fatalf("the patient seated again: %+v", j)
	}
	physician.expect(signalapi.TypePeerJoined)

	// Ended by the app: both are told, the end record says why.
	info, err := app.EndRoom(ctx, a.Room, "no-show")
	if err != nil {
		t.Fatal(err)
	}
	if info.State != signalapi.StateEnding {
		t.Fatalf("the room after its end: %s", info.State)
	}
	end := patient.expect(signalapi.TypeSessionEnd)
	physician.expect(signalapi.TypeSessionEnd)
	if rec := endRecord(t, n, end); rec.EndReason != "ended-by-app: no-show" {
		t.Fatalf("end reason %q", rec.EndReason)
	}
	sessiontest.WaitFor(t, "the room forgotten", func() bool {
		_, err := app.Room(ctx, a.Room)
		return errors.Is(err, httpapi.ErrNotFound) && strings.Contains(err.Error(), "is over")
	})
	if rooms, err := app.Rooms(ctx); err != nil || len(rooms.Rooms) != 1 || rooms.Rooms[0].Room != b.Room {
		t.Fatalf("rooms after one ended: %+v, %v", rooms, err)
	}
}

// second returns the error of a call that returns a value and an error.
func second[T any](_ T, err error) error { return err }

// TestRoomExpires: a room's session ends when the room reaches its
// expiry (the server's maximum session length after the room was
// opened): both participants get the session-end, notarized with the
// reason "expired", and the room is gone from the list.
func TestRoomExpires(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, func(c *session.Config) {
		c.MaxSessionLength, c.TokenTTL = 3*time.Second, 2*time.Second
	})
	exp := time.Now().Add(3 * time.Second) // tokens live no longer than a session may
	patientTok, err := s.TokenKey.Issue("room-expires", signalapi.RolePatient, "patient-1", exp)
	if err != nil {
		t.Fatal(err)
	}
	physicianTok, err := s.TokenKey.Issue("room-expires", signalapi.RolePhysician, "physician-1", exp)
	if err != nil {
		t.Fatal(err)
	}
	patient, physician := dial(t, s), dial(t, s)
	patient.join(patientTok)
	physician.join(physicianTok)
	startSession(t, patient, physician)
	for _, c := range []*client{patient, physician} {
		rec := endRecord(t, n, c.expect(signalapi.TypeSessionEnd))
		if rec.EndReason != "expired" || rec.Ended == nil {
			t.Fatalf("end record: reason %q, ended %v; want expired", rec.EndReason, rec.Ended)
		}
	}
	sessiontest.WaitFor(t, "the expired room gone from the list", func() bool {
		for _, si := range s.Server.Sessions().Sessions {
			if si.Room == "room-expires" {
				return false
			}
		}
		return true
	})
}
