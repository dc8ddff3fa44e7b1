package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/torchwood"
	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/witness"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// testWitness is a real witness (package notary/witness) served over
// loopback HTTP from a data directory of its own, which can be stopped and
// started again on the same address.
type testWitness struct {
	t      testing.TB
	name   string
	dir    string
	signer *torchwood.CosignatureSigner
	logs   []witness.Log
	addr   string
	// wrap, when set, wraps the witness's handler (a stalled witness).
	wrap func(http.Handler) http.Handler

	mu  sync.Mutex
	w   *witness.Witness
	srv *http.Server
}

// newTestWitness makes a witness named name for the log of the nodes
// whose verifier keys are given; it is not started.
func newTestWitness(t testing.TB, name string, nodeKeys ...string) *testWitness {
	t.Helper()
	skey, _, err := note.GenerateKey(nil, name)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := witness.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l := witness.Log{Origin: testOrigin}
	for _, k := range nodeKeys {
		v, err := note.NewVerifier(k)
		if err != nil {
			t.Fatal(err)
		}
		l.Verifiers = append(l.Verifiers, v)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // start listens on it again: a fixed address across restarts
	tw := &testWitness{t: t, name: name, dir: t.TempDir(), signer: signer, logs: []witness.Log{l}, addr: addr}
	t.Cleanup(tw.stop)
	return tw
}

// start serves the witness from its data directory.
func (tw *testWitness) start() {
	tw.t.Helper()
	tw.mu.Lock()
	defer tw.mu.Unlock()
	w, err := witness.New(witness.Config{Dir: tw.dir, Signer: tw.signer, Logs: tw.logs})
	if err != nil {
		tw.t.Fatal(err)
	}
	var ln net.Listener
	waitFor(tw.t, "the witness's address to be free", func() bool {
		ln, err = net.Listen("tcp", tw.addr)
		return err == nil
	})
	var h http.Handler = w
	if tw.wrap != nil {
		h = tw.wrap(h)
	}
	tw.w, tw.srv = w, &http.Server{Handler: h}
	go tw.srv.Serve(ln)
}

// stop stops serving and closes the witness's state.
func (tw *testWitness) stop() {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.srv != nil {
		tw.srv.Close()
		tw.w.Close()
		tw.srv, tw.w = nil, nil
	}
}

// known is the size of the newest checkpoint the witness cosigned.
func (tw *testWitness) known() int64 {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.w == nil {
		return -1
	}
	size, _, _ := tw.w.Known(testOrigin)
	return size
}

func (tw *testWitness) url() string { return "http://" + tw.addr }

// spec is the witness as a node is configured with it, parsed from the
// --witness form.
func (tw *testWitness) spec() cluster.Witness {
	tw.t.Helper()
	w, err := cluster.ParseWitness(tw.url() + "=" + tw.signer.Verifier().String())
	if err != nil {
		tw.t.Fatal(err)
	}
	return w
}

// witnessInterval is the clusters' WitnessInterval: none, so that tests
// do not wait for it, but in TestWitnessInterval.
var witnessInterval time.Duration

// witnessCluster starts a cluster of n nodes that submit to the given
// witnesses, made by mk with the nodes' verifier keys.
func witnessCluster(t testing.TB, n int, mk func(nodeKeys []string) []cluster.Witness) (*testCluster, []*testNode) {
	t.Helper()
	c := newTestCluster(t)
	var cfgs []cluster.Config
	var keys []string
	for i := range n {
		cfg := c.config(fmt.Sprintf("w%d", i+1))
		cfgs = append(cfgs, cfg)
		keys = append(keys, cfg.VerifierKey)
	}
	ws := mk(keys)
	for i := range cfgs {
		cfgs[i].Witnesses = ws
		cfgs[i].WitnessMaxBackoff = 200 * time.Millisecond
		cfgs[i].WitnessPoll = 50 * time.Millisecond
		cfgs[i].WitnessTimeout = 20 * time.Second
		cfgs[i].WitnessInterval = witnessInterval
	}
	cfgs[0].Bootstrap, cfgs[0].Origin = true, testOrigin
	first := c.start(cfgs[0])
	c.waitFor("bootstrap node ready", func() bool { return first.Ready() })
	nodes := []*testNode{first}
	for _, cfg := range cfgs[1:] {
		cfg.Join = []string{first.url}
		nodes = append(nodes, c.start(cfg))
	}
	c.waitVoters(n)
	return c, nodes
}

// write notarizes count fresh entries through the given nodes and returns
// the last receipt.
func write(t *testing.T, tag string, count int, nodes ...*testNode) *notary.Receipt {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), conditionWait)
	defer cancel()
	var last *notary.Receipt
	for i := range count {
		resp, err := clientFor(nodes...).Notarize(ctx, entryOf(tag, i))
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		last = resp.Receipt
	}
	return last
}

