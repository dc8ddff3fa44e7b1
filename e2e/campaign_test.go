//go:build linux

package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/peer"
	"github.com/telenotary/telenotary/session/signalapi"
)

// The long campaign's settings (make campaign DURATION=30m SEED=N).
var (
	campaignDuration = flag.Duration("campaign.duration", 0, "run TestCampaignLong for this long (0 skips it)")
	campaignSeed     = flag.Uint64("campaign.seed", 0, "the fault campaign's seed (0: drawn from the clock and logged)")
	campaignReport   = flag.String("campaign.report", "campaign-report.md", "where TestCampaignLong writes its report")
	campaignRound    = flag.Duration("campaign.round", 5*time.Minute, "the longest round of TestCampaignLong on one cluster")
	campaignKeep     = flag.String("campaign.keep", "", "copy a failed round's node logs and data directories into this directory")
)

// campaignTmpfsSize bounds each node's data directory in a campaign: a
// tmpfs of this size, which the disk-full fault fills.
const campaignTmpfsSize = "768m"

// campNode is a node of a campaign cluster: its proxies, its process id
// for the proxies, its tmpfs, and its clock offset.
type campNode struct {
	*nodeProc
	raftProxy, httpProxy *proxy
	pid                  atomic.Int64
	mount                string        // the tmpfs under its data directory; "" when none
	offset               time.Duration // test-only clock offset for its next start
}

// campCluster is a cluster whose nodes talk through a faultNet.
type campCluster struct {
	*procCluster
	net      *faultNet
	nodes    []*campNode
	diskNote string // why nodes have no tmpfs, when they have none
	// pharmacy is the token of the lifecycle workload's tills.
	pharmacy string
}

// startCampCluster starts a cluster of size nodes that reach each other
// through fault-injecting proxies, each with its data directory on its
// own tmpfs when this machine lets the test mount one. Its tokens file
// also holds a pharmacy token, for the tills.
func startCampCluster(t *testing.T, size int) *campCluster {
	t.Helper()
	c := &campCluster{procCluster: newProcCluster(t, testOrigin), net: newFaultNet(t), pharmacy: randomToken("pharmacy")}
	tokens, err := os.ReadFile(c.tokensFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, c.tokensFile, string(tokens)+"pharmacy "+c.pharmacy+"\n", 0o600)
	for i := range size {
		id := fmt.Sprintf("node-%d", i+1)
		n := c.newCampNode(id)
		if i == 0 {
			c.startProxied(n, "--bootstrap", "--origin", c.origin)
			waitReady(t, n.nodeProc)
		} else {
			c.startProxied(n, "--join", c.nodes[0].url, "--join-token-file", c.operatorFile)
		}
	}
	c.waitVoters(size)
	return c
}

// newCampNode makes a node, mounting a tmpfs on its data directory first.
func (c *campCluster) newCampNode(id string) *campNode {
	c.t.Helper()
	n := &campNode{}
	dataDir := filepath.Join(c.dir, id, "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		c.t.Fatal(err)
	}
	if c.diskNote == "" {
		if err := syscall.Mount("tmpfs", dataDir, "tmpfs", 0, "size="+campaignTmpfsSize+",mode=0700"); err != nil {
			c.diskNote = fmt.Sprintf("cannot mount a tmpfs here (%v): the disk-full fault is skipped", err)
			c.t.Log(c.diskNote)
		} else {
			n.mount = dataDir
			// Registered before the node's own clean-up, so it runs
			// after the node is killed; a lazy unmount in any case.
			c.t.Cleanup(func() { syscall.Unmount(dataDir, syscall.MNT_DETACH) })
		}
	}
	n.nodeProc = c.newNode(id)
	if n.dataDir != dataDir {
		c.t.Fatalf("%s: data directory %s, expected %s", id, n.dataDir, dataDir)
	}
	n.raftProxy, n.httpProxy = c.net.listen(id), c.net.listen(id)
	c.net.addNode(id, func() int { return int(n.pid.Load()) })
	c.nodes = append(c.nodes, n)
	return n
}

