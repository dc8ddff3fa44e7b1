package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/monitor/monitorapi"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/signalapi"
)

// source fetches what the console shows. Its methods return commands
// whose messages are declared beside them; it holds no state the model
// reads.
type source struct {
	cfg Config
	// afterFunc starts the event stream's idle timer (time.AfterFunc; a
	// test's own timer).
	afterFunc func(d time.Duration, f func()) stopResetter

	// mu guards nodes: the nodes whose event streams followEvents tries in
	// turn, which the model sets (follow) as the cluster's membership
	// changes.
	mu    sync.Mutex
	nodes []string
	// watch reads one node at a time (StatusOf, Events; no retries);
	// operator sends actions and follows the leader. Both carry the
	// operator token when there is one: a node shows its peers and alerts
	// only to an operator, and keeps event streams in reserve for them.
	watch, operator *notaryapi.Client
	// signal reads the signalling server's sessions; nil without one.
	signal *signalapi.Client
}

func newSource(cfg Config) *source {
	s := &source{
		cfg:       cfg,
		afterFunc: func(d time.Duration, f func()) stopResetter { return time.AfterFunc(d, f) },
		nodes:     append([]string(nil), cfg.Nodes...),
		watch:     notaryapi.NewClient(notaryapi.ClientConfig{Nodes: append([]string(nil), cfg.Nodes...), HTTPClient: cfg.HTTPClient, Token: cfg.Token}),
		operator:  notaryapi.NewClient(notaryapi.ClientConfig{Nodes: append([]string(nil), cfg.Nodes...), HTTPClient: cfg.HTTPClient, Token: cfg.Token, MaxBackoff: 500 * time.Millisecond}),
	}
	if cfg.Signal != "" {
		s.signal = signalapi.NewClient(signalapi.Config{Base: cfg.Signal, Key: cfg.SignalKey, HTTPClient: cfg.HTTPClient})
	}
	return s
}

// stopResetter is what the stream's idle watch needs of a *time.Timer.
type stopResetter interface {
	Reset(d time.Duration) bool
	Stop() bool
}

// follow sets the nodes whose event streams the console may follow: the
// nodes it watches. An empty list leaves the last one.
func (s *source) follow(urls []string) {
	if len(urls) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodes = append(s.nodes[:0:0], urls...)
}

// streamNode is the i-th node (modulo their number) whose event stream
// the console may follow.
func (s *source) streamNode(i int) (node string, count int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodes[i%len(s.nodes)], len(s.nodes)
}

// statusMsg is one node's answer to GET /v1/status, or why there is none.
type statusMsg struct {
	node string // the URL polled: a configured one, or a member's
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

// monitorMsg is a log monitor's answer to GET /v1/alerts, or why there
// is none.
type monitorMsg struct {
	url  string
	resp *monitorapi.AlertsResponse
	err  error
	at   time.Time
}

func (s *source) monitorAlerts(url string) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
		defer cancel()
		resp, err := monitorapi.FetchAlerts(ctx, s.cfg.HTTPClient, url)
		return monitorMsg{url: url, resp: resp, err: err, at: time.Now()}
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

// String is the action as a verb, for the confirmation and notices.
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

// unreachableReason says in a few words why a node did not answer a poll
// bounded by timeout; it is never "".
func unreachableReason(err error, timeout time.Duration) string {
	var ne net.Error
	var p *httpapi.Problem
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout after " + fmtDur(timeout)
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout: " + orText(shortErr(err), "no answer in time")
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to host"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the connection closed without an answer"
	case errors.As(err, &p):
		return p.Error() // its detail or title, and the HTTP status
	}
	return orText(shortErr(err), fmt.Sprintf("no answer (%T)", err))
}

// orText is s, or alt when s is "".
func orText(s, alt string) string {
	if strings.TrimSpace(s) == "" {
		return alt
	}
	return s
}

// shortErr is an error's message on one line, without the noise of the
// URL that the console shows elsewhere.
func shortErr(err error) string {
	var p *httpapi.Problem
	if errors.As(err, &p) {
		return p.Detail
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.Contains(s, "://") {
		s = s[i+2:]
	}
	return strings.ReplaceAll(s, "\n", " ")
}