// getCheckpoint answers GET /v1/checkpoint with a query on a node.
func getCheckpoint(n *testNode, query string) (string, error) {
	return httpGet(n.url + "/v1/checkpoint" + query)
}

// cosignedBy opens a checkpoint note under the witnesses' torchwood
// verifiers only, and returns the names whose cosignatures verify (an
// error if one under their name does not).
func cosignedBy(msg string, ws ...*testWitness) ([]string, error) {
	var vs []note.Verifier
	for _, w := range ws {
		vs = append(vs, w.signer.Verifier())
	}
	n, err := note.Open([]byte(msg), note.VerifierList(vs...))
	var unverified *note.UnverifiedNoteError
	if errors.As(err, &unverified) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range n.Sigs {
		names = append(names, s.Name)
	}
	return names, nil
}

// metric reads a counter or gauge from a node's /metrics; 0 if absent.
func metric(t *testing.T, n *testNode, series string) float64 {
	t.Helper()
	text, err := httpGet(n.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

// waitWitnessed waits until every node serves as its latest checkpoint
// one of size carrying verified cosignatures by each of ws, and returns
// the notes served.
func waitWitnessed(t *testing.T, c *testCluster, size uint64, ws ...*testWitness) map[string]string {
	t.Helper()
	served := map[string]string{}
	c.waitFor(fmt.Sprintf("every node to serve size %d cosigned by %d witnesses", size, len(ws)), func() bool {
		for _, n := range c.list() {
			msg, err := getCheckpoint(n, "")
			if err != nil {
				return false
			}
			cp, err := notary.ParseSignedCheckpoint([]byte(msg))
			if err != nil {
				t.Fatalf("%s serves %q: %v", n.cfg.ID, msg, err)
			}
			names, err := cosignedBy(msg, ws...)
			if err != nil {
				t.Fatalf("%s serves a cosignature that does not verify: %v\n%s", n.cfg.ID, err, msg)
			}
			if cp.Size != size || len(names) != len(ws) {
				return false
			}
			served[n.cfg.ID] = msg
		}
		return true
	})
	return served
}

// TestWitnessesCosignOnEveryNode: a 3-node cluster with two witnesses;
// after writes, every node's /v1/checkpoint carries both cosignatures,
// which verify with the witnesses' torchwood verifiers, and the nodes'
// own signatures still verify under notary.OpenCheckpoint; ?witnessed=
// serves the witnessed checkpoint, and a receipt's checkpoint is proven a
// prefix of it.
func TestWitnessesCosignOnEveryNode(t *testing.T) {
	var wa, wb *testWitness
	c, nodes := witnessCluster(t, 3, func(keys []string) []cluster.Witness {
		wa, wb = newTestWitness(t, "witness-a.test", keys...), newTestWitness(t, "witness-b.test", keys...)
		wa.start()
		wb.start()
		return []cluster.Witness{wa.spec(), wb.spec()}
	})
	first := write(t, "witnessed", 5, nodes...)
	last := write(t, "witnessed-more", 20, nodes...)
	size := last.Index + 1
	served := waitWitnessed(t, c, size, wa, wb)
	policy := c.policy()
	policy.MinSignatures = 3
	for _, n := range nodes {
		msg := served[n.cfg.ID]
		// Node signatures verify as before; the cosignature lines are
		// standard note signatures that do not disturb it.
		cp, err := notary.OpenCheckpoint([]byte(msg), c.policy())
		if err != nil {
			t.Fatalf("%s: node signature: %v\n%s", n.cfg.ID, err, msg)
		}
		if cp.Size != size {
			t.Fatalf("%s: size %d, want %d", n.cfg.ID, cp.Size, size)
		}
		// All three node signatures combine with the cosignatures.
		all, err := getCheckpoint(n, "?witnessed=all&signatures=3")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := notary.OpenCheckpoint([]byte(all), policy); err != nil {
			t.Fatalf("%s: three node signatures: %v\n%s", n.cfg.ID, err, all)
		}
		if names, err := cosignedBy(all, wa, wb); err != nil || len(names) != 2 {
			t.Fatalf("%s: ?witnessed=all carries cosignatures by %v (%v)\n%s", n.cfg.ID, names, err, all)
		}
	}
	if wa.known() != int64(size) || wb.known() != int64(size) {
		t.Fatalf("the witnesses cosigned sizes %d and %d, want %d", wa.known(), wb.known(), size)
	}

	// The holder of the first receipt fetches the witnessed checkpoint and
	// a consistency proof from its receipt's size.
	n := nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msg, err := clientFor(n).CheckpointWitnessed(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if names, err := cosignedBy(string(msg), wa, wb); err != nil || len(names) != 2 {
		t.Fatalf("?witnessed=2 carries cosignatures by %v (%v)", names, err)
	}
	witnessedCP, err := notary.OpenCheckpoint(msg, c.policy())
	if err != nil {
		t.Fatal(err)
	}
	receiptCP, err := notary.ParseSignedCheckpoint(first.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	p, err := clientFor(n).ConsistencyProof(ctx, receiptCP.Size, witnessedCP.Size)
	if err != nil {
		t.Fatal(err)
	}
	proof := make(tlog.TreeProof, len(p.Proof))
	for i, h := range p.Proof {
		proof[i] = tlog.Hash(h)
	}
	if err := tlog.CheckTree(proof, int64(witnessedCP.Size), tlog.Hash(witnessedCP.Root), int64(receiptCP.Size), tlog.Hash(receiptCP.Root)); err != nil {
		t.Fatalf("the receipt's checkpoint is not proven a prefix of the witnessed one: %v", err)
	}
	// Each node serves the first receipt proven into the witnessed
	// checkpoint, with three node signatures and both cosignatures.
	for _, n := range nodes {
		r, err := clientFor(n).ReceiptWitnessed(ctx, first.Leaf.Commitment, 3, 2)
		if err != nil {
			t.Fatalf("%s: witnessed receipt: %v", n.cfg.ID, err)
		}
		if _, err := notary.Verify(notary.Claim{Receipt: r, Commitment: first.Leaf.Commitment}, policy); err != nil {
			t.Fatalf("%s: witnessed receipt does not verify with 3 node signatures: %v", n.cfg.ID, err)
		}
		if names, err := cosignedBy(string(r.Checkpoint), wa, wb); err != nil || len(names) != 2 {
			t.Fatalf("%s: witnessed receipt's checkpoint cosigned by %v (%v)", n.cfg.ID, names, err)
		}
	}
	if _, err := clientFor(n).ReceiptWitnessed(ctx, entryOf("never", 0).Commitment, 1, 1); !errors.Is(err, notaryapi.ErrNotFound) {
		t.Fatalf("witnessed receipt of a commitment never logged: %v", err)
	}
	if _, err := getCheckpoint(n, "?witnessed=3"); err == nil || !strings.Contains(err.Error(), "witnessed") {
		t.Fatalf("?witnessed=3 with two witnesses: %v", err)
	}
}

// TestWitnessStalledNeverBlocksWrites: a witness that holds a request
// unanswered slows no write; the leader sends it one request at a time,
// and once it answers, the newest checkpoint only (no queue of the
// checkpoints made meanwhile).
func TestWitnessStalledNeverBlocksWrites(t *testing.T) {
	gate := make(chan struct{})
	var gated atomic.Bool
	gated.Store(true)
	var inFlight, maxInFlight atomic.Int32
	entered := make(chan struct{}, 1)
	var mu sync.Mutex
	var sizes []int64 // checkpoint sizes of the requests, in order
	var ws *testWitness
	c, nodes := witnessCluster(t, 3, func(keys []string) []cluster.Witness {
		ws = newTestWitness(t, "stalled.test", keys...)
		ws.wrap = func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				now := inFlight.Add(1)
				defer inFlight.Add(-1)
				for {
					m := maxInFlight.Load()
					if now <= m || maxInFlight.CompareAndSwap(m, now) {
						break
					}
				}
				body := make([]byte, witness.MaxRequestSize)
				k, _ := io.ReadFull(r.Body, body)
				req, err := witness.ParseRequest(body[:k])
				if err == nil {
					if c, err := torchwood.ParseCheckpoint(string(req.Checkpoint[:strings.Index(string(req.Checkpoint), "\n\n")+1])); err == nil {
						mu.Lock()
						sizes = append(sizes, c.N)
						mu.Unlock()
					}
				}
				if gated.Load() {
					select {
					case entered <- struct{}{}:
					default:
					}
					select {
					case <-gate:
					case <-r.Context().Done():
						return
					}
				}
				r.Body = io.NopCloser(bytes.NewReader(body[:k]))
				h.ServeHTTP(w, r)
			})
		}
		ws.start()
		return []cluster.Witness{ws.spec()}
	})
	write(t, "stall-first", 1, nodes...)
	select {
	case <-entered:
	case <-time.After(conditionWait):
		t.Fatal("no request reached the witness")
	}
	// A request is held: writes go on regardless.
	last := write(t, "stall", 30, nodes...)
	if inFlight.Load() != 1 {
		t.Fatalf("%d requests in flight at the witness while the writes ran, want the one held", inFlight.Load())
	}
	mu.Lock()
	held := len(sizes)
	mu.Unlock()
	final := int64(last.Index + 1)
	c.waitConverged()
	gated.Store(false)
	close(gate)
	waitWitnessed(t, c, uint64(final), ws)
	if m := maxInFlight.Load(); m != 1 {
		t.Fatalf("up to %d requests in flight at one witness, want 1", m)
	}
	mu.Lock()
	after := append([]int64(nil), sizes[held:]...)
	mu.Unlock()
	for _, s := range after {
		if s != final {
			t.Fatalf("after the held request the witness was sent sizes %v; want only the newest, %d", after, final)
		}
	}
}

// TestWitnessInterval: the leader starts a request to a witness at most
// once per WitnessInterval, and sends the newest checkpoint when it may.
func TestWitnessInterval(t *testing.T) {
	const interval = 2 * time.Second
	var mu sync.Mutex
	var starts []time.Time
	var wa *testWitness
	witnessInterval = interval
	defer func() { witnessInterval = 0 }()
	c, nodes := witnessCluster(t, 3, func(keys []string) []cluster.Witness {
		wa = newTestWitness(t, "witness-a.test", keys...)
		wa.wrap = func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				starts = append(starts, time.Now())
				mu.Unlock()
				h.ServeHTTP(w, r)
			})
		}
		wa.start()
		return []cluster.Witness{wa.spec()}
	})
	for i := range 3 {
		last := write(t, fmt.Sprintf("interval-%d", i), 5, nodes...)
		waitWitnessed(t, c, last.Index+1, wa)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(starts) < 3 {
		t.Fatalf("%d requests", len(starts))
	}
	for i := 1; i < len(starts); i++ {
		// Measured where the witness receives them: the network may delay
		// one start more than the next.
		if gap := starts[i].Sub(starts[i-1]); gap < interval*9/10 {
			t.Errorf("request %d reached the witness %v after the one before, well under the interval %v", i, gap, interval)
		}
	}
}