// startProxied starts a new node on fresh ports behind its proxies.
func (c *campCluster) startProxied(n *campNode, extra ...string) {
	c.t.Helper()
	for attempt := 1; ; attempt++ {
		n.raftAddr, n.httpAddr = freeAddr(c.t), freeAddr(c.t)
		n.url = "http://" + n.httpAddr
		n.raftProxy.setTarget(n.raftAddr)
		n.httpProxy.setTarget(n.httpAddr)
		c.setFlags(n)
		err := n.start(extra...)
		if err == nil {
			n.pid.Store(int64(n.cmd.Process.Pid))
			return
		}
		if attempt < 3 && errors.Is(err, errPortTaken) {
			continue
		}
		c.t.Fatalf("start %s: %v", n.id, err)
	}
}

// setFlags sets what every start of n adds: the proxies it advertises and
// its test-only clock offset.
func (c *campCluster) setFlags(n *campNode) {
	n.flags = []string{"--raft-advertise", n.raftProxy.addr(), "--http-advertise", "http://" + n.httpProxy.addr()}
	n.env = []string{"TELENOTARY_TEST_HOOKS=1"}
	if n.offset != 0 {
		n.flags = append(n.flags, "--test-clock-offset", n.offset.String())
	}
}

// restart starts a stopped node again from its data directory.
func (c *campCluster) restart(n *campNode) {
	c.t.Helper()
	c.setFlags(n)
	n.restart()
	n.pid.Store(int64(n.cmd.Process.Pid))
}

// ids returns the nodes' ids.
func (c *campCluster) ids() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.id)
	}
	return out
}

// urls returns the nodes' API URLs (straight to the node, not through its
// proxy: the clients are not part of the partitions).
func (c *campCluster) urls() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.url)
	}
	return out
}

// waitLeaderNode waits for a leader and returns it.
func (c *campCluster) waitLeaderNode() *campNode {
	c.t.Helper()
	return leaderOf(c.nodes, c.waitLeader())
}

// followers returns the nodes other than leader.
func (c *campCluster) followers(leader *campNode) []*campNode {
	return slices.DeleteFunc(slices.Clone(c.nodes), func(n *campNode) bool { return n == leader })
}

// waitWhole waits until every node runs, one leads, and all are voters
// and ready.
func (c *campCluster) waitWhole() {
	c.t.Helper()
	for _, n := range c.nodes {
		if !n.running() {
			c.t.Fatalf("%s is not running (%v)", n.id, n.waitErr)
		}
	}
	c.waitVoters(len(c.nodes))
}

// operatorClient returns a client with the operator token.
func (c *campCluster) operatorClient() *notaryapi.Client {
	return notaryapi.NewClient(notaryapi.ClientConfig{Nodes: c.urls(), Token: c.operator, MaxBackoff: 200 * time.Millisecond})
}

// roundResult is what one round of a campaign did and found.
type roundResult struct {
	nodes       int
	seed        uint64
	took        time.Duration
	faults      []fault
	check       *checkResult
	requests    int // notarize requests, retries included
	lookupErrs  int
	leaderKills []time.Duration // unavailability after each leader kill
	gap, gapAt  time.Duration   // the longest time without an acknowledgement
	consult     consultResult
	netHeld     int
	netClosed   int
}

