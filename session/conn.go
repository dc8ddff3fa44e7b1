package session

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/telenotary/telenotary/session/signalapi"
	"golang.org/x/time/rate"
)

// Connection limits.
const (
	sendQueue    = 256              // messages waiting for a slow client before it is dropped
	writeTimeout = 10 * time.Second // one message write
	joinTimeout  = 10 * time.Second // from connecting to the join message
)

// conn is one client's WebSocket. Its reader (the HTTP server's goroutine,
// in serve) runs the protocol; a writer goroutine sends what the room
// queues, so no client can block a room, and a pinger checks the client
// is alive. serve waits for both before it returns.
type conn struct {
	srv  *Server
	ws   *websocket.Conn
	send chan []byte

	room *room // set by room.join; read only by the connection's reader
	role signalapi.Role
	// relayed marks a connection another instance of the group relays:
	// it is served here, never relayed again. relayTo is where a join was
	// found to belong (relay.go).
	relayed bool
	relayTo *member
	// roomID is the room's id once joined, for logs from other goroutines.
	roomID atomic.Pointer[string]

	mu      sync.Mutex // guards closing, status and reason, and closing send
	closing bool       // no more messages are queued
	status  websocket.StatusCode
	reason  string
}

func newConn(s *Server, ws *websocket.Conn) *conn {
	return &conn{srv: s, ws: ws, send: make(chan []byte, sendQueue)}
}

// seat records the room and role a join gave the connection.
func (c *conn) seat(r *room, role signalapi.Role) {
	c.room, c.role = r, role
	c.roomID.Store(&r.id)
}

// enqueue queues an encoded message without blocking; a client too slow
// to take its messages is disconnected.
func (c *conn) enqueue(data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	select {
	case c.send <- data:
	default:
		c.srv.log.WarnContext(c.srv.ctx, "dropping a client that does not read its messages", "room", c.logRoom())
		c.closeLocked(websocket.StatusPolicyViolation, "too slow")
	}
}

// fail sends an error message, and closes the connection when it is fatal.
// ref is the reference of the message at fault, if it had one.
func (c *conn) fail(e *signalapi.ProtocolError, ref string) {
	c.failAbout(e, ref, "")
}

// failAbout is fail for a message that named a prescription: the error
// echoes its ref, or the commitment of a revoke.
func (c *conn) failAbout(e *signalapi.ProtocolError, ref, commitment string) {
	c.srv.metrics.errors.WithLabelValues(string(e.Code)).Inc()
	c.enqueue(encode(&signalapi.Message{Type: signalapi.TypeError, Code: e.Code, Message: e.Message, Ref: ref, Commitment: commitment}))
	if e.Fatal {
		status := websocket.StatusPolicyViolation
		if e.Code == signalapi.CodeTooLarge {
			status = websocket.StatusMessageTooBig
		}
		c.mu.Lock()
		c.closeLocked(status, string(e.Code))
		c.mu.Unlock()
	}
}

// closeAfterSend closes the connection normally once its queue is sent.
func (c *conn) closeAfterSend() {
	c.mu.Lock()
	c.closeLocked(websocket.StatusNormalClosure, "session ended")
	c.mu.Unlock()
}

// closeLocked stops queueing; the writer sends what is queued, then closes.
func (c *conn) closeLocked(status websocket.StatusCode, reason string) {
	if c.closing {
		return
	}
	c.closing = true
	c.status, c.reason = status, reason
	close(c.send)
}

func (c *conn) logRoom() string {
	if id := c.roomID.Load(); id != nil {
		return *id
	}
	return ""
}

// serve runs the connection until it closes, then leaves the room.
func (c *conn) serve(ctx context.Context) {
	c.ws.SetReadLimit(signalapi.MaxMessageSize + 1) // our own check answers too_large
	writerDone := make(chan struct{})
	go c.write(ctx, writerDone)
	c.read(ctx)
	c.mu.Lock()
	c.closeLocked(websocket.StatusNormalClosure, "")
	c.mu.Unlock()
	<-writerDone
	if r := c.room; r != nil {
		r.leave(c)
	}
}

