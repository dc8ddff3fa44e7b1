//go:build !linux

package filestore

// allocWords returns n zeroed words and the function that frees them.
func allocWords(n int) (words []uint64, free func()) { return allocArray[uint64](n) }

// allocArray returns n zeroed values and the function that frees them.
func allocArray[T any](n int) (values []T, free func()) { return make([]T, n), func() {} }