// runRound runs one round: a cluster of size nodes under load, a leader
// killed while consultations run (when withConsultations), then the
// nemesis until the round's time is up; then it heals, lets the nodes
// converge and checks the history.
func runRound(t *testing.T, size int, seed uint64, faultTime time.Duration, withConsultations bool) *roundResult {
	t.Helper()
	start := time.Now()
	c := startCampCluster(t, size)
	t.Logf("%d-node cluster up in %v (seed %d)", size, time.Since(start).Round(time.Millisecond), seed)
	if *campaignKeep != "" {
		t.Cleanup(func() { // before the nodes stop and their tmpfs go
			if t.Failed() {
				keepRound(t, c.dir, filepath.Join(*campaignKeep, fmt.Sprintf("seed-%d", seed)))
			}
		})
	}
	h := newHistory()
	w := startWorkload(h, c.urls(), c.submitter, workloadConfig{
		notarizers: 6, lookers: 2, batch: 4, rate: 300, quiet: 2 * time.Second, reqTimeout: 20 * time.Second, seed: seed,
	})
	t.Cleanup(w.stop)
	// Prescriptions with allowances, dispensed by four tills racing
	// through every node, one in five revoked while they do.
	lc := startLifecycle(h, w, c.urls(), c.submitter, c.pharmacy, lifecycleConfig{
		tills: 4, rate: 60, active: 4, maxFills: 4, revokeOne: 5, reqTimeout: 20 * time.Second, seed: seed,
	})
	t.Cleanup(lc.stop)
	pollCtx, stopPoll := context.WithCancel(context.Background())
	var pollWG sync.WaitGroup
	pollWG.Add(1)
	go func() { defer pollWG.Done(); pollCheckpoints(pollCtx, h, c.urls(), 250*time.Millisecond) }()
	t.Cleanup(func() { stopPoll(); pollWG.Wait() })

	nm := newNemesis(c, h, seed)
	res := &roundResult{nodes: size, seed: seed}
	if withConsultations {
		res.consult = consultationsThroughFailover(t, c, h, nm)
	}
	nm.run(time.Now().Add(faultTime))
	c.net.heal()
	c.waitWhole()
	// A last stretch without faults: the load must flow again.
	waitFor(t, readyTimeout, "acknowledgements after the last fault", func() error {
		if n := acksSince(h, h.now()-time.Second); n < 10 {
			return fmt.Errorf("%d acknowledgements in the last second", n)
		}
		return nil
	})
	lc.stop()
	w.stop()
	stopPoll()
	pollWG.Wait()
	if err := c.waitAgreed(); err != nil {
		// Two nodes hold different logs: no final log to check against.
		res.check = &checkResult{inconsistent: []string{err.Error()}}
	} else {
		res.check = check(c.collect(h))
	}
	res.took = time.Since(start)
	res.faults = nm.faults
	res.leaderKills = unavailability(h, nm.faults, faultKillLeader, faultLeaderFailover)
	res.gap, res.gapAt = longestGap(h)
	res.netHeld, res.netClosed, _ = c.net.stats()
	h.mu.Lock()
	res.lookupErrs = h.lookupErrs
	for _, op := range h.ops {
		if op.kind == opNotarize {
			res.requests++
		}
	}
	h.mu.Unlock()
	for _, v := range res.check.violations() {
		t.Errorf("%d nodes, seed %d: %s", size, seed, v)
	}
	t.Logf("%s", res.summary())
	return res
}

// acksSince counts the acknowledgements returned after t.
func acksSince(h *history, t time.Duration) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, op := range h.ops {
		if op.kind == opNotarize && op.ok && op.ret > t {
			n++
		}
	}
	return n
}

