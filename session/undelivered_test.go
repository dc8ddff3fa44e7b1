package session_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session"
	"github.com/telenotary/telenotary/session/internal/sessiontest"
	"github.com/telenotary/telenotary/session/signalapi"
)

// TestWebhookDownEventsHeld: while the app's webhook refuses every
// delivery, its events are held (not lost) for the app to fetch with its
// key, each bundle intact; when the store is full, a new prescription is
// refused (limit) rather than notarized and lost; once the app has
// acknowledged an event, prescriptions go through again, and when the
// webhook is back events reach it.
func TestWebhookDownEventsHeld(t *testing.T) {
	var up atomic.Bool
	var delivered atomic.Int32
	hook := newHook(t, func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		delivered.Add(1)
	})
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, func(c *session.Config) {
		c.Webhook.URL, c.Webhook.Secret, c.Webhook.MaxAttempts = hook, []byte("0123456789abcdef0123456789abcdef"), 1
		c.MaxUndelivered = 2
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	app := s.Client(sessiontest.AppKey, nil)
	held := func() []signalapi.UndeliveredEvent {
		t.Helper()
		u, err := app.Undelivered(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return u.Events
	}
	if _, err := s.Client("", nil).Undelivered(ctx); !errors.Is(err, httpapi.ErrUnauthorized) {
		t.Fatalf("undelivered events without the app key: %v", err)
	}
	patient, physician := started(t, s, "room-held")
	sessiontest.WaitFor(t, "the session-start event held", func() bool { return len(held()) == 1 })
	prescribe(t, patient, physician, "rx-1", medicationRequest(t))
	sessiontest.WaitFor(t, "the prescription event held", func() bool { return len(held()) == 2 })

	before := logSize(t, n)
	physician.send(signalapi.Message{Type: signalapi.TypePrescription, Ref: "rx-2", Resource: medicationRequest(t)})
	if m := physician.expectError(signalapi.CodeLimit); m.Ref != "rx-2" {
		t.Fatalf("refusal for %q", m.Ref)
	}
	if after := logSize(t, n); after != before {
		t.Fatal("a prescription was notarized while its event could not be held")
	}

	events := held()
	kinds := map[notary.Kind]bool{}
	for _, e := range events {
		var we signalapi.WebhookEvent
		if err := json.Unmarshal(e.Event, &we); err != nil {
			t.Fatal(err)
		}
		b, err := notary.ParseBundle(we.Bundle)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := notary.VerifyBundle(b, n.Policy); err != nil {
			t.Fatalf("held %s event: %v", we.Event, err)
		}
		if e.ID == "" || e.Error == "" || e.FailedAt.IsZero() {
			t.Fatalf("held event %+v", e)
		}
		kinds[we.Event] = true
	}
	if !kinds[notary.KindSessionStart] || !kinds[notary.KindPrescription] {
		t.Fatalf("held events: %v", kinds)
	}
	if err := app.AckUndelivered(ctx, events[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := app.AckUndelivered(ctx, events[0].ID); !errors.Is(err, httpapi.ErrNotFound) {
		t.Fatalf("acknowledging twice: %v", err)
	}
	up.Store(true)
	physician.send(signalapi.Message{Type: signalapi.TypePrescription, Ref: "rx-3", Resource: medicationRequest(t)})
	patient.keep(patient.expect(signalapi.TypePrescription))
	if m := physician.expect(signalapi.TypeReceipt); m.Ref != "rx-3" || m.Holder != signalapi.HolderPatient && m.Holder != signalapi.HolderWebhook {
		t.Fatalf("receipt for %q held by %q", m.Ref, m.Holder)
	}
	sessiontest.WaitFor(t, "the webhook, back, to get the next event", func() bool { return delivered.Load() == 1 })
	if got := held(); len(got) != 1 || got[0].ID != events[1].ID {
		t.Fatalf("held after one acknowledged and one delivered: %+v", got)
	}
}