// TestWitnessDownThenUpCatchesUp: a witness that is down does not stop
// writes; when it comes back with the state of an older checkpoint than
// the leader last had it cosign (restored from a copy), it answers 409 with
// the size it knows, and the leader proves consistency from that size and
// has the newest checkpoint cosigned.
func TestWitnessDownThenUpCatchesUp(t *testing.T) {
	var wa, wb *testWitness
	c, nodes := witnessCluster(t, 3, func(keys []string) []cluster.Witness {
		wa, wb = newTestWitness(t, "witness-a.test", keys...), newTestWitness(t, "witness-b.test", keys...)
		wa.start()
		wb.start()
		return []cluster.Witness{wa.spec(), wb.spec()}
	})
	last := write(t, "up", 5, nodes...)
	waitWitnessed(t, c, last.Index+1, wa, wb)
	old := int64(last.Index + 1)
	// Keep a copy of b's state at the older size.
	saved := t.TempDir()
	copyDir(t, wb.dir, saved)

	last = write(t, "up-more", 5, nodes...)
	waitWitnessed(t, c, last.Index+1, wa, wb)

	wb.stop()
	last = write(t, "b-down", 10, nodes...) // every write answered while b is down
	size := last.Index + 1
	waitFor(t, "witness a to cosign the newest checkpoint", func() bool { return wa.known() == int64(size) })
	for _, n := range nodes {
		msg, err := getCheckpoint(n, "")
		if err != nil {
			t.Fatal(err)
		}
		if names, _ := cosignedBy(msg, wb); len(names) != 0 {
			t.Fatalf("%s serves b's cosignature of size %d, which b never made", n.cfg.ID, size)
		}
	}

	// b comes back, remembering an older checkpoint.
	wb.dir = saved
	wb.start()
	if wb.known() != old {
		t.Fatalf("restored witness knows size %d, want %d", wb.known(), old)
	}
	waitWitnessed(t, c, size, wa, wb)
	leader := c.leader()
	if leader == nil {
		t.Fatal("no leader")
	}
	if got := metric(t, leader, `telenotary_witness_submissions_total{outcome="conflict",witness="witness-b.test"}`); got < 1 {
		t.Fatalf("the leader counts %v conflicts with b, want at least 1 (the 409 path)", got)
	}
	if got := metric(t, leader, `telenotary_witness_cosigned_size{witness="witness-b.test"}`); got != float64(size) {
		t.Fatalf("cosigned size gauge of b %v, want %d", got, size)
	}
}

