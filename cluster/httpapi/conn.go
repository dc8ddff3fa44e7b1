package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"
)

// Conn is one keep-alive HTTP/1.1 connection to a server, each request
// written and its answer read on the caller's goroutine, with net/http's
// own request writer and response reader. An http.Client hands every
// request to its transport's writing goroutine and the answer back from
// its reading one: two goroutine wake-ups a request, which a lone request
// pays in full (about 0.08 ms on the 2-core VM of docs/BENCHMARKS.md).
// A Conn does not retry, redirect or pool, and is not safe for concurrent
// use. Once a request on it failed, or the server said it would close it,
// it is Broken: close it and dial again.
type Conn struct {
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	used   bool      // it carried a request
	broken bool      // it must not carry another
	idle   time.Time // when its last request ended
}

// DialConn connects to the server of base, an http or https URL; for
// https, tlsConfig (nil: the system's roots) checks the server. The dial
// ends with ctx; the connection does not.
func DialConn(ctx context.Context, base string, tlsConfig *tls.Config) (*Conn, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	var nc net.Conn
	switch u.Scheme {
	case "http":
		var d net.Dialer
		nc, err = d.DialContext(ctx, "tcp", host)
	case "https":
		cfg := &tls.Config{}
		if tlsConfig != nil {
			cfg = tlsConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		cfg.NextProtos = []string{"http/1.1"} // what a Conn speaks, whatever the config offers
		d := tls.Dialer{Config: cfg}
		nc, err = d.DialContext(ctx, "tcp", host)
	default:
		return nil, fmt.Errorf("dial %s: scheme %q is neither http nor https", base, u.Scheme)
	}
	if err != nil {
		return nil, err
	}
	return &Conn{nc: nc, br: bufio.NewReaderSize(nc, 16<<10), bw: bufio.NewWriterSize(nc, 4<<10)}, nil
}

// Do sends req and reads the answer's body into body (reset first), at
// most limit bytes; the response it returns reads that body again. The
// request and its answer must be over within timeout. On failure, stale
// reports whether it came on a connection that had carried a request
// before, with no byte of an answer: the server may have closed it while
// it was idle, before the request reached it, and the caller may send
// the request again on a new connection.
func (c *Conn) Do(req *http.Request, body *bytes.Buffer, limit int64, timeout time.Duration) (resp *http.Response, stale bool, err error) {
	if c.broken {
		return nil, false, errors.New("http connection: used after a failure")
	}
	reused := c.used
	c.used = true
	c.broken = true // until the request is over
	c.nc.SetDeadline(time.Now().Add(timeout))
	if err := req.Write(c.bw); err != nil {
		return nil, reused, err
	}
	if err := c.bw.Flush(); err != nil {
		return nil, reused, err
	}
	resp, err = http.ReadResponse(c.br, req)
	if err != nil {
		// Nothing of an answer came back: a reused connection's server may
		// have closed it before the request arrived.
		return nil, reused && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)), err
	}
	defer resp.Body.Close()
	body.Reset()
	if n := resp.ContentLength; n > 0 && n <= limit {
		body.Grow(int(n) + bytes.MinRead) // one read, no regrowing
	}
	n, err := body.ReadFrom(io.LimitReader(resp.Body, limit+1))
	switch {
	case err != nil:
		return nil, false, fmt.Errorf("reading the answer: %w", err)
	case n > limit:
		return nil, false, fmt.Errorf("the answer is longer than %d bytes", limit)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body.Bytes()))
	c.nc.SetDeadline(time.Time{})
	c.broken = resp.Close
	c.idle = time.Now()
	return resp, false, nil
}

// Broken reports whether the connection must not carry another request.
func (c *Conn) Broken() bool { return c.broken }

// IdleSince returns when its last request ended (zero if it carried none).
func (c *Conn) IdleSince() time.Time { return c.idle }

// Close closes the connection; it may be called while a request is on it,
// which then fails.
func (c *Conn) Close() error { return c.nc.Close() }
