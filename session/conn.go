package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
)

// Connection limits.
const (
	sendQueue    = 256              // messages waiting for a slow client before it is dropped
	writeTimeout = 10 * time.Second // one message write
	joinTimeout  = 10 * time.Second // from connecting to the join message
)

// conn is one client's WebSocket. Its reader runs the protocol; a writer
// goroutine sends what the room queues, so no client can block a room.
type conn struct {
	srv  *Server
	ws   *websocket.Conn
	send chan []byte
	done chan struct{} // closed when the connection is finished

	room *room // set by room.join; read only by the connection's reader
	role int
	// roomID is the room's id once joined, for logs from other goroutines.
	roomID atomic.Pointer[string]

	closeOnce sync.Once
	mu        sync.Mutex
	closing   bool // no more messages are queued
	status    websocket.StatusCode
	reason    string
}

// encode writes a message as JSON without escaping <, > and & for HTML,
// so a bundle reaches the client as it was notarized.
func encode(m *Message) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil { // a Message always encodes
		panic(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
}

// enqueue queues a message without blocking; a client too slow to take its
// messages is disconnected.
func (c *conn) enqueue(data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	select {
	case c.send <- data:
	default:
		c.srv.log.Warn("dropping a client that does not read its messages", "room", c.logRoom())
		c.closeLocked(websocket.StatusPolicyViolation, "too slow")
	}
}

// fail sends an error message, and closes the connection when it is fatal.
// ref is the reference of the message at fault, if it had one.
func (c *conn) fail(e *ProtocolError, ref string) {
	c.srv.metrics.errors.WithLabelValues(e.Code).Inc()
	c.enqueue(encode(&Message{Type: TypeError, Code: e.Code, Message: e.Message, Ref: ref}))
	if e.Fatal {
		status := websocket.StatusPolicyViolation
		if e.Code == CodeTooLarge {
			status = websocket.StatusMessageTooBig
		}
		c.mu.Lock()
		c.closeLocked(status, e.Code)
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

// serve runs the connection until it closes.
func (c *conn) serve(ctx context.Context) {
	defer close(c.done)
	c.ws.SetReadLimit(MaxMessageSize + 1) // our own check answers too_large
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

func (c *conn) read(ctx context.Context) {
	lim := rate.NewLimiter(rate.Limit(c.srv.cfg.MessagesPerSecond), c.srv.cfg.MessageBurst)
	joinCtx, cancelJoin := context.WithTimeout(ctx, joinTimeout)
	defer cancelJoin()
	readCtx := joinCtx
	for {
		typ, r, err := c.ws.Reader(readCtx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && c.room == nil {
				c.fail(fatalErr(CodeNotJoined, "no join message within %s", joinTimeout), "")
			}
			return
		}
		data, err := io.ReadAll(io.LimitReader(r, MaxMessageSize+1))
		if err != nil {
			return
		}
		if !lim.Allow() {
			c.fail(fatalErr(CodeRateLimited, "more than %d messages a second", c.srv.cfg.MessagesPerSecond), "")
			return
		}
		if typ != websocket.MessageText {
			c.fail(protoErr(CodeBadMessage, "binary messages are not part of the protocol"), "")
			continue
		}
		c.srv.metrics.messages.Inc()
		m, err := DecodeClientMessage(data)
		ref := ""
		if err == nil {
			ref = m.Ref
			err = c.handle(m)
			if err == nil && c.room != nil && readCtx == joinCtx {
				readCtx = ctx
			}
		}
		var pe *ProtocolError
		if errors.As(err, &pe) {
			c.fail(pe, ref)
			if pe.Fatal {
				return
			}
		} else if err != nil {
			c.fail(protoErr(CodeBadMessage, "%v", err), ref)
		}
	}
}

func (c *conn) handle(m *Message) error {
	if c.room == nil {
		if m.Type != TypeJoin {
			return protoErr(CodeNotJoined, "send join with your room token before %s", m.Type)
		}
		return c.srv.join(c, m)
	}
	return c.room.handle(c, m)
}

// write sends queued messages and closes the socket after the last one.
func (c *conn) write(ctx context.Context, done chan struct{}) {
	defer close(done)
	stopPing := make(chan struct{})
	defer close(stopPing)
	go c.ping(ctx, stopPing)
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
// ping interval is disconnected (and may come back within the grace window).
func (c *conn) ping(ctx context.Context, stop chan struct{}) {
	t := time.NewTicker(c.srv.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, c.srv.cfg.PingInterval)
			err := c.ws.Ping(pctx)
			cancel()
			if err != nil {
				c.srv.log.Debug("client did not answer a ping", "room", c.logRoom(), "err", err)
				c.ws.CloseNow()
				return
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
