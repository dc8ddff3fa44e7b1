package witness_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"filippo.io/torchwood"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/witness"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// status returns the HTTP status of an AddCheckpoint outcome.
func status(t testing.TB, err error) int {
	t.Helper()
	if err == nil {
		return http.StatusOK
	}
	var e *witness.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not a *witness.Error", err)
	}
	return e.Status
}

func mustCosign(t testing.TB, w *witness.Witness, body []byte) []byte {
	t.Helper()
	sigs, err := w.AddCheckpoint(body)
	if err != nil {
		t.Fatalf("add-checkpoint refused: %v", err)
	}
	return sigs
}

func expect(t testing.TB, w *witness.Witness, body []byte, want int, mention string) *witness.Error {
	t.Helper()
	sigs, err := w.AddCheckpoint(body)
	if got := status(t, err); got != want {
		t.Fatalf("status %d (%v), want %d", got, err, want)
	}
	if sigs != nil {
		t.Fatalf("refused, yet cosignatures returned: %q", sigs)
	}
	if !strings.Contains(err.Error(), mention) {
		t.Errorf("error %q does not mention %q", err, mention)
	}
	var e *witness.Error
	errors.As(err, &e)
	return e
}

// TestAddCheckpointRoundTrip: a checkpoint of a real notary log is
// cosigned from size 0, then a larger one with a real consistency proof;
// each cosignature verifies with a cosignature/v1 verifier written from
// the spec and with torchwood's, over the whole checkpoint body including
// its timestamp extension line.
func TestAddCheckpointRoundTrip(t *testing.T) {
	l := newTestLog(t, testOrigin, "node-1")
	f := newFixture(t, l)
	spec := newSpecVerifier(t, f.w.VerifierKey())
	if spec.name != "witness.test" {
		t.Fatalf("witness key name %q", spec.name)
	}
	l.grow(5)
	for _, old := range []uint64{0, 5} {
		if old == 5 {
			l.grow(7)
		}
		body := l.request(old)
		req, err := witness.ParseRequest(body)
		if err != nil {
			t.Fatal(err)
		}
		sigs := mustCosign(t, f.w, body)
		n := cosigned(t, req.Checkpoint, sigs, spec)
		if len(n.Sigs) != 1 || n.Sigs[0].Name != "witness.test" {
			t.Fatalf("signatures %+v", n.Sigs)
		}
		if !strings.Contains(n.Text, "\ntimestamp ") {
			t.Fatalf("the cosigned body lost its extension line: %q", n.Text)
		}
		cosigned(t, req.Checkpoint, sigs, f.signer.Verifier())
		if ts, err := torchwood.CosignatureTimestamp(n.Sigs[0]); err != nil || ts <= 0 {
			t.Fatalf("cosignature timestamp %d, %v", ts, err)
		}
		// Another body does not verify under the cosignature.
		other := bytes.Replace(req.Checkpoint, []byte("\ntimestamp "), []byte("\ntimestamp 9"), 1)
		if _, err := note.Open(append(other, sigs...), note.VerifierList(spec)); err == nil {
			t.Fatal("the cosignature verifies over another body")
		}
	}
	size, root, ok := f.w.Known(testOrigin)
	if !ok || size != 12 || root != tlog.Hash(l.log.Head().Root) {
		t.Fatalf("known %d %x %v, want 12 and the log's root", size, root, ok)
	}
	// The same checkpoint again is cosigned again.
	mustCosign(t, f.w, l.request(12))
}

