package cluster

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// TestCosignStreamWait follows a stream served by a test server that sends
// the notes of sizes 5 and 7: a gathering gets the note of 7 from it,
// learns at once that 6 was skipped (and asks instead), and after the
// stream ends (a bad frame) the next one is told to ask too.
func TestCosignStreamWait(t *testing.T) {
	skey, _, err := notary.GenerateKey("node-2")
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := notary.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	noteOf := func(size uint64) []byte {
		cp, err := notary.Checkpoint{Origin: "example.org/log", Size: size}.Sign(s)
		if err != nil {
			t.Fatal(err)
		}
		return cp.Note
	}
	send := make(chan []byte)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/checkpoint/stream" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for {
			select {
			case frame := <-send:
				w.Write(frame)
				w.(http.Flusher).Flush()
			case <-r.Context().Done():
				return
			}
		}
	}))
	defer srv.Close()
	streams := newCosignStreams(http.DefaultClient)
	defer streams.close()
	ctx := context.Background()
	if _, ok := streams.wait(ctx, "node-2", srv.URL, 5, time.Second); ok {
		t.Fatal("a note from a stream not open yet")
	}
	frame := func(n []byte) []byte { return fmt.Appendf(nil, "%d\n%s", len(n), n) }
	send <- []byte("0\n") // a keep-alive: the stream is open once it is read
	send <- frame(noteOf(5))
	got, ok := streams.wait(ctx, "node-2", srv.URL, 5, 10*time.Second)
	if !ok || !bytes.Equal(got, noteOf(5)) {
		t.Fatalf("size 5 from the stream: %v %q", ok, got)
	}
	go func() { send <- frame(noteOf(7)) }()
	got, ok = streams.wait(ctx, "node-2", srv.URL, 7, 10*time.Second)
	if !ok || !bytes.Equal(got, noteOf(7)) {
		t.Fatalf("size 7 from the stream: %v %q", ok, got)
	}
	start := time.Now()
	if _, ok := streams.wait(ctx, "node-2", srv.URL, 6, 10*time.Second); ok || time.Since(start) > 5*time.Second {
		t.Fatalf("size 6, which the stream passed: %v after %v", ok, time.Since(start))
	}
	send <- []byte("99999999\n") // beyond maxStreamNote: the reader stops
	streams.mu.Lock()
	st := streams.by["node-2"]
	streams.mu.Unlock()
	for { // the reader closes changed when it stops
		st.mu.Lock()
		up, changed := st.up, st.changed
		st.mu.Unlock()
		if !up {
			break
		}
		<-changed
	}
	if _, ok := streams.wait(ctx, "node-2", srv.URL, 8, time.Second); ok {
		t.Fatal("a note from a stream that ended")
	}
}

// FuzzReadStreamNote: a checkpoint stream's frames, whatever a peer
// sends, give a note of the stated length, a keep-alive or an error, and
// never more than maxStreamNote bytes.
func FuzzReadStreamNote(f *testing.F) {
	f.Add([]byte("0\n"))
	f.Add([]byte("5\nhello"))
	f.Add([]byte("-1\n"))
	f.Add([]byte("99999999\n"))
	f.Add([]byte("3\nab"))
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReader(bytes.NewReader(in))
		for range 4 {
			n, err := readStreamNote(br)
			if err != nil {
				return
			}
			if len(n) > maxStreamNote {
				t.Fatalf("a note of %d bytes", len(n))
			}
		}
	})
}

// TestGatherKeepsOnlyVerifiedSignatures: the leader serves a member's
// signature only when it verifies with that member's key over the
// leader's own checkpoint, and nothing else of what the member sent. A
// follower answering with its name but another key, with a checkpoint of
// another root, or with a line forged for a witness, adds nothing; an
// honest one adds its line alone.
func TestGatherKeepsOnlyVerifiedSignatures(t *testing.T) {
	key := func(name string) (note.Signer, string) {
		skey, vkey, err := notary.GenerateKey(name)
		if err != nil {
			t.Fatal(err)
		}
		s, _, err := notary.NewSigner(skey)
		if err != nil {
			t.Fatal(err)
		}
		return s, vkey
	}
	leaderKey, leaderVKey := key("node-1")
	followerKey, followerVKey := key("node-2")
	impostor, _ := key("node-2") // the same name, another key
	witness, _ := key("witness-1")
	body := notary.Checkpoint{Origin: "example.org/log", Size: 9, Root: notary.Hash{1}, Timestamp: 1}
	cp, err := body.Sign(leaderKey)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(c notary.Checkpoint, signers ...note.Signer) []byte {
		sc, err := c.Sign(signers...)
		if err != nil {
			t.Fatal(err)
		}
		return sc.Note
	}
	other := body
	other.Root = notary.Hash{2}
	for _, c := range []struct {
		name   string
		answer []byte
		ok     bool
	}{
		{"honest", sign(body, followerKey), true},
		{"honest, with a forged witness line", sign(body, followerKey, witness), true},
		{"another key under the member's name", sign(body, impostor), false},
		{"another root", sign(other, followerKey), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.Write(c.answer)
			}))
			defer srv.Close()
			var counted []string
			l := ledger{self: "node-1", client: srv.Client(), counted: func(via string) { counted = append(counted, via) }}
			members := []notaryapi.MemberInfo{
				{Member: notaryapi.Member{ID: "node-1", VerifierKey: leaderVKey}},
				{Member: notaryapi.Member{ID: "node-2", HTTPAddr: srv.URL, VerifierKey: followerVKey}},
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := l.gather(ctx, cp, 2, members)
			if !c.ok {
				if err == nil {
					t.Fatalf("served %q", got)
				}
				if !slices.Contains(counted, "refused") {
					t.Errorf("counted %v, want a refusal", counted)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var verifiers []note.Verifier
			for _, k := range []string{leaderVKey, followerVKey} {
				v, err := note.NewVerifier(k)
				if err != nil {
					t.Fatal(err)
				}
				verifiers = append(verifiers, v)
			}
			policy := notary.Policy{Origin: "example.org/log", MinSignatures: 2, Verifiers: verifiers}
			if _, err := notary.OpenCheckpoint(got, policy); err != nil {
				t.Fatalf("the cosigned note %q: %v", got, err)
			}
			if bytes.Contains(got, []byte("witness-1")) {
				t.Fatalf("the leader served a line the follower forged: %q", got)
			}
		})
	}
}
