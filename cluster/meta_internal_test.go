package cluster

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/telenotary/telenotary/cluster/notaryapi"
)

// TestMembersFileChecked: members.json written by a node reopens as it
// was; one edited by hand (an address changed, the JSON still valid) or
// with a byte flipped is refused with one line naming the file; one without
// a checksum is taken with a warning.
func TestMembersFileChecked(t *testing.T) {
	dir := t.TempDir()
	f := testFSM(t, dir)
	meta := clusterMeta{Index: 7, Genesis: &genesis{ClusterID: strings.Repeat("ab", 16), Origin: "o.test/log"},
		Members: map[string]notaryapi.MemberInfo{"node-1": {Member: notaryapi.Member{ID: "node-1", RaftAddr: "10.0.0.1:7000", HTTPAddr: "https://10.0.0.1:8443", VerifierKey: "node-1+abcd+AAAA"}, KeySince: 3}}}
	if err := f.writeMeta(meta); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, membersName)
	written, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readMeta(dir, slog.New(slog.DiscardHandler))
	if err != nil || got.Members["node-1"] != meta.Members["node-1"] || got.Index != 7 || *got.Genesis != *meta.Genesis {
		t.Fatalf("members.json read back: %+v, %v", got, err)
	}

	for name, damage := range map[string]func([]byte) []byte{
		"an address edited": func(b []byte) []byte { return bytes.Replace(b, []byte("10.0.0.1:7000"), []byte("10.6.6.6:7000"), 1) },
		"a key swapped":     func(b []byte) []byte { return bytes.Replace(b, []byte("+AAAA"), []byte("+BBBB"), 1) },
		"a byte flipped":    func(b []byte) []byte { b = bytes.Clone(b); b[len(b)/2] ^= 0x01; return b },
	} {
		if err := os.WriteFile(path, damage(written), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := readMeta(dir, slog.New(slog.DiscardHandler))
		if !errors.Is(err, ErrCorruptState) || !strings.Contains(err.Error(), membersName) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v; want one line, ErrCorruptState naming %s", name, err, membersName)
		}
	}

	// Without a checksum: taken, with a warning.
	var noSum []byte
	for _, line := range strings.SplitAfter(string(written), "\n") {
		if !strings.Contains(line, `"sha256"`) {
			noSum = append(noSum, line...)
		}
	}
	noSum = bytes.Replace(noSum, []byte("},\n}"), []byte("}\n}"), 1) // the comma the removed line followed
	if err := os.WriteFile(path, noSum, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	got, err = readMeta(dir, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil || got.Index != 7 || !strings.Contains(logs.String(), "no checksum") {
		t.Fatalf("members.json without a checksum: %v, %+v; logs %q", err, got, logs.String())
	}
}