// TestConflictGivesKnownSize: an old size other than the last cosigned
// gets 409 with that size, as text/x.tlog.size, over HTTP.
func TestConflictGivesKnownSize(t *testing.T) {
	l := newTestLog(t, testOrigin, "node-1")
	f := newFixture(t, l)
	srv := httptest.NewServer(f.w)
	defer srv.Close()
	post := func(body []byte) (int, string, string) {
		resp, err := http.Post(srv.URL+"/add-checkpoint", "text/plain", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	l.grow(5)
	if code, _, body := post(l.request(0)); code != 200 || !strings.HasPrefix(body, "— witness.test ") {
		t.Fatalf("first checkpoint: %d %q", code, body)
	}
	l.grow(3)
	for _, old := range []uint64{0, 3, 6} {
		body := witness.Request{OldSize: old, Proof: l.proof(old), Checkpoint: l.checkpoint()}.Marshal()
		code, ctype, text := post(body)
		if code != http.StatusConflict || ctype != "text/x.tlog.size" || text != "5\n" {
			t.Errorf("old %d: %d %q %q, want 409 text/x.tlog.size \"5\\n\"", old, code, ctype, text)
		}
	}
	if code, _, _ := post(l.request(5)); code != 200 {
		t.Fatalf("the right old size: %d", code)
	}
	if code, _, text := post(l.request(0)); code != http.StatusConflict || text != "8\n" {
		t.Fatalf("after 8: %d %q", code, text)
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`telenotary_witness_requests_total{code="409"} 4`, `telenotary_witness_cosigned_size{origin="notary.test/log"} 8`} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	resp, err = http.Get(srv.URL + "/add-checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /add-checkpoint: %d", resp.StatusCode)
	}
}

// TestForkRefusedAcrossRestart: a checkpoint of a fork of the log (the
// same key, the same first leaves, then others) is refused and not
// cosigned, whether it claims the size last cosigned or a larger one with
// the fork's own consistency proof, before and after the witness restarts
// from its data directory; the real log goes on being cosigned.
func TestForkRefusedAcrossRestart(t *testing.T) {
	l := newTestLog(t, testOrigin, "node-1")
	f := newFixture(t, l)
	l.grow(3)
	fork := l.fork(3)
	l.grow(2)
	fork.grow(2)
	mustCosign(t, f.w, l.request(0)) // size 5
	fork5 := fork.request(5)
	fork.grow(4)
	fork9 := fork.request(5)
	for round := range 2 {
		if e := expect(t, f.w, fork5, http.StatusConflict, "another root"); e.Known != 5 {
			t.Errorf("round %d: 409 names size %d, want 5", round, e.Known)
		}
		expect(t, f.w, fork9, http.StatusUnprocessableEntity, "does not verify")
		if size, root, _ := f.w.Known(testOrigin); size != 5 || root != tlog.Hash(mustRoot(t, l.log, 5)) {
			t.Fatalf("round %d: known %d %x, want the real log's size 5", round, size, root)
		}
		f.restart()
	}
	l.grow(4)
	mustCosign(t, f.w, l.request(5))
	f.restart()
	if size, _, _ := f.w.Known(testOrigin); size != 9 {
		t.Fatalf("after restart the witness knows size %d, want 9", size)
	}
	expect(t, f.w, fork.request(9), http.StatusConflict, "another root")
}

func mustRoot(t testing.TB, l *notary.Log, size uint64) notary.Hash {
	t.Helper()
	r, err := l.RootAt(size)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRefusals: each wrong request gets the status c2sp.org/tlog-witness
// gives it, with a message naming what is wrong, and changes nothing.
func TestRefusals(t *testing.T) {
	l := newTestLog(t, testOrigin, "node-1")
	other := newTestLog(t, "other.test/log", "node-1")
	f := newFixture(t, l)
	l.grow(4)
	mustCosign(t, f.w, l.request(0))
	l.grow(6)
	other.grow(4)

	impostor := newTestLog(t, testOrigin, "node-1") // same name, another key
	tampered := l.checkpoint()
	i := bytes.LastIndex(tampered, []byte(" ")) + 10
	if tampered[i] == 'A' {
		tampered[i] = 'B'
	} else {
		tampered[i] = 'A'
	}
	badProof := l.proof(4)
	badProof[0][0] ^= 1
	cases := []struct {
		name    string
		body    []byte
		status  int
		mention string
	}{
		{"unknown log", other.request(0), 404, `unknown log "other.test/log"`},
		{"signed by another key", witness.Request{OldSize: 4, Proof: l.proof(4), Checkpoint: l.checkpoint(impostor.signer)}.Marshal(), 403, "no signature by a key trusted"},
		{"tampered signature", witness.Request{OldSize: 4, Proof: l.proof(4), Checkpoint: tampered}.Marshal(), 403, "signature"},
		{"bad proof", witness.Request{OldSize: 4, Proof: badProof, Checkpoint: l.checkpoint()}.Marshal(), 422, "does not verify"},
		{"proof too short", witness.Request{OldSize: 4, Proof: l.proof(4)[1:], Checkpoint: l.checkpoint()}.Marshal(), 422, "does not verify"},
		{"old above size", witness.Request{OldSize: 11, Checkpoint: l.checkpoint()}.Marshal(), 400, "above the checkpoint's size"},
		{"no empty line", []byte("old 4\n"), 400, "no empty line"},
		{"no old line", append([]byte("new 4\n\n"), l.checkpoint()...), 400, `"old <size>"`},
		{"leading zero", append([]byte("old 04\n\n"), l.checkpoint()...), 400, "leading zeroes"},
		{"not a hash", append([]byte("old 4\nxyz\n\n"), l.checkpoint()...), 400, "proof line 1"},
		{"no checkpoint", []byte("old 4\n\n"), 400, "no checkpoint"},
		{"not a note", []byte("old 4\n\n" + testOrigin + "\n10\n"), 400, "checkpoint note"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, f.w, tc.body, tc.status, tc.mention)
			if size, _, _ := f.w.Known(testOrigin); size != 4 {
				t.Fatalf("the refused request moved the witness to size %d", size)
			}
		})
	}
	mustCosign(t, f.w, l.request(4))
}