// waitAgreed waits until every node serves the same checkpoint. When
// they do not agree in time, it finds the first leaf where two nodes'
// logs differ and returns an error that shows both.
func (c *campCluster) waitAgreed() error {
	deadline := time.Now().Add(readyTimeout)
	for {
		cps := map[string]notary.Checkpoint{}
		var err error
		for _, n := range c.nodes {
			var cp notary.Checkpoint
			if cp, err = n.checkpoint(); err != nil {
				break
			}
			cps[n.id] = cp
		}
		if err == nil {
			var first notary.Checkpoint
			agreed := true
			for i, n := range c.nodes {
				if i == 0 {
					first = cps[n.id]
				} else if cps[n.id] != first {
					agreed = false
				}
			}
			if agreed {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the nodes did not agree on a checkpoint within %v (%v): %v\n%s", readyTimeout, err, cps, c.diagnoseFork(cps))
		}
		time.Sleep(pollInterval)
	}
}

// diagnoseFork compares the nodes' logs leaf by leaf up to the smallest
// size and describes the first difference.
func (c *campCluster) diagnoseFork(cps map[string]notary.Checkpoint) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	logs := map[string][]notaryapi.LeafInfo{}
	size := uint64(1 << 62)
	for _, n := range c.nodes {
		if cp, ok := cps[n.id]; ok {
			size = min(size, cp.Size)
		}
	}
	for _, n := range c.nodes {
		cl := n.client()
		var leaves []notaryapi.LeafInfo
		for uint64(len(leaves)) < size {
			page, err := cl.Leaves(ctx, uint64(len(leaves)), notaryapi.MaxLeavesPage)
			if err != nil || len(page) == 0 {
				break
			}
			leaves = append(leaves, page...)
		}
		logs[n.id] = leaves
	}
	var sb strings.Builder
	base := c.nodes[0].id
	for _, n := range c.nodes[1:] {
		a, b := logs[base], logs[n.id]
		for i := 0; i < len(a) && i < len(b); i++ {
			if a[i] != b[i] {
				fmt.Fprintf(&sb, "%s and %s differ first at leaf %d of %d:\n", base, n.id, i, size)
				for j := max(0, i-2); j < min(len(a), len(b), i+3); j++ {
					fmt.Fprintf(&sb, "  %d: %s %+v | %s %+v\n", j, base, a[j], n.id, b[j])
				}
				break
			}
		}
	}
	return sb.String()
}

