package filestore

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"strings"

	"github.com/telenotary/telenotary/notary"
)

// The head file holds three 512-byte slots, each a complete head with a
// sequence number and a checksum, so a torn write never destroys the only
// copy. Slot 0 holds the last head made durable by a sync; slots 1 and 2
// take every commit in turn.
//
// Slot layout (little-endian): magic (8) | seq (8) | size (8) | root (32) |
// flags (1, bit 0: synced) | reserved (7) | boot id (16) | app state length
// (2) | app state (256) | zero padding | CRC-32C of bytes 0..507 (4).

const (
	headMagic  = "TNHEAD01"
	slotBytes  = 512
	syncedSlot = 0
	flagSynced = 1
)

// headSlot is one decoded slot.
type headSlot struct {
	seq    uint64
	head   notary.Head
	synced bool     // the data files were synced before the slot was written, and the slot after
	boot   [16]byte // boot id of the machine when the slot was written
}

func (s headSlot) encode() []byte {
	b := make([]byte, slotBytes)
	copy(b, headMagic)
	binary.LittleEndian.PutUint64(b[8:], s.seq)
	binary.LittleEndian.PutUint64(b[16:], s.head.Size)
	copy(b[24:56], s.head.Root[:])
	if s.synced {
		b[56] = flagSynced
	}
	copy(b[64:80], s.boot[:])
	binary.LittleEndian.PutUint16(b[80:], uint16(len(s.head.AppState)))
	copy(b[82:], s.head.AppState)
	binary.LittleEndian.PutUint32(b[slotBytes-4:], crc32.Checksum(b[:slotBytes-4], castagnoli))
	return b
}

// decodeSlot decodes a slot; ok is false for an empty, torn or foreign one.
func decodeSlot(b []byte) (headSlot, bool) {
	if len(b) != slotBytes || !bytes.Equal(b[:8], []byte(headMagic)) ||
		binary.LittleEndian.Uint32(b[slotBytes-4:]) != crc32.Checksum(b[:slotBytes-4], castagnoli) {
		return headSlot{}, false
	}
	n := int(binary.LittleEndian.Uint16(b[80:]))
	if n > notary.MaxAppState {
		return headSlot{}, false
	}
	s := headSlot{
		seq:    binary.LittleEndian.Uint64(b[8:]),
		head:   notary.Head{Size: binary.LittleEndian.Uint64(b[16:]), Root: notary.Hash(b[24:56])},
		synced: b[56]&flagSynced != 0,
	}
	copy(s.boot[:], b[64:80])
	if n > 0 {
		s.head.AppState = bytes.Clone(b[82 : 82+n])
	}
	return s, true
}

// readSlots returns the valid slots of the head file, by slot number, and
// the numbers of the slots that hold something but fail their checks: torn
// by a crash while being written, or damaged since.
func readSlots(f *os.File) (map[int]headSlot, []int, error) {
	buf := make([]byte, 3*slotBytes)
	n, err := f.ReadAt(buf, 0)
	if err != nil && n != len(buf) && !errors.Is(err, io.EOF) {
		return nil, nil, err
	}
	slots := make(map[int]headSlot)
	var bad []int
	for i := range 3 {
		if (i+1)*slotBytes > n {
			break
		}
		b := buf[i*slotBytes : (i+1)*slotBytes]
		if s, ok := decodeSlot(b); ok {
			slots[i] = s
		} else if !bytes.Equal(b, make([]byte, slotBytes)) {
			bad = append(bad, i)
		}
	}
	return slots, bad, nil
}

// latestSlot returns the slot with the highest sequence number, preferring a
// synced one on a tie.
func latestSlot(slots map[int]headSlot, onlySynced bool) (headSlot, bool) {
	var best headSlot
	found := false
	for _, s := range slots {
		if onlySynced && !s.synced {
			continue
		}
		if !found || s.seq > best.seq || (s.seq == best.seq && s.synced && !best.synced) {
			best, found = s, true
		}
	}
	return best, found
}

// bootID identifies the running boot of the machine, or is zero where the
// platform does not say. Within one boot the page cache survives a process
// crash, so what a slot of this boot says was written is readable.
func bootID() [16]byte { return bootIDFunc() }

// bootIDFunc is what bootID consults; tests replace it to open a store as
// if the machine had restarted.
var bootIDFunc = readBootID

// readBootID reads the kernel's boot id.
func readBootID() [16]byte {
	var id [16]byte
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return id
	}
	raw, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(string(b)), "-", ""))
	if err != nil || len(raw) != len(id) {
		return id
	}
	copy(id[:], raw)
	return id
}
