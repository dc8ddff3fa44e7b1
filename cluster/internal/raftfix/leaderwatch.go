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

// LeaderWatch makes a follower look for a silent leader a randomized
// timeout after the leader's last message, as the Raft paper has it, where
// hashicorp/raft's re-armed timer looks 1 to almost 3 heartbeat timeouts
// later (see cluster/DESIGN.md). It makes raft look through its public
// ReloadConfig: a lower HeartbeatTimeout re-arms a follower's timer at once,
// and the watch sets the timeout back right after. Raft decides as it
// always does; the jitter keeps followers from standing together.
//
// It only brings a look forward for a follower that has heard nothing from
// its leader, nor anything else: a state change or a vote request counts
// as contact, as for raft's own timer.
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
func NewLeaderWatch(r *raft.Raft, cfg *raft.Config) *LeaderWatch {
	if cfg.LeaderLeaseTimeout >= cfg.HeartbeatTimeout {
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
		timeout:     cfg.HeartbeatTimeout,
		jitter:      func() time.Duration { return rand.N(cfg.HeartbeatTimeout / 2) },
		lastContact: r.LastContact,
		follower:    func() bool { return r.State() == raft.Follower },
		lastLog: func() (uint64, uint64) {
			term, _ := strconv.ParseUint(r.Stats()["last_log_term"], 10, 64)
			return r.LastIndex(), term
		},
		look: func() error {
			current := r.ReloadableConfig()
			lower := current
			lower.HeartbeatTimeout -= time.Nanosecond
			if err := r.ReloadConfig(lower); err != nil {
				return err
			}
			return r.ReloadConfig(current)
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
