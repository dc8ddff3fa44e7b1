package tui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// Config configures the console.
type Config struct {
	// Nodes are the cluster nodes' API base URLs; at least one. With the
	// operator token the console also watches the members the leader
	// lists, and stops watching a node that leaves the cluster.
	Nodes []string
	// Signal is the signalling server's base URL; "" leaves the Sessions
	// tab without data.
	Signal string
	// Monitors are base URLs of log monitors (telenotary monitor
	// --metrics-addr) whose alerts the Alerts tab shows.
	Monitors []string
	// Token is the cluster's operator token, needed to remove a node or
	// move leadership; "" disables those actions.
	Token string
	// SignalKey is an operator API key of the signalling server, for
	// GET /v1/sessions.
	SignalKey string
	// HTTPClient sends every request; nil means a client with keep-alive
	// connections. Each request also gets its own timeout (RequestTimeout).
	HTTPClient *http.Client
	// Keys is the trusted verifier keys text (one key per line) for the
	// Verify tab; nil means the keys the cluster publishes at /v1/keys.
	Keys []byte
	// TryIt, when not "", is text for the operator to read while the
	// console covers the terminal, on a tab of its own ("Try it", the
	// last): what to try by hand, such as the demo's links to join a
	// consultation and its line to check a bundle. Lines wider than the
	// screen are cut at its edge, with nothing added.
	TryIt string

	// PollInterval is how often node statuses and sessions are fetched
	// (default 1s).
	PollInterval time.Duration
	// RequestTimeout bounds each poll (default 2s); operator actions get
	// longer (an election may be under way).
	RequestTimeout time.Duration
	// LagThreshold is how many raft entries a node may be behind the
	// leader before it is flagged and alerted (default 1000).
	LagThreshold uint64
	// FraudThreshold is how many dispenses and revocations the cluster
	// may refuse for a sign of fraud (every reason but fill_taken) within
	// a minute before the Alerts tab raises "possible fraud" (default
	// DefaultFraudThreshold; see docs/OPERATIONS.md).
	FraudThreshold int
}

// Defaults of the optional Config fields.
const (
	DefaultPollInterval   = time.Second
	DefaultRequestTimeout = 2 * time.Second
	DefaultLagThreshold   = 1000
	// DefaultFraudThreshold is the refusals a minute, for a sign of fraud,
	// that raise the fraud alert: a till that dispenses what it may not
	// is refused once; a handful within a minute is a pattern.
	DefaultFraudThreshold = 5
	actionTimeout         = 15 * time.Second
)

// ConfigError is a field of a Config that cannot work: the error of
// Validate. A command that sets the field from a flag names the flag
// with Named.
type ConfigError struct {
	// Field is the Config field, such as "Nodes".
	Field string
	// Value is the value refused; "" when the field is missing or the
	// value is empty.
	Value string
	// Reason says what is wrong with it.
	Reason string
}

// Error names the Config field.
func (e *ConfigError) Error() string { return "tui: " + e.Named("Config."+e.Field) }

// Named is the error with the field called name, such as the flag that
// sets it: --nodes "127.0.0.1:8080": is not an http(s) URL: ...
func (e *ConfigError) Named(name string) string {
	if e.Value == "" {
		return name + ": " + e.Reason
	}
	return fmt.Sprintf("%s %q: %s", name, e.Value, e.Reason)
}

// Validate reports the first field of cfg that cannot work, as a
// *ConfigError.
func (cfg Config) Validate() error {
	if len(cfg.Nodes) == 0 {
		return &ConfigError{Field: "Nodes", Reason: "at least one node URL is needed"}
	}
	for _, n := range cfg.Nodes {
		if why := notHTTPURL(strings.TrimSpace(n)); why != "" {
			return &ConfigError{Field: "Nodes", Value: n, Reason: why}
		}
	}
	if cfg.Signal != "" {
		if why := notHTTPURL(cfg.Signal); why != "" {
			return &ConfigError{Field: "Signal", Value: cfg.Signal, Reason: why}
		}
	}
	for _, u := range cfg.Monitors {
		if why := notHTTPURL(strings.TrimSpace(u)); why != "" {
			return &ConfigError{Field: "Monitors", Value: u, Reason: why}
		}
	}
	if cfg.PollInterval < 0 {
		return &ConfigError{Field: "PollInterval", Value: cfg.PollInterval.String(), Reason: "must not be negative"}
	}
	if cfg.RequestTimeout < 0 {
		return &ConfigError{Field: "RequestTimeout", Value: cfg.RequestTimeout.String(), Reason: "must not be negative"}
	}
	if cfg.FraudThreshold < 0 {
		return &ConfigError{Field: "FraudThreshold", Value: fmt.Sprint(cfg.FraudThreshold), Reason: "must not be negative"}
	}
	return nil
}

// notHTTPURL says why s is not an http(s) base URL, or "" when it is one.
func notHTTPURL(s string) string {
	if s == "" {
		return "an empty URL (a stray comma?)"
	}
	if !strings.Contains(s, "://") {
		return fmt.Sprintf("is not an http(s) URL: it has no scheme (http://%s?)", s)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Sprintf("is not an http(s) URL: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("is not an http(s) URL: the scheme is %q", u.Scheme)
	case u.Host == "":
		return "is not an http(s) URL: it has no host"
	}
	return ""
}

// withDefaults fills the optional fields.
func (cfg Config) withDefaults() Config {
	nodes := make([]string, len(cfg.Nodes))
	for i, n := range cfg.Nodes {
		nodes[i] = strings.TrimRight(strings.TrimSpace(n), "/")
	}
	cfg.Nodes = nodes
	cfg.Signal = strings.TrimRight(cfg.Signal, "/")
	monitors := make([]string, len(cfg.Monitors))
	for i, u := range cfg.Monitors {
		monitors[i] = strings.TrimRight(strings.TrimSpace(u), "/")
	}
	cfg.Monitors = monitors
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second, TLSHandshakeTimeout: 5 * time.Second,
		}}
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.LagThreshold == 0 {
		cfg.LagThreshold = DefaultLagThreshold
	}
	if cfg.FraudThreshold == 0 {
		cfg.FraudThreshold = DefaultFraudThreshold
	}
	return cfg
}

// Run runs the console full-screen until the user quits or ctx ends; the
// end of ctx is a clean stop (nil). opts are passed to tea.NewProgram
// after the console's own (the alternate screen), so a caller may set the
// input and output. Run stops the event stream goroutine and waits for it
// before returning.
func Run(ctx context.Context, cfg Config, opts ...tea.ProgramOption) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := newModel(cfg.withDefaults(), time.Now, true)
	p := tea.NewProgram(m, append([]tea.ProgramOption{tea.WithAltScreen(), tea.WithContext(ctx)}, opts...)...)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		followEvents(ctx, m.src, p.Send)
	}()
	_, err := p.Run()
	cancel()
	wg.Wait()
	if errors.Is(err, tea.ErrProgramKilled) && parent.Err() != nil {
		return nil
	}
	return err
}
