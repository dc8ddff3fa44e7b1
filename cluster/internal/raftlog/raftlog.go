// Package raftlog is raft's log on disk for a telenotary node: a
// hashicorp/raft LogStore that appends each StoreLogs call to a segment
// file with one write and one fdatasync.
//
// raft-boltdb commits every append as a bbolt transaction, which syncs
// twice (its pages, then its meta page), and hashicorp/raft writes the
// leader's log before it replicates: two of those in a row lie on every
// write's path. HashiCorp's own segment store (raft-wal) is not usable in
// the only version the module proxy serves (docs/BENCHMARKS.md). raft's
// stable store (term and vote) stays in bbolt: it is written once a term.
//
// A segment is a file named by the index of its first entry, allocated
// ahead (fallocate) so that an append changes no file size, holding
// records back to back and zeros after the last:
//
//	length (4, big endian) | CRC-32C of the body (4) | body
//	body: index (8) | term (8) | type (1) | appended at, unix ns (8) |
//	      index of the first entry of its write (8) |
//	      data length (4) | data | extensions length (4) | extensions
//
// Opening scans every segment. A record that fails its checksum ends the
// log only where a crash can have left a write half done: in the last
// segment, with no record of a later write after it (each record names
// the first entry of its write, and a write is synced before the next
// begins); anything after it is zeroed. Elsewhere it is damage, and Open
// refuses the directory. Removing entries from the end (raft does when a
// new leader's log differs) zeroes their bytes before it returns, so no
// removed entry can come back after a crash.
package raftlog

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// ErrCorrupt is wrapped by errors of a log directory that cannot be read
// as it was written.
var ErrCorrupt = errors.New("raft log damaged")

// SegmentSize is the size a segment is allocated with; a write larger
// than it gets a segment of its own size.
const SegmentSize = 16 << 20

const (
	headerSize = 8                         // length and checksum
	fixedBody  = 8 + 8 + 1 + 8 + 8 + 4 + 4 // the body without data and extensions
	// maxRecord bounds a record's length: raft's entries here are batches
	// of at most a few thousand small entries.
	maxRecord = 256 << 20
	suffix    = ".seg"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segment is one file of the log.
type segment struct {
	first   uint64 // index of its first record
	f       *os.File
	path    string
	size    int64    // allocated bytes
	offsets []uint32 // of each record, by index - first
	end     int64    // where the next record goes
}

// last returns the index of the segment's last record (first-1 when it
// holds none).
func (s *segment) last() uint64 { return s.first + uint64(len(s.offsets)) - 1 }

// Store is a raft.LogStore on segment files in one directory.
type Store struct {
	dir    string
	logger *slog.Logger
	// segmentSize is what a new segment is allocated with (tests make
	// it small).
	segmentSize int64

	writeMu sync.Mutex // serializes StoreLogs and DeleteRange

	mu       sync.RWMutex
	segments []*segment // in index order; the last takes appends
	first    uint64     // first index readable (0: empty)
	buf      []byte     // the write being encoded; under writeMu
}

// Open opens (creating it if need be) the log in dir.
func Open(dir string, logger *slog.Logger) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, logger: logger, segmentSize: SegmentSize}
	for _, e := range names {
		name := e.Name()
		if !strings.HasSuffix(name, suffix) {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(name, suffix), 10, 64)
		if err != nil || first == 0 {
			return nil, fmt.Errorf("%w: %s is not a segment's name", ErrCorrupt, filepath.Join(dir, name))
		}
		s.segments = append(s.segments, &segment{first: first, path: filepath.Join(dir, name)})
	}
	slices.SortFunc(s.segments, func(a, b *segment) int { return cmp.Compare(a.first, b.first) })
	for i, seg := range s.segments {
		last := i == len(s.segments)-1
		if err := s.load(seg, last); err != nil {
			s.Close()
			return nil, err
		}
		if i > 0 {
			prev := s.segments[i-1]
			if seg.first != prev.last()+1 {
				s.Close()
				return nil, fmt.Errorf("%w: %s starts at entry %d, but %s ends at %d", ErrCorrupt, seg.path, seg.first, prev.path, prev.last())
			}
		}
		if !last && len(seg.offsets) == 0 {
			s.Close()
			return nil, fmt.Errorf("%w: %s holds no entry and is not the last segment", ErrCorrupt, seg.path)
		}
	}
	if len(s.segments) > 0 && len(s.segments[0].offsets) > 0 {
		s.first = s.segments[0].first
	}
	return s, nil
}