// TestWitnessNewLeaderSubmits: after the leader stops, the new leader
// submits the checkpoints it makes.
func TestWitnessNewLeaderSubmits(t *testing.T) {
	var wa *testWitness
	c, nodes := witnessCluster(t, 3, func(keys []string) []cluster.Witness {
		wa = newTestWitness(t, "witness-a.test", keys...)
		wa.start()
		return []cluster.Witness{wa.spec()}
	})
	last := write(t, "before", 5, nodes...)
	waitWitnessed(t, c, last.Index+1, wa)
	old := c.leader()
	c.stop(old)
	var rest []*testNode
	for _, n := range nodes {
		if n != old {
			rest = append(rest, n)
		}
	}
	c.waitFor("a new leader", func() bool { l := c.leader(); return l != nil && l != old })
	last = write(t, "after", 5, rest...)
	waitWitnessed(t, c, last.Index+1, wa)
	leader := c.leader()
	if got := metric(t, leader, `telenotary_witness_submissions_total{outcome="cosigned",witness="witness-a.test"}`); got < 1 {
		t.Fatalf("the new leader counts %v cosigned submissions", got)
	}
}

// TestWitnessBadCosignaturesDropped: a witness answering garbage, and one
// whose cosignature is by another key than the one configured, have
// nothing kept or served, and each failure is counted; a good witness
// alongside is served.
func TestWitnessBadCosignaturesDropped(t *testing.T) {
	var good, wrongKey *testWitness
	var garbage *http.Server
	var garbageURL string
	var configuredWrong cluster.Witness
	c, nodes := witnessCluster(t, 3, func(keys []string) []cluster.Witness {
		good = newTestWitness(t, "good.test", keys...)
		good.start()
		// wrongKey signs with a key of the name the node trusts under
		// another key.
		wrongKey = newTestWitness(t, "wrong.test", keys...)
		wrongKey.start()
		other := newTestWitness(t, "wrong.test", keys...)
		var err error
		configuredWrong, err = cluster.ParseWitness(wrongKey.url() + "=" + other.signer.Verifier().String())
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		garbage = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("— garbage.test bm90IGEgc2lnbmF0dXJl\nnot even a line\n"))
		})}
		go garbage.Serve(ln)
		t.Cleanup(func() { garbage.Close() })
		garbageURL = "http://" + ln.Addr().String()
		gk, _, err := note.GenerateKey(nil, "garbage.test")
		if err != nil {
			t.Fatal(err)
		}
		gs, err := witness.NewSigner(gk)
		if err != nil {
			t.Fatal(err)
		}
		g, err := cluster.ParseWitness(garbageURL + "=" + gs.Verifier().String())
		if err != nil {
			t.Fatal(err)
		}
		return []cluster.Witness{good.spec(), configuredWrong, g}
	})
	last := write(t, "bad", 5, nodes...)
	waitWitnessed(t, c, last.Index+1, good)
	// The leader keeps trying: the wrong-key witness comes to cosign the
	// newest checkpoint, which is still not served.
	waitFor(t, "the wrong-key witness to answer for the newest checkpoint", func() bool { return wrongKey.known() == int64(last.Index+1) })
	leader := c.leader()
	for _, name := range []string{"wrong.test", "garbage.test"} {
		waitFor(t, "the leader to count bad cosignatures of "+name, func() bool {
			return metric(t, leader, `telenotary_witness_submissions_total{outcome="bad_cosignature",witness="`+name+`"}`) >= 1
		})
	}
	for _, n := range nodes {
		msg, err := getCheckpoint(n, "")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(msg, "— wrong.test ") || strings.Contains(msg, "— garbage.test ") {
			t.Fatalf("%s serves a cosignature that does not verify:\n%s", n.cfg.ID, msg)
		}
		if _, err := getCheckpoint(n, "?witnessed=2"); err == nil {
			t.Fatalf("%s serves a checkpoint cosigned by 2 witnesses; only one cosignature verifies", n.cfg.ID)
		}
	}
}

