package poll

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	calls := 0
	if err := Until(context.Background(), time.Minute, func() bool { calls++; return calls == 3 }); err != nil || calls != 3 {
		t.Fatalf("a condition true at the third question: %v after %d questions", err, calls)
	}
	if err := Until(context.Background(), 3*Interval, func() bool { return false }); err == nil {
		t.Fatal("a condition never true: no error after the timeout")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Until(ctx, time.Minute, func() bool { return false }); !errors.Is(err, context.Canceled) {
		t.Fatalf("an ended context: %v, want context.Canceled", err)
	}
}