// load opens seg and indexes its records; see the package comment for
// what a bad record means.
func (s *Store) load(seg *segment, last bool) error {
	f, err := os.OpenFile(seg.path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	seg.f = f
	info, err := f.Stat()
	if err != nil {
		return err
	}
	seg.size = info.Size()
	// Record by record: a node's memory does not hold its log.
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, seg.size), 1<<20)
	var off int64
	var rec []byte
	for off+headerSize <= seg.size {
		hdr, err := r.Peek(headerSize)
		if err != nil {
			return err
		}
		n := int64(binary.BigEndian.Uint32(hdr))
		if n == 0 {
			break
		}
		want := seg.first + uint64(len(seg.offsets))
		var bad error
		if n < fixedBody || n > maxRecord || off+headerSize+n > seg.size {
			bad = fmt.Errorf("length %d out of bounds", n)
		} else {
			rec = slices.Grow(rec[:0], int(headerSize+n))[:headerSize+n]
			if _, err := io.ReadFull(r, rec); err != nil {
				return err
			}
			_, bad = decodeRecord(rec, want)
		}
		if bad != nil {
			if !last {
				return fmt.Errorf("%w: %s, entry %d at byte %d: %v; remove this node and let it join again", ErrCorrupt, seg.path, want, off, bad)
			}
			rest := make([]byte, seg.size-off-1)
			if _, err := f.ReadAt(rest, off+1); err != nil {
				return err
			}
			if later := laterWrite(rest, want); later != 0 {
				return fmt.Errorf("%w: %s, entry %d at byte %d: %v, and entry %d of a later write follows it; remove this node and let it join again", ErrCorrupt, seg.path, want, off, bad, later)
			}
			s.logger.Warn("the raft log ends in a write a crash cut short; its entries were never acknowledged", "segment", seg.path, "entry", want, "byte", off, "error", bad)
			break
		}
		seg.offsets = append(seg.offsets, uint32(off))
		off += headerSize + n
	}
	seg.end = off
	if !last {
		return nil
	}
	clean, err := zeroFrom(f, seg.end, seg.size)
	if err != nil || clean {
		return err
	}
	return zero(f, seg.end, seg.size)
}

// zeroFrom says whether f holds only zeros from from to to.
func zeroFrom(f *os.File, from, to int64) (bool, error) {
	buf := make([]byte, min(1<<20, max(to-from, 0)))
	for off := from; off < to; off += int64(len(buf)) {
		b := buf[:min(int64(len(buf)), to-off)]
		if _, err := f.ReadAt(b, off); err != nil {
			return false, err
		}
		if !allZero(b) {
			return false, nil
		}
	}
	return true, nil
}

// laterWrite looks in b, at every offset, for a sound record of an entry
// after want that was written by a later write than want's; it returns its
// index, or 0.
func laterWrite(b []byte, want uint64) uint64 {
	for off := 0; off+headerSize+fixedBody <= len(b); off++ {
		n := binary.BigEndian.Uint32(b[off:])
		if n < fixedBody || n > maxRecord || off+headerSize+int(n) > len(b) {
			continue
		}
		body := b[off+headerSize:]
		index := binary.BigEndian.Uint64(body)
		writeFirst := binary.BigEndian.Uint64(body[25:])
		if index <= want || writeFirst <= want || writeFirst > index {
			continue
		}
		if crc32.Checksum(body[:n], castagnoli) == binary.BigEndian.Uint32(b[off+4:]) {
			return index
		}
	}
	return 0
}

var zeros [4096]byte

func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		if !bytes.Equal(b[:n], zeros[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// zero overwrites [from, to) of f with zeros and syncs it.
func zero(f *os.File, from, to int64) error {
	z := make([]byte, 1<<20)
	for off := from; off < to; off += int64(len(z)) {
		n := min(int64(len(z)), to-off)
		if _, err := f.WriteAt(z[:n], off); err != nil {
			return err
		}
	}
	return f.Sync()
}

// decodeRecord decodes the record b starts with, which must be of entry
// want; its data and extensions are slices of b.
func decodeRecord(b []byte, want uint64) (*raft.Log, error) {
	if len(b) < headerSize {
		return nil, errors.New("cut short")
	}
	n := binary.BigEndian.Uint32(b)
	if n < fixedBody || n > maxRecord || headerSize+int(n) > len(b) {
		return nil, fmt.Errorf("length %d out of bounds", n)
	}
	body := b[headerSize : headerSize+n]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[4:]) {
		return nil, errors.New("checksum mismatch")
	}
	l := &raft.Log{
		Index:      binary.BigEndian.Uint64(body),
		Term:       binary.BigEndian.Uint64(body[8:]),
		Type:       raft.LogType(body[16]),
		AppendedAt: time.Unix(0, int64(binary.BigEndian.Uint64(body[17:]))),
	}
	if l.Index != want {
		return nil, fmt.Errorf("holds entry %d", l.Index)
	}
	rest := body[33:]
	data, rest, ok := cutField(rest)
	if !ok {
		return nil, errors.New("data length out of bounds")
	}
	ext, rest, ok := cutField(rest)
	if !ok || len(rest) != 0 {
		return nil, errors.New("extensions length out of bounds")
	}
	if len(data) > 0 {
		l.Data = data
	}
	if len(ext) > 0 {
		l.Extensions = ext
	}
	return l, nil
}

func cutField(b []byte) (field, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, false
	}
	return b[4 : 4+n], b[4+n:], true
}