// TestFollowerVerifiesFetchedCosignatures: a follower keeps a cosignature
// its leader passes on only if it verifies, with the witness's key, over
// the follower's own checkpoint of that size: one over another body, or by
// another key under the witness's name, is dropped and counted.
func TestFollowerVerifiesFetchedCosignatures(t *testing.T) {
	var wa *testWitness
	c, nodes := witnessCluster(t, 3, func(keys []string) []cluster.Witness {
		wa = newTestWitness(t, "witness-a.test", keys...)
		wa.start()
		return []cluster.Witness{wa.spec()}
	})
	// One write, then a batch: the sizes within the batch are never a
	// checkpoint, so no witness cosigns them.
	write(t, "fetched", 1, nodes...)
	batch := make([]notaryapi.Entry, 10)
	for i := range batch {
		batch[i] = entryOf("fetched-batch", i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), conditionWait)
	defer cancel()
	resp, err := clientFor(nodes...).NotarizeBatch(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	last := resp.Receipts[len(resp.Receipts)-1]
	waitWitnessed(t, c, last.Index+1, wa)
	var f *testNode
	for _, n := range c.list() {
		if n != c.leader() {
			f = n
		}
	}
	// A size the follower holds no cosignature of.
	text, err := httpGet(f.url + "/v1/checkpoint/cosignatures")
	if err != nil {
		t.Fatal(err)
	}
	var held notaryapi.CosignaturesResponse
	if err := json.Unmarshal([]byte(text), &held); err != nil {
		t.Fatal(err)
	}
	var size uint64
	for s := uint64(1); s <= last.Index; s++ {
		if !strings.Contains(strings.Join(held.Checkpoints, ""), fmt.Sprintf("\n%d\n", s)) {
			size = s
			break
		}
	}
	if size == 0 {
		t.Fatal("the follower holds a cosignature of every size")
	}
	own, err := getCheckpoint(f, fmt.Sprintf("?size=%d", size))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := notary.ParseSignedCheckpoint([]byte(own))
	if err != nil {
		t.Fatal(err)
	}
	body, err := cp.Body()
	if err != nil {
		t.Fatal(err)
	}
	cosign := func(text []byte, s note.Signer) string {
		msg, err := note.Sign(&note.Note{Text: string(text)}, s)
		if err != nil {
			t.Fatal(err)
		}
		return string(msg)
	}
	forged := cp.Checkpoint
	forged.Root[0] ^= 1
	forgedBody, err := forged.Body()
	if err != nil {
		t.Fatal(err)
	}
	impostor := newTestWitness(t, "witness-a.test")
	refused := `telenotary_witness_cosignatures_refused_total{source="leader",witness="witness-a.test"}`
	before := metric(t, f, refused)
	cluster.KeepFetched(f.Node, notaryapi.CosignaturesResponse{Checkpoints: []string{
		cosign(forgedBody, wa.signer), // the witness's key, another root
		cosign(body, impostor.signer), // the right body, another key
	}})
	if got := metric(t, f, refused) - before; got != 2 {
		t.Fatalf("the follower counts %v refused cosignatures, want 2", got)
	}
	if msg, err := getCheckpoint(f, fmt.Sprintf("?size=%d", size)); err != nil || strings.Contains(msg, "— witness-a.test ") {
		t.Fatalf("the follower serves size %d with %q (%v), want no cosignature", size, msg, err)
	}
	// The witness's own cosignature of the follower's body is kept and
	// served.
	cluster.KeepFetched(f.Node, notaryapi.CosignaturesResponse{Checkpoints: []string{cosign(body, wa.signer)}})
	msg, err := getCheckpoint(f, fmt.Sprintf("?size=%d", size))
	if err != nil {
		t.Fatal(err)
	}
	if names, err := cosignedBy(msg, wa); err != nil || len(names) != 1 {
		t.Fatalf("size %d after a good cosignature: %v (%v)\n%s", size, names, err, msg)
	}
}

// TestParseWitness: the --witness form is checked, each refusal saying what
// is wrong.
func TestParseWitness(t *testing.T) {
	tw := newTestWitness(t, "witness.test")
	vkey := tw.signer.Verifier().String()
	_, nodeKey, err := note.GenerateKey(nil, "witness.test")
	if err != nil {
		t.Fatal(err)
	}
	w, err := cluster.ParseWitness("https://w.example/prefix/=" + vkey)
	if err != nil || w.URL != "https://w.example/prefix" || w.Verifier.Name() != "witness.test" {
		t.Fatalf("ParseWitness: %+v, %v", w, err)
	}
	bad := map[string]string{
		"":                               "URL=VKEY",
		"https://w.example":              "URL=VKEY",
		"ftp://w.example=" + vkey:        "http:// or https://",
		"https://w.example/?a=b=" + vkey: "without query",
		"https://=" + vkey:               "no host",
		"https://w.example=" + nodeKey:   "not a cosignature/v1 key",
		"https://w.example=" + vkey[:len(vkey)-4] + "AAAA": "key hash",
		"https://w.example=witness.test+1234":              "not a verifier key",
	}
	for spec, want := range bad {
		if _, err := cluster.ParseWitness(spec); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseWitness(%q) = %v, want an error saying %q", spec, err, want)
		}
	}
}

