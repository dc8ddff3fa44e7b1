package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// telenotaryBin is the binary TestMain builds for every test.
var telenotaryBin string

const (
	pollInterval = 25 * time.Millisecond
	// startTimeout bounds a node's start until its API answers; a joining
	// node with state asks the cluster who it is first (up to 5 s).
	startTimeout = 20 * time.Second
	// readyTimeout bounds elections and joins (raft's timing is 1 s).
	readyTimeout = 30 * time.Second
	stopTimeout  = 30 * time.Second
	maxLogDump   = 64 << 10 // bytes of a node's log shown on failure
)

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

// runTests builds the binary once (without the race detector: the nodes
// are the system under test, the race detector checks the test process)
// and removes it afterwards.
func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "telenotary-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: the go command is needed to build the binary:", err)
		return 1
	}
	bin := filepath.Join(dir, "telenotary")
	build := exec.Command(goTool, "build", "-o", bin, "./cmd/telenotary")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/telenotary: %v\n%s", err, out)
		return 1
	}
	telenotaryBin = bin
	return m.Run()
}

// moduleRoot finds the module's root from the e2e directory, where go test
// runs the tests.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	root := filepath.Dir(wd)
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !bytes.Contains(b, []byte("module github.com/telenotary/telenotary\n")) {
		return "", fmt.Errorf("%s is not the telenotary module's root (run the tests from the e2e directory)", root)
	}
	return root, nil
}

