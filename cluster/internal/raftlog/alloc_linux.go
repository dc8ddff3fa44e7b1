package raftlog

import (
	"os"
	"syscall"
)

// allocate reserves size bytes for f (reading as zeros), so that writes
// within them change no file size and fdatasync has no size to record.
func allocate(f *os.File, size int64) error {
	return syscall.Fallocate(int(f.Fd()), 0, 0, size)
}

// datasync flushes f's data (and what reading it needs) to the disk.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
