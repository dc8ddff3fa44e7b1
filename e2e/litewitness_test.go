package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/witness"
	"github.com/telenotary/telenotary/session/peer"
	"github.com/telenotary/telenotary/session/signalapi"
	"golang.org/x/mod/sumdb/note"
)

// torchwoodVersion is the torchwood whose witness, litewitness, the
// interoperability test runs: the version go.mod requires.
const torchwoodVersion = "v0.6.1"

// litewitnessTimeout bounds building litewitness (its SQLite is a large
// pure-Go package) and the cluster's wait for its cosignatures.
const litewitnessTimeout = 10 * time.Minute

// TestLitewitnessCosigns: an independent witness implementation,
// torchwood's litewitness (SQLite state, its key in an ssh-agent),
// configured with the cluster's origin and node keys, cosigns the
// checkpoints a 3-node cluster of processes submits to it, and every node
// serves a cosignature that verifies under the key litewitness prints, by
// torchwood's verifier, alongside the nodes' own signatures.
func TestLitewitnessCosigns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds litewitness and starts a cluster")
	}
	for _, tool := range []string{"ssh-agent", "ssh-add", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIPPED: no %s, which litewitness needs for its key; install openssh-client (apt-get install -y openssh-client, as .ci/run does)", tool)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), litewitnessTimeout)
	defer cancel()
	dir := shortTempDir(t)
	litewitness, witnessctl := buildLitewitness(t, ctx, dir)

	// The witness's key, in a dedicated ssh-agent.
	run(t, ctx, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "litewitness", "-f", filepath.Join(dir, "witness"))
	sock := filepath.Join(dir, "agent.sock")
	agent := startProc(t, filepath.Join(dir, "ssh-agent.log"), nil, "ssh-agent", "-D", "-a", sock)
	waitFor(t, startTimeout, "ssh-agent's socket", func() error {
		if agent.exited() {
			return fmt.Errorf("ssh-agent exited: %s", agent.output())
		}
		_, err := os.Stat(sock)
		return err
	})
	agentEnv := []string{"SSH_AUTH_SOCK=" + sock}
	run(t, ctx, agentEnv, "ssh-add", filepath.Join(dir, "witness"))
	fp := strings.Fields(run(t, ctx, nil, "ssh-keygen", "-l", "-E", "sha256", "-f", filepath.Join(dir, "witness.pub")))
	if len(fp) < 2 || !strings.HasPrefix(fp[1], "SHA256:") {
		t.Fatalf("ssh-keygen -l printed %q", fp)
	}

	// The cluster's nodes and their keys, then the log on the witness.
	c := newProcCluster(t, testOrigin)
	var nodes []*nodeProc
	db := filepath.Join(dir, "litewitness.db")
	run(t, ctx, nil, witnessctl, "add-log", "-db", db, "-origin", testOrigin)
	for _, id := range []string{"node-1", "node-2", "node-3"} {
		n := c.newNode(id)
		nodes = append(nodes, n)
		pub, err := os.ReadFile(strings.TrimSuffix(n.keyFile, ".key") + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		run(t, ctx, nil, witnessctl, "add-key", "-db", db, "-origin", testOrigin, "-key", strings.TrimSpace(string(pub)))
	}

	addr := freeAddr(t)
	lw := startProc(t, filepath.Join(dir, "litewitness.log"), nil, litewitness,
		"-name", "litewitness.test/e2e", "-db", db, "-ssh-agent", sock, "-key", fp[1], "-listen", addr)
	var vkey string
	waitFor(t, startTimeout, "litewitness to print its verifier key and listen", func() error {
		if lw.exited() {
			return fmt.Errorf("litewitness exited: %s", lw.output())
		}
		m := regexp.MustCompile(`vkey=(\S+)`).FindStringSubmatch(lw.output())
		if m == nil || !strings.Contains(lw.output(), "listening") {
			return errors.New("not yet")
		}
		vkey = strings.Trim(m[1], `"`)
		return nil
	})
	v, err := witness.NewVerifier(vkey)
	if err != nil {
		t.Fatalf("litewitness's key %q: %v", vkey, err)
	}

	// Our own witness beside it: two independent implementations.
	ours, oursKey := startOurWitness(t, ctx, dir, nodes)
	for _, n := range nodes {
		n.flags = []string{"--witness", "http://" + addr + "=" + vkey, "--witness", ours + "=" + oursKey}
	}
	nodes[0].startNew("--bootstrap", "--origin", testOrigin)
	waitReady(t, nodes[0])
	for _, n := range nodes[1:] {
		n.startNew("--join", nodes[0].url, "--join-token-file", c.operatorFile)
	}
	c.waitVoters(3)

	keys, err := c.client().Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	size := notarize(t, ctx, c, 20)
	waitCosigned(t, nodes, keys, v, size)
	// litewitness's own record agrees.
	if list := run(t, ctx, nil, witnessctl, "list-logs", "-db", db); !strings.Contains(list, fmt.Sprintf(`"size":%d`, size)) {
		t.Fatalf("litewitness records %s, want size %d", list, size)
	}

	// A consultation through a signalling server that waits for both
	// witnesses: every bundle verifies under a policy that needs the nodes'
	// majority and both witnesses.
	consultWitnessed(t, ctx, c, dir, keys, vkey, oursKey)

	// The whole cluster restarts: its leader no longer knows what
	// litewitness cosigned, sends "old 0", and takes litewitness's 409 (its
	// size as text/x.tlog.size) to prove consistency from there.
	for _, n := range nodes {
		n.stop()
	}
	for _, n := range nodes {
		n.restart()
	}
	c.waitVoters(3)
	size = notarize(t, ctx, c, 5)
	waitCosigned(t, nodes, keys, v, size)
	conflict := regexp.MustCompile(`(?m)^telenotary_witness_submissions_total\{outcome="conflict",witness="litewitness.test/e2e"\} [1-9]`)
	took := false
	for _, n := range nodes { // whichever led since the restart
		metrics, err := httpGetBody(n.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		took = took || conflict.Match(metrics)
	}
	if !took {
		t.Fatal("no node took a 409 from litewitness after the restart")
	}
}

// notarize notarizes count fresh entries and returns the log's size after
// the last.
func notarize(t *testing.T, ctx context.Context, c *procCluster, count int) uint64 {
	t.Helper()
	var last *notary.Receipt
	for i := range count {
		resp, err := c.client().Notarize(ctx, freshEntry())
		if err != nil {
			t.Fatalf("notarize %d: %v", i, err)
		}
		last = resp.Receipt
	}
	return last.Index + 1
}

// waitCosigned waits until every node serves the checkpoint of size with
// its own signature (under the cluster's keys) and a cosignature that
// verifies under the witness's verifier v.
func waitCosigned(t *testing.T, nodes []*nodeProc, keys []note.Verifier, v note.Verifier, size uint64) {
	t.Helper()
	for _, n := range nodes {
		waitFor(t, readyTimeout, fmt.Sprintf("%s to serve the checkpoint of size %d litewitness cosigned", n.id, size), func() error {
			msg, err := httpGetBody(n.url + "/v1/checkpoint")
			if err != nil {
				return err
			}
			cp, err := notary.OpenCheckpoint(msg, notary.Policy{Verifiers: keys, Origin: testOrigin})
			if err != nil {
				t.Fatalf("%s: its own signature: %v\n%s", n.id, err, msg)
			}
			opened, err := note.Open(msg, note.VerifierList(v))
			if err != nil {
				return fmt.Errorf("size %d: %v", cp.Size, err)
			}
			if cp.Size != size || len(opened.Sigs) != 1 || opened.Sigs[0].Name != "litewitness.test/e2e" {
				return fmt.Errorf("size %d (want %d), cosignatures %v", cp.Size, size, opened.Sigs)
			}
			return nil
		})
	}
}

// buildLitewitness installs torchwood's litewitness and witnessctl at the
// version go.mod requires into dir, through the Go module proxy.
func buildLitewitness(t *testing.T, ctx context.Context, dir string) (litewitness, witnessctl string) {
	t.Helper()
	bin := filepath.Join(dir, "bin")
	cmd := exec.CommandContext(ctx, "go", "install",
		"filippo.io/torchwood/cmd/litewitness@"+torchwoodVersion, "filippo.io/torchwood/cmd/witnessctl@"+torchwoodVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install litewitness@%s: %v\n%s", torchwoodVersion, err, out)
	}
	return filepath.Join(bin, "litewitness"), filepath.Join(bin, "witnessctl")
}

// shortTempDir is a temporary directory with a short path: a Unix
// socket's path is limited to about 100 bytes.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "lw-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// run runs a command to completion and returns its output, failing the
// test if it fails.
func run(t *testing.T, ctx context.Context, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// proc is a helper process (not a node) whose output goes to a file.
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// startProc starts a process that the test kills at its end.
func startProc(t *testing.T, logPath string, env []string, name string, args ...string) *proc {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	killWithParent(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("--- %s ---\n%s", filepath.Base(logPath), p.output())
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// httpGetBody GETs a URL and returns the body of a 200 answer.
func httpGetBody(url string) ([]byte, error) {
	resp, err := statusHTTP.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d: %s", url, resp.StatusCode, b)
	}
	return b, nil
}

// startOurWitness runs `telenotary witness` for the cluster's log (every
// node's key) and returns its URL and verifier key.
func startOurWitness(t *testing.T, ctx context.Context, dir string, nodes []*nodeProc) (url, vkey string) {
	t.Helper()
	wdir := filepath.Join(dir, "our-witness")
	if err := os.MkdirAll(wdir, 0o700); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(wdir, "ours.witness.test.key")
	run(t, ctx, nil, telenotaryBin, "keygen", "--name", "ours.witness.test", "--dir", wdir)
	var logs strings.Builder
	for _, n := range nodes {
		pub, err := os.ReadFile(strings.TrimSuffix(n.keyFile, ".key") + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&logs, "%s %s\n", testOrigin, strings.TrimSpace(string(pub)))
	}
	writeFile(t, filepath.Join(wdir, "logs"), logs.String(), 0o600)
	vkey = strings.TrimSpace(run(t, ctx, nil, telenotaryBin, "witness", "--signer-key", key, "--print-key"))
	addr := freeAddr(t)
	w := startProc(t, filepath.Join(wdir, "witness.log"), nil, telenotaryBin, "witness", "--listen", addr,
		"--data-dir", filepath.Join(wdir, "state"), "--signer-key", key, "--logs", filepath.Join(wdir, "logs"))
	waitFor(t, startTimeout, "our witness to answer", func() error {
		if w.exited() {
			return fmt.Errorf("telenotary witness exited: %s", w.output())
		}
		_, err := httpGetBody("http://" + addr + "/metrics")
		return err
	})
	return "http://" + addr, vkey
}

// consultWitnessed runs a consultation with a prescription through a
// signalling server that waits for two witnesses, and verifies every
// bundle under a policy that needs a majority of the nodes and both
// witnesses (and fails one that needs a witness the cluster lacks).
func consultWitnessed(t *testing.T, ctx context.Context, c *procCluster, dir string, keys []note.Verifier, lite, ours string) {
	t.Helper()
	sigDir := filepath.Join(dir, "signal")
	if err := os.MkdirAll(sigDir, 0o700); err != nil {
		t.Fatal(err)
	}
	s := startSignal(t, c, sigDir, "--receipt-witnesses", "2")
	room := s.createRoom(t, randomToken("patient"), randomToken("physician"))
	pat, doc, err := peer.Pair(ctx,
		peer.Config{URL: s.ws, Token: room.Tokens[signalapi.RolePatient], Loopback: true},
		peer.Config{URL: s.ws, Token: room.Tokens[signalapi.RolePhysician], Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pat.Close()
	resource, err := os.ReadFile("../notary/fhirdata/MedicationRequest-medrx0301.json")
	if err != nil {
		t.Fatal(err)
	}
	rx, err := doc.Prescribe(ctx, "rx-witnessed", resource)
	if err != nil {
		t.Fatal(err)
	}
	end, err := doc.Leave(ctx, "")
	if err != nil || end == nil {
		t.Fatalf("leave: %v", err)
	}
	var policy strings.Builder
	fmt.Fprintf(&policy, "origin %s\n", testOrigin)
	for _, k := range keys {
		fmt.Fprintf(&policy, "node %s\n", verifierLine(t, c, k.Name()))
	}
	fmt.Fprintf(&policy, "node-signatures 2\nwitness lite %s\nwitness ours %s\nquorum 2\n", lite, ours)
	pf, err := notary.ParsePolicy([]byte(policy.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, policy.String())
	}
	for name, b := range map[string]*notary.Bundle{"prescription": rx.Bundle, "session end": end.Bundle} {
		res, err := notary.VerifyBundle(b, pf.Policy)
		if err != nil {
			t.Fatalf("the %s bundle under a policy needing both witnesses: %v", name, err)
		}
		if len(res.Cosigners) != 2 {
			t.Fatalf("the %s bundle is cosigned by %v", name, res.Cosigners)
		}
	}
}

// verifierLine is the verifier key line a node of the cluster serves
// under name.
func verifierLine(t *testing.T, c *procCluster, name string) string {
	t.Helper()
	for _, n := range c.nodes {
		pub, err := os.ReadFile(strings.TrimSuffix(n.keyFile, ".key") + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		if line := strings.TrimSpace(string(pub)); strings.HasPrefix(line, name+"+") {
			return line
		}
	}
	t.Fatalf("no node key named %s", name)
	return ""
}
