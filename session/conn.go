package session

import (
	"bytes"
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
	// sendQueue bounds the messages waiting for a client before it is
	// dropped as too slow: a return's burst (joined, what was kept while
	// it was away, and a patient's bundles with no holder yet) and room
	// for the live messages after it.
	sendQueue   = 1 + maxPending + maxPrescriptions + 256
	joinTimeout = 10 * time.Second // from connecting to the join message
	// keptReadBuffer is the largest read buffer a connection keeps for
	// its next message.
	keptReadBuffer = 16 << 10
)

// conn is one client's WebSocket. Its reader (the HTTP server's goroutine,
// in serve) runs the protocol; a writer goroutine, started when there is
// something to send and ending when the queue is empty, sends what the
// room queues, so no client can block a room; a pinger on a timer checks
// the client is alive. An idle connection holds only its reader. serve
// waits for the writer and the pinger before it returns.
type conn struct {
	srv *Server
	ws  *websocket.Conn
	// writer counts the writer goroutine, which runs while there is
	// something to send (kickLocked).
	writer sync.WaitGroup

	room *room // set by room.join; read only by the connection's reader
	role signalapi.Role
	// relayed marks a connection another instance of the group relays:
	// it is served here, never relayed again. relayTo is where a join was
	// found to belong (relay.go).
	relayed bool
	relayTo *member
	// roomID is the room's id once joined, for logs from other goroutines.
	roomID atomic.Pointer[string]

	mu sync.Mutex // guards queue, closing, status and reason
	// queue holds the messages for the writer, at most sendQueue: a slice
	// that grows with what waits, so an idle connection holds no buffer.
	queue   [][]byte
	closing bool // no more messages are queued
	closed  bool // the close was sent, or the connection failed
	writing bool // the writer runs
	status  websocket.StatusCode
	reason  string
}

func newConn(s *Server, ws *websocket.Conn) *conn {
	return &conn{srv: s, ws: ws}
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
	if len(c.queue) >= sendQueue {
		c.srv.log.WarnContext(c.srv.ctx, "dropping a client that does not read its messages", "room", c.logRoom())
		c.closeLocked(websocket.StatusPolicyViolation, "too slow")
		return
	}
	c.queue = append(c.queue, data)
	c.kickLocked()
}

// kickLocked starts the writer unless it runs: it sends what is queued,
// closes the connection when it is closing, and ends when it has nothing
// to do, so that an idle connection holds no goroutine for writing.
func (c *conn) kickLocked() {
	if c.writing {
		return
	}
	c.writing = true
	c.writer.Add(1)
	go c.write()
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
	c.kickLocked()
}

func (c *conn) logRoom() string {
	if id := c.roomID.Load(); id != nil {
		return *id
	}
	return ""
}

// serve runs the connection until it closes, then leaves the room. When
// ctx ends, the connection closes (going away) once its queue is sent.
func (c *conn) serve(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.closeLocked(websocket.StatusGoingAway, "server shutting down")
		c.mu.Unlock()
	})
	defer stop()
	c.ws.SetReadLimit(signalapi.MaxMessageSize + 1) // our own check answers too_large
	pings := startPinging(ctx, c.ws, c.srv.cfg.PingInterval, func(err error) {
		c.srv.log.DebugContext(ctx, "client did not answer a ping", "room", c.logRoom(), "error", err)
		c.ws.CloseNow()
	})
	c.read(ctx)
	c.mu.Lock()
	c.closeLocked(websocket.StatusNormalClosure, "")
	c.mu.Unlock()
	c.writer.Wait() // no writer starts once the connection is closing
	pings.stop()
	if r := c.room; r != nil {
		r.leave(c)
	}
}

