package raftfix

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// A hashicorp/raft follower looks for its leader's heartbeats on a timer
// that it re-arms, each time it fires, at a random HeartbeatTimeout to
// 2×HeartbeatTimeout, whatever it heard in between. A look that comes just
// before the leader has been silent for HeartbeatTimeout finds it alive, and
// the next may come up to 2×HeartbeatTimeout later: a dead leader is noticed
// from 1× to almost 3× HeartbeatTimeout after its last message, and in a
// cluster of three the election needs both survivors to notice (a follower
// that still hears of a leader refuses pre-votes). The campaign measured a
// median of 2.1 s and a tail over 3 s with a 1 s timeout.
//
// LeaderWatch brings the look to the moment the Raft paper gives it: a
// randomized timeout after the leader's last message. When a follower's
// leader has been silent for HeartbeatTimeout plus a jitter of up to half of
// it, the watch makes raft look now, through its public ReloadConfig (a lower
// HeartbeatTimeout re-arms a follower's timer at once; the watch sets the
// timeout back right after). Raft decides as it always does: it starts an
// election only if it has not heard from the leader for HeartbeatTimeout. The
// jitter keeps the followers from standing for election together (a split
// vote costs another election timeout).
//
// The watch only ever brings a look forward in the one case it is for: a
// follower that has heard nothing from the leader it knew, and nothing else
// either. When raft changes state (a leader or candidate steps down, with its
// last contact long past) or a candidate asks for its vote, the silence is
// counted from then, as raft's own timer would: a deposed leader gives the
// new one a full timeout to reach it.
type LeaderWatch struct {
	timeout     time.Duration        // raft's HeartbeatTimeout
	jitter      func() time.Duration // in [0, timeout/2)
	lastContact func() time.Time     // when the follower last heard from its leader; zero if never
	follower    func() bool          // the node is a follower now
	look        func() error         // makes raft check for the leader's heartbeats now
	lastLog     func() (index, term uint64)
	events      <-chan raft.Observation

	deferUntil atomic.Int64 // unix ns: this node's own pre-votes wait until then (it defers to a candidate)

	mu      sync.Mutex    // guards changed
	changed chan struct{} // closed (and replaced) at each raft state change Run sees

	since time.Time // the last state change or vote request seen
	base  time.Time // the later of the last contact and since, that due was computed for
	due   time.Time // when a follower silent since base is due a look
}

// NewLeaderWatch watches r's leader. It returns nil when raft's lease
// timeout leaves no room to lower the heartbeat timeout (they are equal).
// Run runs it.
func NewLeaderWatch(r *raft.Raft, rc *raft.Config) *LeaderWatch {
	if rc.LeaderLeaseTimeout >= rc.HeartbeatTimeout {
		return nil
	}
	events := make(chan raft.Observation, 64)
	r.RegisterObserver(raft.NewObserver(events, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.RaftState, raft.RequestVoteRequest:
			return true
		}
		return false
	}))
	return &LeaderWatch{
		events:      events,
		timeout:     rc.HeartbeatTimeout,
		jitter:      func() time.Duration { return rand.N(rc.HeartbeatTimeout / 2) },
		lastContact: r.LastContact,
		follower:    func() bool { return r.State() == raft.Follower },
		lastLog: func() (uint64, uint64) {
			term, _ := strconv.ParseUint(r.Stats()["last_log_term"], 10, 64)
			return r.LastIndex(), term
		},
		look: func() error {
			rc := r.ReloadableConfig()
			lower := rc
			lower.HeartbeatTimeout -= time.Nanosecond
			if err := r.ReloadConfig(lower); err != nil {
				return err
			}
			return r.ReloadConfig(rc)
		},
	}
}

// Look makes raft check for its leader's heartbeats now, as the watch does
// when the leader is past due.
func (w *LeaderWatch) Look() error { return w.look() }

