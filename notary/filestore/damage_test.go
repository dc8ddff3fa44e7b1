package filestore_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/filestore"
)

// TestEveryFlipRefusedFoundOrHarmless walks one flipped byte across every
// file of a closed store (sampled positions in the leaves, the stored
// hashes, every run of the commitment index and the meta file, every 13th byte of
// the head file). For each, opening the store and its log refuses it with
// one line, or a scrub finds the damage, or the store still answers every
// leaf, root, proof and lookup exactly as before: it never answers wrong
// without saying so. A flip in the leaves or the stored hashes must never be
// harmless, and a damaged head slot is always reported.
func TestEveryFlipRefusedFoundOrHarmless(t *testing.T) {
	const size = 300
	opts := filestore.Options{MemtableSize: 64} // index runs on disk, and leaves past them in memory
	pristine := t.TempDir()
	l := openLog(t, openStore(t, pristine, opts))
	leaves := leafRange(leafOf, 0, size)
	for i := 0; i < size; i += 25 {
		if _, err := l.Append(leaves[i:i+25], appState(i+25)); err != nil {
			t.Fatal(err)
		}
	}
	want := l.Head()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files := map[string]int64{"leaves": 173, "hashes": 97, "head": 13, "meta": 5}
	tables := indexTables(t, pristine)
	if len(tables) < 2 {
		t.Fatalf("index runs: %v; want several", tables)
	}
	for _, n := range tables {
		files[filepath.Base(n)] = 211
	}

	for name, stride := range files {
		st, err := os.Stat(filepath.Join(pristine, name))
		if err != nil {
			t.Fatal(err)
		}
		var refused, found, harmless, warned int
		for off := int64(1); off < st.Size(); off += stride {
			dir := copyDir(t, pristine)
			flipBytes(t, filepath.Join(dir, name), off)
			var logs bytes.Buffer
			o := opts
			o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
			outcome, err := openAndCheck(dir, o, leaves, want)
			where := fmt.Sprintf("%s byte %d", name, off)
			switch outcome {
			case "refused":
				refused++
				if !errors.Is(err, notary.ErrCorrupt) || strings.Contains(err.Error(), "\n") {
					t.Errorf("%s: refused with %q; want one line wrapping ErrCorrupt", where, err)
				}
			case "found":
				found++
			case "harmless":
				harmless++
			default:
				t.Fatalf("%s: %v", where, err)
			}
			if logs.Len() > 0 {
				warned++
			} else if name == "head" && outcome != "refused" {
				t.Errorf("%s: a damaged head slot passed over without a warning", where)
			}
			os.RemoveAll(dir)
		}
		t.Logf("%-10s %d flips: %d refused on open, %d found by the scrub, %d harmless (%d with a warning)", name, refused+found+harmless, refused, found, harmless, warned)
		if (name == "leaves" || name == "hashes") && harmless > 0 {
			t.Errorf("%s: %d flips went unnoticed", name, harmless)
		}
	}
}

// openAndCheck opens the store in dir and says what became of the damage:
// "refused" (Open failed), "found" (a scrub reported it) or "harmless"
// (everything reads as before); any other outcome is an error.
func openAndCheck(dir string, opts filestore.Options, leaves []notary.Leaf, want notary.Head) (string, error) {
	s, err := filestore.Open(dir, opts)
	if err != nil {
		return "refused", err
	}
	defer s.Close()
	l, err := notary.Open(s)
	if err != nil {
		return "refused", err
	}
	scrub := l.NewScrub()
	for {
		n, err := scrub.Step(64)
		if errors.Is(err, notary.ErrDamaged) {
			return "found", err
		}
		if err != nil {
			return "", fmt.Errorf("scrub: %w", err)
		}
		if n == 0 {
			break
		}
	}
	// Undetected: then every answer must be the right one.
	if h := l.Head(); h.Size != want.Size || h.Root != want.Root || !bytes.Equal(h.AppState, want.AppState) {
		return "", fmt.Errorf("undetected: head %d %s, want %d %s", h.Size, h.Root, want.Size, want.Root)
	}
	got := make([]notary.Leaf, len(leaves))
	if err := l.Leaves(0, got); err != nil {
		return "", fmt.Errorf("undetected: leaves: %w", err)
	}
	for i := range leaves {
		if got[i] != leaves[i] {
			return "", fmt.Errorf("undetected: leaf %d reads %+v", i, got[i])
		}
		if at, ok, err := l.Find(leaves[i].Commitment); err != nil || !ok || at != uint64(i) {
			return "", fmt.Errorf("undetected: leaf %d found at %d, %v, %v", i, at, ok, err)
		}
	}
	for size := uint64(1); size <= want.Size; size += 37 {
		if _, err := l.RootAt(size); err != nil {
			return "", fmt.Errorf("undetected: root at %d: %w", size, err)
		}
		if _, err := l.InclusionProof(size-1, want.Size); err != nil {
			return "", fmt.Errorf("undetected: proof of %d: %w", size-1, err)
		}
	}
	return "harmless", nil
}
