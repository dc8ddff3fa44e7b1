package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
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

// snapshotBatch is how many entries one raft command of grow carries.
const snapshotBatch = 1 << 14

// grow applies, from raft index 1, the genesis and then commands of
// snapshotBatch entries until the log holds size leaves; the leaves depend
// on seed and their position only, so two FSMs grown with one seed hold
// the same log, one a prefix of the other's if smaller.
func grow(t testing.TB, f *fsm, seed byte, size int) {
	t.Helper()
	if f.applied.Load() == 0 {
		f.ApplyBatch([]*raft.Log{{Index: 1, Type: raft.LogCommand, Data: encodeJSONCommand(cmdGenesis, genesis{ClusterID: "0123456789abcdef0123456789abcdef", Origin: "snap.test/log"})}})
	}
	for start := int(f.log.Head().Size); start < size; {
		entries := make([]notaryapi.Entry, min(snapshotBatch, size-start))
		for i := range entries {
			entries[i].Kind = notary.KindDocument
			entries[i].Commitment[0] = seed
			binary.BigEndian.PutUint64(entries[i].Commitment[1:], uint64(start+i))
		}
		res := f.ApplyBatch([]*raft.Log{{Index: f.applied.Load() + 1, Type: raft.LogCommand, Data: encodeNotarize(1795262400000+int64(start), entries)}})
		if r := res[0].(*applyResult); r.err != nil {
			t.Fatal(r.err)
		}
		start += len(entries)
	}
	if got := f.log.Head().Size; got != uint64(size) {
		t.Fatalf("grew the log to %d leaves, want %d", got, size)
	}
}

// snapshotOf returns f's snapshot as raft would store it.
func snapshotOf(t testing.TB, f *fsm) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	return sink.Bytes()
}

// TestSnapshotDoesNotCopyTheLog takes a snapshot of a log of a million
// leaves (74 MB of them): it must be the head alone, a few hundred bytes.
func TestSnapshotDoesNotCopyTheLog(t *testing.T) {
	const size = 1 << 20
	f := testFSM(t, t.TempDir())
	grow(t, f, 1, size)
	b := snapshotOf(t, f)
	if len(b) > 4096 {
		t.Fatalf("a snapshot of %d leaves takes %d bytes", size, len(b))
	}
	hdr, magic, err := readSnapshotHeader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if head := f.log.Head(); magic != snapshotMagic || hdr.Size != size || hdr.Root != head.Root || !bytes.Equal(hdr.AppState, head.AppState) {
		t.Fatalf("snapshot %s %+v, want the head %+v", magic, hdr, head)
	}
}

// source returns an FSM grown to size leaves and its snapshot.
func source(t *testing.T, size int) (*fsm, []byte) {
	t.Helper()
	src := testFSM(t, t.TempDir())
	grow(t, src, 1, size)
	return src, snapshotOf(t, src)
}

// peer serves the leaves of src's log as a leafSource, in pages of
// notaryapi.MaxLeavesPage, counting them; alter, when set, may change a
// leaf before it is served.
type peer struct {
	src    *fsm
	served atomic.Uint64
	alter  func(index uint64, lf *notary.Leaf)
}

func (p *peer) leaves(ctx context.Context, members map[string]notaryapi.MemberInfo, from, to uint64, page func([]notary.Leaf) error) error {
	buf := make([]notary.Leaf, notaryapi.MaxLeavesPage)
	for done := from; done < to; {
		n := min(uint64(len(buf)), to-done)
		if err := p.src.ReadLog(func(l *notary.Log) error { return l.Leaves(done, buf[:n]) }); err != nil {
			return err
		}
		if p.alter != nil {
			for i := range buf[:n] {
				p.alter(done+uint64(i), &buf[i])
			}
		}
		p.served.Add(n)
		if err := page(buf[:n]); err != nil {
			return err
		}
		done += n
	}
	return nil
}

// restoreFrom installs snapshot b into f, fetching leaves from src.
func restoreFrom(f, src *fsm, b []byte) (*peer, error) {
	p := &peer{src: src}
	f.peerLeaves = p.leaves
	return p, f.Restore(io.NopCloser(bytes.NewReader(b)))
}

