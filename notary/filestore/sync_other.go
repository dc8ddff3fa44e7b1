//go:build !linux

package filestore

import "os"

// datasync flushes f's data and metadata.
func datasync(f *os.File) error { return f.Sync() }
