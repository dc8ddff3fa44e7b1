package cluster

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"golang.org/x/mod/sumdb/note"
)

// memSink is a raft.SnapshotSink in memory.
type memSink struct{ bytes.Buffer }

func (*memSink) ID() string                    { return "test" }
func (*memSink) Cancel() error                 { return nil }
func (*memSink) Close() error                  { return nil }
func (s *memSink) Write(p []byte) (int, error) { return s.Buffer.Write(p) }

func testFSM(t testing.TB, dir string) *fsm {
	t.Helper()
	skey, _, err := note.GenerateKey(nil, "n")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	f, err := openFSM(dir, signer, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.close() })
	return f
}

// TestRestoreChecksTheRoot feeds Restore a snapshot whose leaves were
// altered: it must refuse it and keep serving the log it had.
func TestRestoreChecksTheRoot(t *testing.T) {
	src := testFSM(t, t.TempDir())
	src.ApplyBatch([]*raft.Log{{Index: 1, Type: raft.LogCommand, Data: encodeJSONCommand(cmdGenesis, genesis{ClusterID: "c", Origin: "o.test/log"})}})
	var entries []notaryapi.Entry
	for i := range 100 {
		entries = append(entries, notaryapi.Entry{Kind: notary.KindDocument, Commitment: notary.Commitment{byte(i), 1}})
	}
	src.ApplyBatch([]*raft.Log{{Index: 2, Type: raft.LogCommand, Data: encodeNotarize(1795262400000, entries)}})
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	good := sink.Bytes()

	dstDir := t.TempDir()
	dst := testFSM(t, dstDir)
	before := dst.log.Head()
	for name, edit := range map[string]func([]byte){
		"leaf byte flipped": func(b []byte) { b[lastCommitment(b)] ^= 1 },
		// Only the root can catch this one: the digest is made to match.
		"leaf and digest rewritten": func(b []byte) {
			b[lastCommitment(b)] ^= 1
			sum := sha256.Sum256(b[:len(b)-32])
			copy(b[len(b)-32:], sum[:])
		},
		"digest flipped": func(b []byte) { b[len(b)-1] ^= 1 },
		"truncated":      nil,
		"not a snapshot": func(b []byte) { b[0] = 'X' },
	} {
		bad := bytes.Clone(good)
		if edit == nil {
			bad = bad[:len(bad)/2]
		} else {
			edit(bad)
		}
		if err := dst.Restore(io.NopCloser(bytes.NewReader(bad))); err == nil {
			t.Fatalf("%s: Restore accepted it", name)
		}
		if h := dst.log.Head(); h.Size != before.Size || h.Root != before.Root {
			t.Fatalf("%s: a refused restore changed the log", name)
		}
		if entries, _ := filepath.Glob(filepath.Join(dstDir, "log-*")); len(entries) != 1 {
			t.Fatalf("%s: a refused restore left %v", name, entries)
		}
	}
	if err := dst.Restore(io.NopCloser(bytes.NewReader(good))); err != nil {
		t.Fatal(err)
	}
	if h, want := dst.log.Head(), src.log.Head(); h.Size != want.Size || h.Root != want.Root {
		t.Fatalf("restored head %+v, want %+v", h, want)
	}
	if _, err := os.Stat(filepath.Join(dstDir, "log-1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the replaced log directory is still there: %v", err)
	}
}

// lastCommitment is the offset of a byte of the last leaf's commitment in
// a snapshot: leaves end 32 bytes (the digest) before its end.
func lastCommitment(b []byte) int { return len(b) - 32 - notary.LeafSize + 2 + 5 }