// sameState fails unless f is at src's head, applied index and members,
// and, given one more command, goes on exactly as src does.
func sameState(t *testing.T, f, src *fsm) {
	t.Helper()
	if h, want := f.log.Head(), src.log.Head(); h.Size != want.Size || h.Root != want.Root || !bytes.Equal(h.AppState, want.AppState) {
		t.Fatalf("head %d %s, want %d %s", h.Size, h.Root, want.Size, want.Root)
	}
	if f.applied.Load() != src.applied.Load() {
		t.Fatalf("applied index %d, want %d", f.applied.Load(), src.applied.Load())
	}
	if g, _ := f.clusterInfo(); g == nil || g.Origin != "snap.test/log" {
		t.Fatalf("genesis %+v after the install", g)
	}
	if cp := f.Checkpoint(); cp == nil || cp.Size != src.Checkpoint().Size || cp.Root != src.Checkpoint().Root {
		t.Fatalf("checkpoint %+v, want one of %d leaves", cp, src.log.Head().Size)
	}
	next := []*raft.Log{{Index: src.applied.Load() + 1, Type: raft.LogCommand, Data: encodeNotarize(1, []notaryapi.Entry{{Kind: notary.KindDocument, Commitment: notary.Commitment{0xff, byte(src.applied.Load())}}})}}
	src.ApplyBatch(next)
	f.ApplyBatch(next)
	if h, want := f.log.Head(), src.log.Head(); h.Size != want.Size || h.Root != want.Root {
		t.Fatalf("after one more command: head %d %s, want %d %s", h.Size, h.Root, want.Size, want.Root)
	}
}

// TestInstallFetchesOnlyMissing installs a snapshot into nodes that hold
// a prefix of its log, from none of it to all of it: each fetches exactly
// the leaves it lacks, extends its log in place, and ends at the
// snapshot's root and applied index.
func TestInstallFetchesOnlyMissing(t *testing.T) {
	const size = 50_000
	for _, had := range []int{0, 1, 16_384, 32_768, size} {
		t.Run(fmt.Sprint(had), func(t *testing.T) {
			src, b := source(t, size)
			dir := t.TempDir()
			f := testFSM(t, dir)
			if had > 0 {
				grow(t, f, 1, had)
			}
			p, err := restoreFrom(f, src, b)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.served.Load(); got != uint64(size-had) {
				t.Fatalf("a node with %d of %d leaves fetched %d", had, size, got)
			}
			if f.gen != 1 {
				t.Fatalf("the install moved the log to generation %d: it rebuilt instead of extending", f.gen)
			}
			if _, err := os.Stat(filepath.Join(dir, spoolName)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the spool file is left: %v", err)
			}
			sameState(t, f, src)
		})
	}
}

// TestInstallRebuildsADivergedLog installs a snapshot into a node whose
// log is not a prefix of the snapshot's (other leaves, a longer other log,
// a damaged one): it rebuilds the log from the peers in a new generation
// and removes the old one.
func TestInstallRebuildsADivergedLog(t *testing.T) {
	const size = 20_000
	for _, tc := range []struct {
		name    string
		prepare func(f *fsm)
		fetched uint64
	}{
		{"other leaves", func(f *fsm) { grow(t, f, 2, 5000) }, size - 5000 + size},
		{"a longer other log", func(f *fsm) { grow(t, f, 2, size+10) }, size},
		{"damaged", func(f *fsm) {
			grow(t, f, 1, 5000)
			f.markDamaged(errors.New("test"))
		}, size},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, b := source(t, size)
			dir := t.TempDir()
			f := testFSM(t, dir)
			tc.prepare(f)
			p, err := restoreFrom(f, src, b)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.served.Load(); got != tc.fetched {
				t.Fatalf("fetched %d leaves, want %d", got, tc.fetched)
			}
			if f.gen != 2 {
				t.Fatalf("log generation %d, want a rebuild in 2", f.gen)
			}
			if dirs, _ := filepath.Glob(filepath.Join(dir, "log-*")); len(dirs) != 1 || filepath.Base(dirs[0]) != "log-2" {
				t.Fatalf("log directories %v, want log-2", dirs)
			}
			if f.damaged.Load() != nil {
				t.Fatal("the rebuilt log is still marked damaged")
			}
			sameState(t, f, src)
		})
	}
}

