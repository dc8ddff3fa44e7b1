package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster/monitor"
)

// TestMonitorProcessCluster: a telenotary monitor process follows a 3-node
// cluster of processes under load, asking for checkpoints signed by 2
// nodes, and raises nothing while its checked size grows on every node;
// once the load stops and the nodes agree, telenotary monitor --once
// exits 0 and prints for every node the size and root they all signed;
// the running monitor stops on SIGTERM with status 0.
func TestMonitorProcessCluster(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	keysText, err := c.client().KeysText(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keysFile := filepath.Join(t.TempDir(), "keys.pub")
	writeFile(t, keysFile, string(keysText), 0o644)
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, n.url)
	}
	nodes := strings.Join(urls, ",")

	l := startLoad(c.client(), 4, 20, 10*time.Second)
	defer l.stop()
	addr := freeAddr(t)
	var stderr bytes.Buffer
	mon := exec.Command(telenotaryBin, "monitor", "--nodes", nodes, "--keys", keysFile, "--min-signatures", "2",
		"--interval", "200ms", "--exit-on-alert", "--metrics-addr", addr, "--evidence-dir", filepath.Join(t.TempDir(), "evidence"))
	mon.Stderr = &stderr
	if err := mon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- mon.Wait() }()
	defer func() {
		if mon.ProcessState == nil {
			mon.Process.Kill()
		}
	}()

	// Under load, the monitor checks every node's leaves further and
	// further, and raises nothing.
	var last monitor.AlertsResponse
	waitFor(t, time.Minute, "the monitor to check 500 leaves of every node under load", func() error {
		select {
		case err := <-exited:
			t.Fatalf("the monitor exited under load: %v\n%s", err, stderr.String())
		default:
		}
		resp, err := http.Get("http://" + addr + "/v1/alerts")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&last); err != nil {
			return err
		}
		if len(last.Alerts) > 0 {
			t.Fatalf("alerts under load: %+v", last.Alerts)
		}
		for _, st := range last.Nodes {
			if st.Verified < 500 {
				return fmt.Errorf("%s checked to %d", st.Node, st.Verified)
			}
		}
		return nil
	})
	l.stop()
	head := c.waitConverged()

	out, err := exec.CommandContext(ctx, telenotaryBin, "monitor", "--once", "--nodes", nodes, "--keys", keysFile, "--min-signatures", "2").CombinedOutput()
	if err != nil {
		t.Fatalf("monitor --once: %v\n%s", err, out)
	}
	for _, u := range urls {
		want := fmt.Sprintf("%s: size %d, leaves checked to %d, root %s", u, head.Size, head.Size, head.Root)
		if !strings.Contains(string(out), want) {
			t.Errorf("monitor --once lacks %q:\n%s", want, out)
		}
	}

	mon.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("the monitor stopped with %v\n%s", err, stderr.String())
		}
	case <-time.After(stopTimeout):
		t.Fatal("the monitor did not stop on SIGTERM")
	}
	if strings.Contains(stderr.String(), "ALERT") {
		t.Errorf("the monitor logged an alert:\n%s", stderr.String())
	}
	t.Logf("log of %d leaves checked on each node; the running monitor read up to %v", head.Size, last.Nodes)
}
