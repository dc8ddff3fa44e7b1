package signalapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Webhook deliveries are signed as the Standard Webhooks specification
// (standardwebhooks.com) has it, so that its libraries verify them:
// three headers, the delivery's id (the same on every retry: a receiver
// that has seen it answers 2xx and does nothing), its time in Unix
// seconds, and "v1," followed by the base64 HMAC-SHA256, under the shared
// secret, of id "." timestamp "." body.
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// WebhookTolerance is how far a delivery's timestamp may be from the
// receiver's clock for VerifyWebhook.
const WebhookTolerance = 5 * time.Minute

// WebhookKey returns the signing key of a webhook secret: the secret's
// bytes, or, for a secret in the Standard Webhooks form "whsec_<base64>",
// the bytes it encodes (a receiver that uses a Standard Webhooks library
// gives it "whsec_" + base64 of a raw secret).
func WebhookKey(secret []byte) []byte {
	s := strings.TrimSpace(string(secret))
	if rest, ok := strings.CutPrefix(s, "whsec_"); ok {
		if key, err := base64.StdEncoding.DecodeString(rest); err == nil {
			return key
		}
	}
	return secret
}

// SignWebhook returns the webhook-signature value of a delivery.
func SignWebhook(secret []byte, id string, t time.Time, body []byte) string {
	mac := hmac.New(sha256.New, WebhookKey(secret))
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(t.Unix(), 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// SetWebhookHeaders signs a delivery of body, with its id, at time t.
func SetWebhookHeaders(h http.Header, secret []byte, id string, t time.Time, body []byte) {
	h.Set(HeaderWebhookID, id)
	h.Set(HeaderWebhookTimestamp, strconv.FormatInt(t.Unix(), 10))
	h.Set(HeaderWebhookSignature, SignWebhook(secret, id, t, body))
}

// ErrWebhookSignature is what VerifyWebhook's errors wrap.
var ErrWebhookSignature = errors.New("webhook delivery not verified")

// VerifyWebhook checks a delivery as a receiver must: an id, a timestamp
// within WebhookTolerance of now, and a v1 signature under the secret
// (any of the space-separated ones), compared in constant time. It
// returns the delivery's id, to deduplicate retries.
func VerifyWebhook(secret []byte, h http.Header, body []byte, now time.Time) (id string, err error) {
	id = h.Get(HeaderWebhookID)
	if id == "" || len(id) > 256 {
		return "", fmt.Errorf("%w: %s missing or longer than 256 bytes", ErrWebhookSignature, HeaderWebhookID)
	}
	ts, err := strconv.ParseInt(h.Get(HeaderWebhookTimestamp), 10, 64)
	if err != nil {
		return "", fmt.Errorf("%w: %s is not Unix seconds", ErrWebhookSignature, HeaderWebhookTimestamp)
	}
	t := time.Unix(ts, 0)
	if d := now.Sub(t); d > WebhookTolerance || d < -WebhookTolerance {
		return "", fmt.Errorf("%w: %s is %v from this clock, more than %v", ErrWebhookSignature, HeaderWebhookTimestamp, d.Round(time.Second), WebhookTolerance)
	}
	want := SignWebhook(secret, id, t, body)
	for _, sig := range strings.Fields(h.Get(HeaderWebhookSignature)) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return id, nil
		}
	}
	return "", fmt.Errorf("%w: no %s matches the body under the secret", ErrWebhookSignature, HeaderWebhookSignature)
}
