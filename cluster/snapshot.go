package cluster

import (
	"bufio"
	"bytes"
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

// A snapshot streams the leaves with a header that checks the rebuild:
//
//	"TNSNAP01" | header length (4) | header JSON | leaves (74 bytes each) |
//	SHA-256 of everything before (32)
//
// (see "Snapshots" in cluster/DESIGN.md).
const snapshotMagic = "TNSNAP01"

type snapshotHeader struct {
	Size     uint64      `json:"size"`
	Root     notary.Hash `json:"root"`
	AppState []byte      `json:"app_state"`
	Meta     clusterMeta `json:"meta"`
}

// fsmSnapshot is a point-in-time view: the first Size leaves never change,
// so Persist reads them while the FSM goes on applying.
type fsmSnapshot struct {
	f      *fsm
	header snapshotHeader
}

// Snapshot implements raft.FSM. It syncs the store first, so the applied
// index on disk is never behind the snapshot raft will compact its log to.
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
	return &fsmSnapshot{f: f, header: snapshotHeader{Size: head.Size, Root: head.Root, AppState: head.AppState, Meta: meta}}, nil
}

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	err := s.write(sink)
	if err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) write(w io.Writer) error {
	l, done := s.f.readLog()
	defer done()
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, h), 1<<20)
	hdr, err := json.Marshal(s.header)
	if err != nil {
		return err
	}
	bw.WriteString(snapshotMagic)
	bw.Write(binary.BigEndian.AppendUint32(nil, uint32(len(hdr))))
	bw.Write(hdr)
	const chunk = 4096
	leaves := make([]notary.Leaf, chunk)
	var rec []byte
	for start := uint64(0); start < s.header.Size; start += chunk {
		n := min(chunk, s.header.Size-start)
		if err := l.Leaves(start, leaves[:n]); err != nil {
			return fmt.Errorf("snapshot: read leaves: %w", err)
		}
		for _, lf := range leaves[:n] {
			rec, _ = lf.AppendBinary(rec[:0])
			if _, err := bw.Write(rec); err != nil {
				return err
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err = w.Write(h.Sum(nil))
	return err
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() {}

// Restore implements raft.FSM: it rebuilds the log from the snapshot's
// leaves into a new directory, checks that they give the snapshot's root,
// and only then switches to it.
func (f *fsm) Restore(src io.ReadCloser) error {
	defer src.Close()
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	br := bufio.NewReaderSize(src, 1<<20)
	h := sha256.New()
	r := io.TeeReader(br, h) // everything up to the digest is hashed
	hdr, err := readSnapshotHeader(r)
	if err != nil {
		return err
	}
	gen := f.gen + 1
	dir := f.logDir(gen)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := f.rebuild(dir, hdr, r, br, h); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("restore snapshot: %w", err)
	}
	// The new log is complete and checked: switch to it.
	if err := f.writeMeta(hdr.Meta); err != nil {
		return err
	}
	if err := filestore.WriteFileDurably(filepath.Join(f.dir, currentName), []byte(fmt.Sprintf("log-%d\n", gen))); err != nil {
		return err
	}
	f.mu.Lock()
	old := f.gen
	f.log.Close()
	err = f.openLog(gen)
	f.mu.Unlock()
	if err != nil {
		return err
	}
	f.metaMu.Lock()
	f.meta = hdr.Meta
	if f.meta.Members == nil {
		f.meta.Members = map[string]notaryapi.MemberInfo{}
	}
	f.metaMu.Unlock()
	os.RemoveAll(f.logDir(old))
	// A damaged log is gone: the new one gives the snapshot's root.
	f.damaged.Store(nil)
	f.signHead()
	f.tellGrown()
	f.logger.Info("restored a snapshot", "leaves", hdr.Size, "applied_index", f.applied.Load())
	return nil
}

func readSnapshotHeader(r io.Reader) (snapshotHeader, error) {
	var hdr snapshotHeader
	var pre [len(snapshotMagic) + 4]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return hdr, fmt.Errorf("read snapshot header: %w", err)
	}
	if !bytes.Equal(pre[:len(snapshotMagic)], []byte(snapshotMagic)) {
		return hdr, errors.New("not a telenotary snapshot")
	}
	n := binary.BigEndian.Uint32(pre[len(snapshotMagic):])
	if n > 1<<20 {
		return hdr, fmt.Errorf("snapshot header of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return hdr, fmt.Errorf("read snapshot header: %w", err)
	}
	if err := json.Unmarshal(b, &hdr); err != nil {
		return hdr, fmt.Errorf("snapshot header: %w", err)
	}
	if _, _, err := decodeAppState(hdr.AppState); err != nil {
		return hdr, fmt.Errorf("snapshot app state: %w", err)
	}
	return hdr, nil
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
	sum := h.Sum(nil)
	var trailer [sha256.Size]byte
	if _, err := io.ReadFull(raw, trailer[:]); err != nil {
		return fmt.Errorf("read snapshot digest: %w", err)
	}
	if !bytes.Equal(trailer[:], sum) {
		return errors.New("snapshot digest mismatch: the snapshot was damaged in transit")
	}
	if got := l.Head(); got.Size != hdr.Size || got.Root != hdr.Root {
		return fmt.Errorf("the snapshot's leaves give root %s at size %d, its header says %s at %d", got.Root, got.Size, hdr.Root, hdr.Size)
	}
	return l.Sync()
}
