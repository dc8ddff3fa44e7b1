//go:build !linux || arm

package filestore

import "os"

// datasync flushes f's data and metadata.
func datasync(f *os.File) error { return f.Sync() }

// startWriteback does nothing where the kernel offers no asynchronous
// writeback of a range.
func startWriteback(*os.File, int64, int64) {}
