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
	"hash"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/filestore"
)

// A snapshot is the log's head, not its leaves: the notary log is
// append-only, so its files are the state, and a node that installs a
// snapshot fetches from its peers only the leaves it lacks, checking them
// against the header's root before it keeps any (see "Snapshots" in
// cluster/DESIGN.md):
//
//	"TNSNAP02" | header length (4) | header JSON | SHA-256 of all before (32)
//
// A snapshot of the first format carries every leaf after the header and
// is restored by rebuilding the log from them:
//
//	"TNSNAP01" | header length (4) | header JSON | leaves (74 bytes each) |
//	SHA-256 of everything before (32)
const (
	snapshotMagic   = "TNSNAP02"
	snapshotMagicV1 = "TNSNAP01"
)

// spoolName is the file, in the data directory, that holds the leaves an
// install fetched until their root is checked.
const spoolName = "snapshot-leaves"

type snapshotHeader struct {
	Size     uint64      `json:"size"`
	Root     notary.Hash `json:"root"`
	AppState []byte      `json:"app_state"`
	Meta     clusterMeta `json:"meta"`
}

// leafSource fetches the leaves [from, to) of the cluster's log from the
// members other than this node, and hands them to page in order, a page at
// a time; an error from page ends the fetch with it. The FSM trusts
// nothing it fetches: it checks the leaves against a root first.
type leafSource func(ctx context.Context, members map[string]notaryapi.MemberInfo, from, to uint64, page func([]notary.Leaf) error) error

// errNotPrefix says that the local log and the leaves fetched for a
// snapshot do not give the snapshot's root: the local log is not a prefix
// of the snapshot's, or a peer served other leaves.
var errNotPrefix = errors.New("the local log and the fetched leaves do not give the snapshot's root")

// fsmSnapshot is a point-in-time view of the log: its head. The first Size
// leaves never change, so the head is all it takes.
type fsmSnapshot struct {
	header snapshotHeader
}

// Snapshot implements raft.FSM. It syncs the store first, so the applied
// index on disk is never behind the snapshot raft will compact its log to.
// It costs the sync and a copy of the head, whatever the log's size.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	if err := f.log.Sync(); err != nil {
		return nil, fmt.Errorf("sync before snapshot: %w", err)
	}
	head := f.log.Head()
	f.metaMu.RLock()
	meta := f.meta
	meta.Members = maps.Clone(f.meta.Members)
	f.metaMu.RUnlock()
	return &fsmSnapshot{header: snapshotHeader{Size: head.Size, Root: head.Root, AppState: head.AppState, Meta: meta}}, nil
}

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	b, err := encodeSnapshot(s.header)
	if err == nil {
		_, err = sink.Write(b)
	}
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

// encodeSnapshot returns the snapshot of hdr in the current format.
func encodeSnapshot(hdr snapshotHeader) ([]byte, error) {
	js, err := json.Marshal(hdr)
	if err != nil {
		return nil, err
	}
	b := append([]byte(snapshotMagic), binary.BigEndian.AppendUint32(nil, uint32(len(js)))...)
	b = append(b, js...)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...), nil
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() {}

// Restore implements raft.FSM: it brings the log to the snapshot's head,
// by fetching the leaves it lacks from the peers or, for a snapshot of the
// first format, by rebuilding it from the snapshot's leaves. It never
// switches to a log whose root is not the header's.
func (f *fsm) Restore(src io.ReadCloser) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-f.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return f.restore(ctx, src)
}

// restore is Restore, ending its fetches when ctx does.
func (f *fsm) restore(ctx context.Context, src io.ReadCloser) error {
	defer src.Close()
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	br := bufio.NewReaderSize(src, 1<<20)
	h := sha256.New()
	r := io.TeeReader(br, h) // everything up to the digest is hashed
	hdr, magic, err := readSnapshotHeader(r)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	if magic == snapshotMagicV1 {
		return f.restoreLeaves(hdr, r, br, h)
	}
	if err := checkDigest(br, h); err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	if err := f.install(ctx, hdr); err != nil {
		return fmt.Errorf("install snapshot of %d leaves: %w", hdr.Size, err)
	}
	return nil
}

// checkDigest reads the digest that follows on raw and checks it against
// h, the hash of everything before it.
func checkDigest(raw io.Reader, h hash.Hash) error {
	sum := h.Sum(nil)
	var trailer [sha256.Size]byte
	if _, err := io.ReadFull(raw, trailer[:]); err != nil {
		return fmt.Errorf("read snapshot digest: %w", err)
	}
	if !bytes.Equal(trailer[:], sum) {
		return errors.New("snapshot digest mismatch: the snapshot was damaged in transit")
	}
	return nil
}

