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

// A table is an immutable file of index entries, one run of the index (see
// index.go): the entries of the leaves [from, covered), sorted by key, each
// at or a little after its ideal slot: the key's fraction of the 64-bit
// range times the table's base. Keys are SipHash values, uniform over that
// range, so a lookup reads one small window at the ideal slot and almost
// never a second one.
//
// Placement is greedy: each entry, in key order, takes the first free slot at
// or after its ideal one. So a run of entries ends at an empty slot, and a
// key that is not at or before the first empty slot after its ideal one is
// not in the table.
//
// File layout (format 2): a 4 KiB header; the run's Bloom filter (see
// filter.go), 64-byte blocks, padded to a multiple of 4 KiB; then 16-byte
// slots: key (8, little-endian), value (8, little-endian: leaf index + 1; 0
// marks an empty slot). The header holds the checksum of the filter, which
// is read into memory on open.
//
// Format 1, written by earlier versions, has no from, level or filter: its
// slots follow the header, and it holds the entries of all leaves below
// covered. Open rewrites it in format 2.

const (
	tableMagic       = "TNINDEX2"
	legacyTableMagic = "TNINDEX1"
	tableHeaderSize  = 4096
	slotSize         = 16
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
	gen          uint64 // generation: unique, a newer table has a larger one
	covered      uint64 // the table holds the entries of the leaves [from, covered)
	count        uint64 // entries
	base         uint64 // slots over which keys are spread
	slots        uint64 // slots in the file
	keyTag       uint64 // identifies the store's SipHash key
	from         uint64
	level        uint64 // 0 for a frozen memtable, one more for each merge of runs
	filterBlocks uint64 // 64-byte blocks of the Bloom filter
	filterHashes uint64
	filterCRC    uint64 // CRC-32C of the filter's blocks
	legacy       bool   // format 1: from 0, no filter
}

const headerFields = 11

// maxStoredFilter bounds the filter a table may hold (so a header never
// makes open allocate without limit), above any cap filterRunCap has had.
const maxStoredFilter = 1 << 30

func (h tableHeader) encode() []byte {
	b := make([]byte, tableHeaderSize)
	copy(b, tableMagic)
	for i, v := range []uint64{h.gen, h.covered, h.count, h.base, h.slots, h.keyTag, h.from, h.level, h.filterBlocks, h.filterHashes, h.filterCRC} {
		binary.LittleEndian.PutUint64(b[8+8*i:], v)
	}
	end := 8 + 8*headerFields
	binary.LittleEndian.PutUint32(b[end:], crc32.Checksum(b[:end], castagnoli))
	return b
}

func decodeTableHeader(b []byte) (tableHeader, error) {
	fields, legacy := headerFields, false
	switch {
	case len(b) >= tableHeaderSize && bytes.Equal(b[:8], []byte(tableMagic)):
	case len(b) >= tableHeaderSize && bytes.Equal(b[:8], []byte(legacyTableMagic)):
		fields, legacy = 6, true
	default:
		return tableHeader{}, errors.New("not an index table")
	}
	end := 8 + 8*fields
	if binary.LittleEndian.Uint32(b[end:]) != crc32.Checksum(b[:end], castagnoli) {
		return tableHeader{}, errors.New("index table header checksum mismatch")
	}
	var v [headerFields]uint64
	for i := range fields {
		v[i] = binary.LittleEndian.Uint64(b[8+8*i:])
	}
	h := tableHeader{gen: v[0], covered: v[1], count: v[2], base: v[3], slots: v[4], keyTag: v[5],
		from: v[6], level: v[7], filterBlocks: v[8], filterHashes: v[9], filterCRC: v[10], legacy: legacy}
	if h.count > h.slots || (h.count > 0 && h.base == 0) || h.from > h.covered || h.level > 64 ||
		h.filterBlocks > maxStoredFilter/filterBlockSize || h.filterHashes > maxFilterHashes || (!legacy && h.filterBlocks == 0) ||
		h.slots > 1<<50 {
		return tableHeader{}, errors.New("index table header is inconsistent")
	}
	return h, nil
}

// slotsOffset is where the slots start in the file.
func (h tableHeader) slotsOffset() int64 {
	return tableHeaderSize + int64((h.filterBlocks*filterBlockSize+tableHeaderSize-1)/tableHeaderSize*tableHeaderSize)
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
	f      *os.File
	path   string
	filter *filter // nil until loaded; a legacy table has none
	// merging says a merge under way will replace the table.
	merging bool
}

// openTable opens a table and checks its header and size; it does not read
// the filter (see loadFilter).
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
	if want := h.slotsOffset() + int64(h.slots)*slotSize; st.Size() != want {
		f.Close()
		return nil, fmt.Errorf("%s: %d bytes, header says %d", path, st.Size(), want)
	}
	return &table{tableHeader: h, f: f, path: path}, nil
}

// errFilterDamaged means a table's filter fails its checksum.
var errFilterDamaged = errors.New("index table filter checksum mismatch")