// appendRecord appends l's record, of a write whose first entry is
// writeFirst.
func appendRecord(b []byte, l *raft.Log, writeFirst uint64) []byte {
	start := len(b)
	b = append(b, make([]byte, headerSize)...)
	b = binary.BigEndian.AppendUint64(b, l.Index)
	b = binary.BigEndian.AppendUint64(b, l.Term)
	b = append(b, byte(l.Type))
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(at))
	b = binary.BigEndian.AppendUint64(b, writeFirst)
	b = binary.BigEndian.AppendUint32(b, uint32(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(l.Extensions)))
	b = append(b, l.Extensions...)
	body := b[start+headerSize:]
	binary.BigEndian.PutUint32(b[start:], uint32(len(body)))
	binary.BigEndian.PutUint32(b[start+4:], crc32.Checksum(body, castagnoli))
	return b
}

// FirstIndex implements raft.LogStore.
func (s *Store) FirstIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.first, nil
}

// LastIndex implements raft.LogStore.
func (s *Store) LastIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lastLocked(), nil
}

func (s *Store) lastLocked() uint64 {
	if s.first == 0 {
		return 0
	}
	return s.segments[len(s.segments)-1].last()
}

// GetLog implements raft.LogStore.
func (s *Store) GetLog(index uint64, out *raft.Log) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.first == 0 || index < s.first || index > s.lastLocked() {
		return raft.ErrLogNotFound
	}
	i, _ := slices.BinarySearchFunc(s.segments, index, func(seg *segment, idx uint64) int {
		switch {
		case seg.last() < idx:
			return -1
		case seg.first > idx:
			return 1
		}
		return 0
	})
	seg := s.segments[i]
	k := index - seg.first
	off := int64(seg.offsets[k])
	end := seg.end
	if k+1 < uint64(len(seg.offsets)) {
		end = int64(seg.offsets[k+1])
	}
	b := make([]byte, end-off)
	if _, err := seg.f.ReadAt(b, off); err != nil {
		return fmt.Errorf("raft log: reading entry %d: %w", index, err)
	}
	l, err := decodeRecord(b, index)
	if err != nil {
		return fmt.Errorf("%w: %s, entry %d: %v", ErrCorrupt, seg.path, index, err)
	}
	*out = *l
	return nil
}

// IsMonotonic implements raft.MonotonicLogStore: entries are stored in
// order without gaps, so raft removes the whole log when it installs a
// snapshot past its end instead of appending after a gap.
func (s *Store) IsMonotonic() bool { return true }

// StoreLog implements raft.LogStore.
func (s *Store) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs implements raft.LogStore: the entries must follow the last
// one; they are durable when it returns.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.RLock()
	last, empty := s.lastLocked(), s.first == 0
	var tail *segment
	if len(s.segments) > 0 {
		tail = s.segments[len(s.segments)-1]
	}
	s.mu.RUnlock()
	writeFirst := logs[0].Index
	if !empty && writeFirst != last+1 {
		return fmt.Errorf("raft log: entry %d does not follow the last, %d", writeFirst, last)
	}
	b := s.buf[:0]
	offsets := make([]uint32, len(logs))
	for i, l := range logs {
		if l.Index != writeFirst+uint64(i) {
			return fmt.Errorf("raft log: entries %d and %d of one write are not consecutive", logs[i-1].Index, l.Index)
		}
		offsets[i] = uint32(len(b))
		b = appendRecord(b, l, writeFirst)
		if len(b)-int(offsets[i]) > headerSize+maxRecord {
			return fmt.Errorf("raft log: entry %d is %d bytes, more than %d", l.Index, len(b)-int(offsets[i]), maxRecord)
		}
	}
	s.buf = b
	if tail == nil || empty && len(tail.offsets) == 0 && tail.first != writeFirst || tail.end+int64(len(b)) > tail.size {
		var err error
		if tail, err = s.newSegment(writeFirst, int64(len(b))); err != nil {
			return err
		}
	}
	if _, err := tail.f.WriteAt(b, tail.end); err != nil {
		return fmt.Errorf("raft log: %w", err)
	}
	if err := datasync(tail.f); err != nil {
		return fmt.Errorf("raft log: %w", err)
	}
	s.mu.Lock()
	for _, o := range offsets {
		tail.offsets = append(tail.offsets, uint32(tail.end)+o)
	}
	tail.end += int64(len(b))
	if s.first == 0 {
		s.first = writeFirst
	}
	s.mu.Unlock()
	return nil
}