// freeAddr returns a loopback address whose port was free a moment ago.
// Another process may take it before the node listens: see startNew.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// randomToken returns a fresh bearer token.
func randomToken(prefix string) string {
	var b [16]byte
	rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// writeFile writes a file for a test, failing it on error.
func writeFile(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// keygen makes a node's signer key with `telenotary keygen` and returns
// the key file.
func keygen(t testing.TB, dir, name string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(telenotaryBin, "keygen", "--name", name, "--dir", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("telenotary keygen --name %s: %v\n%s", name, err, out)
	}
	key := filepath.Join(dir, name+".key")
	if _, err := os.Stat(key); err != nil {
		t.Fatalf("telenotary keygen wrote no %s: %v\n%s", key, err, out)
	}
	return key
}

// procCluster is a notary cluster of node processes: one origin, one
// tokens file and the nodes started so far.
type procCluster struct {
	t      *testing.T
	dir    string
	origin string
	// submitter and operator are the cluster's tokens; tokensFile lists
	// them for the nodes and operatorFile holds the operator token for
	// joining.
	submitter, operator      string
	tokensFile, operatorFile string
	nodes                    []*nodeProc
}

func newProcCluster(t *testing.T, origin string) *procCluster {
	t.Helper()
	c := &procCluster{t: t, dir: t.TempDir(), origin: origin, submitter: randomToken("submitter"), operator: randomToken("operator")}
	c.tokensFile = filepath.Join(c.dir, "tokens")
	writeFile(t, c.tokensFile, "submitter "+c.submitter+"\noperator "+c.operator+"\n", 0o600)
	c.operatorFile = filepath.Join(c.dir, "operator-token")
	writeFile(t, c.operatorFile, c.operator+"\n", 0o600)
	return c
}

// nodeProc is one node process and what restarting it needs: its data
// directory and addresses stay the same across restarts.
type nodeProc struct {
	t                  *testing.T
	c                  *procCluster
	id                 string
	dataDir            string
	keyFile            string
	raftAddr, httpAddr string
	url                string
	// flags and env are added to every start of the node, restarts
	// included (the fault campaign's proxies and test hooks).
	flags, env []string

	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	waitErr error         // from cmd.Wait, once done is closed
	logs    []string      // one file per start, stdout and stderr
}

// newNode makes a node's key and directories; it does not start it.
func (c *procCluster) newNode(id string) *nodeProc {
	c.t.Helper()
	n := &nodeProc{t: c.t, c: c, id: id, dataDir: filepath.Join(c.dir, id, "data")}
	n.keyFile = keygen(c.t, filepath.Join(c.dir, id), id)
	c.nodes = append(c.nodes, n)
	c.t.Cleanup(func() {
		if n.running() {
			n.cmd.Process.Kill()
			<-n.done
		}
		if c.t.Failed() {
			n.dumpLogs()
		}
	})
	return n
}

// dumpLogs shows the node's logs (the tail of each) in the test's output.
func (n *nodeProc) dumpLogs() {
	for _, path := range n.logs {
		b, err := os.ReadFile(path)
		if err != nil {
			n.t.Logf("%s: %v", path, err)
			continue
		}
		if len(b) > maxLogDump {
			b = append([]byte("...\n"), b[len(b)-maxLogDump:]...)
		}
		n.t.Logf("--- %s (%s) ---\n%s", n.id, filepath.Base(path), b)
	}
}

// bootstrap starts the first node of the cluster; it does not wait for it
// to lead (see waitReady).
func (c *procCluster) bootstrap(id string) *nodeProc {
	c.t.Helper()
	n := c.newNode(id)
	n.startNew("--bootstrap", "--origin", c.origin)
	return n
}

// join starts a node that joins the cluster through the given node.
func (c *procCluster) join(id string, via *nodeProc) *nodeProc {
	c.t.Helper()
	n := c.newNode(id)
	n.startNew("--join", via.url, "--join-token-file", c.operatorFile)
	return n
}

// args are the node's command line.
func (n *nodeProc) args(extra ...string) []string {
	args := []string{"node",
		"--id", n.id, "--data-dir", n.dataDir,
		"--raft-addr", n.raftAddr, "--http-addr", n.httpAddr, "--insecure-raft",
		"--signer-key", n.keyFile, "--tokens", n.c.tokensFile,
	}
	args = append(args, n.flags...)
	return append(args, extra...)
}

// startNew starts a node on fresh ports. When a port it was given is taken
// by another process before the node listens, it tries fresh ones; any
// other failure to start fails the test.
func (n *nodeProc) startNew(extra ...string) {
	n.t.Helper()
	for attempt := 1; ; attempt++ {
		n.raftAddr, n.httpAddr = freeAddr(n.t), freeAddr(n.t)
		n.url = "http://" + n.httpAddr
		err := n.start(extra...)
		if err == nil {
			return
		}
		if attempt < 3 && errors.Is(err, errPortTaken) {
			n.t.Logf("%s: %v; trying other ports", n.id, err)
			continue
		}
		n.t.Fatalf("start %s: %v", n.id, err)
	}
}

// restart starts a stopped node again from its data directory, on the
// same addresses, without --bootstrap or --join.
func (n *nodeProc) restart() {
	n.t.Helper()
	if n.running() {
		n.t.Fatalf("restart %s: it is still running", n.id)
	}
	for attempt := 1; ; attempt++ {
		err := n.start()
		if err == nil {
			return
		}
		if attempt < 3 && errors.Is(err, errPortTaken) {
			// Another socket holds one of its ports for now: wait
			// until both are free again.
			n.t.Logf("%s: %v; waiting for its ports", n.id, err)
			waitFor(n.t, readyTimeout, n.id+"'s ports to be free", func() error {
				for _, addr := range []string{n.raftAddr, n.httpAddr} {
					ln, err := net.Listen("tcp", addr)
					if err != nil {
						return err
					}
					ln.Close()
				}
				return nil
			})
			continue
		}
		n.t.Fatalf("restart %s: %v", n.id, err)
	}
}

var errPortTaken = errors.New("a listen address was taken by another process")

// start launches the process and waits until its API answers /healthz
// (the node has opened its state and raft), or until it exits.
func (n *nodeProc) start(extra ...string) error {
	n.t.Helper()
	logPath := filepath.Join(n.c.dir, n.id, fmt.Sprintf("node-%d.log", len(n.logs)+1))
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer f.Close() // the child has its own descriptor
	n.logs = append(n.logs, logPath)
	cmd := exec.Command(telenotaryBin, n.args(extra...)...)
	if n.env != nil {
		cmd.Env = append(os.Environ(), n.env...)
	}
	cmd.Stdout, cmd.Stderr = f, f
	killWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	n.cmd, n.done, n.waitErr = cmd, done, nil
	go func() {
		n.waitErr = cmd.Wait()
		close(done)
	}()
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-done:
			out, _ := os.ReadFile(logPath)
			err := fmt.Errorf("exited during start (%v): %s", n.waitErr, strings.TrimSpace(string(out)))
			if bytes.Contains(out, []byte("address already in use")) {
				err = fmt.Errorf("%w: %v", errPortTaken, err)
			}
			return err
		default:
		}
		if resp, err := hc.Get(n.url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			n.kill()
			return fmt.Errorf("its API did not answer within %v", startTimeout)
		}
		time.Sleep(pollInterval)
	}
}