// TestInstallRefusesWrongLeaves installs a snapshot from a peer that
// serves other leaves, or too few: the install fails and the node keeps
// the log, applied index, members and directories it had.
func TestInstallRefusesWrongLeaves(t *testing.T) {
	const size = 20_000
	for name, serve := range map[string]func(src *fsm) leafSource{
		"a changed leaf": func(src *fsm) leafSource {
			return (&peer{src: src, alter: func(i uint64, lf *notary.Leaf) {
				if i == size-3 {
					lf.Commitment[5] ^= 1
				}
			}}).leaves
		},
		"a leaf swapped for another": func(src *fsm) leafSource {
			return (&peer{src: src, alter: func(i uint64, lf *notary.Leaf) {
				if i == 7000 {
					lf.Commitment[0] = 9
				}
			}}).leaves
		},
		"too few": func(src *fsm) leafSource {
			return func(ctx context.Context, m map[string]notaryapi.MemberInfo, from, to uint64, page func([]notary.Leaf) error) error {
				return (&peer{src: src}).leaves(ctx, m, from, to-1, page)
			}
		},
		"no peer answers": func(*fsm) leafSource {
			return func(context.Context, map[string]notaryapi.MemberInfo, uint64, uint64, func([]notary.Leaf) error) error {
				return errors.New("connection refused")
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			src, b := source(t, size)
			dir := t.TempDir()
			f := testFSM(t, dir)
			grow(t, f, 1, 5000)
			before, applied := f.log.Head(), f.applied.Load()
			metaBefore, _ := os.ReadFile(filepath.Join(dir, membersName))
			f.peerLeaves = serve(src)
			if err := f.Restore(io.NopCloser(bytes.NewReader(b))); err == nil {
				t.Fatal("the install accepted it")
			}
			if h := f.log.Head(); h.Size != before.Size || h.Root != before.Root || f.applied.Load() != applied || f.gen != 1 {
				t.Fatalf("a refused install changed the log: %d leaves, applied %d, generation %d", h.Size, f.applied.Load(), f.gen)
			}
			if meta, _ := os.ReadFile(filepath.Join(dir, membersName)); !bytes.Equal(meta, metaBefore) {
				t.Fatal("a refused install changed members.json")
			}
			var names []string
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if fmt.Sprint(names) != "[log-1 members.json]" {
				t.Fatalf("a refused install left %v", names)
			}
			// The same snapshot from a sound peer installs.
			if _, err := restoreFrom(f, src, b); err != nil {
				t.Fatal(err)
			}
			sameState(t, f, src)
		})
	}
}

// TestInstallResumes installs a snapshot into a node whose log a cut-off
// install left part-extended (chunks appended, the applied index as it
// was): it fetches only the rest.
func TestInstallResumes(t *testing.T) {
	const size = 40_000
	src, b := source(t, size)
	f := testFSM(t, t.TempDir())
	grow(t, f, 1, 1000)
	applied := f.applied.Load()
	// What appendSpooled leaves after its first chunks.
	part := make([]notary.Leaf, 9000)
	if err := src.log.Leaves(1000, part); err != nil {
		t.Fatal(err)
	}
	if _, err := f.log.Append(part, appState(applied, part[len(part)-1].Timestamp)); err != nil {
		t.Fatal(err)
	}
	p, err := restoreFrom(f, src, b)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.served.Load(); got != size-10_000 {
		t.Fatalf("fetched %d leaves, want %d", got, size-10_000)
	}
	sameState(t, f, src)
}

// TestRestoreChecksTheDigest feeds Restore a snapshot header that was
// damaged: it must refuse it and keep the log it had.
func TestRestoreChecksTheDigest(t *testing.T) {
	src := testFSM(t, t.TempDir())
	grow(t, src, 1, 100)
	good := snapshotOf(t, src)
	dst := testFSM(t, t.TempDir())
	p := &peer{src: src}
	dst.peerLeaves = p.leaves
	for name, bad := range map[string][]byte{
		"header byte flipped": func() []byte { b := bytes.Clone(good); b[20] ^= 1; return b }(),
		"digest flipped":      func() []byte { b := bytes.Clone(good); b[len(b)-1] ^= 1; return b }(),
		"truncated":           good[:len(good)-1],
	} {
		if err := dst.Restore(io.NopCloser(bytes.NewReader(bad))); err == nil {
			t.Fatalf("%s: Restore accepted it", name)
		}
		if dst.log.Head().Size != 0 || p.served.Load() != 0 {
			t.Fatalf("%s: a refused snapshot changed the log or fetched leaves", name)
		}
	}
}

