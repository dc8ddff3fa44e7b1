//go:build !linux

package witness

import (
	"errors"
	"os"
)

// syncFiles flushes each written file.
func syncFiles(_ string, files []*os.File) error {
	var errs []error
	for _, f := range files {
		if f != nil {
			errs = append(errs, f.Sync())
		}
	}
	return errors.Join(errs...)
}

// syncDir flushes the renames in dir.
func syncDir(dir string, _ []*os.File) error { return fsyncDir(dir) }

// fsyncDir syncs a directory's entries.
func fsyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
