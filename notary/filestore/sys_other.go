//go:build !unix

package filestore

import "os"

// lockDir opens dir/LOCK; this platform has no advisory locks, so nothing
// stops a second process.
func lockDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}
