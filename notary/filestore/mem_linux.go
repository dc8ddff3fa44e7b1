//go:build linux

package filestore

import (
	"syscall"
	"unsafe"
)

const (
	hugePage      = 2 << 20
	madvHugepage  = 14 // MADV_HUGEPAGE
	minMappedSize = 1 << 20
	pageStride    = 4 << 10 // the smallest page: every page is touched, huge or not
)

// allocWords returns n zeroed words and the function that frees them: see
// allocArray.
func allocWords(n int) (words []uint64, free func()) { return allocArray[uint64](n) }

// allocArray returns n zeroed values, which must hold no pointers, and the
// function that frees them. The large arrays (the index's filters and
// memtables: megabytes, read at random on every lookup) are mapped outside
// the Go heap on 2 MiB-aligned memory that the kernel is asked to back with
// huge pages: a random read then rarely misses the TLB, which in a virtual
// machine costs a walk of two page tables, and memory that the garbage
// collector neither scans nor counts toward its heap goal does not make the
// heap grow in proportion. The values must not be used after free.
func allocArray[T any](n int) (values []T, free func()) {
	var zero T
	size := n * int(unsafe.Sizeof(zero))
	if size < minMappedSize {
		return make([]T, n), func() {}
	}
	b, err := syscall.Mmap(-1, 0, size+hugePage, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]T, n), func() {}
	}
	off := 0
	if rem := uintptr(unsafe.Pointer(&b[0])) % hugePage; rem != 0 {
		off = int(hugePage - rem)
	}
	aligned := b[off : off+size]
	syscall.Madvise(aligned, madvHugepage) // a hint: without huge pages it works all the same
	// Fault every page in now. A huge page's first touch may make the
	// kernel compact memory to find one (tens of milliseconds here), and
	// a memtable's inserts reach a new page every 2 MiB: on every node of
	// a cluster at the same leaf, inside a commit.
	for i := 0; i < len(aligned); i += pageStride {
		aligned[i] = 0
	}
	offHeap.Add(int64(size))
	return unsafe.Slice((*T)(unsafe.Pointer(&aligned[0])), n), func() {
		offHeap.Add(-int64(size))
		syscall.Munmap(b)
	}
}
