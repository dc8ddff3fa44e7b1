//go:build linux

package witness

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFiles flushes the written files: one syncfs of dir's filesystem.
func syncFiles(dir string, _ []*os.File) error { return syncfs(dir) }

// syncDir flushes the renames in dir: one syncfs again.
func syncDir(dir string, _ []*os.File) error { return syncfs(dir) }

func syncfs(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}
