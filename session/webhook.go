package session

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/signalapi"
)

// webhookEvent is a signalapi.WebhookEvent without its bundle, which
// deliver splices in as it is.
type webhookEvent struct {
	Event   notary.Kind `json:"event"`
	Room    string      `json:"room"`
	Session string      `json:"session"`
	Ref     string      `json:"ref,omitempty"`
}

// delivery is one event waiting to be posted: its body, made once, and
// where it belongs for logs and alerts.
type delivery struct {
	id    string // webhook-id: the same on every retry
	body  []byte
	event notary.Kind
	room  string
	// commitment is a prescription's: its taking makes the webhook the
	// bundle's holder (room.heldLocked)
	commitment notary.Commitment
}

// deliveryID names a delivery by its body (which holds a bundle, whose
// commitment is unique): the same on every retry, so a receiver can tell
// a retry from a new event.
func deliveryID(body []byte) string {
	sum := sha256.Sum256(body)
	return "msg_" + hex.EncodeToString(sum[:16])
}

// webhooker delivers events in the background: signalling never waits on
// the app's backend. Its senders are owned by close, which waits for them.
type webhooker struct {
	cfg    WebhookConfig
	srv    *Server
	http   *http.Client
	queue  chan delivery // nil when the webhook is off
	mu     sync.Mutex    // guards closed, and sending on queue
	closed bool
	wg     sync.WaitGroup
	ctx    context.Context // ends when close gives up on the queue
	stop   context.CancelFunc
}

const webhookWorkers = 4

// newWebhooker starts the senders of a validated configuration; with no
// URL it returns a webhooker that drops every event.
func newWebhooker(ctx context.Context, cfg WebhookConfig, s *Server) *webhooker {
	w := &webhooker{cfg: cfg, srv: s}
	if cfg.URL == "" {
		return w
	}
	w.http = webhookClient(cfg)
	w.queue = make(chan delivery, cfg.Queue)
	w.ctx, w.stop = context.WithCancel(ctx)
	for range webhookWorkers {
		w.wg.Add(1)
		go w.run()
	}
	return w
}

// newDelivery makes the delivery of an event with its bundle, spliced in
// as it is.
func newDelivery(e webhookEvent, bundle []byte) delivery {
	head, err := json.Marshal(e)
	if err != nil { // an event always encodes
		panic(err)
	}
	body := withMember(head, "bundle", bundle)
	return delivery{id: deliveryID(body), body: body, event: e.Event, room: e.Room}
}

// deliver queues a delivery without blocking; when the queue is full the
// event is held for the app to fetch, and an alert raised.
func (w *webhooker) deliver(d delivery) {
	if w.queue == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed { // a notarization that outlived a shutdown's deadline
		w.hold(d, errors.New("the server was shutting down"))
		return
	}
	select {
	case w.queue <- d:
	default:
		w.hold(d, errors.New("the webhook queue was full"))
	}
}

func (w *webhooker) run() {
	defer w.wg.Done()
	for d := range w.queue {
		w.send(d)
	}
}

// send posts one event, retrying with a jittered exponential backoff up to
// MaxAttempts, or until close gives up.
func (w *webhooker) send(d delivery) {
	var last error
	post := func() (struct{}, error) {
		last = w.post(d)
		return struct{}{}, last
	}
	_, err := backoff.Retry(w.ctx, post, backoff.WithBackOff(retrySchedule(w.cfg)), backoff.WithMaxTries(uint(w.cfg.MaxAttempts)), backoff.WithMaxElapsedTime(0))
	if err == nil {
		w.srv.metrics.webhooks.WithLabelValues("delivered").Inc()
		w.srv.webhookTook(d)
		return
	}
	if w.ctx.Err() != nil {
		last = fmt.Errorf("%w (server shutting down)", last)
	}
	w.hold(d, last)
}

// retrySchedule is the waits between a delivery's attempts: from
// RetryInterval, doubling to at most MaxRetryInterval, each ±20%.
func retrySchedule(cfg WebhookConfig) *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{InitialInterval: cfg.RetryInterval, RandomizationFactor: 0.2, Multiplier: 2, MaxInterval: cfg.MaxRetryInterval}
}

