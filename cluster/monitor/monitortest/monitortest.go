// Package monitortest builds logs for testing a log monitor: logs that
// share an origin and signing keys, kept by the notary package's log in a
// store the test chooses (a directory, or memory), and served over HTTP by
// the cluster's own API handlers (package httpd) without raft. A test makes
// them fork, stamp time backwards, or serve leaves that are not the signed
// ones, and points a monitor at them.
package monitortest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/telenotary/telenotary/cluster/httpd"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// TB is the part of testing.TB the helpers use.
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Keys are the signing keys of a log's nodes, shared by every fork of it.
type Keys struct {
	Signers []note.Signer
	// Verifiers is the keys file of the log, as GET /v1/keys serves it.
	Verifiers []string
}

// NewKeys makes n node keys, named node-1 to node-n.
func NewKeys(t TB, n int) Keys {
	t.Helper()
	var k Keys
	for i := range n {
		skey, vkey, err := note.GenerateKey(nil, fmt.Sprintf("node-%d", i+1))
		if err != nil {
			t.Fatal(err)
		}
		s, err := note.NewSigner(skey)
		if err != nil {
			t.Fatal(err)
		}
		k.Signers, k.Verifiers = append(k.Signers, s), append(k.Verifiers, vkey)
	}
	return k
}

// Policy trusts the keys, needing min of them, for origin.
func (k Keys) Policy(t TB, min int, origin string) notary.Policy {
	t.Helper()
	vs, err := notary.ParseVerifierKeys([]byte(k.File()))
	if err != nil {
		t.Fatal(err)
	}
	return notary.Policy{Verifiers: vs, MinSignatures: min, Origin: origin}
}

// File is the keys file: one verifier key a line.
func (k Keys) File() string { return strings.Join(k.Verifiers, "\n") + "\n" }

// Node is a log and the API of a node over it: checkpoints signed by all
// the keys, leaves, proofs. It implements httpd.Cluster and httpd.Ledger
// (writes and membership changes are refused).
type Node struct {
	origin string
	keys   Keys

	mu  sync.Mutex // guards all below
	log *notary.Log
	cp  *notary.SignedCheckpoint
	// tamper, when set, changes the leaves served (not those logged).
	tamper func(index uint64, l *notary.Leaf)
}

// NewNode opens a log over store, with the origin and keys given.
func NewNode(t TB, origin string, keys Keys, store notary.Store) *Node {
	t.Helper()
	l, err := notary.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	n := &Node{origin: origin, keys: keys, log: l}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.sign(); err != nil {
		t.Fatal(err)
	}
	return n
}

// Leaf is a distinct prescription leaf for tag and i, stamped at ms.
func Leaf(tag string, i int, ms int64) notary.Leaf {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	return notary.Leaf{Kind: notary.KindPrescription, Commitment: notary.Commitment(sha256.Sum256(append([]byte(tag), b[:]...))), Timestamp: ms}
}

// Append logs leaves and signs the new head.
func (n *Node) Append(t TB, leaves ...notary.Leaf) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, err := n.log.Append(leaves, nil); err != nil {
		t.Fatal(err)
	}
	if err := n.sign(); err != nil {
		t.Fatal(err)
	}
}

// Tamper has the node serve leaves changed by fn from now on, while it
// keeps signing the root of the leaves logged.
func (n *Node) Tamper(fn func(index uint64, l *notary.Leaf)) {
	n.mu.Lock()
	n.tamper = fn
	n.mu.Unlock()
}

// Checkpoint returns the node's latest signed checkpoint.
func (n *Node) Checkpoint() *notary.SignedCheckpoint {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cp
}

// sign signs the head with every key; n.mu is held.
func (n *Node) sign() error {
	cp, err := n.signAt(n.log.Head().Size)
	n.cp = &cp
	return err
}

