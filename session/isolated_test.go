package session_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session"
	"github.com/telenotary/telenotary/session/internal/sessiontest"
	"github.com/telenotary/telenotary/session/peer"
	"github.com/telenotary/telenotary/session/turnserver"
)

// participantEnv, in a process this test starts, names the role it plays
// in its own network namespace.
const participantEnv = "TELENOTARY_TEST_ISOLATED_PARTICIPANT"

// The two sites: each participant has a network of its own, joined to
// the server's by a veth pair; the server's namespace does not forward,
// so a site reaches the server's addresses and nothing of the other site.
// Documentation prefixes (RFC 5737), which the TURN server treats as
// public: it runs with its defaults.
var sites = map[string]site{
	"patient":   {hub: "198.51.100.1", addr: "198.51.100.2", link: "tnpat"},
	"physician": {hub: "203.0.113.1", addr: "203.0.113.2", link: "tndoc"},
}

type site struct{ hub, addr, link string }

// participantJob is what the test hands a participant on its stdin once
// its network is in place.
type participantJob struct {
	URL, Token string
	Link, Addr string // the participant's end of the veth pair, and its address
	Gateway    string // the server's address on that link
	Other      string // the other participant's address, which must be out of reach
}

// TestConsultationAcrossIsolatedNetworks: a patient and a physician on two
// networks that cannot reach each other (two network namespaces, routed
// to the server's namespace, which does not forward) hold a consultation
// through the embedded TURN server, with the ICE servers and credentials
// the signalling server hands them: it connects, a prescription and the
// session's records are delivered and verify, the selected path uses a
// relay, and the TURN server relayed the traffic. Each participant first
// checks that the other's network is out of its reach.
func TestConsultationAcrossIsolatedNetworks(t *testing.T) {
	if role := os.Getenv(participantEnv); role != "" {
		runParticipant(t, role)
		return
	}
	if inLoopbackNetns(t) {
		return
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("SKIPPED: needs iproute2's ip to wire the network namespaces (apt-get install iproute2)")
	}
	// A new namespace may inherit the host's IPv4 forwarding: this one must
	// not forward, or the two sites would reach each other through it.
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("0"), 0); err != nil {
		t.Fatalf("turning forwarding off in the server's namespace: %v", err)
	}

	procs := map[string]*participantProc{}
	for role, s := range sites {
		p := startParticipant(t, role)
		procs[role] = p
		ipCmd(t, "link", "add", s.link+"0", "type", "veth", "peer", "name", s.link+"1")
		ipCmd(t, "link", "set", s.link+"1", "netns", strconv.Itoa(p.cmd.Process.Pid))
		ipCmd(t, "addr", "add", s.hub+"/24", "dev", s.link+"0")
		ipCmd(t, "link", "set", s.link+"0", "up")
	}

	const secret = "turn-shared-secret-0123456789"
	reg := prometheus.NewRegistry()
	hub := sites["patient"].hub
	ts, err := turnserver.Start(turnserver.Config{
		Listen: hub + ":0", RelayIP: net.ParseIP(hub), MinPort: 40000, MaxPort: 49999,
		Secret: []byte(secret), Realm: turnserver.DefaultRealm, MaxAllocationsPerUser: turnserver.DefaultMaxAllocationsPerUser,
		Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	n := sessiontest.StartNotary(t)
	sig := sessiontest.ServeSignalAt(t, n, hub+":0", func(c *session.Config) {
		c.ICE = session.ICEConfig{URLs: []string{"turn:" + ts.Addr("udp") + "?transport=udp"}, TURNSecret: []byte(secret)}
	})
	patientTok, physicianTok := sig.Tokens(t, "isolated")
	tokens := map[string]string{"patient": patientTok, "physician": physicianTok}
	for role, p := range procs {
		s, other := sites[role], sites["patient"]
		if role == "patient" {
			other = sites["physician"]
		}
		job := participantJob{URL: sig.WS, Token: tokens[role], Link: s.link + "1", Addr: s.addr + "/24", Gateway: s.hub, Other: other.addr}
		if err := json.NewEncoder(p.stdin).Encode(job); err != nil {
			t.Fatalf("%s: handing over the job: %v", role, err)
		}
	}

	paths := map[string]string{}
	for role, p := range procs {
		out := p.wait(t)
		kinds := map[string]int{}
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 3 && f[0] == "RESULT" && f[1] == "path":
				paths[role] = f[2]
			case len(f) == 4 && f[0] == "RESULT" && f[1] == "bundle":
				raw, err := base64.StdEncoding.DecodeString(f[3])
				if err != nil {
					t.Fatalf("%s: a bundle line that is not base64: %v", role, err)
				}
				b, err := notary.ParseBundle(raw)
				if err == nil {
					_, err = notary.VerifyBundle(b, n.Policy)
				}
				if err != nil {
					t.Errorf("%s: the %s bundle does not verify against the cluster's keys: %v", role, f[2], err)
				}
				kinds[f[2]]++
			}
		}
		for _, k := range []notary.Kind{notary.KindSessionStart, notary.KindPrescription, notary.KindSessionEnd} {
			if kinds[k.String()] != 1 {
				t.Errorf("%s received %d %s bundles, want 1:\n%s", role, kinds[k.String()], k, out)
			}
		}
	}
	if paths["patient"] != "relay" && paths["physician"] != "relay" {
		t.Errorf("selected paths (local candidate types): %v; want a relay on one side at least", paths)
	}
	for _, dir := range []string{"to_peer", "from_peer"} {
		if got := counterSum(t, reg, "telenotary_turn_relayed_bytes_total", "direction", dir); got == 0 {
			t.Errorf("the TURN server relayed no bytes %s", dir)
		}
	}
}

