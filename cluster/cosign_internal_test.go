package cluster

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// TestCosignCacheSharesOneGathering: requests that want the same
// signatures over the same checkpoint wait on one gathering; a later
// request gets its result without another; a failed gathering is not
// kept, so the next request gathers again; a caller that gives up does
// not fail the others.
func TestCosignCacheSharesOneGathering(t *testing.T) {
	c := newCosignCache()
	key := cosignKey{size: 10, want: 2}
	var runs atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{})
	gather := func(context.Context) ([]byte, error) {
		if runs.Add(1) == 1 {
			close(started)
		}
		<-release
		return []byte("note"), nil
	}
	var wg sync.WaitGroup
	first := make(chan struct{})
	wg.Go(func() {
		close(first)
		if note, err := c.do(context.Background(), key, gather); err != nil || string(note) != "note" {
			t.Errorf("the gathering caller: %q, %v", note, err)
		}
	})
	<-first
	<-started
	gaveUp, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.do(gaveUp, key, gather); !errors.Is(err, context.Canceled) {
		t.Errorf("a caller that gave up: %v", err)
	}
	for range 20 {
		wg.Go(func() {
			if note, err := c.do(context.Background(), key, gather); err != nil || string(note) != "note" {
				t.Errorf("a waiting caller: %q, %v", note, err)
			}
		})
	}
	close(release)
	wg.Wait()
	if note, err := c.do(context.Background(), key, gather); err != nil || string(note) != "note" || runs.Load() != 1 {
		t.Fatalf("a later caller: %q, %v; gatherings %d, want 1", note, err, runs.Load())
	}
	failing := cosignKey{size: 11, want: 2}
	fails := 0
	fail := func(context.Context) ([]byte, error) { fails++; return nil, errors.New("no peer") }
	c.do(context.Background(), failing, fail)
	c.do(context.Background(), failing, fail)
	if fails != 2 {
		t.Fatalf("a failed gathering was kept: %d runs, want 2", fails)
	}
}