// signAt signs the checkpoint of the first size leaves, dated as the
// newest of them, as a node of the cluster does.
func (n *Node) signAt(size uint64) (notary.SignedCheckpoint, error) {
	root, err := n.log.RootAt(size)
	if err != nil {
		return notary.SignedCheckpoint{}, err
	}
	var ts int64
	if size > 0 {
		newest, err := n.log.Leaf(size - 1)
		if err != nil {
			return notary.SignedCheckpoint{}, err
		}
		ts = newest.Timestamp
	}
	return notary.Checkpoint{Origin: n.origin, Size: size, Root: root, Timestamp: ts}.Sign(n.keys.Signers...)
}

// Handler is the node's API: the cluster's handlers over the node.
func (n *Node) Handler() http.Handler { return httpd.New(httpd.Config{Cluster: n, Ledger: n}) }

// Serve serves the node's API through the cluster's handlers, wrapped by
// wrap when it is not nil, and returns the server's base URL.
func (n *Node) Serve(t TB, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	h := n.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// CommitUnchecked appends leaves to a memory store as they are (before
// NewNode opens a log over it), without
// the log's rule that time does not go backwards, with the stored hashes
// of golang.org/x/mod/sumdb/tlog: a log whose tree and checkpoints are
// sound but whose leaves break a rule.
func CommitUnchecked(t TB, store *notary.MemoryStore, leaves ...notary.Leaf) {
	t.Helper()
	head := store.Head()
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		hs, err := store.ReadHashes(indexes)
		out := make([]tlog.Hash, len(hs))
		for i := range hs {
			out[i] = tlog.Hash(hs[i])
		}
		return out, err
	})
	var added []notary.Hash
	all := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		base := tlog.StoredHashCount(int64(head.Size))
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			if x < base {
				hs, err := reader.ReadHashes([]int64{x})
				if err != nil {
					return nil, err
				}
				out[i] = hs[0]
				continue
			}
			if x-base >= int64(len(added)) {
				return nil, fmt.Errorf("hash %d not stored yet", x)
			}
			out[i] = tlog.Hash(added[x-base])
		}
		return out, nil
	})
	for i, lf := range leaves {
		data, err := lf.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		hs, err := tlog.StoredHashes(int64(head.Size)+int64(i), data, all)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hs {
			added = append(added, notary.Hash(h))
		}
	}
	size := head.Size + uint64(len(leaves))
	root, err := tlog.TreeHash(int64(size), all)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Commit(leaves, added, notary.Head{Size: size, Root: notary.Hash(root)}); err != nil {
		t.Fatal(err)
	}
}

var errRefused = errors.New("monitortest: this node takes no writes or membership changes")

// Leader implements httpd.Cluster: the node leads, alone.
func (n *Node) Leader() (bool, string) { return true, "" }

// Submit implements httpd.Cluster: refused.
func (n *Node) Submit(context.Context, []notaryapi.Entry, int) ([]*notary.Receipt, uint64, error) {
	return nil, 0, errRefused
}

// Members implements httpd.Cluster: one member a key.
func (n *Node) Members() (string, string, []notaryapi.MemberInfo) {
	var ms []notaryapi.MemberInfo
	for i, v := range n.keys.Verifiers {
		ms = append(ms, notaryapi.MemberInfo{Member: notaryapi.Member{ID: n.keys.Signers[i].Name(), VerifierKey: v}})
	}
	return "", n.origin, ms
}

// Majority implements httpd.Cluster.
func (n *Node) Majority() int { return len(n.keys.Signers)/2 + 1 }

// Status implements httpd.Cluster.
func (n *Node) Status() notaryapi.Status {
	cp := n.Checkpoint()
	return notaryapi.Status{ID: n.keys.Signers[0].Name(), Origin: n.origin, State: notaryapi.StateLeader, Ready: true, LogSize: cp.Size, CheckpointTime: cp.Timestamp}
}

// NotReady implements httpd.Cluster: always ready.
func (n *Node) NotReady() error { return nil }

// Join implements httpd.Cluster: refused.
func (n *Node) Join(context.Context, notaryapi.JoinRequest) (*notaryapi.JoinResponse, error) {
	return nil, errRefused
}

