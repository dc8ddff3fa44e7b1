package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadmeWalkThrough runs every command block of the README after the
// first (the demo, TestReadmeFirstCommand's) in order, on a fresh clone of
// the committed state, each block in a shell of its own in one working
// directory, so that a block that needs a file no earlier block made fails:
// it installs telenotary, verifies a bundle, makes keys, starts a cluster
// of two nodes over mutual TLS, and a signalling server on it, and then an
// app backend creates a room as the README says. What the README leaves to
// the reader, the test brings, and says so here:
//
//   - the bundle and the keys file of the verify block (the test vectors'
//     valid.json and keys.pub);
//   - TLS certificates and their CAs (api.crt, raft.crt, signal.crt and
//     their keys; docs/OPERATIONS.md shows the openssl commands);
//   - the hosts: every address of the README becomes a loopback address
//     with a port of its own, and /var/lib/telenotary a directory per node;
//   - "on each node, with its own name": the cluster block's keygen makes
//     the keys of notary-2 and notary-3 (notary-1's is the Keys block's);
//   - long-running commands (node, signal) run in the background, and the
//     test waits until they are ready before the next block.
//
// The console's block needs a terminal (e2e/console_test.go drives the
// console in tmux): the test checks that the files it names exist.
func TestReadmeWalkThrough(t *testing.T) {
	if testing.Short() {
		t.Skip("installs telenotary and starts a cluster")
	}
	for _, tool := range []string{"bash", "git", "go", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIPPED: no %s to follow the README with", tool)
		}
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Run(); err != nil {
		t.Skip("SKIPPED: not a git checkout")
	}
	tmp := t.TempDir()
	clone, work, gobin := filepath.Join(tmp, "clone"), filepath.Join(tmp, "work"), filepath.Join(tmp, "bin")
	if out, err := exec.Command("git", "clone", "--quiet", root, clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	for _, d := range []string{work, gobin} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	readme, err := os.ReadFile(filepath.Join(clone, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	if len(blocks) < 2 {
		t.Fatalf("the README has %d sh blocks", len(blocks))
	}

	// The hosts of the README, on loopback.
	addr := map[string]string{}
	for _, name := range []string{"raft-1", "api-1", "raft-2", "api-2", "api-3", "signal"} {
		addr[name] = freeAddr(t)
	}
	hosts := strings.NewReplacer(
		"10.0.0.1:7000", addr["raft-1"], "10.0.0.1:8443", addr["api-1"],
		"10.0.0.2:7000", addr["raft-2"], "10.0.0.2:8443", addr["api-2"],
		"notary-1.example.org:8443", addr["api-1"], "notary-2.example.org:8443", addr["api-2"],
		"notary-3.example.org:8443", addr["api-3"],
		"notary-1:8443", addr["api-1"], "notary-2:8443", addr["api-2"], "notary-3:8443", addr["api-3"],
		"signal:8443", addr["signal"], "0.0.0.0:8443", addr["signal"],
	)
	pool := x509.NewCertPool()
	var pids []int
	t.Cleanup(func() { stopAll(t, pids) })

	for i, block := range blocks[1:] {
		text := hosts.Replace(joinContinuations(block[1]))
		dir := work
		var started []string // what to wait for after the block
		var script []string
		skip := false
		for _, line := range strings.Split(text, "\n") {
			cmd, _, _ := strings.Cut(line, "#")
			cmd = strings.TrimSpace(cmd)
			switch {
			case cmd == "":
				continue
			case strings.HasPrefix(cmd, "go install ./cmd/telenotary"):
				dir = clone
			case strings.HasPrefix(cmd, "telenotary verify ") && strings.Contains(cmd, "prescription.json"):
				bring(t, filepath.Join(clone, "notary/testdata/vectors/valid.json"), filepath.Join(work, "prescription.json"))
				bring(t, filepath.Join(clone, "notary/testdata/vectors/keys.pub"), filepath.Join(work, "notary-keys.pub"))
			case cmd == "telenotary keygen --name notary-1.example.org" && strings.Contains(text, "telenotary node"):
				// "on each node, with its own name": here, the other two.
				cmd = "for n in 2 3; do telenotary keygen --name notary-$n.example.org; done"
			case strings.HasPrefix(cmd, "telenotary node "):
				id := regexp.MustCompile(`--id (\S+)`).FindStringSubmatch(cmd)
				if id == nil {
					t.Fatalf("a node without --id: %s", cmd)
				}
				cmd = strings.Replace(cmd, "--data-dir /var/lib/telenotary", "--data-dir data-"+id[1], 1)
				cmd += fmt.Sprintf(" > %s.log 2>&1 & echo $! >> pids", id[1])
				started = append(started, "https://"+map[string]string{"notary-1": addr["api-1"], "notary-2": addr["api-2"]}[id[1]]+"/readyz")
				writeCert(t, pool, work, "api")
				writeCert(t, pool, work, "raft")
			case strings.HasPrefix(cmd, "telenotary signal "):
				cmd += " > signal.log 2>&1 & echo $! >> pids"
				started = append(started, "https://"+addr["signal"]+"/healthz")
				writeCert(t, pool, work, "signal")
			case strings.HasPrefix(cmd, "telenotary console "):
				skip = true
				for _, f := range regexp.MustCompile(`--(?:token-file|signal-key-file) (\S+)`).FindAllStringSubmatch(cmd, -1) {
					if _, err := os.Stat(filepath.Join(work, f[1])); err != nil {
						t.Errorf("block %d: the console's %s was made by no earlier block: %v", i+2, f[1], err)
					}
				}
			}
			script = append(script, cmd)
		}
		if skip {
			continue
		}
		sh := exec.Command("bash", "-e", "-c", strings.Join(script, "\n"))
		sh.Dir = dir
		sh.Env = append(os.Environ(), "GOBIN="+gobin, "PATH="+gobin+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := sh.CombinedOutput()
		t.Logf("README block %d:\n%s\n--- output:\n%s", i+2, strings.Join(script, "\n"), out)
		blockPids := readPids(t, filepath.Join(work, "pids"))
		pids = append(pids, blockPids...)
		if err != nil {
			t.Fatalf("README block %d failed: %v\n%s\n--- output:\n%s%s", i+2, err, strings.Join(script, "\n"), out, logsOf(work))
		}
		client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		for _, url := range started {
			deadline := time.Now().Add(60 * time.Second)
			for {
				resp, err := client.Get(url)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						break
					}
					err = fmt.Errorf("%s", resp.Status)
				}
				for _, pid := range blockPids {
					if !alive(pid) {
						t.Fatalf("README block %d: a command it started has exited (waiting for %s: %v):\n%s", i+2, url, err, logsOf(work))
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("README block %d: %s not ready after 60 s: %v\n%s", i+2, url, err, logsOf(work))
				}
				time.Sleep(pollInterval)
			}
		}
	}

	// The README's next step for an app backend: create a room with the
	// app key, on the signalling server it started over the cluster.
	key, err := os.ReadFile(filepath.Join(work, "app.key"))
	if err != nil {
		t.Fatalf("no app.key after the README's blocks: %v", err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("POST", "https://"+addr["signal"]+"/v1/rooms", strings.NewReader(`{"patient":"p-1","physician":"d-1"}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(key)))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/rooms with app.key: %s\n%s", resp.Status, logsOf(work))
	}
}

// joinContinuations joins the lines a backslash continues.
func joinContinuations(s string) string {
	return regexp.MustCompile(`\\\n\s*`).ReplaceAllString(s, "")
}

// bring copies a file the reader would bring.
func bring(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(b), 0o600)
}

// writeCert writes NAME.crt, NAME.key and NAME-ca.crt into dir, once: a
// self-signed certificate for loopback, for servers and clients, which is
// its own CA.
func writeCert(t *testing.T, pool *x509.CertPool, dir, name string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, name+".crt")); err == nil {
		return
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool.AddCert(cert)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, filepath.Join(dir, name+".crt"), certPEM, 0o644)
	writeFile(t, filepath.Join(dir, name+"-ca.crt"), certPEM, 0o644)
	writeFile(t, filepath.Join(dir, name+".key"), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})), 0o600)
}

// readPids reads the process ids the blocks started, and empties the file.
func readPids(t *testing.T, path string) []int {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// stopAll stops the processes the README started, the last first, as
// SIGTERM does, and waits until each has gone.
func stopAll(t *testing.T, pids []int) {
	for i := len(pids) - 1; i >= 0; i-- {
		pid := pids[i]
		if syscall.Kill(pid, syscall.SIGTERM) != nil {
			continue
		}
		deadline := time.Now().Add(40 * time.Second)
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Errorf("process %d did not stop within 40 s of SIGTERM: killed", pid)
				syscall.Kill(pid, syscall.SIGKILL)
				break
			}
			time.Sleep(pollInterval)
		}
	}
}

// logsOf returns the logs the README's processes wrote in dir.
func logsOf(dir string) string {
	var b bytes.Buffer
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		content, _ := os.ReadFile(l)
		fmt.Fprintf(&b, "--- %s:\n%s", filepath.Base(l), content)
	}
	return b.String()
}

// alive reports whether a process runs: it exists and is not a zombie
// waiting for a parent that is not this test (bash started it).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil // no /proc: ask the kernel
	}
	_, after, ok := bytes.Cut(stat, []byte(") "))
	return ok && len(after) > 0 && after[0] != 'Z'
}
