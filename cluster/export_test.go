package cluster

import (
	"errors"
	"sync"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
)

// Crash stops a node abruptly, as a killed process would: no leadership
// transfer, no draining of requests.
func Crash(n *Node) {
	n.closeOnce.Do(func() {
		if n.http != nil {
			n.http.Close()
		}
		n.closeErr = n.shutdownParts()
	})
}

// LogGeneration returns which log-<gen> directory the node uses: a restore
// from a snapshot moves it on.
func LogGeneration(n *Node) int {
	n.fsm.mu.RLock()
	defer n.fsm.mu.RUnlock()
	return n.fsm.gen
}

// LookForLeader makes the node's raft check for its leader's heartbeats
// now, as the leader watch does when the leader is past due.
func LookForLeader(n *Node) error { return n.watch.Look() }

// HeartbeatTimeout returns raft's heartbeat timeout as the node runs it.
func HeartbeatTimeout(n *Node) time.Duration { return n.raft.ReloadableConfig().HeartbeatTimeout }

// HoldApplies stops the node's state machine before its next batch, while
// its raft goes on logging and acknowledging entries, until release.
func HoldApplies(n *Node) (release func()) {
	ch := make(chan struct{})
	n.fsm.held.Store(&ch)
	var once sync.Once
	return func() {
		once.Do(func() {
			n.fsm.held.Store(nil)
			close(ch)
		})
	}
}

// Propose applies a raw raft command through the node, which must lead,
// as an operator with raft access could; the error is raft's or the FSM's
// refusal.
func Propose(n *Node, cmd []byte) error { return n.propose(cmd) }

// RefusedCommands counts the raft commands the node's FSM refused.
func RefusedCommands(n *Node) uint64 { return n.fsm.refused.Load() }

// Raft command bytes, for hand-made commands.
const (
	CmdNotarize = cmdNotarize
	CmdGenesis  = cmdGenesis
	CmdMember   = cmdMember
	CmdForget   = cmdForget
)

// ErrRefused marks a command the FSM refused.
var ErrRefused = errRefused

// RefuseRaftWrites makes the node's raft log refuse every write, as a full
// disk would, until the function it returns is called.
func RefuseRaftWrites(n *Node) (restore func()) {
	err := errors.New("no space left on device (test)")
	n.logStore.refuse.Store(&err)
	return func() { n.logStore.refuse.Store(nil) }
}

// TakeSnapshot makes the node's raft take a snapshot now.
func TakeSnapshot(n *Node) error { return n.raft.Snapshot().Error() }

// MarkDamaged marks n's log damaged, as a failed check would.
func MarkDamaged(n *Node, why string) { n.fsm.markDamaged(errors.New(why)) }

// KeepFetched has the node take cosignatures as if fetched from its
// leader: it keeps those that verify over its own checkpoints.
func KeepFetched(n *Node, got notaryapi.CosignaturesResponse) { n.keepFetched(got) }

// FailSnapshotFetches makes the fetches of leaves for a snapshot install,
// by the node of dataDir, fail; it returns the function that ends it.
func FailSnapshotFetches(dataDir string) (restore func()) {
	fetchFaults.Store(dataDir, errors.New("fetch failed (test)"))
	return func() { fetchFaults.Delete(dataDir) }
}

// SnapshotLeavesFetched counts the leaves n fetched to install snapshots.
func SnapshotLeavesFetched(n *Node) uint64 { return n.fsm.fetched.Load() }

// Applied returns the raft index n's state machine applied last.
func Applied(n *Node) uint64 { return n.fsm.applied.Load() }
