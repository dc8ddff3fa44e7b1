package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// Notary is what the server needs of the notary cluster; *notaryapi.Client
// is one.
type Notary interface {
	// NotarizeSigned logs an entry and returns its receipt once
	// committed, its checkpoint signed by k nodes (notaryapi.Majority: a
	// majority of them).
	NotarizeSigned(ctx context.Context, e notaryapi.Entry, k int) (*notaryapi.NotarizeResponse, error)
	// KeysText returns the cluster's verifier keys, one per line.
	KeysText(ctx context.Context) ([]byte, error)
	// ReceiptWitnessed returns a commitment's receipt proven into the
	// newest checkpoint w of the cluster's witnesses cosigned, with their
	// cosignatures and k nodes' signatures; an error while that
	// checkpoint does not cover the commitment.
	ReceiptWitnessed(ctx context.Context, c notary.Commitment, k, w int) (*notary.Receipt, error)
	// PrescriptionStatus returns a prescription's status with the
	// receipts that decide it (consistent: a linearizable read); an
	// *httpapi.Problem when the cluster answers with one.
	PrescriptionStatus(ctx context.Context, c notary.Commitment, consistent bool) (*notary.PrescriptionStatus, error)
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
	// ICE is the STUN and TURN servers given to clients.
	ICE ICEConfig
	// Instance names this server in the rooms it lists (several servers
	// behind one address); DefaultConfig sets the host name.
	Instance string
	// Peers are the other instances of a group behind one address, which
	// share TokenKey (group.go, docs/PROTOCOL.md "Several instances"):
	// joins are relayed to the instance that holds the room, and the rooms
	// of an instance that goes away are taken over by the others. With
	// Peers, Instance must be a name unique in the group. Empty: alone.
	Peers []Peer
	// ProbeInterval is how often each peer is asked whether it is up
	// (GET /v1/instance); an instance that does not answer within it is
	// down until it answers again.
	ProbeInterval time.Duration
	// PeerClient makes the probes; nil means a client of its own (for a
	// peer's https URL signed by a private CA, give one that trusts it).
	// The relayed WebSockets use it too.
	PeerClient *http.Client
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
	// HolderWait is how long the end of a session waits for the holders
	// of its prescriptions' bundles (the patient's kept, the webhook's
	// 2xx) before the server holds what remains itself, for the app to
	// fetch (GET /v1/undelivered).
	HolderWait time.Duration
	// ReceiptSignatures is how many nodes sign the checkpoint of every
	// receipt the server delivers: notaryapi.Majority (the default) so
	// that a verifier can require a majority's signatures and trust no
	// single node, or a number from 1.
	ReceiptSignatures int
	// ReceiptWitnesses, when above 0, has every receipt wait until that
	// many of the cluster's witnesses (c2sp.org/tlog-witness) have cosigned
	// a checkpoint that covers it, and delivers the receipt proven into
	// that checkpoint, which carries their cosignatures. It waits at most
	// ReceiptWitnessWait; then it delivers the receipt without them and
	// counts it (telenotary_signal_receipt_witnesses_total{result="timeout"}),
	// as it does at once when the cluster has fewer witnesses (result
	// "refused").
	ReceiptWitnesses   int
	ReceiptWitnessWait time.Duration
	// MessagesPerSecond and MessageBurst rate-limit each connection.
	MessagesPerSecond int
	MessageBurst      int
	// StatusRate and StatusBurst bound the prescription status look-ups
	// (GET /v1/prescriptions/{commitment}/status, public, relayed to the
	// cluster) of each client address, per second: beyond them, 429
	// rate_limited with Retry-After.
	StatusRate  float64
	StatusBurst int
	// MaxRooms bounds the rooms held at once.
	MaxRooms int
	// MaxUndelivered bounds the webhook events held for the app's backend
	// after it did not take them (GET /v1/undelivered); when it is
	// reached, new prescriptions are refused rather than any bundle lost.
	MaxUndelivered int
	// MaxUsedTokens bounds the join tokens remembered as used (a token
	// joins once; each is remembered until it expires). Beyond it, joins
	// with a token are refused (limit) until some expire; reconnections
	// with a resume ticket still work.
	MaxUsedTokens int

	// HTTP bounds what clients can hold of the server's connections when
	// it serves them itself (Serve).
	HTTP HTTPConfig

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
	// Secret signs each delivery (Standard Webhooks: signalapi.SignWebhook;
	// raw bytes, or whsec_<base64>); at least
	// MinTokenKey bytes.
	Secret []byte
	// MaxAttempts bounds the deliveries of one event, with a jittered
	// (±20%) backoff from RetryInterval doubling to at most
	// MaxRetryInterval between them. The defaults (10 attempts, 500ms to
	// 30s) ride out a receiver down for a minute and a half: the waits add
	// up to 121.5 s, at least 97 s with the jitter. An event whose
	// attempts all failed is held for the app (GET /v1/undelivered).
	MaxAttempts      int
	RetryInterval    time.Duration
	MaxRetryInterval time.Duration
	// Queue bounds the events waiting; when it is full, new events are
	// dropped, counted as failed and shown as an alert.
	Queue int
	// Timeout bounds one delivery attempt, from dialling to the answer's
	// status.
	Timeout time.Duration
	// HTTPClient sends the requests; nil means a client that dials only
	// the URL's host and port, directly (no proxy), and, for an http URL,
	// only to a loopback address. Either way a redirect is never followed:
	// a 3xx answer is a failed delivery (the server replaces CheckRedirect
	// of a client given here).
	HTTPClient *http.Client
}

