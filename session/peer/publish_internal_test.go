package peer

import (
	"context"
	"testing"
)

// TestPublishNeverDrops: receipts published beyond what the channel holds
// wait for the reader instead of being dropped, and arrive in order; a
// closing peer stops waiting.
func TestPublishNeverDrops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Peer{ctx: ctx, receipts: make(chan Receipt, 2)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 5 {
			p.publish(Receipt{Ref: string(rune('a' + i))})
		}
	}()
	for i := range 5 {
		if r := <-p.receipts; r.Ref != string(rune('a'+i)) {
			t.Fatalf("receipt %d is %q", i, r.Ref)
		}
	}
	<-done
	go p.publish(Receipt{Ref: "unread"}) // fills the channel...
	go p.publish(Receipt{Ref: "unread"})
	blocked := make(chan struct{})
	go func() { p.publish(Receipt{Ref: "blocked"}); close(blocked) }() // ...and this one waits
	cancel()
	<-blocked
}
