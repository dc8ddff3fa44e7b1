package witness_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/telenotary/telenotary/notary/witness"
)

// FuzzParseRequest: the request parser never panics, what it accepts
// marshals back to the same bytes (one spelling per request), and the
// witness answers any body with a protocol status, never cosigning a
// checkpoint it has not verified.
func FuzzParseRequest(f *testing.F) {
	l := newTestLog(f, testOrigin, "node-1")
	fx := newFixture(f, l)
	l.grow(3)
	f.Add(l.request(0))
	l.grow(5)
	f.Add(l.request(3))
	f.Add([]byte("old 0\n\n"))
	f.Add([]byte("old 3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\nx\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := witness.ParseRequest(body)
		if err != nil {
			if !errors.Is(err, witness.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
		} else if got := req.Marshal(); !bytes.Equal(got, body) {
			t.Fatalf("parsed %q, marshals to %q", body, got)
		}
		sigs, err := fx.w.AddCheckpoint(body)
		if err == nil {
			if _, err := witness.ParseRequest(body); err != nil {
				t.Fatalf("cosigned a request that does not parse: %q", body)
			}
			if len(sigs) == 0 {
				t.Fatal("cosigned with no signature line")
			}
			return
		}
		switch s := status(t, err); s {
		case 400, 403, 404, 409, 422:
		default:
			t.Fatalf("status %d for %q", s, body)
		}
	})
}