// read takes the client's messages until the connection fails or a fatal
// error closes it.
func (c *conn) read(ctx context.Context) {
	lim := rate.NewLimiter(rate.Limit(c.srv.cfg.MessagesPerSecond), c.srv.cfg.MessageBurst)
	joinCtx, cancelJoin := context.WithTimeout(ctx, joinTimeout)
	defer cancelJoin()
	readCtx := joinCtx
	for {
		typ, r, err := c.ws.Reader(readCtx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && c.room == nil {
				c.fail(signalapi.RefuseFatal(signalapi.CodeNotJoined, "no join message within %s", joinTimeout), "")
			}
			return
		}
		data, err := io.ReadAll(io.LimitReader(r, signalapi.MaxMessageSize+1))
		if err != nil {
			return
		}
		if !lim.Allow() {
			c.fail(signalapi.RefuseFatal(signalapi.CodeRateLimited, "more than %d messages a second", c.srv.cfg.MessagesPerSecond), "")
			return
		}
		if typ != websocket.MessageText {
			c.fail(signalapi.Refuse(signalapi.CodeBadMessage, "binary messages are not part of the protocol"), "")
			continue
		}
		c.srv.metrics.messages.Inc()
		if !c.take(data) {
			if to := c.relayTo; to != nil {
				c.relayTo = nil
				if c.relay(ctx, to, data, lim) && c.take(data) {
					continue // its instance was down: served here
				}
			}
			return
		}
		if c.room != nil && readCtx == joinCtx {
			readCtx = ctx // joined: no more join deadline
		}
	}
}

// take decodes and handles one message, answering an error message for a
// refusal; it reports whether the connection stays open.
func (c *conn) take(data []byte) bool {
	m, err := signalapi.DecodeClientMessage(data)
	ref, commitment := "", ""
	if m != nil { // also a prescription refused for its resource
		ref = m.Ref
		if m.Type == signalapi.TypeRevoke {
			commitment = m.Commitment
		}
	}
	if err == nil {
		err = c.handle(m)
	}
	if err == nil {
		return true
	}
	if r, ok := err.(*relayTo); ok {
		c.relayTo = r.to
		return false
	}
	var pe *signalapi.ProtocolError
	if !errors.As(err, &pe) { // every refusal is one; anything else is a fault
		c.srv.log.ErrorContext(c.srv.ctx, "message not handled", "room", c.logRoom(), "error", err)
		pe = signalapi.Refuse(signalapi.CodeBadMessage, "%v", err)
	}
	c.failAbout(pe, ref, commitment)
	return !pe.Fatal
}

func (c *conn) handle(m *signalapi.Message) error {
	if c.room == nil {
		if m.Type != signalapi.TypeJoin {
			return signalapi.Refuse(signalapi.CodeNotJoined, "send join with your room token before %s", m.Type)
		}
		if !c.relayed && c.relayTo == nil {
			if to := c.srv.place(m); to != nil {
				return &relayTo{to: to}
			}
		}
		return c.srv.join(c, m)
	}
	return c.room.handle(c, m)
}

// write sends queued messages and closes the socket after the last one. It
// runs the pinger and waits for it.
func (c *conn) write(ctx context.Context, done chan struct{}) {
	defer close(done)
	stopPing, pingDone := make(chan struct{}), make(chan struct{})
	go c.ping(ctx, stopPing, pingDone)
	defer func() { close(stopPing); <-pingDone }()
	for {
		select {
		case data, ok := <-c.send:
			if !ok {
				c.mu.Lock()
				status, reason := c.status, c.reason
				c.mu.Unlock()
				c.ws.Close(status, reason)
				return
			}
			wctx, cancel := context.WithTimeout(ctx, writeTimeout)
			err := c.ws.Write(wctx, websocket.MessageText, data)
			cancel()
			if err != nil {
				c.ws.CloseNow()
				c.drain()
				return
			}
		case <-ctx.Done():
			c.ws.Close(websocket.StatusGoingAway, "server shutting down")
			c.drain()
			return
		}
	}
}

// ping checks that the client is alive; one that does not answer within a
// ping interval is disconnected (and may come back within the grace
// window). It closes done when it returns.
func (c *conn) ping(ctx context.Context, stop, done chan struct{}) {
	defer close(done)
	if err := keepPinging(ctx, c.ws, c.srv.cfg.PingInterval, stop); err != nil {
		c.srv.log.DebugContext(ctx, "client did not answer a ping", "room", c.logRoom(), "error", err)
		c.ws.CloseNow()
	}
}

// keepPinging pings ws every interval until stop or ctx ends (nil), or a
// ping is not answered within the interval (its error).
func keepPinging(ctx context.Context, ws *websocket.Conn, interval time.Duration, stop <-chan struct{}) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return nil
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, interval)
			err := ws.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
		}
	}
}

// drain marks the connection closed after the writer stopped early.
func (c *conn) drain() {
	c.mu.Lock()
	c.closeLocked(websocket.StatusInternalError, "")
	c.mu.Unlock()
	for range c.send {
	}
}
