package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/signalapi"
)

// source fetches what the console shows. Its methods return commands; it
// holds no state the model reads.
type source struct {
	cfg Config
	// watch reads one node at a time (StatusOf, Events; no retries);
	// operator sends actions with the operator token and follows the
	// leader.
	watch, operator *notaryapi.Client
	// signal reads the signalling server's sessions; nil without one.
	signal *signalapi.Client
}

func newSource(cfg Config) *source {
	s := &source{
		cfg:      cfg,
		watch:    notaryapi.NewClient(notaryapi.ClientConfig{Nodes: append([]string(nil), cfg.Nodes...), HTTPClient: cfg.HTTPClient}),
		operator: notaryapi.NewClient(notaryapi.ClientConfig{Nodes: append([]string(nil), cfg.Nodes...), HTTPClient: cfg.HTTPClient, Token: cfg.Token, MaxBackoff: 500 * time.Millisecond}),
	}
	if cfg.Signal != "" {
		s.signal = signalapi.NewClient(signalapi.Config{Base: cfg.Signal, Key: cfg.SignalKey, HTTPClient: cfg.HTTPClient})
	}
	return s
}

// tickMsg asks for a round of polls and redraws the ages on screen.
type tickMsg time.Time

func tick(d time.Duration) tea.Cmd {
	return tea.Tick(d, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// statusMsg is one node's answer to GET /v1/status, or why there is none.
type statusMsg struct {
	node string // the configured URL
	st   *notaryapi.Status
	err  error
	at   time.Time
}

func (s *source) status(node string) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
		defer cancel()
		st, err := s.watch.StatusOf(ctx, node)
		if err != nil {
			st = nil
		}
		return statusMsg{node: node, st: st, err: err, at: time.Now()}
	}
}

// sessionsMsg is the signalling server's answer to GET /v1/sessions.
type sessionsMsg struct {
	resp *signalapi.SessionsResponse
	err  error
	at   time.Time
}

func (s *source) sessions() tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
		defer cancel()
		resp, err := s.signal.Sessions(ctx)
		return sessionsMsg{resp: resp, err: err, at: time.Now()}
	}
}

// action is an operator action on a node.
type action int

const (
	actionRemove action = iota + 1
	actionTransfer
)

func (a action) String() string {
	if a == actionRemove {
		return "remove"
	}
	return "transfer leadership to"
}

// actionMsg is the outcome of an operator action.
type actionMsg struct {
	act    action
	target string
	err    error
	at     time.Time
}

func (s *source) act(a action, target string) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), actionTimeout)
		defer cancel()
		var err error
		switch a {
		case actionRemove:
			err = s.operator.Remove(ctx, target)
		case actionTransfer:
			err = s.operator.Transfer(ctx, target)
		}
		return actionMsg{act: a, target: target, err: err, at: time.Now()}
	}
}

// verifyMsg is the outcome of verifying a bundle file.
type verifyMsg struct {
	path string
	res  *notary.Result
	// err is the verification failure (INVALID); problem is why the file
	// or the keys could not be checked at all.
	err     error
	problem error
}

func (s *source) verify(path string) tea.Cmd {
	return func() tea.Msg {
		out := verifyMsg{path: path}
		b, err := readLimited(path, notary.MaxBundleSize)
		if err != nil {
			out.problem = err
			return out
		}
		bundle, err := notary.ParseBundle(b)
		if err != nil {
			out.problem = fmt.Errorf("not a readable telenotary bundle: %w", err)
			return out
		}
		keys := s.cfg.Keys
		if keys == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*s.cfg.RequestTimeout)
			defer cancel()
			if keys, err = s.watch.KeysText(ctx); err != nil {
				out.problem = fmt.Errorf("fetch the cluster's keys: %w", err)
				return out
			}
		}
		verifiers, err := notary.ParseVerifierKeys(keys)
		if err != nil {
			out.problem = fmt.Errorf("trusted keys: %w", err)
			return out
		}
		v, err := notary.NewVerifier(notary.Policy{Verifiers: verifiers})
		if err != nil {
			out.problem = err
			return out
		}
		out.res, out.err = v.VerifyBundle(bundle)
		return out
	}
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

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
