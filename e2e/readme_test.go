package e2e

import (
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
// 20 s, exits 0 with verified receipts. (`make test` itself is what CI runs
// on a fresh clone.)
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
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if !bytes.Contains(out, []byte("consultations got verified receipts")) || !bytes.Contains(out, []byte("/app/#token=")) {
		t.Fatalf("the demo's output lacks its verified receipts or join links:\n%s", out)
	}
	if matches, _ := filepath.Glob(filepath.Join(clone, "demo-data", "run-*", "bundles", "*.json")); len(matches) < 3 {
		t.Fatalf("the demo wrote %d bundles under demo-data", len(matches))
	}
}
