package httpd

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"golang.org/x/mod/sumdb/note"
)

// testClusterID is the memNode's cluster.
const testClusterID = "c0ffee00c0ffee00c0ffee00c0ffee00"

// memNode is a node without raft, for testing the API alone: a notary log
// in memory that it leads (or, as a follower, a leader's URL to forward
// to), checkpoints signed by its signers (the first is its own, the others
// stand for the peers that cosign), and members that join and leave.
type memNode struct {
	origin    string
	signers   []note.Signer
	keys      []string
	leader    bool
	leaderURL string

	mu      sync.Mutex // guards all below
	log     *notary.Log
	cp      *notary.SignedCheckpoint
	members []notaryapi.MemberInfo
	retired []notaryapi.RetiredKey
	subs    map[chan notaryapi.Event]bool
	grown   chan struct{} // closed and replaced when the log grows
}

func newMemNode(origin string, nodes int) (*memNode, error) {
	l, err := notary.Open(notary.NewMemoryStore())
	if err != nil {
		return nil, err
	}
	n := &memNode{origin: origin, leader: true, log: l, subs: map[chan notaryapi.Event]bool{}, grown: make(chan struct{})}
	for i := range nodes {
		skey, vkey, err := note.GenerateKey(nil, fmt.Sprintf("node-%d", i+1))
		if err != nil {
			return nil, err
		}
		s, err := note.NewSigner(skey)
		if err != nil {
			return nil, err
		}
		n.signers, n.keys = append(n.signers, s), append(n.keys, vkey)
		n.members = append(n.members, notaryapi.MemberInfo{Member: notaryapi.Member{ID: s.Name(), RaftAddr: fmt.Sprintf("127.0.0.1:%d", 7001+i),
			HTTPAddr: fmt.Sprintf("http://127.0.0.1:%d", 8081+i), VerifierKey: vkey}})
	}
	return n, n.sign()
}

// sign signs the head with the node's own key; mu must be held or the
// node not yet shared.
func (n *memNode) sign() error {
	close(n.grown)
	n.grown = make(chan struct{})
	head := n.log.Head()
	var ts int64
	if head.Size > 0 {
		newest, err := n.log.Leaf(head.Size - 1)
		if err != nil {
			return err
		}
		ts = newest.Timestamp
	}
	cp, err := notary.Checkpoint{Origin: n.origin, Size: head.Size, Root: head.Root, Timestamp: ts}.Sign(n.signers[0])
	n.cp = &cp
	return err
}

func (n *memNode) Leader() (bool, string) { return n.leader, n.leaderURL }

func (n *memNode) Submit(ctx context.Context, entries []notaryapi.Entry, signatures int) ([]*notary.Receipt, uint64, error) {
	if !n.leader {
		return nil, 0, notaryapi.ErrNotLeader
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	firstNew := n.log.Head().Size
	leaves := make([]notary.Leaf, len(entries))
	ts := time.Now().UnixMilli()
	for i, e := range entries {
		leaves[i] = notary.Leaf{Kind: e.Kind, Commitment: e.Commitment, Link: e.Link, Timestamp: ts}
	}
	indexes, err := n.log.Append(leaves, nil)
	if err != nil {
		return nil, 0, err
	}
	if err := n.sign(); err != nil {
		return nil, 0, err
	}
	cp := *n.cp
	if signatures > 1 {
		if cp.Note, err = n.Cosign(ctx, cp, signatures); err != nil {
			return nil, 0, err
		}
	}
	receipts := make([]*notary.Receipt, len(indexes))
	for i, idx := range indexes {
		if receipts[i], err = n.log.Receipt(idx, cp); err != nil {
			return nil, 0, err
		}
	}
	ev := notaryapi.Event{Type: notaryapi.EventNotarized, Time: time.Now().UTC(), Notarized: &notaryapi.NotarizedEvent{
		First: firstNew, Size: n.log.Head().Size, Count: n.log.Head().Size - firstNew, ByKind: map[string]int{}}}
	for i, idx := range indexes {
		if idx >= firstNew {
			ev.Notarized.ByKind[entries[i].Kind.String()]++
			ev.Notarized.Recent = append(ev.Notarized.Recent, notaryapi.LeafInfoOf(idx, leaves[i]))
		}
	}
	for c := range n.subs {
		select {
		case c <- ev:
		default:
		}
	}
	return receipts, firstNew, nil
}

func (n *memNode) Members() (string, string, []notaryapi.MemberInfo) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return testClusterID, n.origin, append([]notaryapi.MemberInfo(nil), n.members...)
}

func (n *memNode) Majority() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.members)/2 + 1
}

func (n *memNode) Status() notaryapi.Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := notaryapi.Status{ID: n.members[0].ID, ClusterID: testClusterID, Origin: n.origin, State: "Follower", Ready: true, Term: 1,
		LogSize: n.cp.Size, CheckpointTime: n.cp.Timestamp}
	if n.leader {
		st.State = notaryapi.StateLeader
	}
	for _, m := range n.members {
		st.Peers = append(st.Peers, notaryapi.PeerStatus{ID: m.ID, RaftAddr: m.RaftAddr, HTTPAddr: m.HTTPAddr, Suffrage: "Voter", Reachable: true})
	}
	return st
}

func (n *memNode) NotReady() error { return nil }

