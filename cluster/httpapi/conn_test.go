package httpapi

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// echoServer answers each POST with its body, and counts the connections
// it accepted.
func echoServer(t *testing.T, tlsOn bool) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Query().Get("close") != "" {
			w.Header().Set("Connection", "close")
		}
		w.Header().Set("X-Proto", r.Proto)
		w.Write(b)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	if tlsOn {
		srv.EnableHTTP2 = true // a Conn must still get HTTP/1.1
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, &conns
}

func post(t *testing.T, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestConnKeepsItsConnection: requests on a Conn, over plain HTTP and over
// TLS (HTTP/1.1 even where the server offers HTTP/2), go on one
// connection, each answer read whole.
func TestConnKeepsItsConnection(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		srv, conns := echoServer(t, tlsOn)
		var cfg *tls.Config
		if tlsOn {
			roots := x509.NewCertPool()
			roots.AddCert(srv.Certificate())
			cfg = &tls.Config{RootCAs: roots}
		}
		c, err := DialConn(t.Context(), srv.URL, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		for i, want := range []string{"one", "two", strings.Repeat("x", 100_000)} {
			resp, _, err := c.Do(post(t, srv.URL+"/echo", want), &body, 1<<20, 5*time.Second)
			if err != nil {
				t.Fatalf("TLS %v, request %d: %v", tlsOn, i, err)
			}
			if body.String() != want || resp.Header.Get("X-Proto") != "HTTP/1.1" {
				t.Fatalf("TLS %v, request %d: %q over %s", tlsOn, i, body.String()[:min(body.Len(), 20)], resp.Header.Get("X-Proto"))
			}
			if again, _ := io.ReadAll(resp.Body); string(again) != want {
				t.Fatalf("TLS %v: the response's body reads %d bytes, want %d", tlsOn, len(again), len(want))
			}
		}
		if c.Broken() || conns.Load() != 1 {
			t.Fatalf("TLS %v: broken %v after 3 requests on %d connections, want 1", tlsOn, c.Broken(), conns.Load())
		}
		c.Close()
	}
}

// TestConnBreaks: a Conn that may not carry another request says so: an
// answer over its limit, a server that said it would close, and a server
// that closed it while idle, which fails as stale (the request may be sent
// again elsewhere); a first request that fails is never stale.
func TestConnBreaks(t *testing.T) {
	srv, _ := echoServer(t, false)
	var body bytes.Buffer
	dial := func() *Conn {
		c, err := DialConn(t.Context(), srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	c := dial()
	if _, _, err := c.Do(post(t, srv.URL, strings.Repeat("y", 2000)), &body, 1000, 5*time.Second); err == nil || !c.Broken() {
		t.Fatalf("an answer over the limit: %v, broken %v", err, c.Broken())
	}
	if _, _, err := c.Do(post(t, srv.URL, "z"), &body, 1000, 5*time.Second); err == nil {
		t.Fatal("a broken Conn carried another request")
	}

	c = dial()
	if _, _, err := c.Do(post(t, srv.URL+"?close=1", "bye"), &body, 1000, 5*time.Second); err != nil || !c.Broken() {
		t.Fatalf("an answer with Connection: close: %v, broken %v", err, c.Broken())
	}

	c = dial()
	if _, _, err := c.Do(post(t, srv.URL, "first"), &body, 1000, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	srv.CloseClientConnections()
	if _, stale, err := c.Do(post(t, srv.URL, "second"), &body, 1000, 5*time.Second); err == nil || !stale {
		t.Fatalf("a request on a connection the server closed while idle: %v, stale %v", err, stale)
	}

	if _, err := DialConn(t.Context(), "ftp://"+srv.Listener.Addr().String(), nil); err == nil || !strings.Contains(err.Error(), "neither http nor https") {
		t.Fatalf("an ftp URL: %v", err)
	}
}