// participantProc is a participant's process, in a network namespace of
// its own, waiting for its job on stdin.
type participantProc struct {
	role  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bytes.Buffer
}

func startParticipant(t *testing.T, role string) *participantProc {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), participantEnv+"="+role)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	p := &participantProc{role: role, cmd: cmd, out: new(bytes.Buffer)}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdin = stdin
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the %s in a network namespace of its own: %v", role, err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return p
}

// wait waits for the participant to finish and returns its output; the
// test fails if it did not pass.
func (p *participantProc) wait(t *testing.T) []byte {
	t.Helper()
	err := p.cmd.Wait()
	out := p.out.Bytes()
	if err != nil || !bytes.Contains(out, []byte("--- PASS")) {
		t.Fatalf("the %s's process: %v\n%s", p.role, err, out)
	}
	return out
}

// runParticipant plays role in this process's own network namespace:
// it waits for its link and job, checks that the other site is out of
// reach, then joins the consultation with the Go SDK and prints what it
// got on lines starting with RESULT.
func runParticipant(t *testing.T, role string) {
	var job participantJob
	if err := json.NewDecoder(os.Stdin).Decode(&job); err != nil {
		t.Fatalf("reading the job: %v", err)
	}
	ipCmd(t, "link", "set", "lo", "up")
	ipCmd(t, "addr", "add", job.Addr, "dev", job.Link)
	ipCmd(t, "link", "set", job.Link, "up")
	ipCmd(t, "route", "add", "default", "via", job.Gateway)

	// The other site is out of reach: a host that got the packet would
	// refuse the connection; the server's namespace answers that there
	// is no way there (or nothing comes back).
	c, err := net.DialTimeout("tcp", net.JoinHostPort(job.Other, "9"), 3*time.Second)
	if err == nil {
		c.Close()
	}
	if err == nil || errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("the other participant's network (%s) is reachable from this one: %v", job.Other, err)
	}
	t.Logf("the other site is out of reach: %v", err)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := peer.Join(ctx, peer.Config{URL: job.URL, Token: job.Token, Logger: sessiontest.Logger(t)})
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	defer p.Close()
	if err := p.Connected(ctx); err != nil {
		t.Fatalf("the data channel did not open: %v", err)
	}
	fmt.Printf("RESULT path %s\n", p.PathType())
	printBundle := func(r *peer.Receipt) {
		if r.Err != nil {
			t.Errorf("the %s receipt does not verify: %v", r.Kind, r.Err)
		}
		fmt.Printf("RESULT bundle %s %s\n", r.Kind, base64.StdEncoding.EncodeToString(r.Raw))
	}
	if role == "physician" {
		start := <-p.Receipts()
		printBundle(&start)
		rc, err := p.Prescribe(ctx, "rx-isolated", medicationRequest(t))
		if err != nil {
			t.Fatalf("prescribe: %v", err)
		}
		printBundle(rc)
		end, err := p.Leave(ctx, "")
		if err != nil {
			t.Fatalf("leave: %v", err)
		}
		printBundle(end)
		return
	}
	for {
		select {
		case r := <-p.Receipts():
			printBundle(&r)
			if r.Kind == notary.KindSessionEnd {
				return
			}
		case <-ctx.Done():
			t.Fatal("the session did not end")
		}
	}
}

// ipCmd runs iproute2's ip with args in this process's network namespace.
func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// counterSum is the sum of a counter's series whose label has value.
func counterSum(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}