func (n *memNode) Time() time.Time { return time.Now() }

// ReadBarrier: the in-memory node's log is its only copy, always current.
func (n *memNode) ReadBarrier(context.Context) error { return nil }

func (n *memNode) Join(ctx context.Context, req notaryapi.JoinRequest) (*notaryapi.JoinResponse, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if req.ClusterID != testClusterID {
		return nil, fmt.Errorf("%w: %s asks to join cluster %s", notaryapi.ErrWrongCluster, req.ID, req.ClusterID)
	}
	n.members = append(n.members, notaryapi.MemberInfo{Member: req.Member, KeySince: n.log.Head().Size})
	return &notaryapi.JoinResponse{ClusterID: testClusterID, Origin: n.origin, Members: append([]notaryapi.MemberInfo(nil), n.members...)}, nil
}

// Rekey replaces a member's key, keeping the old one as retired.
func (n *memNode) Rekey(ctx context.Context, req notaryapi.JoinRequest) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, m := range n.members {
		if m.ID == req.ID {
			n.retired = append(n.retired, notaryapi.RetiredKey{ID: m.ID, VerifierKey: m.VerifierKey, Since: m.KeySince, Until: n.log.Head().Size})
			n.members[i] = notaryapi.MemberInfo{Member: req.Member, KeySince: n.log.Head().Size + 1}
			return nil
		}
	}
	return fmt.Errorf("%w: no member %q", notaryapi.ErrNotFound, req.ID)
}

func (n *memNode) RetiredKeys() []notaryapi.RetiredKey {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]notaryapi.RetiredKey(nil), n.retired...)
}

func (n *memNode) Remove(ctx context.Context, id string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, m := range n.members {
		if m.ID == id {
			n.members = append(n.members[:i], n.members[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("%w: no member %q", notaryapi.ErrNotFound, id)
}

func (n *memNode) Transfer(ctx context.Context, id string) error {
	if id != "" && id != n.members[len(n.members)-1].ID {
		return fmt.Errorf("%w: no voter %q", notaryapi.ErrNotFound, id)
	}
	return nil
}

func (n *memNode) Subscribe() (<-chan notaryapi.Event, func(), error) {
	c := make(chan notaryapi.Event, 16)
	n.mu.Lock()
	n.subs[c] = true
	n.mu.Unlock()
	return c, func() {
		n.mu.Lock()
		delete(n.subs, c)
		n.mu.Unlock()
	}, nil
}

func (n *memNode) Checkpoint() *notary.SignedCheckpoint {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cp
}

func (n *memNode) Receipt(c notary.Commitment) (*notary.Receipt, error) {
	n.mu.Lock()
	cp := n.cp
	n.mu.Unlock()
	return n.ReceiptIn(c, cp)
}

func (n *memNode) ReceiptIn(c notary.Commitment, cp *notary.SignedCheckpoint) (*notary.Receipt, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	i, found, err := n.log.Find(c)
	if err != nil || !found || i >= cp.Size {
		return nil, err
	}
	return n.log.Receipt(i, *cp)
}

// WaitSize returns at once: the in-memory node applies as it submits.
func (n *memNode) WaitSize(ctx context.Context, size uint64) {
	for {
		n.mu.Lock()
		have, grown := n.log.Head().Size, n.grown
		n.mu.Unlock()
		if have >= size {
			return
		}
		select {
		case <-grown:
		case <-ctx.Done():
			return
		}
	}
}

func (n *memNode) CheckpointAt(size uint64) (notary.SignedCheckpoint, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if size > n.log.Head().Size {
		return notary.SignedCheckpoint{}, httpapi.Field("size", "is beyond this node's log of %d leaves", n.log.Head().Size)
	}
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
	return notary.Checkpoint{Origin: n.origin, Size: size, Root: root, Timestamp: ts}.Sign(n.signers[0])
}

func (n *memNode) Cosign(ctx context.Context, cp notary.SignedCheckpoint, want int) ([]byte, error) {
	if want > len(n.signers) {
		return nil, httpapi.Field("signatures", "the cluster has %d nodes; it cannot give %d signatures", len(n.signers), want)
	}
	signed, err := cp.Checkpoint.Sign(n.signers[:want]...)
	return signed.Note, err
}

func (n *memNode) Size() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.log.Head().Size
}

func (n *memNode) Leaves(start, count uint64) ([]notary.Leaf, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]notary.Leaf, count)
	return out, n.log.Leaves(start, out)
}

func (n *memNode) InclusionProof(index, size uint64) (notary.Hash, []notary.Hash, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	leaf, err := n.log.Leaf(index)
	if err != nil {
		return notary.Hash{}, nil, err
	}
	p, err := n.log.InclusionProof(index, size)
	return leaf.Hash(), p, err
}

func (n *memNode) ConsistencyProof(from, to uint64) ([]notary.Hash, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.log.ConsistencyProof(from, to)
}

// Fill and PrescriptionStatus: the memNode tracks no prescriptions (the
// cluster package tests them over raft).
func (n *memNode) Fill(notary.Commitment, uint64) (int, int, bool) { return 0, 0, false }

func (n *memNode) PrescriptionStatus(notary.Commitment, *notary.SignedCheckpoint) (*notary.PrescriptionStatus, error) {
	return nil, nil
}
