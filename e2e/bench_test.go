package e2e

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchNotarize runs `telenotary bench notarize` against a 3-node
// cluster of processes, listing a follower first, with each way of sending
// requests: every receipt is verified, no request fails, and in direct
// mode every request went on the clients' own connections to the leader.
func TestBenchNotarize(t *testing.T) {
	c := newProcCluster(t, testOrigin)
	n1 := c.bootstrap("node-1")
	waitReady(t, n1)
	n2 := c.join("node-2", n1)
	n3 := c.join("node-3", n1)
	c.waitVoters(3)
	tokenFile := filepath.Join(c.dir, "submitter-token")
	writeFile(t, tokenFile, c.submitter+"\n", 0o600)
	nodes := strings.Join([]string{n2.url, n3.url, n1.url}, ",")
	for _, mode := range []string{"direct", "client"} {
		t.Run(mode, func(t *testing.T) {
			out, err := exec.Command(telenotaryBin, "bench", "notarize", "--nodes", nodes, "--token-file", tokenFile,
				"--clients", "8", "--duration", "2s", "--verify", "1", "--http", mode).CombinedOutput()
			if err != nil {
				t.Fatalf("bench notarize: %v\n%s", err, out)
			}
			want := []string{"HTTP " + mode, "errors:     0\n", ", 0 failed\n"}
			if mode == "direct" {
				want = append(want, ", 0 through the Go client after one failed")
			}
			for _, w := range want {
				if !bytes.Contains(out, []byte(w)) {
					t.Errorf("bench output lacks %q:\n%s", w, out)
				}
			}
			if bytes.Contains(out, []byte("receipts:   0 ")) || bytes.Contains(out, []byte("verified:   0 ")) {
				t.Errorf("no receipts, or none verified:\n%s", out)
			}
		})
	}
}