// collect reads the final checkpoint and the log up to it, and assembles
// the checker's input. (Requests the clients gave up on may still be
// appended later: the final checkpoint is the one read here.)
func (c *campCluster) collect(h *history) checkInput {
	c.t.Helper()
	client := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	note, err := c.nodes[0].client().Checkpoint(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	final, err := notary.ParseSignedCheckpoint(note)
	if err != nil {
		c.t.Fatal(err)
	}
	var leaves []notary.Leaf
	for uint64(len(leaves)) < final.Size {
		page, err := client.Leaves(ctx, uint64(len(leaves)), min(notaryapi.MaxLeavesPage, final.Size-uint64(len(leaves))))
		if err != nil {
			c.t.Fatalf("leaves from %d: %v", len(leaves), err)
		}
		if len(page) == 0 {
			c.t.Fatalf("no leaves from %d of %d", len(leaves), final.Size)
		}
		for _, l := range page {
			if l.Index != uint64(len(leaves)) {
				c.t.Fatalf("leaf %d came as index %d", len(leaves), l.Index)
			}
			leaves = append(leaves, notary.Leaf{Kind: l.Kind, Commitment: l.Commitment, Link: l.Link, Timestamp: l.Timestamp})
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	in := checkInput{ops: slices.Clone(h.ops), receipts: slices.Clone(h.receipts), submitted: h.submitted, foreign: h.foreign,
		leaves: leaves[:final.Size], final: note, policy: c.policy(), linearizeTimeout: 2 * time.Minute,
		// A node stamps with its clock when it proposes, while the request
		// is in flight; the time guard lets a leader be up to 1 s off.
		start: h.start, clockBound: 2 * time.Second}
	for cp := range h.checkpoints {
		in.checkpoints = append(in.checkpoints, []byte(cp))
	}
	return in
}

// consultResult is what the consultations through a failover got.
type consultResult struct {
	consultations, prescriptions, receipts, relayed, ends int
	unavailability                                        time.Duration
}

// consultationsThroughFailover runs consultations through a signalling
// server and kills the leader while they prescribe: every prescription
// must get one receipt that verifies, the patient must get each one
// relayed, and each session must end with its receipt. Their commitments
// join the history's as foreign ones, for the final log's checks.
func consultationsThroughFailover(t *testing.T, c *campCluster, h *history, nm *nemesis) consultResult {
	t.Helper()
	const consultations, prescriptions, beforeKill = 3, 6, 2
	files, _ := filepath.Glob("../notary/fhirdata/MedicationRequest-*.json")
	if more, _ := filepath.Glob("../notary/testdata/fhir/MedicationRequest-*.json"); len(files) == 0 {
		files = more
	}
	if len(files) == 0 {
		t.Fatal("no FHIR MedicationRequest examples found")
	}
	var resources [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		resources = append(resources, b)
	}
	s := startSignal(t, c.procCluster, t.TempDir())
	policy := c.policy()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	type consult struct {
		pat, doc *peer.Peer
		done     atomic.Int32 // prescriptions with a receipt
		receipts []*peer.Receipt
		end      *peer.Receipt
		relayed  int
		err      error
	}
	cs := make([]*consult, consultations)
	for i := range cs {
		room := s.createRoom(t, randomToken(fmt.Sprintf("patient%d", i)), randomToken(fmt.Sprintf("physician%d", i)))
		pat, err := peer.Join(ctx, peer.Config{URL: s.ws, Token: room.Tokens[signalapi.RolePatient], Loopback: true, Policy: &policy})
		if err != nil {
			t.Fatal(err)
		}
		doc, err := peer.Join(ctx, peer.Config{URL: s.ws, Token: room.Tokens[signalapi.RolePhysician], Loopback: true, Policy: &policy})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pat.Close(); doc.Close() })
		if err := doc.Connected(ctx); err != nil {
			t.Fatal(err)
		}
		cs[i] = &consult{pat: pat, doc: doc}
	}
	killed := make(chan struct{})
	var wg sync.WaitGroup
	for i, cn := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range prescriptions {
				if j == beforeKill {
					<-killed // the rest go through the failover
				}
				r, err := cn.doc.Prescribe(ctx, fmt.Sprintf("rx-%d-%d", i, j), resources[(i*prescriptions+j)%len(resources)])
				if err == nil && r.Err != nil {
					err = fmt.Errorf("receipt of rx-%d-%d does not verify: %w", i, j, r.Err)
				}
				if err != nil {
					cn.err = err
					return
				}
				cn.receipts = append(cn.receipts, r)
				cn.done.Add(1)
			}
			end, err := cn.doc.Leave(ctx, "done")
			if err == nil && (end == nil || end.Err != nil) {
				err = fmt.Errorf("session end: %+v", end)
			}
			if err != nil {
				cn.err = err
				return
			}
			cn.end = end
			if _, err := cn.pat.WaitEnd(ctx); err != nil {
				cn.err = err
			}
		}()
	}
	waitFor(t, readyTimeout, "prescriptions before the kill", func() error {
		for i, cn := range cs {
			if cn.done.Load() < beforeKill {
				return fmt.Errorf("consultation %d has %d receipts", i, cn.done.Load())
			}
		}
		return nil
	})
	leader := c.waitLeaderNode()
	f := fault{kind: faultLeaderFailover, targets: []string{leader.id}, at: h.now()}
	leader.kill()
	close(killed)
	wg.Wait()
	f.healed = h.now()
	c.restart(leader)
	f.note = "restarted after the consultations ended"
	nm.faults = append(nm.faults, f)
	c.waitWhole()

	res := consultResult{consultations: consultations}
	at := map[notary.Commitment]uint64{} // every receipt's index, by commitment
	addReceipt := func(what string, r *peer.Receipt) {
		if r.Err != nil || r.Bundle == nil {
			t.Errorf("%s: the receipt does not verify: %v", what, r.Err)
			return
		}
		rc := &r.Bundle.Receipt
		if idx, ok := at[rc.Leaf.Commitment]; ok && idx != rc.Index {
			t.Errorf("%s: commitment %s has receipts at %d and %d", what, rc.Leaf.Commitment, idx, rc.Index)
		}
		at[rc.Leaf.Commitment] = rc.Index
		h.mu.Lock()
		h.foreign[rc.Leaf.Commitment] = true
		h.mu.Unlock()
		h.sawReceipt(rc)
	}
	// drain returns the receipts a peer got besides the ones it waited for.
	drain := func(p *peer.Peer) []peer.Receipt {
		var out []peer.Receipt
		for {
			select {
			case r := <-p.Receipts():
				out = append(out, r)
			default:
				return out
			}
		}
	}
	for i, cn := range cs {
		if cn.err != nil {
			t.Errorf("consultation %d: %v", i, cn.err)
			continue
		}
		res.prescriptions += prescriptions
		if len(cn.receipts) != prescriptions {
			t.Errorf("consultation %d: %d receipts for %d prescriptions", i, len(cn.receipts), prescriptions)
		}
		distinct := map[notary.Commitment]bool{}
		for j, r := range cn.receipts {
			addReceipt(fmt.Sprintf("rx-%d-%d", i, j), r)
			if r.Bundle != nil {
				distinct[r.Bundle.Receipt.Leaf.Commitment] = true
			}
			res.receipts++
		}
		if len(distinct) != len(cn.receipts) {
			t.Errorf("consultation %d: %d receipts for %d distinct commitments", i, len(cn.receipts), len(distinct))
		}
		addReceipt(fmt.Sprintf("session-end %d", i), cn.end)
		res.ends++
		for _, r := range drain(cn.doc) {
			addReceipt(fmt.Sprintf("physician's %s receipt %s of consultation %d", r.Kind, r.Ref, i), &r)
		}
		for _, r := range drain(cn.pat) {
			addReceipt(fmt.Sprintf("patient's %s receipt %s of consultation %d", r.Kind, r.Ref, i), &r)
			if r.Relayed && r.Bundle != nil {
				cn.relayed++
				if !distinct[r.Bundle.Receipt.Leaf.Commitment] {
					t.Errorf("consultation %d: the patient got %s relayed, which the physician has no receipt for", i, r.Ref)
				}
			}
		}
		res.relayed += cn.relayed
		if cn.relayed != prescriptions {
			t.Errorf("consultation %d: the patient got %d prescriptions relayed, want %d", i, cn.relayed, prescriptions)
		}
	}
	if d := unavailability(h, []fault{f}, faultLeaderFailover); len(d) > 0 {
		res.unavailability = d[0]
	}
	t.Logf("consultations through a leader kill: %d prescriptions, %d receipts, %d relayed, %d session ends", res.prescriptions, res.receipts, res.relayed, res.ends)
	return res
}

