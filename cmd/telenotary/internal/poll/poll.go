// Package poll waits for a condition that offers nothing to wait on but a
// question, such as "does this node lead yet?": it asks again every
// Interval until the answer is yes, the context ends or a timeout passes.
// Where a channel or a callback says when something happened, wait on that
// instead.
package poll

import (
	"context"
	"fmt"
	"time"
)

// Interval is how long Until waits between two questions.
const Interval = 50 * time.Millisecond

// Until calls cond until it returns true and then returns nil. It returns
// an error if timeout passes first, or ctx's error if ctx ends first. cond
// is called from the caller's goroutine and should return promptly.
func Until(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	t := time.NewTimer(Interval)
	defer t.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", timeout)
		}
		t.Reset(Interval)
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