// Run watches until ctx ends; a failed look is returned.
func (w *LeaderWatch) Run(ctx context.Context) error {
	timer := time.NewTimer(w.timeout)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case o := <-w.events:
			// A state change or a vote request: a dropped one (the
			// observer does not block raft) is caught by the next.
			w.since = time.Now()
			if _, ok := o.Data.(raft.RaftState); ok {
				w.stateChanged()
			}
			continue
		case <-timer.C:
		}
		wait, err := w.step(time.Now())
		if err != nil {
			return err
		}
		timer.Reset(wait)
	}
}

// step has raft look for its leader if, at now, the leader is past due,
// and returns how long to wait before the next step.
func (w *LeaderWatch) step(now time.Time) (time.Duration, error) {
	last := w.lastContact()
	if last.IsZero() || !w.follower() {
		// No leader heard yet (raft's own timer starts the first
		// election), or not a follower: nothing to watch.
		return w.timeout, nil
	}
	if base := latest(last, w.since); !base.Equal(w.base) {
		w.base, w.due = base, base.Add(w.timeout+w.jitter())
	}
	if now.Before(w.due) {
		return w.due.Sub(now), nil
	}
	// Past due and still a follower: look (again, every timeout, as long as
	// the follower stays one without hearing from a leader).
	w.due = now.Add(w.timeout)
	return w.timeout, w.look()
}

// preVoteArriving runs on the transport's goroutine when a pre-vote
// request arrives, before raft sees it.
//
// hashicorp/raft refuses a pre-vote while it still has a leader, even one
// it has not heard from for longer than the heartbeat timeout (the Raft
// thesis has a server ignore candidates only within the minimum election
// timeout of hearing from a leader). In a cluster of three, the first
// survivor to look is then refused by the second; if the first has the
// longer log, the second cannot win either, and the election waits out the
// first's election timer, one to two seconds more. So when a candidate
// whose log is at least as up to date as this node's asks while this
// node's leader has been silent for the timeout, the watch has raft look
// first (by its own rule raft then stops following the silent leader, and
// grants), and this node's own pre-votes wait a moment, so that two
// candidates do not split the vote. Pre-votes change no state: this moves
// the timing of an election, never what is safe.
func (w *LeaderWatch) preVoteArriving(req *raft.RequestPreVoteRequest) {
	if !w.follower() {
		return
	}
	if last := w.lastContact(); last.IsZero() || time.Since(last) < w.timeout {
		return // the leader was heard lately: raft refuses, as it should
	}
	index, term := w.lastLog()
	if req.LastLogTerm < term || (req.LastLogTerm == term && req.LastLogIndex < index) {
		return // this node has the longer log: it stands itself, at its own due time
	}
	w.deferUntil.Store(time.Now().Add(w.timeout / 4).UnixNano())
	changed := w.nextChange()
	if err := w.look(); err != nil {
		return
	}
	// Hold the request until raft has acted on the look, that is until it
	// is no longer a follower (bounded: raft may have heard from the leader
	// meanwhile and stay one).
	timer := time.NewTimer(w.timeout / 10)
	defer timer.Stop()
	for w.follower() {
		select {
		case <-changed:
			changed = w.nextChange()
		case <-timer.C:
			return
		}
	}
}

// nextChange returns a channel that closes at the next raft state change
// Run sees.
func (w *LeaderWatch) nextChange() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.changed == nil {
		w.changed = make(chan struct{})
	}
	return w.changed
}

// stateChanged wakes those waiting on nextChange.
func (w *LeaderWatch) stateChanged() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.changed != nil {
		close(w.changed)
		w.changed = nil
	}
}

// preVoteSending runs before this node asks a peer for a pre-vote: while
// it defers to another candidate, it waits.
func (w *LeaderWatch) preVoteSending() {
	if d := time.Until(time.Unix(0, w.deferUntil.Load())); d > 0 {
		time.Sleep(d)
	}
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