// running reports whether the current process is still running.
func (n *nodeProc) running() bool {
	if n.done == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// stop stops the node gracefully (SIGTERM) and checks that it exits 0.
func (n *nodeProc) stop() {
	n.t.Helper()
	if !n.running() {
		n.t.Fatalf("stop %s: not running (%v)", n.id, n.waitErr)
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(stopTimeout):
		n.kill()
		n.t.Fatalf("%s did not stop within %v of SIGTERM", n.id, stopTimeout)
	}
	if n.waitErr != nil {
		n.t.Fatalf("%s exited with %v after SIGTERM", n.id, n.waitErr)
	}
}

// kill kills the node (SIGKILL) and waits until it is gone.
func (n *nodeProc) kill() {
	if n.running() {
		n.cmd.Process.Kill()
	}
	<-n.done
}

// status asks the node for its status.
func (n *nodeProc) status() (*notaryapi.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// With the operator token: the peers are only shown to an operator.
	c := notaryapi.NewClient(notaryapi.ClientConfig{Token: n.c.operator, HTTPClient: statusHTTP})
	return c.StatusOf(ctx, n.url)
}

// statusHTTP reads one node's status at a time (StatusOf does not retry).
var statusHTTP = &http.Client{Timeout: 2 * time.Second}

// ready reports whether /readyz answers ready.
func (n *nodeProc) ready() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.url+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s /readyz: HTTP %d %s", n.id, resp.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}

// checkpoint returns the node's latest checkpoint, parsed.
func (n *nodeProc) checkpoint() (notary.Checkpoint, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	b, err := n.client().Checkpoint(ctx)
	if err != nil {
		return notary.Checkpoint{}, err
	}
	cp, err := notary.ParseSignedCheckpoint(b)
	return cp.Checkpoint, err
}

// client returns a client that knows this node only (a follower forwards
// submissions to the leader).
func (n *nodeProc) client() *notaryapi.Client {
	return notaryapi.NewClient(notaryapi.ClientConfig{Nodes: []string{n.url}, Token: n.c.submitter})
}

// client returns a client that knows every node of the cluster.
func (c *procCluster) client() *notaryapi.Client {
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, n.url)
	}
	return notaryapi.NewClient(notaryapi.ClientConfig{Nodes: urls, Token: c.submitter, MaxBackoff: 200 * time.Millisecond})
}

// waitFor polls cond until it returns nil, failing the test with cond's
// last error after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(pollInterval)
	}
}

// waitReady waits until every given node answers /readyz.
func waitReady(t testing.TB, nodes ...*nodeProc) {
	t.Helper()
	for _, n := range nodes {
		waitFor(t, readyTimeout, n.id+" ready", n.ready)
	}
}

// running returns the nodes whose process runs.
func (c *procCluster) running() []*nodeProc {
	var out []*nodeProc
	for _, n := range c.nodes {
		if n.running() {
			out = append(out, n)
		}
	}
	return out
}

// leader returns the running node that leads and is ready.
func (c *procCluster) leader() (*nodeProc, error) {
	for _, n := range c.running() {
		if st, err := n.status(); err == nil && st.State == "Leader" && st.Ready {
			return n, nil
		}
	}
	return nil, errors.New("no running node leads")
}

// waitLeader waits until a running node leads and returns it.
func (c *procCluster) waitLeader() *nodeProc {
	c.t.Helper()
	var l *nodeProc
	waitFor(c.t, readyTimeout, "a leader", func() (err error) {
		l, err = c.leader()
		return err
	})
	return l
}

// waitVoters waits until the leader counts n voters and every running node
// is ready.
func (c *procCluster) waitVoters(n int) {
	c.t.Helper()
	waitFor(c.t, readyTimeout, fmt.Sprintf("%d voters, all ready", n), func() error {
		l, err := c.leader()
		if err != nil {
			return err
		}
		st, err := l.status()
		if err != nil {
			return err
		}
		voters := 0
		for _, p := range st.Peers {
			if p.Suffrage == "Voter" {
				voters++
			}
		}
		if voters != n {
			return fmt.Errorf("the leader %s counts %d voters", l.id, voters)
		}
		for _, node := range c.running() {
			if err := node.ready(); err != nil {
				return err
			}
		}
		return nil
	})
}

// waitConverged waits until every running node reports the same log size
// and serves the same checkpoint (size, root, time), and returns it.
func (c *procCluster) waitConverged() notary.Checkpoint {
	c.t.Helper()
	return c.waitConvergedWithin(readyTimeout)
}

// waitConvergedWithin is waitConverged with its own timeout.
func (c *procCluster) waitConvergedWithin(timeout time.Duration) notary.Checkpoint {
	c.t.Helper()
	var agreed notary.Checkpoint
	waitFor(c.t, timeout, "the nodes to converge", func() error {
		var first *nodeProc
		var size uint64
		for _, n := range c.running() {
			st, err := n.status()
			if err != nil {
				return err
			}
			cp, err := n.checkpoint()
			if err != nil {
				return err
			}
			if cp.Size != st.LogSize {
				return fmt.Errorf("%s: status says log size %d, checkpoint %d", n.id, st.LogSize, cp.Size)
			}
			if first == nil {
				first, size, agreed = n, st.LogSize, cp
			} else if st.LogSize != size || cp != agreed {
				return fmt.Errorf("%s is at %+v, %s at %+v", first.id, agreed, n.id, cp)
			}
		}
		if first == nil {
			return errors.New("no node runs")
		}
		return nil
	})
	return agreed
}

// policy trusts the keys the cluster publishes at /v1/keys, for its origin.
func (c *procCluster) policy() notary.Policy {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keys, err := c.client().Keys(ctx)
	if err != nil {
		c.t.Fatalf("fetch /v1/keys: %v", err)
	}
	return notary.Policy{Verifiers: keys, Origin: c.origin}
}