// readSnapshotHeader reads a snapshot's header, of either format, and
// returns it with the format's magic.
func readSnapshotHeader(r io.Reader) (snapshotHeader, string, error) {
	var hdr snapshotHeader
	var pre [len(snapshotMagic) + 4]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return hdr, "", fmt.Errorf("read snapshot header: %w", err)
	}
	magic := string(pre[:len(snapshotMagic)])
	if magic != snapshotMagic && magic != snapshotMagicV1 {
		return hdr, "", errors.New("not a telenotary snapshot")
	}
	n := binary.BigEndian.Uint32(pre[len(snapshotMagic):])
	if n > 1<<20 {
		return hdr, "", fmt.Errorf("snapshot header of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return hdr, "", fmt.Errorf("read snapshot header: %w", err)
	}
	if err := json.Unmarshal(b, &hdr); err != nil {
		return hdr, "", fmt.Errorf("snapshot header: %w", err)
	}
	if _, _, err := decodeAppState(hdr.AppState); err != nil {
		return hdr, "", fmt.Errorf("snapshot app state: %w", err)
	}
	return hdr, magic, nil
}

// install brings the log to hdr's head. A sound log that is a prefix of
// the snapshot's is extended in place with the leaves it lacks; any other
// (damaged, diverged, or longer without holding the snapshot's state) is
// rebuilt from the peers in a new generation.
func (f *fsm) install(ctx context.Context, hdr snapshotHeader) error {
	index, _, _ := decodeAppState(hdr.AppState) // checked by readSnapshotHeader
	head := f.log.Head()
	sound := f.damaged.Load() == nil
	if sound && head.Size >= hdr.Size && f.applied.Load() >= index {
		if root, err := f.log.RootAt(hdr.Size); err == nil && root == hdr.Root {
			f.logger.Info("installed a snapshot the log already holds", "leaves", hdr.Size, "applied_index", f.applied.Load())
			return nil
		}
	}
	if sound && head.Size <= hdr.Size {
		err := f.extend(ctx, hdr)
		if !errors.Is(err, errNotPrefix) {
			return err
		}
		f.logger.Warn("the log is not a prefix of the snapshot's: rebuilding it from the peers", "error", err)
	}
	return f.rebuildFromPeers(ctx, hdr)
}

// fetch fetches the snapshot's leaves from from on, from the members the
// snapshot names, and counts them.
func (f *fsm) fetch(ctx context.Context, hdr snapshotHeader, from uint64, page func([]notary.Leaf) error) error {
	if from >= hdr.Size {
		return nil
	}
	if f.peerLeaves == nil {
		return errors.New("no peers to fetch the snapshot's leaves from")
	}
	return f.peerLeaves(ctx, hdr.Meta.Members, from, hdr.Size, func(p []notary.Leaf) error {
		f.fetched.Add(uint64(len(p)))
		for i := range p {
			if err := p[i].Validate(); err != nil {
				return fmt.Errorf("a peer served an invalid leaf: %w", err)
			}
		}
		return page(p)
	})
}

