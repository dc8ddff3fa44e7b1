package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// refuseTimeout is how soon a node must give up on a data directory it
// may not use (a joining node asks the cluster who it is, up to 5 s).
const refuseTimeout = 10 * time.Second

// dirSnapshot is every file and directory under a data directory, with
// the files' contents.
type dirSnapshot map[string]string

func snapshotDir(t testing.TB, dir string) dirSnapshot {
	t.Helper()
	s := dirSnapshot{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		switch {
		case d.IsDir():
			s[rel+"/"] = ""
		case d.Type().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			s[rel] = string(b)
		default:
			s[rel] = "(" + d.Type().String() + ")"
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sameAs reports how after differs from s, or nil.
func (s dirSnapshot) sameAs(after dirSnapshot) error {
	var diffs []string
	for name, b := range s {
		a, ok := after[name]
		switch {
		case !ok:
			diffs = append(diffs, name+" was removed")
		case a != b:
			diffs = append(diffs, fmt.Sprintf("%s changed (%d bytes, now %d)", name, len(b), len(a)))
		}
	}
	for name := range after {
		if _, ok := s[name]; !ok {
			diffs = append(diffs, name+" appeared")
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	slices.Sort(diffs)
	return errors.New(strings.Join(diffs, "; "))
}

// mustRefuse runs a node with args and checks that it exits non-zero
// promptly with exactly one error line on stderr, which contains every
// one of want, and that nothing in dir changed.
func mustRefuse(t *testing.T, dir string, args []string, want ...string) {
	t.Helper()
	before := snapshotDir(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), refuseTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, telenotaryBin, args...)
	killWithParent(cmd)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("the node ran on for %v instead of refusing; stderr:\n%s", refuseTimeout, stderr.String())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("the node exited with %v, want a non-zero exit; stderr:\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "telenotary node: ") {
		t.Errorf("stderr has %d lines, want one error line:\n%s", len(lines), stderr.String())
	}
	for _, w := range want {
		if !strings.Contains(lines[0], w) {
			t.Errorf("the error does not mention %q: %s", w, lines[0])
		}
	}
	if stdout.Len() > 0 {
		t.Errorf("stdout is not empty: %q", stdout.String())
	}
	if err := before.sameAs(snapshotDir(t, dir)); err != nil {
		t.Errorf("the refused start changed the data directory: %v", err)
	}
	t.Logf("refused in %v with %v: %s", took.Round(time.Millisecond), exit, lines[0])
}

// clusterIDOf reads the cluster id a data directory records.
func clusterIDOf(t testing.TB, dataDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "node.json"))
	if err != nil {
		t.Fatal(err)
	}
	var id struct {
		NodeID    string `json:"node_id"`
		ClusterID string `json:"cluster_id"`
	}
	if err := json.Unmarshal(b, &id); err != nil {
		t.Fatal(err)
	}
	if id.ClusterID == "" {
		t.Fatalf("%s records no cluster id: %s", dataDir, b)
	}
	return id.ClusterID
}

// TestRefusesForeignDataDir starts nodes on data directories they must not
// use: one of another cluster, one of another node, one whose log is
// damaged. Each process must exit non-zero at once with one clear error
// line and leave every byte of the directory as it was.
func TestRefusesForeignDataDir(t *testing.T) {
	a := newProcCluster(t, "a.e2e.telenotary.test/log")
	b := newProcCluster(t, "b.e2e.telenotary.test/log")
	na := a.bootstrap("node-1")
	nb := b.bootstrap("node-1")
	waitReady(t, na, nb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 3 {
		if _, err := na.client().Notarize(ctx, freshEntry()); err != nil {
			t.Fatal(err)
		}
	}
	sizeA := a.waitConverged().Size
	na.stop()
	idA, idB := clusterIDOf(t, na.dataDir), clusterIDOf(t, nb.dataDir)

	// freshArgs runs A's node, or another id, on A's data directory with
	// new ports.
	freshArgs := func(id string, extra ...string) []string {
		return append([]string{"node", "--id", id, "--data-dir", na.dataDir,
			"--raft-addr", freeAddr(t), "--http-addr", freeAddr(t), "--insecure-raft",
			"--signer-key", na.keyFile, "--tokens", a.tokensFile}, extra...)
	}

	t.Run("another cluster", func(t *testing.T) {
		// The same node id (node.json records it) joining cluster B with
		// B's operator token.
		mustRefuse(t, na.dataDir, freshArgs("node-1", "--join", nb.url, "--join-token-file", b.operatorFile), "cluster", idA, idB)
	})
	t.Run("another node", func(t *testing.T) {
		mustRefuse(t, na.dataDir, freshArgs("node-2"), "node-1", "node-2")
		mustRefuse(t, na.dataDir, freshArgs("node-2", "--bootstrap", "--origin", a.origin), "node-1", "node-2")
		mustRefuse(t, na.dataDir, freshArgs("node-2", "--join", nb.url, "--join-token-file", b.operatorFile), "node-1", "node-2")
	})
	if t.Failed() {
		return
	}

	// The refusals left A's node as it was: it starts from its directory
	// and leads its cluster again, with its log.
	na.restart()
	waitReady(t, na)
	if got := a.waitConverged().Size; got != sizeA {
		t.Fatalf("A's node restarted at log size %d, want %d", got, sizeA)
	}
	na.stop()

	t.Run("damaged log", func(t *testing.T) {
		// Flip bytes in every slot of the log's head file: no head is
		// readable.
		head := filepath.Join(na.dataDir, "log-1", "head")
		h, err := os.ReadFile(head)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 3*512 {
			t.Fatalf("%s is %d bytes, want 3 slots of 512", head, len(h))
		}
		for slot := range 3 {
			for _, off := range []int{16, 100} {
				h[slot*512+off] ^= 0xff
			}
		}
		writeFile(t, head, string(h), 0o600)
		mustRefuse(t, na.dataDir, freshArgs("node-1"), "log-1", "head")
	})
}

// TestRefusesForeignClusterUnreachableAtStart is the foreign-cluster case
// when the other cluster does not answer while the node starts. A node
// with state does not join anything: it runs as the member of its own
// cluster it is (which changes its own files) until the nodes it was told
// to join answer; then it learns they are another cluster and exits
// non-zero, and that cluster never hears a join request from it.
func TestRefusesForeignClusterUnreachableAtStart(t *testing.T) {
	a := newProcCluster(t, "a.e2e.telenotary.test/log")
	b := newProcCluster(t, "b.e2e.telenotary.test/log")
	na := a.bootstrap("node-1")
	nb := b.bootstrap("b-1")
	waitReady(t, na, nb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := na.client().Notarize(ctx, freshEntry()); err != nil {
		t.Fatal(err)
	}
	na.stop()
	nb.stop()

	// A's node joins B while B is down; B comes back on its addresses.
	args := []string{"node", "--id", "node-1", "--data-dir", na.dataDir,
		"--raft-addr", freeAddr(t), "--http-addr", freeAddr(t), "--insecure-raft",
		"--signer-key", na.keyFile, "--tokens", a.tokensFile,
		"--join", nb.url, "--join-token-file", b.operatorFile}
	cmd := exec.Command(telenotaryBin, args...)
	killWithParent(cmd)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// B comes back only once the node has given up asking B who it is
	// and serves (or has exited, which is a refusal too).
	apiURL := "http://" + args[8]
	waitFor(t, startTimeout, "the node on A's data directory to serve or exit", func() error {
		if len(exited) > 0 {
			return nil
		}
		resp, err := http.Get(apiURL + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	nb.restart()
	waitReady(t, nb)

	select {
	case err := <-exited:
		if err == nil {
			t.Errorf("the node exited 0, want a non-zero exit")
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Errorf("the node on A's data directory was still running 20 s after B came back")
	}
	t.Logf("the node's output:\n%s", stderr.String())
	st, err := nb.status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Peers) != 1 {
		t.Errorf("B's configuration lists %d voters, want its own 1: %+v", len(st.Peers), st.Peers)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := nb.client().Notarize(ctx, freshEntry()); err != nil {
		t.Errorf("B cannot notarize any more: %v", err)
	}
}

// TestRefusesPortInUse: a node whose API or raft port is taken refuses in
// one line that says what to do, and creates no state.
func TestRefusesPortInUse(t *testing.T) {
	c := newProcCluster(t, testOrigin)
	n := c.newNode("node-1")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if err := os.MkdirAll(n.dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, addrs := range [][2]string{{freeAddr(t), taken.Addr().String()}, {taken.Addr().String(), freeAddr(t)}} {
		n.raftAddr, n.httpAddr = addrs[0], addrs[1]
		mustRefuse(t, n.dataDir, n.args("--bootstrap", "--origin", testOrigin), "address already in use", "choose another --http-addr or --raft-addr")
	}
}