// DefaultConfig returns a Config with every limit and duration set to
// what docs/PROTOCOL.md describes, and no Notary, TokenKey or API keys.
func DefaultConfig() Config {
	return Config{
		Grace:              30 * time.Second,
		TokenTTL:           2 * time.Hour,
		MaxSessionLength:   4 * time.Hour,
		PingInterval:       15 * time.Second,
		NotarizeTimeout:    60 * time.Second,
		HolderWait:         5 * time.Second,
		Instance:           hostname(),
		ProbeInterval:      time.Second,
		ReceiptSignatures:  notaryapi.Majority,
		ReceiptWitnessWait: 10 * time.Second,
		MessagesPerSecond:  50,
		MessageBurst:       200,
		StatusRate:         20,
		StatusBurst:        40,
		MaxRooms:           10000,
		MaxUsedTokens:      100000,
		MaxUndelivered:     10000,
		Webhook:            WebhookConfig{MaxAttempts: 10, RetryInterval: 500 * time.Millisecond, MaxRetryInterval: 30 * time.Second, Queue: 4096, Timeout: 10 * time.Second},
		HTTP:               DefaultHTTPConfig(),
	}
}

// hostname is the machine's name, "" when it has none.
func hostname() string {
	name, _ := os.Hostname()
	return name
}

// Validate names the first field that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Notary == nil:
		return errors.New("Notary is required")
	case c.TokenKey == nil:
		return errors.New("TokenKey is required")
	case len(c.Instance) > 64 || !printableASCII(c.Instance):
		return fmt.Errorf("Instance %.80q must be at most 64 printable ASCII characters", c.Instance)
	case c.ReceiptSignatures != notaryapi.Majority && (c.ReceiptSignatures < 1 || c.ReceiptSignatures > notaryapi.MaxSignatures):
		return fmt.Errorf("ReceiptSignatures is %d; it must be from 1 to %d, or notaryapi.Majority", c.ReceiptSignatures, notaryapi.MaxSignatures)
	case c.ReceiptWitnesses < 0:
		return fmt.Errorf("ReceiptWitnesses is %d; it must not be negative", c.ReceiptWitnesses)
	case c.ReceiptWitnesses > 0 && c.ReceiptWitnessWait <= 0:
		return fmt.Errorf("ReceiptWitnessWait is %v; it must be positive with ReceiptWitnesses", c.ReceiptWitnessWait)
	case !(c.StatusRate > 0):
		return fmt.Errorf("StatusRate is %v; it must be positive (DefaultConfig sets it)", c.StatusRate)
	case len(c.Peers) > 0 && c.ProbeInterval <= 0:
		return fmt.Errorf("ProbeInterval is %v; it must be positive with Peers (DefaultConfig sets it)", c.ProbeInterval)
	}
	if err := validatePeers(c.Instance, c.Peers); err != nil {
		return err
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Grace", c.Grace}, {"TokenTTL", c.TokenTTL}, {"MaxSessionLength", c.MaxSessionLength}, {"PingInterval", c.PingInterval}, {"NotarizeTimeout", c.NotarizeTimeout}, {"HolderWait", c.HolderWait}} {
		if d.v <= 0 {
			return fmt.Errorf("%s is %v; it must be positive (DefaultConfig sets it)", d.name, d.v)
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"MessagesPerSecond", c.MessagesPerSecond}, {"MessageBurst", c.MessageBurst}, {"StatusBurst", c.StatusBurst}, {"MaxRooms", c.MaxRooms}, {"MaxUsedTokens", c.MaxUsedTokens}, {"MaxUndelivered", c.MaxUndelivered}} {
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
	if err := c.HTTP.validate(); err != nil {
		return fmt.Errorf("HTTP.%w", err)
	}
	if err := c.ICE.Validate(); err != nil {
		return fmt.Errorf("ICE.%w", err)
	}
	return nil
}

func (w WebhookConfig) validate() error {
	if w.URL == "" {
		return nil
	}
	u, err := url.Parse(w.URL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "":
		return fmt.Errorf("URL %q is not an http(s) URL", w.URL)
	case !printableASCII(u.Host):
		return fmt.Errorf("URL %q has a host that is not ASCII: write an internationalized name in its punycode form (xn--…)", w.URL)
	case u.User != nil:
		return fmt.Errorf("URL %q carries a user name or password: remove it (deliveries are signed with Secret)", u.Redacted())
	case u.Scheme == "http" && !loopbackHost(u.Hostname()):
		return fmt.Errorf("URL %q is plain http to %q, which is not a loopback address: use https (http is allowed only to 127.0.0.1, ::1 or localhost)", w.URL, u.Hostname())
	case len(w.Secret) < MinTokenKey:
		return fmt.Errorf("Secret has %d bytes; it needs at least %d", len(w.Secret), MinTokenKey)
	case w.MaxAttempts < 1:
		return fmt.Errorf("MaxAttempts is %d; it must be at least 1 (DefaultConfig sets it)", w.MaxAttempts)
	case w.Queue < 1:
		return fmt.Errorf("Queue is %d; it must be at least 1 (DefaultConfig sets it)", w.Queue)
	case w.Timeout <= 0:
		return fmt.Errorf("Timeout is %v; it must be positive (DefaultConfig sets it)", w.Timeout)
	case w.RetryInterval <= 0 || w.MaxRetryInterval < w.RetryInterval:
		return fmt.Errorf("RetryInterval is %v and MaxRetryInterval %v; both must be positive, the first at most the second (DefaultConfig sets them)", w.RetryInterval, w.MaxRetryInterval)
	}
	return nil
}

// loopbackHost reports whether host is localhost or a loopback IP
// address (127.0.0.0/8, ::1). The webhook's dialer checks that localhost
// resolves to one.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