// loadFilter reads the table's filter into memory. If the stored filter
// fails its checksum, it builds the filter again from the entries (one
// sequential read of the table) and returns errFilterDamaged with it, for
// the caller to note: a damaged filter could deny a key the table holds.
func (t *table) loadFilter() error {
	if !t.legacy {
		b := make([]byte, t.filterBlocks*filterBlockSize)
		if _, err := t.f.ReadAt(b, tableHeaderSize); err != nil {
			return fmt.Errorf("%s: read filter: %w", t.path, err)
		}
		if uint64(crc32.Checksum(b, castagnoli)) == t.filterCRC {
			t.filter = decodeFilter(b, int(t.filterHashes))
			return nil
		}
	}
	blocks, hashes := filterShape(t.count)
	f := newFilter(blocks, hashes)
	r := t.reader()
	for {
		e, ok, err := r.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		f.add(e.key)
	}
	t.filter = f
	if t.legacy {
		return nil
	}
	return fmt.Errorf("%s: %w: rebuilt from its entries", t.path, errFilterDamaged)
}

// mayContain reports whether the table may hold key, from its filter.
func (t *table) mayContain(key uint64) bool { return t.filter == nil || t.filter.mayContain(key) }

// lookup calls fn with the index of every entry whose key is key.
func (t *table) lookup(key uint64, fn func(index uint64)) error {
	var buf [lookupWindow * slotSize]byte
	off := t.slotsOffset()
	for pos := idealSlot(key, t.base); pos < t.slots; pos += lookupWindow {
		n := min(lookupWindow, t.slots-pos)
		if _, err := t.f.ReadAt(buf[:n*slotSize], off+int64(pos)*slotSize); err != nil {
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

// close closes the file and frees the filter. Lookups must be done with the
// table: the index closes tables only while it excludes them.
func (t *table) close() error {
	if t.filter != nil {
		t.filter.release()
		t.filter = nil
	}
	return t.f.Close()
}

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
		if _, err := r.t.f.ReadAt(r.buf, r.t.slotsOffset()+int64(r.pos)*slotSize); err != nil {
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
	filter  *filterWriter
	fltOff  int64 // where the filter's next blocks go
	last    entry
	any     bool
}

// createTable starts table gen of the given level, sized for about expected
// entries, that will hold the entries of the leaves [from, covered).
func createTable(dir string, gen, from, covered, level, expected, keyTag uint64) (*tableWriter, error) {
	path := tablePath(dir, gen)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	blocks, hashes := filterShape(expected)
	hdr := tableHeader{gen: gen, from: from, covered: covered, level: level, base: baseFor(expected), keyTag: keyTag,
		filterBlocks: blocks, filterHashes: uint64(hashes)}
	return &tableWriter{hdr: hdr, f: f, tmpPath: tmp, path: path, filter: newFilterWriter(blocks, hashes), fltOff: tableHeaderSize}, nil
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
	w.filter.add(e.key)
	w.last, w.any = e, true
}

// writeBuffer is how many bytes of slots (or of filter) a writer gathers
// per write. Several merges may run at once, each with its writer.
const writeBuffer = 256 << 10

// flushIfFull writes the placed slots once there are enough of them.
func (w *tableWriter) flushIfFull() error {
	if len(w.buf) < writeBuffer && len(w.filter.buf) < writeBuffer {
		return nil
	}
	return w.flush()
}

// flush writes the placed slots and the filter's finished blocks.
func (w *tableWriter) flush() error {
	if len(w.filter.buf) > 0 {
		if _, err := w.f.WriteAt(w.filter.buf, w.fltOff); err != nil {
			return fmt.Errorf("write index filter: %w", err)
		}
		w.fltOff += int64(len(w.filter.buf))
		w.filter.buf = w.filter.buf[:0]
	}
	if len(w.buf) == 0 {
		return nil
	}
	off := w.hdr.slotsOffset() + int64(w.flushed)*slotSize
	if _, err := w.f.WriteAt(w.buf, off); err != nil {
		return fmt.Errorf("write index table: %w", err)
	}
	startWriteback(w.f, off, int64(len(w.buf)))
	w.flushed += uint64(len(w.buf) / slotSize)
	w.buf = w.buf[:0]
	return nil
}

// finish makes the table durable under its final name and opens it, its
// filter loaded.
func (w *tableWriter) finish() (*table, error) {
	w.filter.finish()
	if err := w.flush(); err != nil {
		return nil, err
	}
	w.hdr.slots = w.flushed
	w.hdr.filterCRC = uint64(w.filter.crc)
	// The padding between the filter and the slots, if no slot made the
	// file reach past it.
	if err := w.f.Truncate(w.hdr.slotsOffset() + int64(w.hdr.slots)*slotSize); err != nil {
		return nil, fmt.Errorf("size index table: %w", err)
	}
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
	t, err := openTable(w.path)
	if err != nil {
		return nil, err
	}
	// A filter damaged already is built again from the entries.
	if err := t.loadFilter(); err != nil && !errors.Is(err, errFilterDamaged) {
		t.close()
		return nil, err
	}
	return t, nil
}

// abort removes the unfinished table.
func (w *tableWriter) abort() {
	w.f.Close()
	os.Remove(w.tmpPath)
}
