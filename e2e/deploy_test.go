package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSystemdUnitsHardened: systemd-analyze rates each unit of docs/deploy
// at an exposure of 3.0 or better (it exits non-zero above the threshold).
func TestSystemdUnitsHardened(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed here")
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	units, _ := filepath.Glob(filepath.Join(root, "docs/deploy/*.service"))
	if len(units) != 2 {
		t.Fatalf("docs/deploy has %d units, want the node's and the signalling server's", len(units))
	}
	for _, u := range units {
		out, err := exec.Command(analyze, "security", "--offline=true", "--threshold=30", u).CombinedOutput()
		overall := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
		if err != nil || overall == nil {
			t.Errorf("%s: exposure over 3.0 (%v):\n%s", filepath.Base(u), err, out)
			continue
		}
		t.Logf("%s: exposure %s", filepath.Base(u), overall[1])
	}
}

// TestDockerBuildHygiene: the Dockerfile pins its base images by digest and
// the build context leaves out demo data, keys and version control.
func TestDockerBuildHygiene(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	df, err := os.ReadFile(filepath.Join(root, "docs/deploy/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(df), "\n") {
		if strings.HasPrefix(line, "FROM ") && !regexp.MustCompile(`^FROM \S+@sha256:[0-9a-f]{64}( |$)`).MatchString(line) {
			t.Errorf("base image not pinned by digest: %s", line)
		}
	}
	if !strings.Contains(string(df), "--raft-tls-cert") || !strings.Contains(string(df), "--tls-cert") {
		t.Error("the Dockerfile's example runs a node without TLS")
	}
	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", "demo-data", "**/*.key"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want) + `$`).Match(ignore) {
			t.Errorf(".dockerignore does not leave out %s", want)
		}
	}
}