// extend fetches the leaves the live log lacks into the spool file while it
// extends the log's frontier with them; only if they give the snapshot's
// root does it append them to the live log, in chunks whose app state keeps
// the applied index as it was until the last. A crash before the last
// leaves the node behind the snapshot raft stored, which the node installs
// again when it starts (restoreInterrupted). A root that differs gives
// errNotPrefix, the live log untouched.
func (f *fsm) extend(ctx context.Context, hdr snapshotHeader) (err error) {
	head := f.log.Head()
	fr, err := f.log.Frontier()
	if err != nil {
		return err
	}
	path := filepath.Join(f.dir, spoolName)
	spool, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool file: %w", err)
	}
	defer func() {
		spool.Close()
		os.Remove(path)
	}()
	bw := bufio.NewWriterSize(spool, 1<<20)
	var rec []byte
	if err := f.fetch(ctx, hdr, head.Size, func(page []notary.Leaf) error {
		if err := fr.Add(page...); err != nil {
			return err
		}
		for _, lf := range page {
			rec, _ = lf.AppendBinary(rec[:0])
			if _, err := bw.Write(rec); err != nil {
				return fmt.Errorf("spool file: %w", err)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if fr.Size() != hdr.Size {
		return fmt.Errorf("fetched up to leaf %d, the snapshot has %d", fr.Size(), hdr.Size)
	}
	root, err := fr.Root()
	if err != nil {
		return err
	}
	if root != hdr.Root {
		return fmt.Errorf("%w: %d local and %d fetched leaves give root %s, the snapshot's is %s", errNotPrefix, head.Size, hdr.Size-head.Size, root, hdr.Root)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("spool file: %w", err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("spool file: %w", err)
	}

	// The leaves are the snapshot's: keep them. The members first, so
	// that a crash from here on, which leaves the node behind the
	// snapshot, installs it again with them.
	f.metaMu.RLock()
	oldMeta := f.meta
	f.metaMu.RUnlock()
	if err := f.writeMeta(hdr.Meta); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			// The log is as it was, or reopened as far as it got, with
			// the applied index it had: so are the members.
			f.writeMeta(oldMeta)
		}
	}()
	if err := f.appendSpooled(bufio.NewReaderSize(spool, 1<<20), head.Size, hdr); err != nil {
		return err
	}
	if err := f.log.Sync(); err != nil {
		return err
	}
	f.setMeta(hdr.Meta)
	index, ts, _ := decodeAppState(hdr.AppState)
	f.lastTime.Store(ts)
	f.headTime.Store(newestTime(f.log, ts))
	f.signHead()
	f.applied.Store(index) // after the head is signed: see apply
	f.tellApplied()
	f.tellGrown()
	f.logger.Info("installed a snapshot", "leaves", hdr.Size, "fetched", hdr.Size-head.Size, "applied_index", index)
	return nil
}

// appendSpooled appends the leaves from `from` to hdr's size, read from
// spool, to the live log with the prescriptions' book, and hdr's app state
// with the last. If the log does not end at hdr's head, or the book
// refuses a leaf, the log is reopened from disk and the error says why.
func (f *fsm) appendSpooled(spool io.Reader, from uint64, hdr snapshotHeader) (err error) {
	defer func() {
		if err == nil {
			return
		}
		f.mu.Lock()
		f.log.Close()
		rerr := f.openLog(f.gen)
		f.mu.Unlock()
		if rerr != nil {
			f.fail(rerr)
			err = errors.Join(err, rerr)
		}
	}()
	index := f.applied.Load()
	rec := make([]byte, notary.LeafSize)
	chunk := make([]notary.Leaf, 0, notary.MaxBatch)
	for done := from; done < hdr.Size; {
		chunk = chunk[:0]
		for n := min(notary.MaxBatch, hdr.Size-done); uint64(len(chunk)) < n; {
			if _, err := io.ReadFull(spool, rec); err != nil {
				return fmt.Errorf("spool file: %w", err)
			}
			var lf notary.Leaf
			if err := lf.UnmarshalBinary(rec); err != nil {
				return fmt.Errorf("spool file: %w", err)
			}
			chunk = append(chunk, lf)
		}
		state := hdr.AppState
		if done+uint64(len(chunk)) < hdr.Size {
			state = appState(index, chunk[len(chunk)-1].Timestamp)
		}
		if _, err := f.log.Append(chunk, state); err != nil {
			return err
		}
		f.rx.mu.Lock()
		for i, lf := range chunk {
			if err == nil {
				err = f.rx.m.add(lf, done+uint64(i))
			}
		}
		f.rx.mu.Unlock()
		if err != nil {
			return fmt.Errorf("the prescriptions' state: %w", err)
		}
		done += uint64(len(chunk))
	}
	if from == hdr.Size {
		if _, err := f.log.Append(nil, hdr.AppState); err != nil {
			return err
		}
	}
	if got := f.log.Head(); got.Size != hdr.Size || got.Root != hdr.Root {
		return fmt.Errorf("the log took the snapshot's leaves to root %s at size %d, not %s at %d", got.Root, got.Size, hdr.Root, hdr.Size)
	}
	return nil
}

// setMeta makes m the FSM's meta.
func (f *fsm) setMeta(m clusterMeta) {
	f.metaMu.Lock()
	f.meta = m
	if f.meta.Members == nil {
		f.meta.Members = map[string]notaryapi.MemberInfo{}
	}
	f.metaMu.Unlock()
}

// rebuildFromPeers builds the snapshot's log from every leaf the peers
// serve in a new generation, checks its root, and only then switches to it.
func (f *fsm) rebuildFromPeers(ctx context.Context, hdr snapshotHeader) error {
	gen := f.gen + 1
	dir := f.logDir(gen)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	err := func() error {
		l, err := filestore.OpenLog(dir, filestore.Options{Logger: f.logger})
		if err != nil {
			return err
		}
		defer l.Close()
		if err := f.fetch(ctx, hdr, 0, func(page []notary.Leaf) error {
			_, err := l.Append(page, nil)
			return err
		}); err != nil {
			return err
		}
		if _, err := l.Append(nil, hdr.AppState); err != nil {
			return err
		}
		if got := l.Head(); got.Size != hdr.Size || got.Root != hdr.Root {
			return fmt.Errorf("the leaves the peers serve give root %s at size %d, the snapshot's header says %s at %d", got.Root, got.Size, hdr.Root, hdr.Size)
		}
		return l.Sync()
	}()
	if err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("rebuild the log from the peers: %w", err)
	}
	return f.switchLog(gen, hdr)
}

// restoreLeaves restores a snapshot of the first format, whose leaves
// follow its header on r: it rebuilds the log from them in a new
// directory, checks the digest and root, and only then switches to it.
func (f *fsm) restoreLeaves(hdr snapshotHeader, r, raw io.Reader, h hash.Hash) error {
	gen := f.gen + 1
	dir := f.logDir(gen)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := f.rebuild(dir, hdr, r, raw, h); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("restore snapshot: %w", err)
	}
	return f.switchLog(gen, hdr)
}

