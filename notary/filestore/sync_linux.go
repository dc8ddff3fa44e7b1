//go:build linux && !arm

package filestore

import (
	"os"
	"syscall"
)

// datasync flushes f's data and the metadata needed to read it back.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }

// startWriteback asks the kernel to begin writing a range of f to disk
// without waiting, so a later datasync has little left to do and does not
// stall whoever holds the store. Errors are ignored: datasync reports them.
func startWriteback(f *os.File, off, n int64) {
	const syncFileRangeWrite = 2 // SYNC_FILE_RANGE_WRITE
	syscall.SyncFileRange(int(f.Fd()), off, n, syncFileRangeWrite)
}
