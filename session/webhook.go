package session

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// WebhookConfig configures the delivery of receipts to the app's backend.
type WebhookConfig struct {
	// URL receives a POST per receipt; empty disables the webhook.
	URL string
	// Secret signs each delivery: the Telenotary-Signature header is
	// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>".
	Secret []byte
	// MaxAttempts bounds the deliveries of one event (default 8), with
	// backoff from 500ms doubling to at most 30s between them.
	MaxAttempts int
	// Queue bounds the events waiting (default 4096); when it is full, new
	// events are dropped and counted as failed.
	Queue int
	// HTTPClient sends the requests (default: 10s timeout).
	HTTPClient *http.Client
}

// WebhookEvent is the body of a webhook delivery: a receipt bundle (the
// session record or prescription, its salt and its receipt) with where it
// belongs.
type WebhookEvent struct {
	// Event is session-start, prescription or session-end.
	Event   string          `json:"event"`
	Room    string          `json:"room"`
	Session string          `json:"session"`
	Ref     string          `json:"ref,omitempty"`
	Bundle  json.RawMessage `json:"bundle"`
}

// SignatureHeader is the header carrying a webhook delivery's signature.
const SignatureHeader = "Telenotary-Signature"

// SignWebhook returns the signature header value for body at time t.
func SignWebhook(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// webhooker delivers events in the background: signalling never waits on
// the app's backend.
type webhooker struct {
	cfg   WebhookConfig
	srv   *Server
	queue chan []byte
	wg    sync.WaitGroup
	stop  context.CancelFunc
	ctx   context.Context
}

const webhookWorkers = 4

func newWebhooker(ctx context.Context, cfg WebhookConfig, s *Server) (*webhooker, error) {
	w := &webhooker{cfg: cfg, srv: s}
	if cfg.URL == "" {
		return w, nil
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("session: webhook URL %q is not an http(s) URL", cfg.URL)
	}
	if len(cfg.Secret) < MinTokenKey {
		return nil, fmt.Errorf("session: webhook secret has %d bytes; it needs at least %d", len(cfg.Secret), MinTokenKey)
	}
	if w.cfg.MaxAttempts <= 0 {
		w.cfg.MaxAttempts = 8
	}
	if w.cfg.Queue <= 0 {
		w.cfg.Queue = 4096
	}
	if w.cfg.HTTPClient == nil {
		w.cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	w.queue = make(chan []byte, w.cfg.Queue)
	w.ctx, w.stop = context.WithCancel(ctx)
	for range webhookWorkers {
		w.wg.Add(1)
		go w.run()
	}
	return w, nil
}

// deliver queues an event without blocking.
func (w *webhooker) deliver(e WebhookEvent) {
	if w.queue == nil {
		return
	}
	body, _ := json.Marshal(e)
	select {
	case w.queue <- body:
	default:
		w.srv.metrics.webhooks.WithLabelValues("dropped").Inc()
		w.srv.alert("webhook-failed", e.Room, "webhook queue full: a "+e.Event+" event was dropped")
	}
}

func (w *webhooker) run() {
	defer w.wg.Done()
	for body := range w.queue {
		w.send(body)
	}
}

// send posts one event, retrying with backoff.
func (w *webhooker) send(body []byte) {
	backoff := 500 * time.Millisecond
	var last error
	for attempt := 1; ; attempt++ {
		if last = w.post(body); last == nil {
			w.srv.metrics.webhooks.WithLabelValues("delivered").Inc()
			return
		}
		if attempt == w.cfg.MaxAttempts {
			break
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-w.ctx.Done(): // shutting down: give up
			t.Stop()
			last = fmt.Errorf("%w (server shutting down)", last)
		}
		if w.ctx.Err() != nil {
			break
		}
		backoff = min(2*backoff, 30*time.Second)
	}
	w.srv.metrics.webhooks.WithLabelValues("failed").Inc()
	var e WebhookEvent
	json.Unmarshal(body, &e)
	w.srv.log.Warn("webhook delivery failed", "room", e.Room, "session", e.Session, "event", e.Event, "err", last)
	w.srv.alert("webhook-failed", e.Room, fmt.Sprintf("%s event not delivered after retries: %v", e.Event, last))
}

func (w *webhooker) post(body []byte) error {
	req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, SignWebhook(w.cfg.Secret, body, time.Now()))
	resp, err := w.cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered HTTP %d", resp.StatusCode)
	}
	return nil
}

// close stops taking events and waits until the queue is delivered or ctx
// ends; then it abandons what is left.
func (w *webhooker) close(ctx context.Context) {
	if w.queue == nil {
		return
	}
	close(w.queue)
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		w.stop()
		<-done
	}
}