// copyDir copies the files of src into dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWitnessConfigRefused: a node refuses, before it starts, witnesses
// that cannot work: two of one name, one named like the node's key, a URL
// that is not http(s), no verifier, or no timeout.
func TestWitnessConfigRefused(t *testing.T) {
	c := newTestCluster(t)
	tw := newTestWitness(t, "witness.test")
	cfg := c.config("node-a")
	cfg.Bootstrap, cfg.Origin = true, testOrigin
	sameName := newTestWitness(t, "node-a")
	for _, tc := range []struct {
		ws   []cluster.Witness
		mod  func(*cluster.Config)
		want string
	}{
		{[]cluster.Witness{tw.spec(), tw.spec()}, nil, "two witnesses named"},
		{[]cluster.Witness{sameName.spec()}, nil, "like this node's key"},
		{[]cluster.Witness{{URL: "ftp://w.example", Verifier: tw.spec().Verifier}}, nil, "http:// or https://"},
		{[]cluster.Witness{{URL: "https://w.example"}}, nil, "no Verifier"},
		{[]cluster.Witness{tw.spec()}, func(c *cluster.Config) { c.WitnessTimeout = 0 }, "WitnessTimeout"},
	} {
		cfg := cfg
		cfg.Witnesses = tc.ws
		if tc.mod != nil {
			tc.mod(&cfg)
		}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %v, want an error saying %q", err, tc.want)
		}
	}
	cfg.Witnesses = []cluster.Witness{tw.spec()}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("a good witness: %v", err)
	}
}