// read takes the client's messages until the connection fails or a fatal
// error closes it.
func (c *conn) read(ctx context.Context) {
	lim := rate.NewLimiter(rate.Limit(c.srv.cfg.MessagesPerSecond), c.srv.cfg.MessageBurst)
	var msgs messageBuffer
	joinCtx, cancelJoin := context.WithTimeout(ctx, joinTimeout)
	defer cancelJoin()
	readCtx := joinCtx
	for {
		typ, data, err := msgs.read(readCtx, c.ws)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && c.room == nil {
				c.fail(signalapi.RefuseFatal(signalapi.CodeNotJoined, "no join message within %s", joinTimeout), "")
			}
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
			// Joined: no more join deadline, and reads that set up no
			// watch on a context each (the server's end closes the
			// connection: serve).
			readCtx = context.Background()
		}
	}
}

// messageBuffer reads a connection's messages into one buffer it reuses,
// so that reading a message allocates nothing; a large message's buffer
// is not kept.
type messageBuffer struct{ buf bytes.Buffer }

// read returns the next message of ws, its bytes valid until the next read
// (handling copies what it keeps). It reads at most MaxMessageSize+1
// bytes, so that the protocol's own check answers too_large.
func (b *messageBuffer) read(ctx context.Context, ws *websocket.Conn) (websocket.MessageType, []byte, error) {
	typ, r, err := ws.Reader(ctx)
	if err != nil {
		return 0, nil, err
	}
	b.buf.Reset()
	if _, err := b.buf.ReadFrom(io.LimitReader(r, signalapi.MaxMessageSize+1)); err != nil {
		return 0, nil, err
	}
	data := b.buf.Bytes()
	if b.buf.Cap() > keptReadBuffer {
		b.buf = bytes.Buffer{}
	}
	return typ, data, nil
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

// write sends queued messages, and closes the socket after the last one
// once the connection is closing; it ends when the queue is empty.
func (c *conn) write() {
	defer c.writer.Done()
	var batch [][]byte
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			if c.closing && !c.closed { // what was queued before the close is sent
				c.closed = true
				status, reason := c.status, c.reason
				c.mu.Unlock()
				c.ws.Close(status, reason)
				c.mu.Lock()
			}
			c.writing = false
			c.mu.Unlock()
			return
		}
		batch, c.queue = c.queue, batch[:0]
		c.mu.Unlock()
		for i, data := range batch {
			// No deadline of its own: a client that does not read misses
			// its pings and is closed (which ends the write), and the
			// server's end closes the connection (serve).
			err := c.ws.Write(context.Background(), websocket.MessageText, data)
			batch[i] = nil
			if err != nil {
				c.ws.CloseNow()
				c.mu.Lock()
				c.closeLocked(websocket.StatusInternalError, "")
				c.queue, c.closed, c.writing = nil, true, false
				c.mu.Unlock()
				return
			}
		}
		if cap(batch) > 64 { // a burst's array is not kept for an idle connection
			batch = nil
		}
	}
}

// pinger pings a WebSocket every interval on a timer, so that an idle
// connection holds no goroutine of its own for it: the ping runs on the
// timer's goroutine, which lives only as long as the ping waits for its
// pong.
type pinger struct {
	mu      sync.Mutex // guards stopped and timer's reset
	stopped bool
	timer   *time.Timer
	running sync.WaitGroup // the ping under way, if any
}

// startPinging pings ws every interval until stop, or until a ping is not
// answered within the interval or ctx ends: then it calls failed and
// pings no more.
func startPinging(ctx context.Context, ws *websocket.Conn, interval time.Duration, failed func(error)) *pinger {
	p := &pinger{}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.timer = time.AfterFunc(interval, func() {
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return
		}
		p.running.Add(1)
		p.mu.Unlock()
		defer p.running.Done()
		pctx, cancel := context.WithTimeout(ctx, interval)
		err := ws.Ping(pctx)
		cancel()
		if err != nil {
			failed(err)
			return
		}
		p.mu.Lock()
		if !p.stopped {
			p.timer.Reset(interval)
		}
		p.mu.Unlock()
	})
	return p
}

// stop ends the pings and waits for one under way.
func (p *pinger) stop() {
	p.mu.Lock()
	p.stopped = true
	p.timer.Stop()
	p.mu.Unlock()
	p.running.Wait()
}
