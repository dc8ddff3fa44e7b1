package filestore

import "math/bits"

// filter is a Bloom filter over the keys of the commitment index, of a
// fixed size whatever the log's: it answers "certainly not in the table"
// for almost every new commitment, sparing a read of the table for each.
// It is blocked: a key's bits all lie in one 64-byte cache line, so adding
// or testing one costs a single cache miss. At 10 million keys about one
// lookup in a hundred reads the table for nothing; with many more keys it
// grows less useful, never incorrect.
type filter struct {
	blocks [][8]uint64 // 512 bits each
}

const (
	filterBytes  = 16 << 20
	filterHashes = 6
)

func newFilter() *filter { return &filter{blocks: make([][8]uint64, filterBytes/64)} }

// locate returns a key's block and its bit positions within the block.
// Keys are keyed SipHash values, uniform already: the block comes from
// their high bits, the positions from 9-bit slices of a remix.
func (f *filter) locate(key uint64) (*[8]uint64, uint64) {
	hi, _ := bits.Mul64(key, uint64(len(f.blocks)))
	return &f.blocks[hi], key * 0x9e3779b97f4a7c15
}

func (f *filter) add(key uint64) {
	b, h := f.locate(key)
	for i := range filterHashes {
		bit := h >> (9 * i) & 511
		b[bit/64] |= 1 << (bit % 64)
	}
}

func (f *filter) mayContain(key uint64) bool {
	b, h := f.locate(key)
	for i := range filterHashes {
		bit := h >> (9 * i) & 511
		if b[bit/64]&(1<<(bit%64)) == 0 {
			return false
		}
	}
	return true
}