// FuzzParseWitness: no --witness value makes ParseWitness panic, and one it
// accepts has an http(s) URL without query and a verifier whose key string
// is the one given.
func FuzzParseWitness(f *testing.F) {
	skey, _, err := note.GenerateKey(nil, "witness.test")
	if err != nil {
		f.Fatal(err)
	}
	s, err := witness.NewSigner(skey)
	if err != nil {
		f.Fatal(err)
	}
	vkey := s.Verifier().String()
	f.Add("https://w.example/prefix=" + vkey)
	f.Add("http://127.0.0.1:7380=" + vkey)
	f.Add("https://w.example?x=y=" + vkey)
	f.Add("=")
	f.Fuzz(func(t *testing.T, spec string) {
		w, err := cluster.ParseWitness(spec)
		if err != nil {
			return
		}
		u, given, _ := strings.Cut(spec, "=")
		if lu := strings.ToLower(u); !strings.HasPrefix(lu, "http://") && !strings.HasPrefix(lu, "https://") || strings.ContainsAny(w.URL, "?#") {
			t.Fatalf("accepted URL %q", w.URL)
		}
		v, ok := w.Verifier.(*torchwood.CosignatureVerifier)
		if !ok || v.String() != given {
			t.Fatalf("verifier of %q is not the key given", spec)
		}
	})
}
