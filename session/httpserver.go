package session

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/telenotary/telenotary/cluster/httpapi"
)

// HTTPConfig bounds what clients can hold of the server's connections
// when it serves them itself ([Server.Serve]): nobody keeps a connection
// by sending nothing, slowly, or from many sockets at once.
type HTTPConfig struct {
	// ReadHeaderTimeout bounds reading a request's header; ReadTimeout the
	// whole request.
	ReadHeaderTimeout, ReadTimeout time.Duration
	// WriteTimeout bounds writing an answer. The WebSocket /v1/signal,
	// which lives as long as its consultation, is exempt: its pings find
	// a client that is gone.
	WriteTimeout time.Duration
	// IdleTimeout bounds how long a kept-alive connection waits for its
	// next request.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header.
	MaxHeaderBytes int
	// MaxConns bounds the connections open at once (a WebSocket is one;
	// each room holds two), MaxConnsPerIP those from one address. A
	// connection over either cap is closed as soon as it is accepted, so
	// one address cannot take the server, and many cannot exhaust its
	// file descriptors.
	MaxConns, MaxConnsPerIP int
}

// DefaultHTTPConfig returns the limits DefaultConfig sets: the headers
// within 10s, a request within 30s, an answer within 30s, 2 minutes idle,
// 64 KiB of headers, 24,576 connections (the WebSockets of the default
// MaxRooms, two each, and room to spare), 1,024 from one address (a
// clinic behind one NAT).
func DefaultHTTPConfig() HTTPConfig {
	return HTTPConfig{
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		MaxConns:          24576,
		MaxConnsPerIP:     1024,
	}
}

func (h HTTPConfig) validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ReadHeaderTimeout", h.ReadHeaderTimeout}, {"ReadTimeout", h.ReadTimeout}, {"WriteTimeout", h.WriteTimeout}, {"IdleTimeout", h.IdleTimeout}} {
		if d.v <= 0 {
			return fmt.Errorf("%s is %v; it must be positive (DefaultConfig sets it)", d.name, d.v)
		}
	}
	switch {
	case h.MaxHeaderBytes < 1:
		return fmt.Errorf("MaxHeaderBytes is %d; it must be positive (DefaultConfig sets it)", h.MaxHeaderBytes)
	case h.MaxConnsPerIP < 1:
		return fmt.Errorf("MaxConnsPerIP is %d; it must be positive (DefaultConfig sets it)", h.MaxConnsPerIP)
	case h.MaxConns < h.MaxConnsPerIP:
		return fmt.Errorf("MaxConns is %d; it must be at least MaxConnsPerIP (%d)", h.MaxConns, h.MaxConnsPerIP)
	}
	return nil
}

// Serve serves the server's Handler on ln, over TLS when tlsConfig is not
// nil (it must hold the certificate, and the answers then carry HSTS),
// with the limits of Config.HTTP: the connection caps on ln and the
// timeouts on every request but the WebSocket's. It blocks like
// http.Server.Serve and returns http.ErrServerClosed once Close has
// stopped it: Close ends the sessions first, then shuts the HTTP server
// down. It may be called for several listeners; after Close it closes ln
// and returns http.ErrServerClosed at once.
func (s *Server) Serve(ln net.Listener, tlsConfig *tls.Config) error {
	h := s.cfg.HTTP
	handler := s.Handler()
	if tlsConfig != nil {
		handler = httpapi.HSTS(handler)
	}
	hs := &http.Server{
		Handler: handler, TLSConfig: tlsConfig,
		ReadHeaderTimeout: h.ReadHeaderTimeout, ReadTimeout: h.ReadTimeout, WriteTimeout: h.WriteTimeout,
		IdleTimeout: h.IdleTimeout, MaxHeaderBytes: h.MaxHeaderBytes,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	s.servers = append(s.servers, hs)
	s.mu.Unlock()
	ln = httpapi.LimitListener(ln, h.MaxConns, h.MaxConnsPerIP, s.peerAddrs()...)
	if tlsConfig != nil {
		return hs.ServeTLS(ln, "", "")
	}
	return hs.Serve(ln)
}

// liftDeadlines exempts a request from the HTTP server's read and write
// timeouts: the WebSocket outlives them. A writer that cannot (a test's
// recorder) has none to lift.
func liftDeadlines(w http.ResponseWriter) error {
	ctl := http.NewResponseController(w)
	for _, set := range []func(time.Time) error{ctl.SetReadDeadline, ctl.SetWriteDeadline} {
		if err := set(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
	}
	return nil
}

// peerAddrs returns the IP addresses of the group's other instances, whose
// connections (each relaying many clients) the per-address cap does not
// count; a name that does not resolve now is left out, and logged.
func (s *Server) peerAddrs() []string {
	var out []string
	for _, p := range s.cfg.Peers {
		u, err := url.Parse(p.URL)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		addrs, err := net.DefaultResolver.LookupHost(ctx, u.Hostname())
		cancel()
		if err != nil {
			s.log.Warn("the address of a peer instance does not resolve: its relayed connections count toward the per-address cap", "instance", p.Name, "error", err)
			continue
		}
		out = append(out, addrs...)
	}
	return out
}
