package raftfix

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// fakeRaft is the follower the watch sees: its last contact with a leader
// and its state, set by the test, and the looks the watch asked for.
type fakeRaft struct {
	last     time.Time
	follower bool
	looks    []time.Time
	now      time.Time
	lookErr  error

	lastIndex, lastTerm uint64 // the follower's log
	standsOnLook        bool   // a look turns the follower into a candidate
}

func newTestWatch(f *fakeRaft, jitter time.Duration) *LeaderWatch {
	return &LeaderWatch{
		timeout:     time.Second,
		jitter:      func() time.Duration { return jitter },
		lastContact: func() time.Time { return f.last },
		follower:    func() bool { return f.follower },
		look: func() error {
			f.looks = append(f.looks, f.now)
			if f.standsOnLook {
				f.follower = false // raft stands for election
			}
			return f.lookErr
		},
		lastLog: func() (uint64, uint64) { return f.lastIndex, f.lastTerm },
	}
}

// advance steps the watch as its timer would, until the clock passes end.
func advance(t *testing.T, w *LeaderWatch, f *fakeRaft, end time.Time) {
	t.Helper()
	for !f.now.After(end) {
		wait, err := w.step(f.now)
		if err != nil {
			t.Fatal(err)
		}
		if wait <= 0 {
			t.Fatalf("step at %v asks to wait %v", f.now, wait)
		}
		f.now = f.now.Add(wait)
	}
}

// TestLeaderWatch: a follower whose leader went silent is made to look for
// it a timeout plus the jitter after the leader's last message, not later
// and not before; a leader heard in between postpones the look; leaders,
// candidates and nodes that never heard a leader are left to raft.
func TestLeaderWatch(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	const jitter = 300 * time.Millisecond

	t.Run("silent leader", func(t *testing.T) {
		f := &fakeRaft{last: t0, follower: true, now: t0.Add(100 * time.Millisecond)}
		w := newTestWatch(f, jitter)
		advance(t, w, f, t0.Add(1300*time.Millisecond))
		if len(f.looks) != 1 || !f.looks[0].Equal(t0.Add(1300*time.Millisecond)) {
			t.Fatalf("looks at %v, want one at 1.3 s after the leader's last message", f.looks)
		}
		// Still a follower and no leader heard: look again a timeout later, not at every step.
		advance(t, w, f, t0.Add(3300*time.Millisecond))
		if len(f.looks) != 3 || !f.looks[1].Equal(t0.Add(2300*time.Millisecond)) {
			t.Fatalf("looks at %v, want them a timeout apart", f.looks)
		}
	})

	t.Run("leader heard again", func(t *testing.T) {
		f := &fakeRaft{last: t0, follower: true, now: t0}
		w := newTestWatch(f, jitter)
		for i := range 50 { // heartbeats every 100 ms for 5 s
			f.last = t0.Add(time.Duration(i) * 100 * time.Millisecond)
			advance(t, w, f, f.last.Add(100*time.Millisecond))
		}
		if len(f.looks) != 0 {
			t.Fatalf("looked at %v while the leader was heard", f.looks)
		}
		last := f.last
		advance(t, w, f, last.Add(2*time.Second))
		if len(f.looks) == 0 || !f.looks[0].Equal(last.Add(1300*time.Millisecond)) {
			t.Fatalf("looks at %v, want the first at 1.3 s after the last heartbeat (%v)", f.looks, last)
		}
	})

	t.Run("state change or vote request", func(t *testing.T) {
		// A leader that stepped down 0.8 s after it last heard of another
		// (or a follower asked for its vote then): silence counts from then.
		f := &fakeRaft{last: t0, follower: true, now: t0.Add(800 * time.Millisecond)}
		w := newTestWatch(f, jitter)
		w.since = f.now
		advance(t, w, f, t0.Add(2100*time.Millisecond))
		if len(f.looks) != 1 || !f.looks[0].Equal(t0.Add(2100*time.Millisecond)) {
			t.Fatalf("looks at %v, want one at 1.3 s after the state change", f.looks)
		}
	})

	t.Run("not a follower", func(t *testing.T) {
		f := &fakeRaft{last: t0, follower: false, now: t0}
		w := newTestWatch(f, jitter)
		advance(t, w, f, t0.Add(10*time.Second))
		if len(f.looks) != 0 {
			t.Fatalf("a leader or candidate was made to look at %v", f.looks)
		}
	})

	t.Run("never heard a leader", func(t *testing.T) {
		f := &fakeRaft{follower: true, now: t0}
		w := newTestWatch(f, jitter)
		advance(t, w, f, t0.Add(10*time.Second))
		if len(f.looks) != 0 {
			t.Fatalf("a node that never heard a leader was made to look at %v", f.looks)
		}
	})

	t.Run("look fails", func(t *testing.T) {
		f := &fakeRaft{last: t0, follower: true, now: t0.Add(2 * time.Second), lookErr: errors.New("bad config")}
		w := newTestWatch(f, jitter)
		if _, err := w.step(f.now); !errors.Is(err, f.lookErr) {
			t.Fatalf("step error %v, want the look's", err)
		}
	})
}

// TestPreVoteArriving: a pre-vote from a candidate whose log is at least as
// up to date as this follower's, while the follower's leader has been
// silent for the timeout, makes raft look first (so it grants by its own
// rules) and holds the follower's own pre-votes for a while; a candidate
// with a shorter log, a leader heard lately, or a node that is no follower
// leave raft to answer alone.
func TestPreVoteArriving(t *testing.T) {
	const index, term = 100, 5
	for _, c := range []struct {
		name                string
		silent              time.Duration
		follower            bool
		candIndex, candTerm uint64
		wantLook            bool
	}{
		{"equal logs, silent leader", 1500 * time.Millisecond, true, index, term, true},
		{"longer candidate log", 1500 * time.Millisecond, true, index + 1, term, true},
		{"newer candidate term", 1500 * time.Millisecond, true, index - 10, term + 1, true},
		{"shorter candidate log", 1500 * time.Millisecond, true, index - 1, term, false},
		{"older candidate term", 1500 * time.Millisecond, true, index + 10, term - 1, false},
		{"leader heard lately", 500 * time.Millisecond, true, index, term, false},
		{"not a follower", 1500 * time.Millisecond, false, index, term, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeRaft{last: time.Now().Add(-c.silent), follower: c.follower, lastIndex: index, lastTerm: term, standsOnLook: true}
			w := newTestWatch(f, 0)
			w.preVoteArriving(&raft.RequestPreVoteRequest{LastLogIndex: c.candIndex, LastLogTerm: c.candTerm})
			deferred := time.Unix(0, w.deferUntil.Load()).After(time.Now())
			if got := len(f.looks) == 1; got != c.wantLook || deferred != c.wantLook {
				t.Fatalf("looked %v (%d looks), own pre-votes held %v; want both %v", got, len(f.looks), deferred, c.wantLook)
			}
		})
	}
}
