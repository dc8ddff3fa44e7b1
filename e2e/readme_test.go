package e2e

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeFirstCommand follows the README on a fresh clone of the
// repository's committed state: its first code block has exactly two
// commands, the demo and `make test`; the demo command, run headless for
// 20 s, exits 0 with verified receipts, and the lines it prints to paste
// work as printed: the curl creates a room with the app key while it runs
// (when curl is installed), and the verify line, after go run is gone,
// says VALID. (`make test` itself is what CI runs on a fresh clone.)
func TestReadmeFirstCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for 20 s")
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)```sh\n(.*?)```").FindSubmatch(readme)
	if block == nil {
		t.Fatal("the README has no sh code block")
	}
	var cmds []string
	for _, line := range strings.Split(string(block[1]), "\n") {
		if c, _, _ := strings.Cut(line, "#"); strings.TrimSpace(c) != "" {
			cmds = append(cmds, strings.TrimSpace(c))
		}
	}
	if len(cmds) != 2 || !strings.Contains(cmds[0], "telenotary demo") || cmds[1] != "make test" {
		t.Fatalf("the README's first block is %q; want the demo, then make test", cmds)
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("SKIPPED: no git to clone the repository with")
	}
	if err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Run(); err != nil {
		t.Skip("SKIPPED: not a git checkout")
	}
	clone := filepath.Join(t.TempDir(), "clone")
	if out, err := exec.Command("git", "clone", "--quiet", root, clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	args := append(strings.Fields(cmds[0]), "--headless", "--duration", "20s", "--listen", "127.0.0.1:0", "--interval", "2s")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = clone
	killWithParent(cmd)
	var out, errOut bytes.Buffer // stdout as it comes; stderr, written by exec's goroutine until Wait
	cmd.Stderr = &errOut
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_, curlErr := exec.LookPath("curl")
	var created []byte
	scanner := bufio.NewScanner(stdout)
	scanner.Buffer(nil, 1<<20)
	for scanner.Scan() {
		line := scanner.Text()
		out.WriteString(line + "\n")
		if c := strings.TrimSpace(line); strings.HasPrefix(c, "curl ") && strings.Contains(c, "/v1/rooms") && curlErr == nil {
			// The demo is up and prints as it goes: paste it.
			sh := exec.Command("sh", "-c", c)
			sh.Dir = clone
			created, err = sh.CombinedOutput()
			if err != nil {
				t.Errorf("%s: %v\n%s", c, err, created)
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s: %v\n%s%s", strings.Join(args, " "), err, out.Bytes(), errOut.Bytes())
	}
	if curlErr == nil && !bytes.Contains(created, []byte(`"tokens":{"patient":"`)) {
		t.Errorf("the demo's curl line created no room: %s\n%s", created, out.Bytes())
	}
	verify := regexp.MustCompile(`check one \(a majority of the three nodes signed it\):\n  (\S+ verify \S+ --keys \S+ --min-signatures 2)\n`).FindSubmatch(out.Bytes())
	if verify == nil {
		t.Fatalf("the demo printed no verify line to paste:\n%s", out.Bytes())
	}
	sh := exec.Command("sh", "-c", string(verify[1]))
	sh.Dir = clone
	if got, err := sh.CombinedOutput(); err != nil || !bytes.HasPrefix(got, []byte("VALID: prescription notarized")) {
		t.Errorf("%s, pasted after the demo: %v\n%s", verify[1], err, got)
	}
	if !bytes.Contains(out.Bytes(), []byte("consultations got verified receipts")) || !bytes.Contains(out.Bytes(), []byte("/app/#token=")) {
		t.Fatalf("the demo's output lacks its verified receipts or join links:\n%s", out.Bytes())
	}
	if matches, _ := filepath.Glob(filepath.Join(clone, "demo-data", "run-*", "bundles", "*.json")); len(matches) < 3 {
		t.Fatalf("the demo wrote %d bundles under demo-data", len(matches))
	}
}
