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
		errs = append(errs, f.Sync())
	}
	return errors.Join(errs...)
}
