package filestore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"os"
)

// A table is an immutable file of index entries, sorted by key, each at or
// a little after its ideal slot: the key's fraction of the 64-bit range
// times the table's base. Keys are SipHash values, uniform over that range,
// so a lookup reads one small window at the ideal slot and almost never a
// second one, with nothing about the table held in memory.
//
// Placement is greedy: each entry, in key order, takes the first free slot at
// or after its ideal one. So a run of entries ends at an empty slot, and a
// key that is not at or before the first empty slot after its ideal one is
// not in the table.
//
// File layout: a 4 KiB header, then 16-byte slots: key (8, little-endian),
// value (8, little-endian: leaf index + 1; 0 marks an empty slot).

const (
	tableMagic      = "TNINDEX1"
	tableHeaderSize = 4096
	slotSize        = 16
	// lookupWindow is how many slots one read brings. Runs longer than
	// this are rare at the load factor below.
	lookupWindow = 32
	// loadFactor is the share of slots a table fills; 3/4 keeps runs short.
	loadNum, loadDen = 3, 4
)

var (
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	emptySlot  [slotSize]byte
)

// entry maps a key to a leaf index.
type entry struct {
	key   uint64
	index uint64
}

func compareEntries(a, b entry) int {
	switch {
	case a.key < b.key:
		return -1
	case a.key > b.key:
		return 1
	case a.index < b.index:
		return -1
	case a.index > b.index:
		return 1
	}
	return 0
}

// tableHeader describes a table.
type tableHeader struct {
	gen     uint64 // generation: a newer table replaces older ones
	covered uint64 // the table holds the entries of all leaves below this
	count   uint64 // entries
	base    uint64 // slots over which keys are spread
	slots   uint64 // slots in the file
	keyTag  uint64 // identifies the store's SipHash key
}

func (h tableHeader) encode() []byte {
	b := make([]byte, tableHeaderSize)
	copy(b, tableMagic)
	for i, v := range []uint64{h.gen, h.covered, h.count, h.base, h.slots, h.keyTag} {
		binary.LittleEndian.PutUint64(b[8+8*i:], v)
	}
	binary.LittleEndian.PutUint32(b[56:], crc32.Checksum(b[:56], castagnoli))
	return b
}

func decodeTableHeader(b []byte) (tableHeader, error) {
	if len(b) < tableHeaderSize || !bytes.Equal(b[:8], []byte(tableMagic)) {
		return tableHeader{}, errors.New("not an index table")
	}
	if binary.LittleEndian.Uint32(b[56:]) != crc32.Checksum(b[:56], castagnoli) {
		return tableHeader{}, errors.New("index table header checksum mismatch")
	}
	var v [6]uint64
	for i := range v {
		v[i] = binary.LittleEndian.Uint64(b[8+8*i:])
	}
	h := tableHeader{gen: v[0], covered: v[1], count: v[2], base: v[3], slots: v[4], keyTag: v[5]}
	if h.count > h.slots || (h.count > 0 && h.base == 0) {
		return tableHeader{}, errors.New("index table header is inconsistent")
	}
	return h, nil
}

// idealSlot is where key belongs in a table with the given base.
func idealSlot(key, base uint64) uint64 {
	hi, _ := bits.Mul64(key, base)
	return hi
}

// baseFor returns the base for a table of count entries.
func baseFor(count uint64) uint64 { return max(count*loadDen/loadNum, 1) }

// table is an open, complete table file.
type table struct {
	tableHeader
	f    *os.File
	path string
}

func openTable(path string) (*table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, tableHeaderSize)
	if _, err := io.ReadFull(f, buf); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: read header: %w", path, err)
	}
	h, err := decodeTableHeader(buf)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if want := tableHeaderSize + int64(h.slots)*slotSize; st.Size() != want {
		f.Close()
		return nil, fmt.Errorf("%s: %d bytes, header says %d", path, st.Size(), want)
	}
	return &table{tableHeader: h, f: f, path: path}, nil
}

// lookup calls fn with the index of every entry whose key is key.
func (t *table) lookup(key uint64, fn func(index uint64)) error {
	var buf [lookupWindow * slotSize]byte
	for pos := idealSlot(key, t.base); pos < t.slots; pos += lookupWindow {
		n := min(lookupWindow, t.slots-pos)
		if _, err := t.f.ReadAt(buf[:n*slotSize], tableHeaderSize+int64(pos)*slotSize); err != nil {
			return fmt.Errorf("read index table: %w", err)
		}
		for i := range n {
			s := buf[i*slotSize:]
			k, v := binary.LittleEndian.Uint64(s), binary.LittleEndian.Uint64(s[8:])
			if v == 0 || k > key {
				return nil
			}
			if k == key {
				fn(v - 1)
			}
		}
	}
	return nil
}