// TestConcurrentRequestsSerialized: of two requests from the same old size
// at once, one is cosigned and the other gets 409, whatever their order:
// the check and the update are atomic, and the state never rolls back.
func TestConcurrentRequestsSerialized(t *testing.T) {
	l := newTestLog(t, testOrigin, "node-1")
	f := newFixture(t, l)
	l.grow(2)
	mustCosign(t, f.w, l.request(0))
	l.grow(3)
	a := l.request(2)
	l.grow(3)
	b := l.request(2)
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i, body := range [][]byte{a, b} {
		wg.Go(func() {
			_, err := f.w.AddCheckpoint(body)
			codes[i] = status(t, err)
		})
	}
	wg.Wait()
	if codes[0]+codes[1] != 200+409 {
		t.Fatalf("statuses %v, want one 200 and one 409", codes)
	}
	size, _, _ := f.w.Known(testOrigin)
	if (codes[0] == 200 && size != 5) || (codes[1] == 200 && size != 8) {
		t.Fatalf("statuses %v, known size %d", codes, size)
	}
}

// TestDamagedStateRefused: a state file that does not parse stops the
// witness from starting rather than letting it cosign from size 0.
func TestDamagedStateRefused(t *testing.T) {
	l := newTestLog(t, testOrigin, "node-1")
	f := newFixture(t, l)
	l.grow(3)
	mustCosign(t, f.w, l.request(0))
	files, _ := filepath.Glob(filepath.Join(f.dir, "*.witness"))
	if len(files) != 1 {
		t.Fatalf("state files %v", files)
	}
	f.w.Close()
	b, _ := os.ReadFile(files[0])
	if !bytes.Contains(b, []byte("\n3\n")) {
		t.Fatalf("state file %q does not hold size 3", b)
	}
	for what, damaged := range map[string][]byte{
		"507 bytes, want 512": b[:len(b)-5],
		"checksum":            bytes.Replace(b, []byte("\n3\n"), []byte("\n9\n"), 1),
		"no checksum":         make([]byte, len(b)),
	} {
		if err := os.WriteFile(files[0], damaged, 0o600); err != nil {
			t.Fatal(err)
		}
		s, _ := witness.NewSigner(f.skey)
		if _, err := witness.New(witness.Config{Dir: f.dir, Signer: s, Logs: f.logs}); err == nil || !strings.Contains(err.Error(), "damaged ("+what) {
			t.Errorf("New over a state file with a bad %s: %v", what, err)
		}
	}
	if err := os.WriteFile(files[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	f.restart()
	if size, _, _ := f.w.Known(testOrigin); size != 3 {
		t.Fatalf("the state file restored: size %d, want 3", size)
	}
}

func TestParseLogs(t *testing.T) {
	a := newTestLog(t, "a.test/log", "node-1")
	b := newTestLog(t, "a.test/log", "node-2")
	c := newTestLog(t, "c.test/log", "node-1")
	logs, err := witness.ParseLogs([]byte("# logs\n\na.test/log " + a.vkey + "\nc.test/log " + c.vkey + "\n a.test/log\t" + b.vkey + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != 2 || logs[0].Origin != "a.test/log" || len(logs[0].Verifiers) != 2 || logs[1].Origin != "c.test/log" || len(logs[1].Verifiers) != 1 {
		t.Fatalf("logs %+v", logs)
	}
	skey, _, _ := notary.GenerateKey("n")
	for text, want := range map[string]string{
		"":                                "no logs",
		"a.test/log":                      "line 1",
		"a.test/log " + skey:              "private",
		"a.test/log notakey":              "not a verifier key",
		"a.test/log " + a.vkey + " extra": "line 1",
	} {
		if _, err := witness.ParseLogs([]byte(text)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseLogs(%q) = %v, want an error mentioning %q", text, err, want)
		}
	}
}

func TestNewSigner(t *testing.T) {
	skey, vkey, _ := notary.GenerateKey("witness.test")
	s, err := witness.NewSigner(skey + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "witness.test" || s.Verifier().String() == vkey {
		t.Fatalf("signer %q, verifier key %q (the note key is %q)", s.Name(), s.Verifier().String(), vkey)
	}
	for _, bad := range []string{"", vkey, "PRIVATE+KEY+x+00000000+AAAA"} {
		if _, err := witness.NewSigner(bad); err == nil {
			t.Errorf("NewSigner(%q) accepted", bad)
		}
	}
}

// TestBodyBounded: a body over MaxRequestSize is refused with 413 without
// being read whole, and unknown paths are 404.
func TestBodyBounded(t *testing.T) {
	l := newTestLog(t, testOrigin, "node-1")
	f := newFixture(t, l)
	srv := httptest.NewServer(f.w)
	defer srv.Close()
	big := append([]byte("old 0\n\n"), bytes.Repeat([]byte("x"), witness.MaxRequestSize)...)
	resp, err := http.Post(srv.URL+"/add-checkpoint", "text/plain", bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "more than 65536 bytes") {
		t.Fatalf("a body of %d bytes: %d %q", len(big), resp.StatusCode, b)
	}
	resp, err = http.Get(srv.URL + "/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /checkpoint: %d", resp.StatusCode)
	}
}

// TestForkReceiptFailsWitnessPolicy: a log that forks shows one history to
// the witness, which cosigns it, and another to someone else. A receipt
// from the witnessed history verifies under a policy that needs the
// witness; a receipt from the fork, properly signed by the log's key, does
// not, because the witness never cosigns a checkpoint inconsistent with
// what it cosigned.
func TestForkReceiptFailsWitnessPolicy(t *testing.T) {
	l := newTestLog(t, testOrigin, "node-1")
	f := newFixture(t, l)
	l.grow(4)
	fork := l.fork(4)
	l.grow(3)
	fork.grow(5)
	receiptOf := func(tl *testLog, index uint64, cosigs []byte) *notary.Receipt {
		t.Helper()
		note := append(tl.checkpoint(), cosigs...)
		cp, err := notary.ParseSignedCheckpoint(note)
		if err != nil {
			t.Fatal(err)
		}
		r, err := tl.log.Receipt(index, cp)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	genuine := receiptOf(l, 6, mustCosign(t, f.w, l.request(0)))
	if _, err := f.w.AddCheckpoint(fork.request(0)); err == nil {
		t.Fatal("the witness cosigned the fork")
	}
	// A leaf both histories hold, proven into the fork's checkpoint: its
	// operator has no cosignature to add.
	forked := receiptOf(fork, 2, nil)

	policy := fmt.Sprintf("origin %s\nnode %s\nnode-signatures 1\nwitness w1 %s\nquorum w1\n", testOrigin, l.vkey, f.w.VerifierKey())
	pf, err := notary.ParsePolicy([]byte(policy))
	if err != nil {
		t.Fatalf("%v\n%s", err, policy)
	}
	if _, err := notary.Verify(notary.Claim{Receipt: genuine, Commitment: genuine.Leaf.Commitment}, pf.Policy); err != nil {
		t.Fatalf("the witnessed receipt: %v", err)
	}
	_, err = notary.Verify(notary.Claim{Receipt: forked, Commitment: forked.Leaf.Commitment}, pf.Policy)
	if !errors.Is(err, notary.ErrTooFewSignatures) || !strings.Contains(err.Error(), "witness quorum") {
		t.Fatalf("the fork's receipt under a policy that needs the witness: %v", err)
	}
	// Without the witness in the policy, the log's key alone vouches for
	// either history: the policy is what catches the fork.
	alone, err := notary.ParsePolicy(fmt.Appendf(nil, "origin %s\nnode %s\nnode-signatures 1\n", testOrigin, l.vkey))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := notary.Verify(notary.Claim{Receipt: forked, Commitment: forked.Leaf.Commitment}, alone.Policy); err != nil {
		t.Fatalf("the fork's receipt under the log's key alone: %v", err)
	}
}