// switchLog makes log-<gen>, complete and checked at hdr's head, the live
// log, with hdr's members, and removes the one it replaces.
func (f *fsm) switchLog(gen int, hdr snapshotHeader) error {
	if err := f.writeMeta(hdr.Meta); err != nil {
		return err
	}
	if err := filestore.WriteFileDurably(filepath.Join(f.dir, currentName), []byte(fmt.Sprintf("log-%d\n", gen))); err != nil {
		return err
	}
	// A damaged log is gone: the new one gives the snapshot's root (its
	// own prescriptions' state may still mark it damaged as it opens).
	f.damaged.Store(nil)
	waiting := f.rxHealed.Swap(nil)
	f.mu.Lock()
	old := f.gen
	f.log.Close()
	err := f.openLog(gen)
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if waiting != nil && f.rxHealed.Load() == nil {
		close(*waiting)
	}
	f.setMeta(hdr.Meta)
	os.RemoveAll(f.logDir(old))
	f.signHead()
	f.tellGrown()
	f.logger.Info("restored a snapshot", "leaves", hdr.Size, "applied_index", f.applied.Load())
	return nil
}

// rebuild appends the snapshot's leaves, read from r, to a new store in dir,
// and checks the result against the header and the digest that follows on
// raw, which must equal h's sum of what r gave.
func (f *fsm) rebuild(dir string, hdr snapshotHeader, r, raw io.Reader, h hash.Hash) error {
	l, err := filestore.OpenLog(dir, filestore.Options{Logger: f.logger})
	if err != nil {
		return err
	}
	defer l.Close()
	const chunk = 4096
	rec := make([]byte, notary.LeafSize)
	leaves := make([]notary.Leaf, 0, chunk)
	start, last := time.Now(), time.Now()
	for done := uint64(0); done < hdr.Size; {
		leaves = leaves[:0]
		for n := min(chunk, hdr.Size-done); uint64(len(leaves)) < n; {
			if _, err := io.ReadFull(r, rec); err != nil {
				return fmt.Errorf("read leaf %d of %d: %w", done+uint64(len(leaves)), hdr.Size, err)
			}
			var lf notary.Leaf
			if err := lf.UnmarshalBinary(rec); err != nil {
				return fmt.Errorf("leaf %d: %w", done+uint64(len(leaves)), err)
			}
			leaves = append(leaves, lf)
		}
		var state []byte
		if done+uint64(len(leaves)) == hdr.Size {
			state = hdr.AppState
		}
		if _, err := l.Append(leaves, state); err != nil {
			return err
		}
		done += uint64(len(leaves))
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			f.logger.Info("restoring a snapshot", "leaves", done, "of", hdr.Size,
				"percent", strconv.FormatFloat(100*float64(done)/float64(hdr.Size), 'f', 1, 64), "elapsed", time.Since(start).Round(time.Second))
		}
	}
	if hdr.Size == 0 && len(hdr.AppState) > 0 {
		if _, err := l.Append(nil, hdr.AppState); err != nil {
			return err
		}
	}
	if err := checkDigest(raw, h); err != nil {
		return err
	}
	if got := l.Head(); got.Size != hdr.Size || got.Root != hdr.Root {
		return fmt.Errorf("the snapshot's leaves give root %s at size %d, its header says %s at %d", got.Root, got.Size, hdr.Root, hdr.Size)
	}
	return l.Sync()
}
