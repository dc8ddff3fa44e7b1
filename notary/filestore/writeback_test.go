package filestore

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWriteBackByChunks: Commit hands written bytes to the kernel's
// writeback a chunk at a time, not a commit at a time (each hand-off
// queues disk writes, which a lone commit would wait behind), and starts
// again from the end of a file that was cut back.
func TestWriteBackByChunks(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "leaves"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, 2*writebackChunk), 0); err != nil {
		t.Fatal(err)
	}
	from := int64(0)
	for end := int64(4096); end < writebackChunk; end += 4096 {
		if from = writeBack(f, from, end); from != 0 {
			t.Fatalf("after %d bytes: writeback started up to %d, want not before %d", end, from, writebackChunk)
		}
	}
	if from = writeBack(f, from, writebackChunk+10); from != writebackChunk+10 {
		t.Fatalf("after a chunk: writeback started up to %d, want %d", from, writebackChunk+10)
	}
	if got := writeBack(f, from, 100); got != 100 {
		t.Fatalf("after the file was cut back to 100 bytes: next writeback from %d, want 100", got)
	}
}
