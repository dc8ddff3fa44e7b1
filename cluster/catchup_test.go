package cluster

import (
	"strings"
	"testing"
	"time"
)

// TestCatchUpProgress: a node far behind reports that it is catching up,
// then its progress with a rate and an estimate every few seconds, then
// that it caught up; a node close to the commit index says nothing.
func TestCatchUpProgress(t *testing.T) {
	var c catchUp
	t0 := time.Unix(1000, 0)
	if msg, _ := c.observe(t0, 100, 150); msg != "" {
		t.Fatalf("50 behind: %q", msg)
	}
	msg, args := c.observe(t0, 1000, 101000)
	if msg != "catching up with the cluster" || !has(args, "behind", uint64(100000)) {
		t.Fatalf("falling behind: %q %v", msg, args)
	}
	if msg, _ := c.observe(t0.Add(time.Second), 20000, 101000); msg != "" {
		t.Fatalf("a progress line before %v: %q", catchUpEvery, msg)
	}
	msg, args = c.observe(t0.Add(catchUpEvery), 51000, 101000)
	if msg == "" || !has(args, "percent", "50.0") || !has(args, "entries_per_s", 10000) || !has(args, "eta", "5s") {
		t.Fatalf("progress: %q %v", msg, args)
	}
	msg, args = c.observe(t0.Add(10*time.Second), 100900, 101000)
	if !strings.HasPrefix(msg, "caught up") || !has(args, "entries", uint64(99900)) {
		t.Fatalf("caught up: %q %v", msg, args)
	}
	if msg, _ := c.observe(t0.Add(20*time.Second), 101000, 101000); msg != "" {
		t.Fatalf("after catching up: %q", msg)
	}
}

func has(args []any, key string, want any) bool {
	for i := 0; i+1 < len(args); i += 2 {
		if args[i] == key {
			return args[i+1] == want
		}
	}
	return false
}
