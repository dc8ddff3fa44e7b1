package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/notaryapi"
)

// nodeConn is one keep-alive HTTP/1.1 connection to one node, for the load
// generator: an httpapi.Conn, whose requests pass through no goroutine but
// the caller's, where an http.Client hands each through two of its
// transport's; on a machine that the load generator shares with the
// cluster, what it spends is taken from the cluster. A nodeConn neither
// retries nor follows the leader (notaryapi.Client does), speaks plain HTTP
// only, and is not safe for concurrent use.
type nodeConn struct {
	ctx   context.Context // the dial context: the connection lives as long
	base  *url.URL
	token string
	conn  *httpapi.Conn
	stop  func() bool // ends the watch on the dial context
	buf   bytes.Buffer
	// timeout bounds each request (requestTimeout).
	timeout time.Duration
	// query goes with each submission (without its "?"): the signatures
	// asked.
	query string
}

// dialNode connects to the node at baseURL (http://host:port). When ctx
// ends, the connection is closed and calls in progress fail.
func dialNode(ctx context.Context, baseURL, token string) (*nodeConn, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("a direct connection speaks plain HTTP, not %q", u.Scheme)
	}
	conn, err := httpapi.DialConn(ctx, u.String(), nil)
	if err != nil {
		return nil, err
	}
	c := &nodeConn{ctx: ctx, base: u, token: token, conn: conn, timeout: requestTimeout}
	c.stop = context.AfterFunc(ctx, func() { conn.Close() })
	return c, nil
}

// Close closes the connection.
func (c *nodeConn) Close() error {
	c.stop()
	return c.conn.Close()
}

// Notarize submits one entry to this node and returns its receipt.
func (c *nodeConn) Notarize(e notaryapi.Entry) (*notaryapi.NotarizeResponse, error) {
	if !e.Kind.Valid() {
		return nil, httpapi.Field("kind", "is not a defined kind")
	}
	var out notaryapi.NotarizeResponse
	return &out, c.post("/v1/notarize", e.AppendJSON(nil), out.UnmarshalJSON)
}

// NotarizeBatch submits up to notaryapi.MaxBatchRequest entries to this node and
// returns their receipts in order.
func (c *nodeConn) NotarizeBatch(entries []notaryapi.Entry) (*notaryapi.BatchResponse, error) {
	body, err := notaryapi.AppendBatchJSON(nil, entries)
	if err != nil {
		return nil, err
	}
	var out notaryapi.BatchResponse
	return &out, c.post("/v1/notarize/batch", body, out.UnmarshalJSON)
}

// requestTimeout bounds one request on a direct connection, as
// notaryapi's AttemptTimeout bounds one try of the Go client.
const requestTimeout = 2 * time.Second

// maxAnswer bounds an answer's body: a full batch's receipts.
const maxAnswer = 64 << 20

// post sends one request and decodes a 200 answer with decode; any other
// answer is an *httpapi.Problem. A broken connection stays broken: dial again.
// A node that takes the request and never answers (paused) must not hold
// the client: the request fails at the timeout and the caller tries
// elsewhere.
func (c *nodeConn) post(path string, body []byte, decode func([]byte) error) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	u := *c.base
	u.Path += path
	u.RawQuery = c.query
	req := &http.Request{
		Method: http.MethodPost, URL: &u, Host: u.Host, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + c.token}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
	}
	resp, _, err := c.conn.Do(req, &c.buf, maxAnswer, c.timeout)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return httpapi.ReadProblem(resp)
	}
	return decode(c.buf.Bytes())
}
