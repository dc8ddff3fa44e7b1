package session_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/telenotary/telenotary/session"
)

// TestConfigValidate: DefaultConfig with a notary and a token key is
// valid; each field that cannot work is refused by name.
func TestConfigValidate(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	tk, err := session.NewTokenKey(key)
	if err != nil {
		t.Fatal(err)
	}
	good := session.DefaultConfig()
	good.Notary, good.TokenKey = newMemNotary(t), tk
	if err := good.Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	for _, tc := range []struct {
		field  string
		change func(*session.Config)
	}{
		{"Notary", func(c *session.Config) { c.Notary = nil }},
		{"TokenKey", func(c *session.Config) { c.TokenKey = nil }},
		{"Grace", func(c *session.Config) { c.Grace = 0 }},
		{"PingInterval", func(c *session.Config) { c.PingInterval = -time.Second }},
		{"NotarizeTimeout", func(c *session.Config) { c.NotarizeTimeout = 0 }},
		{"ReceiptWitnesses", func(c *session.Config) { c.ReceiptWitnesses = -1 }},
		{"ReceiptWitnessWait", func(c *session.Config) { c.ReceiptWitnesses, c.ReceiptWitnessWait = 1, 0 }},
		{"MessageBurst", func(c *session.Config) { c.MessageBurst = 0 }},
		{"StatusRate", func(c *session.Config) { c.StatusRate = 0 }},
		{"StatusBurst", func(c *session.Config) { c.StatusBurst = 0 }},
		{"MaxRooms", func(c *session.Config) { c.MaxRooms = 0 }},
		{"TokenTTL", func(c *session.Config) { c.TokenTTL = 5 * time.Hour }},
		{"Webhook.URL", func(c *session.Config) { c.Webhook.URL, c.Webhook.Secret = "ftp://x", key }},
		{"Webhook.Secret", func(c *session.Config) { c.Webhook.URL = "https://app.example/hook" }},
		{"Webhook.MaxAttempts", func(c *session.Config) {
			c.Webhook = session.WebhookConfig{URL: "https://app.example/hook", Secret: key, Queue: 1, Timeout: time.Second}
		}},
		{"Webhook.URL", func(c *session.Config) { c.Webhook.URL, c.Webhook.Secret = "http://app.example/hook", key }},
		{"Webhook.Timeout", func(c *session.Config) {
			c.Webhook.URL, c.Webhook.Secret, c.Webhook.Timeout = "https://app.example/hook", key, 0
		}},
		{"Webhook.RetryInterval", func(c *session.Config) {
			c.Webhook.URL, c.Webhook.Secret, c.Webhook.MaxRetryInterval = "https://app.example/hook", key, time.Millisecond
		}},
		{"HolderWait", func(c *session.Config) { c.HolderWait = 0 }},
		{"MaxUsedTokens", func(c *session.Config) { c.MaxUsedTokens = 0 }},
		{"HTTP.ReadHeaderTimeout", func(c *session.Config) { c.HTTP.ReadHeaderTimeout = 0 }},
		{"HTTP.WriteTimeout", func(c *session.Config) { c.HTTP.WriteTimeout = -time.Second }},
		{"HTTP.IdleTimeout", func(c *session.Config) { c.HTTP.IdleTimeout = 0 }},
		{"HTTP.MaxHeaderBytes", func(c *session.Config) { c.HTTP.MaxHeaderBytes = 0 }},
		{"HTTP.MaxConnsPerIP", func(c *session.Config) { c.HTTP.MaxConnsPerIP = 0 }},
		{"HTTP.MaxConns", func(c *session.Config) { c.HTTP.MaxConns, c.HTTP.MaxConnsPerIP = 10, 20 }},
	} {
		cfg := good
		tc.change(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tc.field) {
			t.Errorf("%s: %v, want an error naming it", tc.field, err)
		}
		if _, err := session.NewServer(context.Background(), cfg); err == nil {
			t.Errorf("%s: NewServer took the config", tc.field)
		}
	}
}

// TestServerContext: the server's life ends with the context NewServer
// was given: its connections close, and Close still returns.
func TestServerContext(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	tk, _ := session.NewTokenKey(key)
	cfg := session.DefaultConfig()
	cfg.Notary, cfg.TokenKey = newMemNotary(t), tk
	ctx, cancel := context.WithCancel(context.Background())
	srv, hs := startBenchServer(t, ctx, cfg)
	c := benchDial(t, "ws"+strings.TrimPrefix(hs.URL, "http")+"/v1/signal")
	cancel()
	select {
	case _, open := <-c.in:
		if open {
			t.Fatal("a message instead of the close")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the connection outlived the server's context")
	}
	closeCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	if err := srv.Close(closeCtx); err != nil {
		t.Fatal(err)
	}
}
