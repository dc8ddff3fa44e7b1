package tui

import (
	"context"
	"errors"
	"fmt"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/telenotary/telenotary/cluster/notaryapi"
)

// eventMsg is one event of a node's stream.
type eventMsg struct {
	ev notaryapi.Event
	at time.Time // when the console received it
}

// streamMsg tells which node's stream the console follows, or why none.
type streamMsg struct {
	node string // "" when none is connected
	err  error
	at   time.Time
}

// followEvents follows the event stream of one node at a time, moving to
// the next node when a stream breaks or cannot start, until ctx ends. The
// nodes are those the console watches (source.follow), which follow the
// cluster's membership. It is the console's one long-lived goroutine;
// send (tea.Program.Send) may block while the program is busy, which only
// slows this stream.
func followEvents(ctx context.Context, s *source, send func(tea.Msg)) {
	backoff := 100 * time.Millisecond
	for i := 0; ctx.Err() == nil; i++ {
		node, count := s.streamNode(i)
		send(streamMsg{node: node, at: time.Now()})
		received, err := followOne(ctx, s, node, send)
		if ctx.Err() != nil {
			return
		}
		send(streamMsg{err: fmt.Errorf("%s: %w", hostOf(node), err), at: time.Now()})
		if received {
			backoff = 100 * time.Millisecond
		}
		// After a round of nodes that all failed at once, back off.
		if !received && (i+1)%count == 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
		}
	}
}

// streamIdle is how long a stream may stay silent before the console
// tries another node: a node that hangs keeps its connection open. A node
// sends a keep-alive every 15 s while it has no event, so an idle cluster
// never stays silent that long.
const streamIdle = 30 * time.Second

// followOne follows one node's stream until it breaks or sends neither an
// event nor a keep-alive for streamIdle, and reports whether anything
// came.
func followOne(ctx context.Context, s *source, node string, send func(tea.Msg)) (bool, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	idle := s.afterFunc(streamIdle, func() { cancel(fmt.Errorf("no event or keep-alive for %v", streamIdle)) })
	defer idle.Stop()
	received := false
	alive := func() {
		received = true
		idle.Reset(streamIdle)
	}
	err := s.watch.Events(ctx, node, func(e notaryapi.Event) {
		alive()
		send(eventMsg{ev: e, at: time.Now()})
	}, notaryapi.OnKeepAlive(alive))
	if cause := context.Cause(ctx); cause != nil && cause != context.Canceled {
		err = cause
	}
	if err == nil {
		err = errors.New("the stream ended")
	}
	return received, err
}
