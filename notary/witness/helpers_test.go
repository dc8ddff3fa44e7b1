package witness_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"filippo.io/torchwood"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/witness"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const (
	testOrigin = "notary.test/log"
	// baseTime is a fixed clock: 2026-11-21T12:00:00Z.
	baseTime int64 = 1795262400000
)

// testLog is a real notary log and the key that signs its checkpoints.
type testLog struct {
	t      testing.TB
	origin string
	log    *notary.Log
	signer note.Signer
	vkey   string
	next   int // seed of the next leaf
}

func newTestLog(t testing.TB, origin, keyName string) *testLog {
	t.Helper()
	skey, vkey, err := notary.GenerateKey(keyName)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := notary.Open(notary.NewMemoryStore())
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{t: t, origin: origin, log: l, signer: s, vkey: vkey}
}

// fork returns a log of the same origin and key that holds the first n
// leaves of l and then grows apart from it.
func (l *testLog) fork(n int) *testLog {
	f := &testLog{t: l.t, origin: l.origin, signer: l.signer, vkey: l.vkey}
	var err error
	if f.log, err = notary.Open(notary.NewMemoryStore()); err != nil {
		l.t.Fatal(err)
	}
	f.grow(n)
	f.next = 1 << 40 // different leaves from here on
	return f
}

// grow appends n leaves.
func (l *testLog) grow(n int) {
	l.t.Helper()
	leaves := make([]notary.Leaf, n)
	for i := range leaves {
		var doc [8]byte
		binary.BigEndian.PutUint64(doc[:], uint64(l.next))
		leaves[i] = notary.Leaf{Kind: notary.KindDocument, Commitment: notary.Commit(notary.Salt{}, doc[:]), Timestamp: baseTime + int64(l.next)}
		l.next++
	}
	if _, err := l.log.Append(leaves, nil); err != nil {
		l.t.Fatal(err)
	}
}

// checkpoint signs a checkpoint of the log's head, with signers (the
// log's key when none are given).
func (l *testLog) checkpoint(signers ...note.Signer) []byte {
	l.t.Helper()
	if len(signers) == 0 {
		signers = []note.Signer{l.signer}
	}
	head := l.log.Head()
	cp, err := notary.Checkpoint{Origin: l.origin, Size: head.Size, Root: head.Root, Timestamp: baseTime + int64(head.Size)}.Sign(signers...)
	if err != nil {
		l.t.Fatal(err)
	}
	return cp.Note
}

// request is the add-checkpoint body for the log's head, from old.
func (l *testLog) request(old uint64) []byte {
	l.t.Helper()
	return witness.Request{OldSize: old, Proof: l.proof(old), Checkpoint: l.checkpoint()}.Marshal()
}

// proof is the consistency proof from old to the head (empty from 0).
func (l *testLog) proof(old uint64) []tlog.Hash {
	l.t.Helper()
	if old == 0 {
		return nil
	}
	p, err := l.log.ConsistencyProof(old, l.log.Head().Size)
	if err != nil {
		l.t.Fatal(err)
	}
	out := make([]tlog.Hash, len(p))
	for i, h := range p {
		out[i] = tlog.Hash(h)
	}
	return out
}

func (l *testLog) verifier() note.Verifier {
	v, err := note.NewVerifier(l.vkey)
	if err != nil {
		l.t.Fatal(err)
	}
	return v
}

// fixture is a witness over a data directory, with its key.
type fixture struct {
	t      testing.TB
	dir    string
	skey   string
	logs   []witness.Log
	signer *torchwood.CosignatureSigner
	w      *witness.Witness
}

func newFixture(t testing.TB, logs ...*testLog) *fixture {
	t.Helper()
	skey, _, err := notary.GenerateKey("witness.test")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, dir: t.TempDir(), skey: skey}
	for _, l := range logs {
		f.logs = append(f.logs, witness.Log{Origin: l.origin, Verifiers: []note.Verifier{l.verifier()}})
	}
	f.restart()
	t.Cleanup(func() { f.w.Close() })
	return f
}

// restart opens a new witness over the same data directory: what a new
// process would start from.
func (f *fixture) restart() {
	f.t.Helper()
	s, err := witness.NewSigner(f.skey)
	if err != nil {
		f.t.Fatal(err)
	}
	f.signer = s
	if f.w != nil {
		f.w.Close()
	}
	if f.w, err = witness.New(witness.Config{Dir: f.dir, Signer: s, Logs: f.logs}); err != nil {
		f.t.Fatal(err)
	}
}

// specVerifier is a cosignature/v1 verifier written from
// c2sp.org/tlog-cosignature and the witness's verifier key alone.
type specVerifier struct {
	name string
	hash uint32
	pub  ed25519.PublicKey
}

func newSpecVerifier(t testing.TB, vkey string) *specVerifier {
	t.Helper()
	name, rest, _ := strings.Cut(vkey, "+")
	hash16, key64, _ := strings.Cut(rest, "+")
	key, err := base64.StdEncoding.DecodeString(key64)
	if err != nil || len(key) != 33 || key[0] != 0x04 {
		t.Fatalf("verifier key %q is not a cosignature/v1 key", vkey)
	}
	hash, err := strconv.ParseUint(hash16, 16, 32)
	if err != nil {
		t.Fatal(err)
	}
	id := sha256.Sum256(append([]byte(name+"\n"), key...))
	if uint32(hash) != binary.BigEndian.Uint32(id[:4]) {
		t.Fatalf("verifier key %q: key ID %s, computed %x", vkey, hash16, id[:4])
	}
	return &specVerifier{name: name, hash: uint32(hash), pub: ed25519.PublicKey(key[1:])}
}

func (v *specVerifier) Name() string    { return v.name }
func (v *specVerifier) KeyHash() uint32 { return v.hash }
func (v *specVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	ts := binary.BigEndian.Uint64(sig)
	if ts == 0 || ts > 1<<63-1 {
		return false
	}
	signed := fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", ts, msg)
	return ed25519.Verify(v.pub, signed, sig[8:])
}

// cosigned opens the checkpoint with the cosignature lines added, under
// the verifier v only: it fails unless the cosignature verifies.
func cosigned(t testing.TB, checkpoint, sigs []byte, v note.Verifier) *note.Note {
	t.Helper()
	if len(sigs) == 0 || !bytes.HasPrefix(sigs, []byte("— ")) || sigs[len(sigs)-1] != '\n' {
		t.Fatalf("response %q is not note signature lines", sigs)
	}
	n, err := note.Open(append(append([]byte{}, checkpoint...), sigs...), note.VerifierList(v))
	if err != nil {
		t.Fatalf("the cosignature does not verify: %v", err)
	}
	return n
}

func mustKey(t testing.TB) string {
	t.Helper()
	skey, _, err := notary.GenerateKey("witness.test")
	if err != nil {
		t.Fatal(err)
	}
	return skey
}