// newSegment creates the segment that takes entries from first on, with
// room for at least need bytes, and makes it the last.
func (s *Store) newSegment(first uint64, need int64) (*segment, error) {
	path := filepath.Join(s.dir, fmt.Sprintf("%020d%s", first, suffix))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("raft log: %w", err)
	}
	size := max(s.segmentSize, need)
	if err := allocate(f, size); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("raft log: allocating %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("raft log: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("raft log: %w", err)
	}
	seg := &segment{first: first, f: f, path: path, size: size}
	s.mu.Lock()
	// An empty last segment (everything was removed) gives way.
	if n := len(s.segments); n > 0 && len(s.segments[n-1].offsets) == 0 {
		old := s.segments[n-1]
		old.f.Close()
		if old.path != path {
			os.Remove(old.path)
		}
		s.segments = s.segments[:n-1]
	}
	s.segments = append(s.segments, seg)
	s.mu.Unlock()
	return seg, nil
}

// DeleteRange implements raft.LogStore. raft removes either a prefix
// (compaction after a snapshot) or a suffix (entries a new leader
// replaced), or everything.
func (s *Store) DeleteRange(from, to uint64) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.first == 0 || from > to {
		return nil
	}
	last := s.lastLocked()
	from, to = max(from, s.first), min(to, last)
	if from > to {
		return nil
	}
	switch {
	case from == s.first && to == last:
		return s.truncateAfter(0)
	case from == s.first:
		return s.dropBefore(to + 1)
	case to == last:
		return s.truncateAfter(from - 1)
	}
	return fmt.Errorf("raft log: cannot remove entries %d to %d from the middle of %d to %d", from, to, s.first, last)
}

// dropBefore makes index the first entry, removing the segments that hold
// only entries before it (a segment's older entries stay on disk until the
// whole segment goes; Open finds them again, which raft allows).
func (s *Store) dropBefore(index uint64) error {
	keep := 0
	for keep < len(s.segments)-1 && s.segments[keep].last() < index {
		keep++
	}
	for _, seg := range s.segments[:keep] {
		seg.f.Close()
		if err := os.Remove(seg.path); err != nil {
			return fmt.Errorf("raft log: %w", err)
		}
	}
	s.segments = slices.Delete(s.segments, 0, keep)
	s.first = index
	if keep > 0 {
		return syncDir(s.dir)
	}
	return nil
}

// truncateAfter removes every entry after index (all of them for 0 or
// anything before the first): their bytes are zeroed, or their segments
// removed, and synced before it returns.
func (s *Store) truncateAfter(index uint64) error {
	removed := false
	for len(s.segments) > 0 {
		seg := s.segments[len(s.segments)-1]
		if index >= seg.first {
			break
		}
		seg.f.Close()
		if err := os.Remove(seg.path); err != nil {
			return fmt.Errorf("raft log: %w", err)
		}
		s.segments = s.segments[:len(s.segments)-1]
		removed = true
	}
	if removed {
		if err := syncDir(s.dir); err != nil {
			return fmt.Errorf("raft log: %w", err)
		}
	}
	if len(s.segments) == 0 {
		s.first = 0
		return nil
	}
	seg := s.segments[len(s.segments)-1]
	keep := index - seg.first + 1
	if keep < uint64(len(seg.offsets)) {
		from := int64(seg.offsets[keep])
		if err := zero(seg.f, from, seg.end); err != nil {
			return fmt.Errorf("raft log: %w", err)
		}
		seg.offsets, seg.end = seg.offsets[:keep], from
	}
	return nil
}

// Close closes the segment files.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, seg := range s.segments {
		if seg.f != nil {
			errs = append(errs, seg.f.Close())
		}
	}
	s.segments = nil
	return errors.Join(errs...)
}

// syncDir makes the directory's entries (a segment created or removed)
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Import writes a log at dir holding src's entries first to last. It is
// written beside dir and renamed into place: dir is absent or whole.
func Import(dir string, src raft.LogStore, first, last uint64, logger *slog.Logger) error {
	staging := dir + ".importing"
	if err := os.RemoveAll(staging); err != nil {
		return err
	}
	s, err := Open(staging, logger)
	if err != nil {
		return err
	}
	defer s.Close()
	const chunk = 256
	batch := make([]*raft.Log, 0, chunk)
	for i := first; i <= last; i++ {
		l := new(raft.Log)
		if err := src.GetLog(i, l); err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		if batch = append(batch, l); len(batch) == chunk || i == last {
			if err := s.StoreLogs(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := s.Close(); err != nil {
		return err
	}
	if err := os.Rename(staging, dir); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dir))
}
