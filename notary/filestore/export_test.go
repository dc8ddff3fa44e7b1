package filestore

import (
	"path/filepath"
	"strconv"
	"strings"
)

// SetBootID makes the stores opened from now on believe the machine runs in
// the boot id, as if it had restarted since other stores were opened; the
// returned function restores the real boot id. Tests that use it must not
// run in parallel.
func SetBootID(id [16]byte) (restore func()) {
	old := bootIDFunc
	bootIDFunc = func() [16]byte { return id }
	return func() { bootIDFunc = old }
}

// IndexCovered returns how many leaves the newest index table in dir says
// it covers, 0 when there is none. It changes nothing in dir.
func IndexCovered(dir string) (uint64, error) {
	names, err := filepath.Glob(filepath.Join(dir, "index-*"))
	if err != nil {
		return 0, err
	}
	var newest uint64
	found := false
	for _, n := range names {
		gen, err := strconv.ParseUint(strings.TrimPrefix(filepath.Base(n), "index-"), 16, 64)
		if err == nil && (!found || gen > newest) {
			newest, found = gen, true
		}
	}
	if !found {
		return 0, nil
	}
	t, err := openTable(tablePath(dir, newest))
	if err != nil {
		return 0, err
	}
	defer t.close()
	return t.covered, nil
}
