package filestore

import "sync/atomic"

// offHeap counts the bytes allocArray holds outside the Go heap.
var offHeap atomic.Int64

// OffHeapBytes returns the bytes that the stores open in this process hold
// outside the Go heap: their indexes' memtables and Bloom filters (about
// 32 MiB of memtables at the default size, and 10 bits a leaf of filters,
// at most 16 MiB a run). A soft memory limit on the Go runtime
// (debug.SetMemoryLimit) does not count them: a process that sets one
// should leave room for them.
func OffHeapBytes() int64 { return offHeap.Load() }