// hold keeps an event the webhook did not take for the app to fetch
// (GET /v1/undelivered), and alerts; only when that store is full too is
// it lost.
func (w *webhooker) hold(d delivery, why error) {
	if w.srv.undelivered.keep(d, why, time.Now()) {
		w.srv.metrics.webhooks.WithLabelValues("failed").Inc()
		w.srv.log.WarnContext(w.srv.ctx, "webhook delivery failed: the event is held for the app to fetch (GET /v1/undelivered)", "room", d.room, "event", d.event, "id", d.id, "error", why)
		w.srv.alert(signalapi.AlertWebhookFailed, d.room, fmt.Sprintf("%s event not delivered (%v): held as %s for GET /v1/undelivered", d.event, why, d.id))
		return
	}
	w.srv.metrics.webhooks.WithLabelValues("dropped").Inc()
	w.srv.log.ErrorContext(w.srv.ctx, "webhook event lost: the webhook did not take it and the undelivered store is full", "room", d.room, "event", d.event, "id", d.id, "error", why)
	w.srv.alert(signalapi.AlertWebhookFailed, d.room, fmt.Sprintf("%s event lost: %v, and %d undelivered events are held already", d.event, why, w.srv.cfg.MaxUndelivered))
}

// post makes one delivery attempt, within the webhook's timeout. A
// redirect is a permanent failure: the app's backend answered, and it
// will answer the same to a retry.
func (w *webhooker) post(d delivery) error {
	ctx, cancel := context.WithTimeout(w.ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(d.body))
	if err != nil {
		return backoff.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	signalapi.SetWebhookHeaders(req.Header, w.cfg.Secret, d.id, time.Now(), d.body)
	resp, err := w.http.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode/100 == 3:
		return backoff.Permanent(fmt.Errorf("webhook answered HTTP %d, a redirect (to %.200q), which is never followed: set the webhook URL to where it should deliver", resp.StatusCode, resp.Header.Get("Location")))
	case resp.StatusCode/100 != 2:
		return fmt.Errorf("webhook answered HTTP %d", resp.StatusCode)
	}
	return nil
}

// webhookClient returns the client of a validated webhook configuration:
// the configured one, or one that dials only the URL's host and port,
// directly, and for an http URL only to a loopback address; either way it
// never follows a redirect.
func webhookClient(cfg WebhookConfig) *http.Client {
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		c.CheckRedirect = refuseRedirect
		return &c
	}
	u, _ := url.Parse(cfg.URL) // validated
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	target := net.JoinHostPort(u.Hostname(), port)
	dialer := &net.Dialer{Timeout: cfg.Timeout}
	if u.Scheme == "http" {
		dialer.Control = loopbackOnly
	}
	transport := &http.Transport{
		Proxy: nil, // a proxy would carry the bundles elsewhere
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if !strings.EqualFold(addr, target) { // the transport writes the host in lower case
				return nil, fmt.Errorf("webhook: refusing to dial %s: deliveries go to %s only", addr, target)
			}
			return dialer.DialContext(ctx, network, addr)
		},
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConnsPerHost:   webhookWorkers,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{Transport: transport, CheckRedirect: refuseRedirect, Timeout: cfg.Timeout}
}

// refuseRedirect has the client return a redirect as the answer, without
// following it.
func refuseRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// loopbackOnly refuses a connection to an address that is not loopback:
// plain http deliveries stay on the machine (localhost must resolve
// there).
func loopbackOnly(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.Unmap().IsLoopback() {
		return fmt.Errorf("webhook: refusing plain http to %s, which is not a loopback address: use https", address)
	}
	return nil
}

// close stops taking events and waits until the queue is delivered or ctx
// ends; then it abandons what is left and waits for the senders to
// return.
func (w *webhooker) close(ctx context.Context) {
	if w.queue == nil {
		return
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	close(w.queue)
	w.mu.Unlock()
	if !waitGroup(ctx, &w.wg) {
		w.stop()
		w.wg.Wait()
	}
	w.stop()
}
