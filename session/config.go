package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/cluster/notaryapi"
)

// Notary is what the server needs of the notary cluster; *notaryapi.Client
// is one.
type Notary interface {
	// Notarize logs an entry and returns its receipt once committed.
	Notarize(ctx context.Context, e notaryapi.Entry) (*notaryapi.NotarizeResponse, error)
	// KeysText returns the cluster's verifier keys, one per line.
	KeysText(ctx context.Context) ([]byte, error)
}

// Config configures a Server. Start from DefaultConfig, set Notary and
// TokenKey, and change what differs; NewServer refuses a Config that
// Validate refuses.
type Config struct {
	// Notary is the cluster that notarizes session records and
	// prescriptions. Required.
	Notary Notary
	// TokenKey signs and checks room tokens. Required.
	TokenKey *TokenKey
	// APIKeys authorize creating rooms (role submitter: an app backend)
	// and listing sessions (role operator). The file format is that of a
	// node's tokens (auth.ParseTokens). Nil refuses both.
	APIKeys *auth.Tokens
	// Webhook, when its URL is set, receives every receipt bundle.
	Webhook WebhookConfig
	// OriginPatterns are the web origins, besides the server's own, whose
	// pages may open the WebSocket (host patterns as in path.Match).
	OriginPatterns []string

	// Grace is how long a participant whose connection dropped has to come
	// back before the session ends.
	Grace time.Duration
	// TokenTTL is the lifetime of tokens the server issues.
	TokenTTL time.Duration
	// MaxSessionLength ends a room's session after this long; it also
	// bounds the lifetime an app asks for its tokens.
	MaxSessionLength time.Duration
	// PingInterval is how often clients are pinged; one that does not
	// answer within the interval is disconnected.
	PingInterval time.Duration
	// NotarizeTimeout bounds one notarization, retries included; on
	// timeout the participants get notary_unavailable.
	NotarizeTimeout time.Duration
	// MessagesPerSecond and MessageBurst rate-limit each connection.
	MessagesPerSecond int
	MessageBurst      int
	// MaxRooms bounds the rooms held at once.
	MaxRooms int

	// Logger receives the server's logs; nil discards them. Logs carry
	// room and session ids, never subjects or documents.
	Logger *slog.Logger
	// Registerer receives the server's metrics; nil means a registry of
	// its own, served at /metrics.
	Registerer *prometheus.Registry
}

// WebhookConfig configures the delivery of receipts to the app's backend.
type WebhookConfig struct {
	// URL receives a POST per receipt; empty disables the webhook.
	URL string
	// Secret signs each delivery (signalapi.SignWebhook); at least
	// MinTokenKey bytes.
	Secret []byte
	// MaxAttempts bounds the deliveries of one event, with a jittered
	// backoff from 500ms doubling to at most 30s between them.
	MaxAttempts int
	// Queue bounds the events waiting; when it is full, new events are
	// dropped, counted as failed and shown as an alert.
	Queue int
	// HTTPClient sends the requests; nil means a client with a 10s
	// timeout.
	HTTPClient *http.Client
}

// DefaultConfig returns a Config with every limit and duration set to
// what docs/PROTOCOL.md describes, and no Notary, TokenKey or API keys.
func DefaultConfig() Config {
	return Config{
		Grace:             30 * time.Second,
		TokenTTL:          2 * time.Hour,
		MaxSessionLength:  4 * time.Hour,
		PingInterval:      15 * time.Second,
		NotarizeTimeout:   60 * time.Second,
		MessagesPerSecond: 50,
		MessageBurst:      200,
		MaxRooms:          10000,
		Webhook:           WebhookConfig{MaxAttempts: 8, Queue: 4096},
	}
}

// Validate names the first field that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Notary == nil:
		return errors.New("Notary is required")
	case c.TokenKey == nil:
		return errors.New("TokenKey is required")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Grace", c.Grace}, {"TokenTTL", c.TokenTTL}, {"MaxSessionLength", c.MaxSessionLength}, {"PingInterval", c.PingInterval}, {"NotarizeTimeout", c.NotarizeTimeout}} {
		if d.v <= 0 {
			return fmt.Errorf("%s is %v; it must be positive (DefaultConfig sets it)", d.name, d.v)
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"MessagesPerSecond", c.MessagesPerSecond}, {"MessageBurst", c.MessageBurst}, {"MaxRooms", c.MaxRooms}} {
		if n.v <= 0 {
			return fmt.Errorf("%s is %d; it must be positive (DefaultConfig sets it)", n.name, n.v)
		}
	}
	if c.TokenTTL > c.MaxSessionLength {
		return fmt.Errorf("TokenTTL %v is longer than MaxSessionLength %v", c.TokenTTL, c.MaxSessionLength)
	}
	if err := c.Webhook.validate(); err != nil {
		return fmt.Errorf("Webhook.%w", err)
	}
	return nil
}

func (w WebhookConfig) validate() error {
	if w.URL == "" {
		return nil
	}
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("URL %q is not an http(s) URL", w.URL)
	}
	switch {
	case len(w.Secret) < MinTokenKey:
		return fmt.Errorf("Secret has %d bytes; it needs at least %d", len(w.Secret), MinTokenKey)
	case w.MaxAttempts < 1:
		return fmt.Errorf("MaxAttempts is %d; it must be at least 1 (DefaultConfig sets it)", w.MaxAttempts)
	case w.Queue < 1:
		return fmt.Errorf("Queue is %d; it must be at least 1 (DefaultConfig sets it)", w.Queue)
	}
	return nil
}
