//go:build !linux

package raftlog

import "os"

// allocate sizes f to size bytes (reading as zeros).
func allocate(f *os.File, size int64) error { return f.Truncate(size) }

// datasync flushes f to the disk.
func datasync(f *os.File) error { return f.Sync() }
