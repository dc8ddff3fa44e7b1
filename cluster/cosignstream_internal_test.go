package cluster

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

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