// maxDuration returns the longest of ds (0 when none).
func maxDuration(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// summary says in one paragraph what the round did and found.
func (r *roundResult) summary() string {
	var sb strings.Builder
	ch := r.check
	fmt.Fprintf(&sb, "%d nodes, seed %d, %v: %d notarize requests (%d commitments acknowledged), %d lookups (%d consistent; of the others %d stale not-found; %d failed), %d checkpoints, %d receipts checked; history in %d parts (longest %d operations)\n",
		r.nodes, r.seed, r.took.Round(time.Second), r.requests, ch.acked, ch.lookups, ch.consistentLookups, ch.staleReads, r.lookupErrs, ch.checkpoints, ch.receiptsChecked, ch.parts, ch.longestPart)
	fmt.Fprintf(&sb, "  faults: %d (%s)\n", len(r.faults), faultCounts(r.faults))
	fmt.Fprintf(&sb, "  unavailability after each leader kill: %v (longest %v); longest time without an acknowledgement: %v at %v\n",
		roundAll(r.leaderKills), maxDuration(r.leaderKills).Round(time.Millisecond), r.gap.Round(time.Millisecond), r.gapAt.Round(time.Second))
	if r.consult.consultations > 0 {
		fmt.Fprintf(&sb, "  consultations through a leader kill: %d, %d prescriptions, %d receipts, %d relayed, %d session ends\n",
			r.consult.consultations, r.consult.prescriptions, r.consult.receipts, r.consult.relayed, r.consult.ends)
	}
	fmt.Fprintf(&sb, "  network: %d connections held in a partition, %d closed by one\n", r.netHeld, r.netClosed)
	fmt.Fprintf(&sb, "  lifecycle: %d prescriptions with allowances, %d dispenses acknowledged (%d dispense leaves), %d revocations; tries refused: %s\n",
		ch.prescriptionsTracked, ch.dispensesAcked, ch.dispenseLeaves, ch.revocations, refusedText(ch.refused))
	fmt.Fprintf(&sb, "  violations: %d linearizability, %d lost, %d receipts, %d inconsistent checkpoints, %d timestamps, %d duplicates, %d stale consistent reads, %d over-dispensed, %d dispensed after revocation, %d lifecycle, %d other",
		len(ch.linearizability), len(ch.lost), len(ch.receipts), len(ch.inconsistent), len(ch.timestamps), len(ch.duplicates), len(ch.staleConsistent),
		len(ch.overDispensed), len(ch.afterRevocation), len(ch.lifecycle), len(ch.unexplained))
	return sb.String()
}

// refusedText lists refusals by code, in the order of the codes' names.
func refusedText(refused map[string]int) string {
	codes := make([]string, 0, len(refused))
	for c := range refused {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d %s", refused[c], c))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// seedFor returns the campaign's seed: the flag's, or one from the clock,
// logged so that a failure can be replayed with -campaign.seed.
func seedFor(t *testing.T) uint64 {
	seed := *campaignSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano()) % 1_000_000
	}
	t.Logf("campaign seed %d (replay with: make campaign SEED=%d, or go test ./e2e -run %s -campaign.seed=%d)", seed, seed, t.Name(), seed)
	return seed
}

// TestCampaign is the short fault campaign of make test: a 3-node cluster
// whose leader is killed while consultations prescribe, then the nemesis
// on it and on a 5-node cluster, each under load, each history checked.
func TestCampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("the fault campaign takes a minute")
	}
	seed := seedFor(t)
	t.Run("3 nodes", func(t *testing.T) { runRound(t, 3, seed, 25*time.Second, true) })
	t.Run("5 nodes", func(t *testing.T) { runRound(t, 5, seed+1, 20*time.Second, false) })
}

