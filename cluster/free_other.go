//go:build !unix

package cluster

import "errors"

// freeBytes cannot tell here.
func freeBytes(string) (uint64, error) { return 0, errors.New("free space unknown on this system") }
