package witness_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/witness"
	"golang.org/x/mod/sumdb/note"
)

// TestNewVerifier: the verifier parsed from a witness's printed key is the
// key's own (same string, and it verifies the witness's cosignatures);
// keys of another algorithm or with a wrong key hash are refused.
func TestNewVerifier(t *testing.T) {
	l := newTestLog(t, testOrigin, "node-1")
	f := newFixture(t, l)
	v, err := witness.NewVerifier(f.w.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	if v.String() != f.w.VerifierKey() || v.Name() != "witness.test" || v.KeyHash() != f.signer.Verifier().KeyHash() {
		t.Fatalf("verifier %q, want %q", v.String(), f.w.VerifierKey())
	}
	l.grow(3)
	sigs := mustCosign(t, f.w, l.request(0))
	if line, err := witness.VerifyCosignature(l.checkpoint(), sigs, v); err != nil || !bytes.Equal(line, sigs) {
		t.Fatalf("VerifyCosignature: %q, %v", line, err)
	}
	_, noteKey, err := notary.GenerateKey("witness.test")
	if err != nil {
		t.Fatal(err)
	}
	key := f.w.VerifierKey()
	for vkey, want := range map[string]string{
		noteKey: "not a cosignature/v1 key",
		"witness.test+00000000+" + strings.SplitN(key, "+", 3)[2]: "key hash",
		"witness.test":           "not a verifier key",
		"witness.test+0+AAAA":    "not a verifier key",
		"witness.test+01234567+": "not base64",
	} {
		if _, err := witness.NewVerifier(vkey); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewVerifier(%q) = %v, want an error saying %q", vkey, err, want)
		}
	}
}

// TestVerifyCosignature: only a line by the witness's key over this very
// checkpoint is returned; another body, another key under the same name,
// or garbage is an error.
func TestVerifyCosignature(t *testing.T) {
	l := newTestLog(t, testOrigin, "node-1")
	f := newFixture(t, l)
	other := newFixture(t, l) // same name, another key
	v := f.signer.Verifier()
	l.grow(4)
	cp := l.checkpoint()
	sigs := mustCosign(t, f.w, l.request(0))
	foreign := mustCosign(t, other.w, l.request(0))
	if _, err := witness.VerifyCosignature(cp, foreign, v); err == nil {
		t.Fatal("a cosignature by another key under the same name was accepted")
	}
	// Lines of other witnesses alongside are ignored.
	if line, err := witness.VerifyCosignature(cp, append(append([]byte{}, sigs...), []byte("— someone.else AAAAAAA=\n")...), v); err != nil || !bytes.Equal(line, sigs) {
		t.Fatalf("with another witness's line: %q, %v", line, err)
	}
	l.grow(5)
	if _, err := witness.VerifyCosignature(l.checkpoint(), sigs, v); err == nil {
		t.Fatal("a cosignature of another checkpoint was accepted")
	}
	for _, garbage := range []string{"", "garbage", "garbage\n", "— witness.test !!!\n", string(sigs[:len(sigs)-1])} {
		if _, err := witness.VerifyCosignature(cp, []byte(garbage), v); err == nil {
			t.Errorf("answer %q accepted", garbage)
		}
	}
}

// TestAddCheckpointClient: the client posts to <prefix>/add-checkpoint and
// reads a 409's size, and other refusals as their status.
func TestAddCheckpointClient(t *testing.T) {
	l := newTestLog(t, testOrigin, "node-1")
	f := newFixture(t, l)
	srv := httptest.NewServer(f.w)
	defer srv.Close()
	ctx := context.Background()
	l.grow(3)
	req, err := witness.ParseRequest(l.request(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := witness.AddCheckpoint(ctx, srv.Client(), srv.URL+"/", req); err != nil {
		t.Fatal(err)
	}
	l.grow(6)
	req, _ = witness.ParseRequest(l.request(0)) // the witness is at 3
	var refused *witness.RefusedError
	if _, err := witness.AddCheckpoint(ctx, srv.Client(), srv.URL, req); !errors.As(err, &refused) || refused.Status != http.StatusConflict || refused.Known != 3 {
		t.Fatalf("stale old size: %v", err)
	}
	req, _ = witness.ParseRequest(l.request(3))
	if _, err := witness.AddCheckpoint(ctx, srv.Client(), srv.URL, req); err != nil {
		t.Fatal(err)
	}
	unknown := newTestLog(t, "unknown.test/log", "node-1")
	unknown.grow(1)
	req, _ = witness.ParseRequest(unknown.request(0))
	if _, err := witness.AddCheckpoint(ctx, srv.Client(), srv.URL, req); !errors.As(err, &refused) || refused.Status != http.StatusNotFound {
		t.Fatalf("unknown log: %v", err)
	}
	// A 409 whose body is not a size is an error of its own.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", witness.ContentTypeSize)
		w.WriteHeader(http.StatusConflict)
		w.Write([]byte("007\n"))
	}))
	defer bad.Close()
	if _, err := witness.AddCheckpoint(ctx, bad.Client(), bad.URL, req); err == nil || errors.As(err, &refused) {
		t.Fatalf("409 with a bad size: %v", err)
	}
}

// FuzzVerifyCosignature: no answer makes VerifyCosignature panic, and a
// line it returns verifies over the checkpoint under the witness's key.
func FuzzVerifyCosignature(f *testing.F) {
	l := newTestLog(f, testOrigin, "node-1")
	fx := newFixture(f, l)
	l.grow(3)
	cp := l.checkpoint()
	v := fx.signer.Verifier()
	f.Add(mustCosign(f, fx.w, l.request(0)))
	f.Add([]byte("— witness.test AAAA\n"))
	f.Add([]byte("garbage\n"))
	f.Fuzz(func(t *testing.T, answer []byte) {
		line, err := witness.VerifyCosignature(cp, answer, v)
		if err != nil {
			return
		}
		if _, err := note.Open(append(append([]byte{}, cp...), line...), note.VerifierList(v)); err != nil {
			t.Fatalf("returned line %q does not verify: %v", line, err)
		}
	})
}

// FuzzParseSize: a size body parses only in its one spelling.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0\n", "12\n", "012\n", "12", "-1\n", "9223372036854775808\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := witness.ParseSize(body)
		if err == nil && string(body) != strings.TrimSpace(string(body))+"\n" {
			t.Fatalf("%q parsed as %d", body, n)
		}
	})
}