// TestCampaignLong runs the fault campaign for -campaign.duration, in
// rounds of at most -campaign.round on fresh 3- and 5-node clusters in
// turn, and writes a report to -campaign.report.
func TestCampaignLong(t *testing.T) {
	if *campaignDuration == 0 {
		t.Skip("set -campaign.duration (make campaign DURATION=30m SEED=N)")
	}
	seed := seedFor(t)
	start := time.Now()
	deadline := start.Add(*campaignDuration)
	var rounds []*roundResult
	for i := 0; time.Until(deadline) > 30*time.Second; i++ {
		size := 3 + 2*(i%2)
		faultTime := min(*campaignRound, time.Until(deadline)-20*time.Second)
		var r *roundResult
		ok := t.Run(fmt.Sprintf("round %d: %d nodes", i+1, size), func(t *testing.T) {
			r = runRound(t, size, seed+uint64(i), faultTime, true)
		})
		if r != nil {
			rounds = append(rounds, r)
		}
		if err := writeReport(*campaignReport, seed, time.Since(start), rounds); err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Logf("round %d failed; the campaign goes on with a fresh cluster", i+1)
		}
	}
	t.Logf("report written to %s", *campaignReport)
}

// keepRound copies a failed round's directory (each node's logs and data)
// to dst, for a post-mortem.
func keepRound(t *testing.T, dir, dst string) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Logf("keep the round: %v", err)
		return
	}
	if out, err := exec.Command("cp", "-a", dir, dst).CombinedOutput(); err != nil {
		t.Logf("keep the round: %v: %s", err, out)
		return
	}
	t.Logf("the round's logs and data directories are in %s", dst)
}

