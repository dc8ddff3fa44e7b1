package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

type testRequest struct {
	Name    string `json:"name"`
	Count   int    `json:"count"`
	Entries []struct {
		Kind string `json:"kind"`
	} `json:"entries"`
}

// TestDecodeJSON: the strict decoder names the field of every mistake.
func TestDecodeJSON(t *testing.T) {
	for _, tc := range []struct {
		name, body, field string
	}{
		{"empty", "  ", "body"},
		{"unknown member", `{"name":"a","colour":"red"}`, "colour"},
		{"unknown nested member", `{"entries":[{"kind":"a"},{"kind":"b","x":1}]}`, "entries[1].x"},
		{"wrong type", `{"count":"three"}`, "count"},
		{"wrong nested type", `{"entries":[{"kind":7}]}`, "entries[0].kind"},
		{"repeated member", `{"name":"a","name":"b"}`, "name"},
		{"truncated", `{"name":`, "body"},
		{"trailing data", `{"name":"a"} {}`, "body"},
		{"not an object", `[1]`, "body"},
		{"invalid UTF-8", "{\"name\":\"\xff\"}", "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v testRequest
			err := DecodeJSON([]byte(tc.body), &v)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v, want a bad request naming %q", err, tc.field)
			}
		})
	}
	var v testRequest
	if err := DecodeJSON([]byte(`{"name":"a","count":2,"entries":[{"kind":"k"}]}`), &v); err != nil || v.Name != "a" || v.Count != 2 || v.Entries[0].Kind != "k" {
		t.Fatalf("a good body: %+v, %v", v, err)
	}
}

// FuzzDecodeJSON: any body either decodes or is refused with a field
// error; never a panic, never another error.
func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"name":"a","count":2,"entries":[{"kind":"k"}]}`))
	f.Add([]byte(`{"entries":[{"kind":7}]}`))
	f.Add([]byte(`{"name":"a","name":"b"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var v testRequest
		err := DecodeJSON(body, &v)
		var fe *FieldError
		if err != nil && (!errors.As(err, &fe) || fe.Field == "") {
			t.Fatalf("%q: %v is not a field error", body, err)
		}
	})
}

// TestProblemRoundTrip: what WriteError answers, ReadProblem reads back as
// a problem that matches the same Code, with its field and headers.
func TestProblemRoundTrip(t *testing.T) {
	notLeader := &Code{Name: "not_leader", Status: http.StatusServiceUnavailable, Title: "not the leader"}
	for _, tc := range []struct {
		err    error
		code   *Code
		field  string
		header string
	}{
		{Field("entries[2].kind", "is required"), ErrBadRequest, "entries[2].kind", ""},
		{fmt.Errorf("%w: no token", ErrUnauthorized), ErrUnauthorized, "", "WWW-Authenticate"},
		{fmt.Errorf("forwarding: %w", notLeader), notLeader, "", "Retry-After"},
		{context.DeadlineExceeded, ErrTimeout, "", ""},
		{errors.New("disk on fire"), ErrInternal, "", ""},
	} {
		rec := httptest.NewRecorder()
		WriteError(rec, httptest.NewRequest("GET", "/x", nil), nil, tc.err)
		resp := rec.Result()
		p := ReadProblem(resp)
		if resp.StatusCode != tc.code.Status || !errors.Is(p, tc.code) || p.Field != tc.field || p.Detail != tc.err.Error() {
			t.Errorf("%v: HTTP %d %+v, want %d %s field %q", tc.err, resp.StatusCode, p, tc.code.Status, tc.code.Name, tc.field)
		}
		if tc.header != "" && resp.Header.Get(tc.header) == "" {
			t.Errorf("%v: no %s header", tc.err, tc.header)
		}
		if errors.Is(p, ErrNotFound) {
			t.Errorf("%v: matches a code it is not", tc.err)
		}
	}
	// An answer that is not a problem (a proxy's page) still reads as one.
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Type", "text/html")
	rec.WriteHeader(http.StatusBadGateway)
	rec.WriteString("<h1>bad gateway</h1>")
	if p := ReadProblem(rec.Result()); p.Code != "http_502" || p.Status != 502 || p.Detail != "<h1>bad gateway</h1>" {
		t.Errorf("a proxy's page: %+v", p)
	}
}

// TestMux: an unknown path is a 404 problem, a known path with another
// method a 405 problem with Allow.
func TestMux(t *testing.T) {
	var m Mux
	m.HandleFunc("POST /v1/things", func(w http.ResponseWriter, r *http.Request) { WriteJSON(w, 200, map[string]bool{"ok": true}) })
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"POST", "/v1/things", 200, ""},
		{"GET", "/v1/things", 405, "POST"},
		{"GET", "/v1/nothing", 404, ""},
	} {
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.status || rec.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s: HTTP %d Allow %q, want %d %q", tc.method, tc.path, rec.Code, rec.Header().Get("Allow"), tc.status, tc.allow)
		}
		if tc.status >= 400 {
			var p Problem
			if rec.Header().Get("Content-Type") != ContentTypeProblem || json.Unmarshal(rec.Body.Bytes(), &p) != nil || p.Status != tc.status {
				t.Errorf("%s %s: %s %q is not a problem", tc.method, tc.path, rec.Header().Get("Content-Type"), rec.Body)
			}
		}
	}
}
