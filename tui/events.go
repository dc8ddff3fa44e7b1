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
// the next node when a stream breaks or cannot start, until ctx ends. It
// is the console's one long-lived goroutine; send (tea.Program.Send) may
// block while the program is busy, which only slows this stream.
func followEvents(ctx context.Context, s *source, send func(tea.Msg)) {
	backoff := 100 * time.Millisecond
	for i := 0; ctx.Err() == nil; i++ {
		node := s.cfg.Nodes[i%len(s.cfg.Nodes)]
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
		if !received && (i+1)%len(s.cfg.Nodes) == 0 {
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
// tries another node: a node that hangs keeps its connection open.
const streamIdle = 30 * time.Second

// followOne follows one node's stream until it breaks or stays silent for
// streamIdle, and reports whether any event came.
func followOne(ctx context.Context, s *source, node string, send func(tea.Msg)) (bool, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	idle := time.AfterFunc(streamIdle, func() { cancel(fmt.Errorf("no event for %v", streamIdle)) })
	defer idle.Stop()
	received := false
	err := s.watch.Events(ctx, node, func(e notaryapi.Event) {
		received = true
		idle.Reset(streamIdle)
		send(eventMsg{ev: e, at: time.Now()})
	})
	if cause := context.Cause(ctx); cause != nil && cause != context.Canceled {
		err = cause
	}
	if err == nil {
		err = errors.New("the stream ended")
	}
	return received, err
}