// legacySnapshot writes f's head and every leaf in the first snapshot
// format (TNSNAP01), as nodes of earlier versions do.
func legacySnapshot(t testing.TB, f *fsm) []byte {
	t.Helper()
	head := f.log.Head()
	hdr, err := json.Marshal(snapshotHeader{Size: head.Size, Root: head.Root, AppState: head.AppState, Meta: f.meta})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	h := sha256.New()
	w := bufio.NewWriter(io.MultiWriter(&buf, h))
	w.WriteString(snapshotMagicV1)
	w.Write(binary.BigEndian.AppendUint32(nil, uint32(len(hdr))))
	w.Write(hdr)
	leaves := make([]notary.Leaf, head.Size)
	if err := f.log.Leaves(0, leaves); err != nil {
		t.Fatal(err)
	}
	var rec []byte
	for _, lf := range leaves {
		rec, _ = lf.AppendBinary(rec[:0])
		w.Write(rec)
	}
	w.Flush()
	buf.Write(h.Sum(nil))
	return buf.Bytes()
}

// TestRestoreChecksTheRoot feeds Restore a snapshot of the first format
// (the leaves in it, from a node not yet upgraded) whose leaves were
// altered: it must refuse it and keep serving the log it had, and restore
// the sound one by rebuilding the log from its leaves.
func TestRestoreChecksTheRoot(t *testing.T) {
	src := testFSM(t, t.TempDir())
	src.ApplyBatch([]*raft.Log{{Index: 1, Type: raft.LogCommand, Data: encodeJSONCommand(cmdGenesis, genesis{ClusterID: "c", Origin: "o.test/log"})}})
	var entries []notaryapi.Entry
	for i := range 100 {
		entries = append(entries, notaryapi.Entry{Kind: notary.KindDocument, Commitment: notary.Commitment{byte(i), 1}})
	}
	src.ApplyBatch([]*raft.Log{{Index: 2, Type: raft.LogCommand, Data: encodeNotarize(1795262400000, entries)}})
	good := legacySnapshot(t, src)

	dstDir := t.TempDir()
	dst := testFSM(t, dstDir)
	dst.peerLeaves = func(context.Context, map[string]notaryapi.MemberInfo, uint64, uint64, func([]notary.Leaf) error) error {
		t.Fatal("a snapshot with its leaves fetched leaves")
		return nil
	}
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
// a snapshot of the first format: leaves end 32 bytes (the digest) before
// its end.
func lastCommitment(b []byte) int { return len(b) - 32 - notary.LeafSize + 2 + 5 }

// TestRestoreInterrupted starts from what a crash in the middle of an
// install leaves: raft's store holds the snapshot, the state machine is
// behind it. Raft, which does not restore on start, would take the
// snapshot's index as applied, so the node installs it before raft
// starts; a state machine at or past the snapshot is left as it is.
func TestRestoreInterrupted(t *testing.T) {
	const size = 30_000
	src, b := source(t, size)
	store, err := raft.NewFileSnapshotStoreWithLogger(t.TempDir(), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := store.Create(raft.SnapshotVersionMax, src.applied.Load(), 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	f := testFSM(t, t.TempDir())
	grow(t, f, 1, 7000)
	p := &peer{src: src}
	f.peerLeaves = p.leaves
	n := &Node{fsm: f, logger: slog.New(slog.DiscardHandler)}
	if err := n.restoreInterrupted(context.Background(), store); err != nil {
		t.Fatal(err)
	}
	if got := p.served.Load(); got != size-7000 {
		t.Fatalf("fetched %d leaves, want %d", got, size-7000)
	}
	if err := n.restoreInterrupted(context.Background(), store); err != nil {
		t.Fatal(err)
	}
	if got := p.served.Load(); got != size-7000 {
		t.Fatalf("a node at the snapshot fetched %d more leaves as it started", got-(size-7000))
	}
	sameState(t, f, src)
}