func (t *table) close() error { return t.f.Close() }

// tableReader streams a table's entries in key order.
type tableReader struct {
	t   *table
	pos uint64 // next slot to read
	buf []byte // slots read but not consumed
}

const streamChunk = 4096 // slots per read while streaming

func (t *table) reader() *tableReader { return &tableReader{t: t} }

// next returns the next entry; ok is false at the end.
func (r *tableReader) next() (e entry, ok bool, err error) {
	for {
		for len(r.buf) >= slotSize {
			s := r.buf[:slotSize]
			r.buf = r.buf[slotSize:]
			if v := binary.LittleEndian.Uint64(s[8:]); v != 0 {
				return entry{key: binary.LittleEndian.Uint64(s), index: v - 1}, true, nil
			}
		}
		if r.t == nil || r.pos >= r.t.slots {
			return entry{}, false, nil
		}
		n := min(streamChunk, r.t.slots-r.pos)
		if cap(r.buf) < int(n)*slotSize {
			r.buf = make([]byte, streamChunk*slotSize)
		}
		r.buf = r.buf[:n*slotSize]
		if _, err := r.t.f.ReadAt(r.buf, tableHeaderSize+int64(r.pos)*slotSize); err != nil {
			return entry{}, false, fmt.Errorf("read index table: %w", err)
		}
		r.pos += n
	}
}

// tableWriter writes a new table in key order into a temporary file.
type tableWriter struct {
	hdr     tableHeader
	f       *os.File
	tmpPath string
	path    string
	next    uint64 // first slot not yet placed
	flushed uint64 // slots written to the file
	buf     []byte // slots placed but not yet written
	last    entry
	any     bool
}

// createTable starts table gen, sized for about expected entries, that will
// cover the leaves below covered.
func createTable(dir string, gen, covered, expected, keyTag uint64) (*tableWriter, error) {
	path := tablePath(dir, gen)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	hdr := tableHeader{gen: gen, covered: covered, base: baseFor(expected), keyTag: keyTag}
	return &tableWriter{hdr: hdr, f: f, tmpPath: tmp, path: path}, nil
}

// add places the next entry; entries must come in increasing order.
func (w *tableWriter) add(e entry) {
	if w.any && compareEntries(e, w.last) <= 0 {
		panic("filestore: index entries out of order")
	}
	pos := max(idealSlot(e.key, w.hdr.base), w.next)
	for ; w.next < pos; w.next++ {
		w.buf = append(w.buf, emptySlot[:]...)
	}
	w.buf = binary.LittleEndian.AppendUint64(w.buf, e.key)
	w.buf = binary.LittleEndian.AppendUint64(w.buf, e.index+1)
	w.next++
	w.hdr.count++
	w.last, w.any = e, true
}

// writeBuffer is how many bytes of slots a writer gathers per write.
const writeBuffer = 1 << 20

// flushIfFull writes the placed slots once there are enough of them.
func (w *tableWriter) flushIfFull() error {
	if len(w.buf) < writeBuffer {
		return nil
	}
	return w.flush()
}

// flush writes the placed slots.
func (w *tableWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	off := tableHeaderSize + int64(w.flushed)*slotSize
	if _, err := w.f.WriteAt(w.buf, off); err != nil {
		return fmt.Errorf("write index table: %w", err)
	}
	startWriteback(w.f, off, int64(len(w.buf)))
	w.flushed += uint64(len(w.buf) / slotSize)
	w.buf = w.buf[:0]
	return nil
}

// finish makes the table durable under its final name and opens it.
func (w *tableWriter) finish() (*table, error) {
	if err := w.flush(); err != nil {
		return nil, err
	}
	w.hdr.slots = w.flushed
	if _, err := w.f.WriteAt(w.hdr.encode(), 0); err != nil {
		return nil, fmt.Errorf("write index table header: %w", err)
	}
	if err := w.f.Sync(); err != nil {
		return nil, fmt.Errorf("sync index table: %w", err)
	}
	if err := w.f.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(w.tmpPath, w.path); err != nil {
		return nil, err
	}
	if err := syncDir(w.path); err != nil {
		return nil, err
	}
	return openTable(w.path)
}

// abort removes the unfinished table.
func (w *tableWriter) abort() {
	w.f.Close()
	os.Remove(w.tmpPath)
}