// Rekey implements httpd.Cluster: refused.
func (n *Node) Rekey(context.Context, notaryapi.JoinRequest) error { return errRefused }

// RetiredKeys implements httpd.Cluster: none.
func (n *Node) RetiredKeys() []notaryapi.RetiredKey { return nil }

// Remove implements httpd.Cluster: refused.
func (n *Node) Remove(context.Context, string) error { return errRefused }

// Transfer implements httpd.Cluster: refused.
func (n *Node) Transfer(context.Context, string) error { return errRefused }

// Time implements httpd.Cluster.
func (n *Node) Time() time.Time { return time.Now() }

// ReadBarrier implements httpd.Cluster: a single log is always up to date.
func (n *Node) ReadBarrier(context.Context) error { return nil }

// Subscribe implements httpd.Cluster: no events.
func (n *Node) Subscribe() (<-chan notaryapi.Event, func(), error) { return nil, nil, errRefused }

// Receipt implements httpd.Ledger: receipts into the latest checkpoint.
func (n *Node) Receipt(c notary.Commitment) (*notary.Receipt, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	i, ok, err := n.log.Find(c)
	if err != nil || !ok {
		return nil, err
	}
	return n.log.Receipt(i, *n.cp)
}

// ReceiptIn implements httpd.Ledger: the receipt of c proven into cp, nil
// when cp does not hold it.
func (n *Node) ReceiptIn(c notary.Commitment, cp *notary.SignedCheckpoint) (*notary.Receipt, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	i, ok, err := n.log.Find(c)
	if err != nil || !ok || i >= cp.Size {
		return nil, err
	}
	return n.log.Receipt(i, *cp)
}

// CheckpointAt implements httpd.Ledger.
func (n *Node) CheckpointAt(size uint64) (notary.SignedCheckpoint, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.signAt(size)
}

// WaitSize implements httpd.Ledger: the log does not grow by itself.
func (n *Node) WaitSize(context.Context, uint64) {}

// Cosign implements httpd.Ledger: every checkpoint carries every key's
// signature already.
func (n *Node) Cosign(_ context.Context, cp notary.SignedCheckpoint, want int) ([]byte, error) {
	if want > len(n.keys.Signers) {
		return nil, fmt.Errorf("monitortest: %d signatures asked, the log has %d keys", want, len(n.keys.Signers))
	}
	return cp.Note, nil
}

// Size implements httpd.Ledger.
func (n *Node) Size() uint64 { return n.log.Head().Size }

// Leaves implements httpd.Ledger, with the leaves changed by the tamper
// function when one is set.
func (n *Node) Leaves(start, count uint64) ([]notary.Leaf, error) {
	out := make([]notary.Leaf, count)
	if err := n.log.Leaves(start, out); err != nil {
		return nil, err
	}
	n.mu.Lock()
	tamper := n.tamper
	n.mu.Unlock()
	if tamper != nil {
		for i := range out {
			tamper(start+uint64(i), &out[i])
		}
	}
	return out, nil
}

// InclusionProof implements httpd.Ledger.
func (n *Node) InclusionProof(index, size uint64) (notary.Hash, []notary.Hash, error) {
	lf, err := n.log.Leaf(index)
	if err != nil {
		return notary.Hash{}, nil, err
	}
	p, err := n.log.InclusionProof(index, size)
	return lf.Hash(), p, err
}

// ConsistencyProof implements httpd.Ledger.
func (n *Node) ConsistencyProof(from, to uint64) ([]notary.Hash, error) {
	return n.log.ConsistencyProof(from, to)
}

// Fill is the httpd.Ledger method; this node tracks no prescriptions.
func (n *Node) Fill(notary.Commitment, uint64) (int, int, bool) { return 0, 0, false }

// PrescriptionStatus is the httpd.Ledger method; this node tracks no
// prescriptions, so it answers none.
func (n *Node) PrescriptionStatus(notary.Commitment, *notary.SignedCheckpoint) (*notary.PrescriptionStatus, error) {
	return nil, nil
}
