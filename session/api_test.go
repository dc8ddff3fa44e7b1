package session_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/httpapi/openapitest"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/internal/sessiontest"
	"github.com/telenotary/telenotary/session/signalapi"
)

// TestHTTPAPI runs the HTTP API through the signalapi client and a
// transport that checks every exchange against docs/openapi-signal.json:
// POST /v1/rooms needs an app key and issues tokens that join; GET
// /v1/sessions needs an operator key and shows no subject and no
// document; every error is a problem with its stable code and the field
// at fault; every documented operation is exercised.
func TestHTTPAPI(t *testing.T) {
	spec := openapitest.Load(t, "../docs/openapi-signal.json")
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, nil)
	checked := spec.Transport(t, nil)
	app := s.Client(sessiontest.AppKey, checked)
	operator := s.Client(sessiontest.OperatorKey, checked)
	ctx := context.Background()

	for _, tc := range []struct {
		name   string
		client *signalapi.Client
		call   func(*signalapi.Client) error
		want   *httpapi.Code
	}{
		{"no key", s.Client("", checked), func(c *signalapi.Client) error {
			_, err := c.CreateRoom(ctx, signalapi.CreateRoomRequest{})
			return err
		}, httpapi.ErrUnauthorized},
		{"unknown key", s.Client("wrong-key-0123456789", checked), func(c *signalapi.Client) error { _, err := c.Sessions(ctx); return err }, httpapi.ErrUnauthorized},
		{"app key on sessions", app, func(c *signalapi.Client) error { _, err := c.Sessions(ctx); return err }, httpapi.ErrForbidden},
		{"bad subject", app, func(c *signalapi.Client) error {
			_, err := c.CreateRoom(ctx, signalapi.CreateRoomRequest{Patient: "has space"})
			return err
		}, httpapi.ErrBadRequest},
		{"ttl too long", app, func(c *signalapi.Client) error {
			_, err := c.CreateRoom(ctx, signalapi.CreateRoomRequest{TTLSeconds: 99999999})
			return err
		}, httpapi.ErrBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(tc.client)
			var p *httpapi.Problem
			if !errors.As(err, &p) || !errors.Is(err, tc.want) || p.Detail == "" {
				t.Fatalf("got %v (%#v), want a %s problem", err, p, tc.want.Name)
			}
		})
	}

	// Bodies the client would not send: the problem names the field.
	raw := &http.Client{Transport: checked}
	for body, field := range map[string]string{
		`{"patient":"has space"}`:       "patient",
		`{"ttl_seconds":"x"}`:           "ttl_seconds",
		`{"ttl_seconds":99999999}`:      "ttl_seconds",
		`{"nurse":"x"}`:                 "nurse",
		`{"patient":"a","patient":"b"}`: "patient",
		`[]`:                            "body",
	} {
		p := problem(t, raw, http.MethodPost, s.URL+signalapi.PathRooms, sessiontest.AppKey, body)
		if p.Status != http.StatusBadRequest || p.Code != httpapi.ErrBadRequest.Name || p.Field != field {
			t.Errorf("%s: %+v, want bad_request on field %q", body, p, field)
		}
	}
	if p := problem(t, raw, http.MethodPost, s.URL+signalapi.PathRooms, sessiontest.AppKey, strings.Repeat(" ", signalapi.MaxCreateRoomBody+1)); p.Code != httpapi.ErrTooLarge.Name {
		t.Errorf("a body over the limit: %+v", p)
	}
	if p := problem(t, raw, http.MethodGet, s.URL+signalapi.PathSignal, "", ""); p.Code != signalapi.ErrUpgradeRequired.Name {
		t.Errorf("GET /v1/signal without a handshake: %+v", p)
	}

	room, err := app.CreateRoom(ctx, signalapi.CreateRoomRequest{Patient: "pseudo-patient-42", Physician: "pseudo-physician-7"})
	if err != nil {
		t.Fatal(err)
	}
	patient, physician := dial(t, s), dial(t, s)
	if j := patient.join(room.Tokens[signalapi.RolePatient]); j.Room != room.Room || j.Role != signalapi.RolePatient {
		t.Fatalf("joined %+v", j)
	}
	physician.join(room.Tokens[signalapi.RolePhysician])
	sessions, err := operator.Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions.Sessions) != 1 || sessions.Sessions[0].Room != room.Room || len(sessions.Sessions[0].Participants) != 2 {
		t.Fatalf("sessions: %+v", sessions)
	}
	if text := fetch(t, raw, s.URL+signalapi.PathSessions, sessiontest.OperatorKey); bytes.Contains(text, []byte("pseudo-")) {
		t.Fatalf("the sessions API shows a subject: %s", text)
	}
	keys, err := s.Client("", checked).Keys(ctx)
	if err != nil || !bytes.Contains(keys, n.Keys) {
		t.Fatalf("keys: %q %v, want them to hold %q", keys, err, n.Keys)
	}
	for _, path := range []string{"/healthz", "/metrics"} {
		fetch(t, raw, s.URL+path, "")
	}
	var inst signalapi.InstanceInfo
	if err := json.Unmarshal(fetch(t, raw, s.URL+signalapi.PathInstance, ""), &inst); err != nil || inst.Instance == "" || inst.Epoch == 0 {
		t.Fatalf("GET %s: %+v %v", signalapi.PathInstance, inst, err)
	}
	// No webhook, nothing held; an unknown event is not found.
	if u, err := app.Undelivered(ctx); err != nil || len(u.Events) != 0 {
		t.Fatalf("undelivered: %+v %v", u, err)
	}
	if err := app.AckUndelivered(ctx, "msg_unknown"); !errors.Is(err, httpapi.ErrNotFound) {
		t.Fatalf("acknowledging an unknown event: %v", err)
	}
	// Room control, through the checked transport.
	if rooms, err := app.Rooms(ctx); err != nil || len(rooms.Rooms) != 1 {
		t.Fatalf("rooms: %+v %v", rooms, err)
	}
	if info, err := app.Room(ctx, room.Room); err != nil || info.Room != room.Room {
		t.Fatalf("room: %+v %v", info, err)
	}
	if _, err := app.Room(ctx, "unknown"); !errors.Is(err, httpapi.ErrNotFound) {
		t.Fatalf("an unknown room: %v", err)
	}
	if p := problem(t, raw, http.MethodPost, s.URL+signalapi.PathRooms+"/"+room.Room+"/end", sessiontest.AppKey, `{"reason":7}`); p.Field != "reason" {
		t.Errorf("a reason that is not a string: %+v", p)
	}
	if err := app.RemoveParticipant(ctx, room.Room, signalapi.RolePatient); err != nil {
		t.Fatal(err)
	}
	if _, err := app.EndRoom(ctx, room.Room, "test over"); err != nil {
		t.Fatal(err)
	}
	// A prescription's life: a bundle that is not one is refused, a
	// commitment the cluster holds no prescription for is its 404.
	if _, err := app.Revoke(ctx, []byte(`{"version":1}`)); !errors.Is(err, httpapi.ErrBadRequest) {
		t.Fatalf("revoking with a bundle that is not one: %v", err)
	}
	if _, err := s.Client("", checked).PrescriptionStatus(ctx, notary.Commitment{1}); !errors.Is(err, httpapi.ErrNotFound) {
		t.Fatalf("the status of an unknown prescription: %v", err)
	}
	if missed := spec.Uncovered(); len(missed) > 0 {
		t.Errorf("operations of docs/openapi-signal.json no exchange used: %v", missed)
	}
}

