package session_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/telenotary/telenotary/session"
	"github.com/telenotary/telenotary/session/internal/sessiontest"
	"github.com/telenotary/telenotary/session/signalapi"
)

// idleConn is a TCP connection that sends nothing; closed is closed when
// the server closes it.
type idleConn struct {
	net.Conn
	closed chan struct{}
}

// dialIdle opens a connection to addr from the loopback address from
// (127.0.0.0/8 is all loopback) and watches for the server closing it.
func dialIdle(t *testing.T, from, addr string) *idleConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	ic := &idleConn{Conn: c, closed: make(chan struct{})}
	go func() {
		defer close(ic.closed)
		io.Copy(io.Discard, c) // returns when the server closes it (or the test does)
	}()
	t.Cleanup(func() { c.Close() })
	return ic
}

func (c *idleConn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// clientFrom is an HTTP client whose connections come from a loopback
// address; each request has a connection of its own.
func clientFrom(from string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// served reports whether a GET /healthz from a loopback address is
// answered 200.
func served(s *sessiontest.Signal, from string) bool {
	resp, err := clientFrom(from).Get(s.URL + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestIdleConnectionCaps: connections that send nothing, many from one
// address: the server holds at most MaxConnsPerIP of them and closes the
// rest at once; all addresses together are held to MaxConns; a client
// from the flooding address is refused at its cap while one from another
// address is served (a consultation too); when the idle connections go,
// their address is served again.
func TestIdleConnectionCaps(t *testing.T) {
	const perIP, total, flood = 8, 12, 40
	n := sessiontest.StartNotary(t)
	s := sessiontest.ServeSignal(t, n, func(c *session.Config) {
		c.HTTP.MaxConnsPerIP, c.HTTP.MaxConns = perIP, total
		c.HTTP.ReadHeaderTimeout = time.Minute // the caps, not the timeout, are tested here
	})
	addr := strings.TrimPrefix(s.URL, "http://")
	var idle []*idleConn
	for range flood {
		idle = append(idle, dialIdle(t, "127.0.0.1", addr))
	}
	closedCount := func() int {
		k := 0
		for _, c := range idle {
			if c.isClosed() {
				k++
			}
		}
		return k
	}
	sessiontest.WaitFor(t, "the connections over the per-address cap to be closed", func() bool { return closedCount() == flood-perIP })

	// Idle connections from a second address fill the total cap.
	var more []*idleConn
	for range total - perIP {
		more = append(more, dialIdle(t, "127.0.0.3", addr))
	}
	if served(s, "127.0.0.4") {
		t.Fatal("a client is served beyond the total cap")
	}
	if served(s, "127.0.0.1") {
		t.Fatal("a client from the flooding address is served beyond its cap")
	}
	for _, c := range more {
		if c.isClosed() {
			t.Fatal("a connection within the caps was closed")
		}
		c.Close()
	}

	// Another address is served, a consultation included; the flooding
	// one still is not.
	sessiontest.WaitFor(t, "another address to be served", func() bool { return served(s, "127.0.0.2") })
	patientTok, physicianTok := s.Tokens(t, "room-caps")
	patient, physician := dialFrom(t, s, "127.0.0.2"), dialFrom(t, s, "127.0.0.4")
	patient.join(patientTok)
	physician.join(physicianTok)
	startSession(t, patient, physician)
	if served(s, "127.0.0.1") {
		t.Fatal("a client from the flooding address is served beyond its cap")
	}

	// The idle connections within the cap were held all along; once they
	// go, their address is served again.
	if got := closedCount(); got != flood-perIP {
		t.Fatalf("%d idle connections closed, want the %d over the cap", got, flood-perIP)
	}
	for _, c := range idle {
		c.Close()
	}
	sessiontest.WaitFor(t, "the flooding address to be served again", func() bool { return served(s, "127.0.0.1") })
}

// TestIdleConnectionsAreDropped: a connection that never sends a request
// header, or idles after one, is closed by the server within its
// timeouts, and gives its place back: an address at its cap is served
// again without the idle client doing anything.
func TestIdleConnectionsAreDropped(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.ServeSignal(t, n, func(c *session.Config) {
		c.HTTP.MaxConnsPerIP, c.HTTP.MaxConns = 4, 4
		c.HTTP.ReadHeaderTimeout, c.HTTP.IdleTimeout = 300*time.Millisecond, 300*time.Millisecond
	})
	addr := strings.TrimPrefix(s.URL, "http://")
	var idle []*idleConn
	for range 4 {
		idle = append(idle, dialIdle(t, "127.0.0.1", addr))
	}
	// A kept-alive connection after one request.
	kept := dialIdle(t, "127.0.0.2", addr)
	if _, err := io.WriteString(kept, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	for i, c := range append(idle, kept) {
		select {
		case <-c.closed:
		case <-time.After(20 * time.Second):
			t.Fatalf("idle connection %d was never closed by the server", i)
		}
	}
	sessiontest.WaitFor(t, "the address to be served again", func() bool { return served(s, "127.0.0.1") })
}

// TestWebSocketOutlivesWriteTimeout: with read and write timeouts far
// shorter than a consultation, a WebSocket stays open past them, both
// ways: the server still relays and notarizes after several timeouts
// have passed.
func TestWebSocketOutlivesWriteTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	n := sessiontest.StartNotary(t)
	s := sessiontest.ServeSignal(t, n, func(c *session.Config) {
		c.HTTP.ReadTimeout, c.HTTP.WriteTimeout, c.HTTP.ReadHeaderTimeout = timeout, timeout, timeout
	})
	patientTok, physicianTok := s.Tokens(t, "room-long")
	patient, physician := dial(t, s), dial(t, s)
	patient.join(patientTok)
	physician.join(physicianTok)
	<-time.After(5 * timeout) // the timeouts passing is what is tested
	startSession(t, patient, physician)
	<-time.After(5 * timeout)
	prescribe(t, patient, physician, "late", medicationRequest(t))
}

// TestServeAfterClose: Serve on a closed server returns at once.
func TestServeAfterClose(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.ServeSignal(t, n, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Server.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Server.Serve(ln, nil); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve after Close: %v", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatal("Serve left the listener open")
	}
}

// dialFrom is dial from a given loopback address, retried while the
// server closes the connection at a cap that connections closing are
// still giving back.
func dialFrom(t *testing.T, s *sessiontest.Signal, from string) *client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	var c *client
	sessiontest.WaitFor(t, "a WebSocket from "+from, func() bool {
		var err error
		c, err = tryDial(t, s, hc)
		return err == nil
	})
	return c
}

// TestServeTLSSetsHSTS: over TLS every answer tells browsers to keep to
// HTTPS; over plain HTTP none does (a browser ignores it there anyway).
func TestServeTLSSetsHSTS(t *testing.T) {
	n := sessiontest.StartNotary(t)
	s := sessiontest.StartSignal(t, n, nil)
	borrowed := httptest.NewTLSServer(http.NotFoundHandler()) // for its certificate and a client that trusts it
	defer borrowed.Close()
	for _, tc := range []struct {
		name string
		tls  *tls.Config
		hsts bool
	}{
		{"plain", nil, false},
		{"tls", &tls.Config{Certificates: borrowed.TLS.Certificates}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- s.Server.Serve(ln, tc.tls) }()
			scheme := "http"
			if tc.tls != nil {
				scheme = "https"
			}
			for _, path := range []string{"/healthz", "/app/", signalapi.PathKeys} {
				resp, err := borrowed.Client().Get(scheme + "://" + ln.Addr().String() + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if got := resp.Header.Get("Strict-Transport-Security"); (got != "") != tc.hsts {
					t.Errorf("GET %s over %s: Strict-Transport-Security %q", path, tc.name, got)
				}
			}
			ln.Close()
			<-served
		})
	}
}
