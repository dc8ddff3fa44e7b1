package e2e

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDependencies: what an app developer or the console links. The
// contracts and clients (the notary API's, the log monitor's and the
// signalling server's), the Go peer SDK and the console import no server
// package of the project and none of the server-side modules: no raft, no
// bbolt, no Prometheus client library.
func TestDependencies(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	const module = "github.com/telenotary/telenotary"
	forbidden := []string{
		"github.com/hashicorp/raft",
		"go.etcd.io/bbolt",
		"github.com/boltdb/bolt",
		"github.com/prometheus",
		module + "/cluster",
		module + "/session",
	}
	// allowed are the project's packages these may import, though their
	// paths start like a forbidden one.
	allowed := []string{module + "/cluster/notaryapi", module + "/cluster/httpapi", module + "/cluster/monitor/monitorapi", module + "/session/signalapi"}
	for _, pkg := range []string{"./cluster/notaryapi", "./cluster/auth", "./session/signalapi", "./session/peer", "./tui"} {
		out, err := exec.Command("go", "list", "-C", root, "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 {
			t.Fatalf("go list -deps %s listed only %v", pkg, deps)
		}
		self := module + "/" + strings.TrimPrefix(pkg, "./")
		ok := append([]string{self}, allowed...)
		for _, d := range deps {
			if slices.ContainsFunc(ok, func(a string) bool { return under(d, a) }) {
				continue
			}
			for _, f := range forbidden {
				if under(d, f) {
					t.Errorf("%s depends on %s", pkg, d)
				}
			}
		}
	}
}

// under reports whether package path p is dir or below it.
func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
