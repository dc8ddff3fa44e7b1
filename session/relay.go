package session

import (
	"context"
	"errors"
	"net/http"

	"github.com/coder/websocket"
	"github.com/telenotary/telenotary/session/signalapi"
	"golang.org/x/time/rate"
)

// A client whose room another instance of the group holds (group.go) is
// relayed there: this instance opens a WebSocket to it, sends the join
// message as it came, then passes every message on, both ways, until
// either side closes. The instance that holds the room does all the
// checking; this one keeps its own bounds on the client (size, rate,
// slow reader). When the room's instance goes away, the client is told to
// come back (close status 1012, service restart): its ticket then brings
// it to the room's successor.

// relayTo is the answer of handle to a join that another instance serves.
type relayTo struct{ to *member }

func (r *relayTo) Error() string { return "relayed to " + r.to.Name }

// maxRelayDials bounds the instances tried for one join, each found down
// by a failed dial, before the join is served here.
const maxRelayDials = 3

// relay serves the connection by passing it on to the instance that holds
// its room, first sending the join message data. It returns when either
// side closes, or at once with local true when every instance it tried
// was down and the join's room is now this instance's to serve.
func (c *conn) relay(ctx context.Context, to *member, join []byte, lim *rate.Limiter) (local bool) {
	s := c.srv
	var up *websocket.Conn
	for tries := 0; ; tries++ {
		dctx, cancel := context.WithTimeout(ctx, joinTimeout)
		var err error
		up, _, err = websocket.Dial(dctx, to.signalURL, &websocket.DialOptions{
			HTTPClient: s.cfg.PeerClient,
			HTTPHeader: http.Header{signalapi.RelayHeader: {s.relayProof()}},
		})
		cancel()
		if err == nil {
			break
		}
		// Down, or only too busy to take the connection? Ask it, as the
		// probes do: a room moves only away from an instance that is gone.
		if s.group.probe(ctx, to); isUp(to) {
			s.log.Warn("the instance of a room refused a relayed connection", "instance", to.Name, "error", err)
			c.mu.Lock()
			c.closeLocked(websocket.StatusTryAgainLater, "the signalling instance of this room is busy: try again")
			c.mu.Unlock()
			return false
		}
		m, _ := signalapi.DecodeClientMessage(join)
		if m == nil || tries+1 >= maxRelayDials {
			c.fail(signalapi.RefuseFatal(signalapi.CodeShuttingDown, "the signalling instance that holds this room does not answer; try again"), "")
			return false
		}
		if to = s.place(m); to == nil { // its successor is this instance
			return true
		}
	}
	defer up.CloseNow()
	up.SetReadLimit(-1) // the room's instance bounds what it sends
	s.metrics.relayed.Inc()
	defer s.metrics.relayed.Dec()
	if err := up.Write(ctx, websocket.MessageText, join); err != nil {
		c.fail(signalapi.RefuseFatal(signalapi.CodeShuttingDown, "the signalling instance that holds this room does not answer; try again"), "")
		return false
	}
	upDone := make(chan struct{})
	go func() {
		defer close(upDone)
		for {
			_, data, err := up.Read(context.Background()) // CloseNow on return ends it
			if err != nil {
				c.upstreamClosed(ctx, to, err)
				return
			}
			c.enqueue(data)
		}
	}()
	pings := startPinging(ctx, up, s.cfg.PingInterval, func(error) { up.CloseNow() })
	defer pings.stop()
	// Reads and writes set up no watch on ctx each: the server's end
	// closes the client's connection (serve), which ends this loop.
	var msgs messageBuffer
	for {
		typ, data, err := msgs.read(context.Background(), c.ws)
		if err != nil {
			break
		}
		if !lim.Allow() {
			c.fail(signalapi.RefuseFatal(signalapi.CodeRateLimited, "more than %d messages a second", s.cfg.MessagesPerSecond), "")
			break
		}
		if len(data) > signalapi.MaxMessageSize {
			c.fail(signalapi.RefuseFatal(signalapi.CodeTooLarge, "message is larger than %d bytes", signalapi.MaxMessageSize), "")
			break
		}
		s.metrics.messages.Inc()
		if err := up.Write(context.Background(), typ, data); err != nil {
			break
		}
	}
	// The client went (or was dropped): the room's instance sees the
	// relayed connection close as the client's own.
	up.Close(websocket.StatusNormalClosure, "")
	<-upDone
	return false
}

// upstreamClosed ends the client's connection as the room's instance
// ended the relayed one: with its close status when it closed it, or, when
// the instance went away, with 1012 so that the client comes back with its
// ticket (and finds the room's successor).
func (c *conn) upstreamClosed(ctx context.Context, to *member, err error) {
	status := websocket.CloseStatus(err)
	var ce websocket.CloseError
	closed := status != -1 && errors.As(err, &ce)
	if !closed && ctx.Err() == nil {
		c.srv.group.probe(ctx, to) // down, or only this connection lost?
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case ctx.Err() != nil: // this server is stopping; the writer says so
	case closed:
		c.closeLocked(status, ce.Reason)
	default:
		c.closeLocked(websocket.StatusServiceRestart, "the signalling instance of this room went away: join again with your ticket")
	}
}
