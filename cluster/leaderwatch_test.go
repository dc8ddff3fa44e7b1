package cluster

import (
	"errors"
	"testing"
	"time"
)

// fakeRaft is the follower the watch sees: its last contact with a leader
// and its state, set by the test, and the looks the watch asked for.
type fakeRaft struct {
	last     time.Time
	follower bool
	looks    []time.Time
	now      time.Time
	lookErr  error
}

func newTestWatch(f *fakeRaft, jitter time.Duration) *leaderWatch {
	return &leaderWatch{
		timeout:     time.Second,
		jitter:      func() time.Duration { return jitter },
		lastContact: func() time.Time { return f.last },
		follower:    func() bool { return f.follower },
		look: func() error {
			f.looks = append(f.looks, f.now)
			return f.lookErr
		},
	}
}

// advance steps the watch as its timer would, until the clock passes end.
func advance(t *testing.T, w *leaderWatch, f *fakeRaft, end time.Time) {
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