// writeReport writes the campaign's report as Markdown.
func writeReport(path string, seed uint64, took time.Duration, rounds []*roundResult) error {
	var sb strings.Builder
	var faults []fault
	var kills []time.Duration
	requests, acked, lookups, stale, cps, receipts, violations := 0, 0, 0, 0, 0, 0, 0
	prescriptions, dispensed, revocations, over, afterRevocation := 0, 0, 0, 0, 0
	refused := map[string]int{}
	var gap time.Duration
	for _, r := range rounds {
		faults = append(faults, r.faults...)
		kills = append(kills, r.leaderKills...)
		requests += r.requests
		acked += r.check.acked
		lookups += r.check.lookups
		stale += r.check.staleReads
		cps += r.check.checkpoints
		receipts += r.check.receiptsChecked
		violations += len(r.check.violations())
		gap = max(gap, r.gap)
		prescriptions += r.check.prescriptionsTracked
		dispensed += r.check.dispensesAcked
		revocations += r.check.revocations
		over += len(r.check.overDispensed)
		afterRevocation += len(r.check.afterRevocation)
		for c, n := range r.check.refused {
			refused[c] += n
		}
	}
	fmt.Fprintf(&sb, "# Fault campaign report\n\nSeed %d, %v, %d rounds, written %s.\n\n", seed, took.Round(time.Second), len(rounds), time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&sb, "| what | count |\n| --- | --- |\n")
	fmt.Fprintf(&sb, "| notarize requests (retries included) | %d |\n| commitments acknowledged | %d |\n| lookups | %d (%d stale not-found) |\n", requests, acked, lookups, stale)
	fmt.Fprintf(&sb, "| receipts checked against the final log | %d |\n| distinct checkpoints checked | %d |\n", receipts, cps)
	fmt.Fprintf(&sb, "| prescriptions issued with allowances | %d |\n| dispenses acknowledged | %d |\n| revocations | %d |\n| dispense tries refused | %s |\n",
		prescriptions, dispensed, revocations, refusedText(refused))
	fmt.Fprintf(&sb, "| over-dispensed prescriptions | %d |\n| dispenses after a revocation | %d |\n", over, afterRevocation)
	fmt.Fprintf(&sb, "| faults | %d |\n", len(faults))
	counts := map[string]int{}
	for _, f := range faults {
		counts[f.kind]++
	}
	for _, k := range append([]string{faultLeaderFailover}, kindsOf()...) {
		fmt.Fprintf(&sb, "| — %s | %d |\n", k, counts[k])
	}
	fmt.Fprintf(&sb, "| longest unavailability after a leader kill | %v |\n| longest time without an acknowledgement | %v |\n", maxDuration(kills).Round(time.Millisecond), gap.Round(time.Millisecond))
	fmt.Fprintf(&sb, "| violations | %d |\n\n", violations)
	for i, r := range rounds {
		fmt.Fprintf(&sb, "## Round %d\n\n```text\n%s\n```\n\n", i+1, r.summary())
		for _, v := range r.check.violations() {
			fmt.Fprintf(&sb, "- %s\n", v)
		}
		fmt.Fprintf(&sb, "<details><summary>%d faults</summary>\n\n", len(r.faults))
		for _, f := range r.faults {
			fmt.Fprintf(&sb, "- %v: %s on %v, healed after %v: %s\n", f.at.Round(time.Millisecond), f.kind, f.targets, (f.healed - f.at).Round(time.Millisecond), f.note)
		}
		fmt.Fprintf(&sb, "\n</details>\n\n")
	}
	return os.WriteFile(path, []byte(sb.String()), 0o644)
}
