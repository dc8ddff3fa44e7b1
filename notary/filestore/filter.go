package filestore

import (
	"encoding/binary"
	"hash/crc32"
	"math/bits"
)

// filter is a Bloom filter over the keys of one index run, sized to that
// run when the run is written: it answers "certainly not in this run" for
// almost every key the run does not hold, sparing a read of the run.
// It is blocked: a key's bits all lie in one 64-byte block, so adding or
// testing one costs a single cache miss. Blocks are chosen by the key's high
// bits, so keys in increasing order fill the blocks in increasing order and
// a merge writes the filter as it writes the run, without holding it.
//
// Each run's filter gets filterBitsPerKey bits a key, but at most
// filterRunCap bytes: the filters are held in memory (read from the run's
// file on open, outside the Go heap: see allocWords), and the cap keeps
// their sum bounded as the log grows (about 60 MiB at 100 million keys,
// where 10 bits a key everywhere would take 125 MB). The runs past 13
// million entries thus get fewer bits a key (8 at 16 million, 2 at 64
// million), so more of the lookups that miss them read them for nothing.
type filter struct {
	words  []uint64 // 8 words a block
	blocks uint64
	hashes int
	free   func()
}

const (
	filterBitsPerKey = 10
	filterRunCap     = 16 << 20 // bytes
	filterBlockSize  = 64
	maxFilterHashes  = 7 // 9-bit slices of one 64-bit remix
)

// filterShape returns the blocks and the number of hashes of the filter of
// a run of n keys.
func filterShape(n uint64) (blocks uint64, hashes int) {
	bitCount := min(n*filterBitsPerKey, filterRunCap*8)
	blocks = max((bitCount+511)/512, 1)
	// The best number of hashes is ln 2 times the bits a key.
	perKey := float64(blocks*512) / float64(max(n, 1))
	hashes = min(max(int(perKey*0.69+0.5), 1), maxFilterHashes)
	return blocks, hashes
}

// newFilter returns an empty filter; call release when done with it.
func newFilter(blocks uint64, hashes int) *filter {
	words, free := allocWords(int(blocks * 8))
	return &filter{words: words, blocks: blocks, hashes: hashes, free: free}
}

// release frees the filter's memory; the filter must not be used after.
func (f *filter) release() {
	f.words = nil
	f.free()
}

// decodeFilter makes a filter of the bytes b of a run's file.
func decodeFilter(b []byte, hashes int) *filter {
	f := newFilter(uint64(len(b))/filterBlockSize, hashes)
	for i := range f.words {
		f.words[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return f
}

// blockOf returns the block of a key among blocks. Keys are keyed SipHash
// values, uniform already: the block comes from their high bits.
func blockOf(key, blocks uint64) uint64 {
	hi, _ := bits.Mul64(key, blocks)
	return hi
}

// remix gives the bit positions within the block: 9-bit slices of it.
func remix(key uint64) uint64 { return key * 0x9e3779b97f4a7c15 }

func (f *filter) add(key uint64) {
	b := f.words[blockOf(key, f.blocks)*8:]
	h := remix(key)
	for i := range f.hashes {
		bit := h >> (9 * i) & 511
		b[bit/64] |= 1 << (bit % 64)
	}
}

func (f *filter) mayContain(key uint64) bool {
	b := f.words[blockOf(key, f.blocks)*8:]
	h := remix(key)
	for i := range f.hashes {
		bit := h >> (9 * i) & 511
		if b[bit/64]&(1<<(bit%64)) == 0 {
			return false
		}
	}
	return true
}

// bytes returns the size of the filter in memory.
func (f *filter) bytes() uint64 { return uint64(len(f.words)) * 8 }

// filterWriter builds a filter from keys in increasing order and hands
// out its blocks as they are done.
type filterWriter struct {
	blocks uint64
	hashes int
	cur    uint64 // the block keys now go to; the blocks before it are emitted
	block  [8]uint64
	buf    []byte // emitted blocks not yet written
	crc    uint32
}

func newFilterWriter(blocks uint64, hashes int) *filterWriter {
	return &filterWriter{blocks: blocks, hashes: hashes}
}

// add adds the next key; keys must not decrease.
func (w *filterWriter) add(key uint64) {
	b := blockOf(key, w.blocks)
	for w.cur < b {
		w.emit()
	}
	h := remix(key)
	for i := range w.hashes {
		bit := h >> (9 * i) & 511
		w.block[bit/64] |= 1 << (bit % 64)
	}
}

// emit moves the current block to the buffer and starts the next one.
func (w *filterWriter) emit() {
	start := len(w.buf)
	for _, v := range w.block {
		w.buf = binary.LittleEndian.AppendUint64(w.buf, v)
	}
	w.crc = crc32.Update(w.crc, castagnoli, w.buf[start:])
	w.block = [8]uint64{}
	w.cur++
}

// finish emits every block left, the empty ones included.
func (w *filterWriter) finish() {
	for w.cur < w.blocks {
		w.emit()
	}
}