// TestWrongMethodAndPath: a path the server serves with another method is
// 405 with Allow, an unknown one 404, both problems; the pages still load.
func TestWrongMethodAndPath(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, nil)
	for _, tc := range []struct {
		method, path string
		want         *httpapi.Code
		allow        string
	}{
		{http.MethodPut, signalapi.PathRooms, httpapi.ErrMethodNotAllowed, "GET, HEAD, POST"},
		{http.MethodDelete, signalapi.PathSessions, httpapi.ErrMethodNotAllowed, "GET, HEAD"},
		{http.MethodPost, signalapi.PathKeys, httpapi.ErrMethodNotAllowed, "GET, HEAD"},
		{http.MethodPut, signalapi.PathSignal, httpapi.ErrMethodNotAllowed, "GET, HEAD"},
		{http.MethodGet, "/v1/nothing", httpapi.ErrNotFound, ""},
	} {
		p, header := problemOf(t, http.DefaultClient, tc.method, s.URL+tc.path, sessiontest.OperatorKey, "")
		if !errors.Is(p, tc.want) || p.Status != tc.want.Status || p.Detail == "" || header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %+v, Allow %q; want %s, Allow %q", tc.method, tc.path, p, header.Get("Allow"), tc.want.Name, tc.allow)
		}
	}
	for _, path := range []string{"/app/", "/verify/"} {
		fetch(t, http.DefaultClient, s.URL+path, "")
	}
	// The verifier to save: one file, offered as a download.
	resp, err := http.Get(s.URL + "/verify/telenotary-verifier.html")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") || !bytes.Contains(page, []byte("connect-src 'none'")) {
		t.Errorf("the saved verifier: %d, %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Disposition"), len(page))
	}
}

// problem sends a request that must fail and returns its problem, failing
// the test unless the answer is application/problem+json.
func problem(t *testing.T, c *http.Client, method, url, key, body string) *httpapi.Problem {
	t.Helper()
	p, _ := problemOf(t, c, method, url, key, body)
	return p
}

// problemOf is problem with the answer's header.
func problemOf(t *testing.T, c *http.Client, method, url, key, body string) (*httpapi.Problem, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 400 || resp.Header.Get("Content-Type") != httpapi.ContentTypeProblem {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: HTTP %d %s %q, want a problem", method, url, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return httpapi.ReadProblem(resp), resp.Header
}

// fetch GETs a URL that must answer 200 and returns the body.
func fetch(t *testing.T, c *http.Client, url, key string) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d %v", url, resp.StatusCode, err)
	}
	return b
}
