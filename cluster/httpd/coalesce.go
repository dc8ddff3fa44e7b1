package httpd

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/notaryapi"
)

// A follower forwards the single notarizations it receives to the leader
// as batches: while one batch is on its way, the submissions that arrive
// wait together and go as the next one (group commit, the leader's own
// pattern, one hop earlier). Each client still gets its own receipt, and
// Existing as the leader would say it (from the batch's first_new).
// Submissions are grouped by what the leader must see of them: the
// client's Authorization header (the leader authorizes and rate-limits
// it) and the signatures asked for.

// maxForwardBatch bounds the entries of one forwarded batch.
const maxForwardBatch = notaryapi.MaxBatchRequest

// forwardsInFlight is how many batches of one lane may be on their way at
// once. One: the next fills while it travels, and reaches the leader as
// one submission, so the leader's raft entries stay as large as when the
// clients ask it directly (with two, each forwarded batch became a raft
// entry of its own: 56% more entries a receipt, each paying its fsyncs
// and signatures on every node; see docs/BENCHMARKS.md).
const forwardsInFlight = 1

// coalescer gathers a follower's forwarded submissions into batches, and
// sends them on direct connections to the leader (httpapi.Conn: a lone
// request then passes through no goroutine of an http.Client's).
type coalescer struct {
	a     *api
	mu    sync.Mutex
	lanes map[laneKey]*lane
	// idle holds the connections to the leader, by its URL, that no batch
	// is on; only the current leader's are kept.
	idle map[string][]*httpapi.Conn
}

// Bounds of the connections a follower forwards on: how many idle ones it
// keeps, and how long one may stay idle (well below the leader's own idle
// timeout, so that the leader does not close one as a batch goes out on
// it).
const (
	maxIdleForward  = 16
	forwardIdleTime = 30 * time.Second
)

// conn returns an idle connection to leader, or a new one, and closes
// those to any other node and those idle too long.
func (c *coalescer) conn(ctx context.Context, leader string) (*httpapi.Conn, error) {
	c.mu.Lock()
	var conn *httpapi.Conn
	for url, conns := range c.idle {
		if url != leader {
			for _, old := range conns {
				old.Close()
			}
			delete(c.idle, url)
			continue
		}
		for len(conns) > 0 && conn == nil {
			conn, conns = conns[len(conns)-1], conns[:len(conns)-1]
			if time.Since(conn.IdleSince()) > forwardIdleTime {
				conn.Close()
				conn = nil
			}
		}
		c.idle[url] = conns
	}
	c.mu.Unlock()
	if conn != nil {
		return conn, nil
	}
	return httpapi.DialConn(ctx, leader, c.a.ForwardTLS)
}

// release keeps conn for the next batch to leader, unless it cannot carry
// one or enough are kept.
func (c *coalescer) release(leader string, conn *httpapi.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if conn.Broken() || len(c.idle[leader]) >= maxIdleForward {
		conn.Close()
		return
	}
	if c.idle == nil {
		c.idle = map[string][]*httpapi.Conn{}
	}
	c.idle[leader] = append(c.idle[leader], conn)
}

// laneKey is what submissions of one batch share.
type laneKey struct {
	auth, query string
}

// lane is the waiting submissions of one key and its batches in flight.
type lane struct {
	waiting  []*forwarded
	inFlight int
}

// forwarded is one submission waiting for its batch's answer.
type forwarded struct {
	entry notaryapi.Entry
	done  chan forwardResult // buffered: the batch never waits for its reader
}

// forwardResult is a submission's receipt as the leader wrote it, or why
// there is none.
type forwardResult struct {
	receipt  notaryapi.RawReceipt
	existing bool
	err      error
}

// AppendJSON appends the client's response (see writeReceipts).
func (f forwardResult) AppendJSON(b []byte) ([]byte, error) {
	return f.receipt.AppendNotarizeResponse(b, f.existing), nil
}

// submit forwards e as part of a batch and returns its receipt.
func (c *coalescer) submit(ctx context.Context, r *http.Request, e notaryapi.Entry) (forwardResult, error) {
	key := laneKey{auth: r.Header.Get("Authorization"), query: r.URL.RawQuery}
	f := &forwarded{entry: e, done: make(chan forwardResult, 1)}
	c.mu.Lock()
	if c.lanes == nil {
		c.lanes = map[laneKey]*lane{}
	}
	l := c.lanes[key]
	if l == nil {
		l = &lane{}
		c.lanes[key] = l
	}
	l.waiting = append(l.waiting, f)
	start := l.inFlight < forwardsInFlight
	if start {
		l.inFlight++
	}
	c.mu.Unlock()
	if start {
		// The submitter that finds a free slot carries the first batch
		// itself (a lone client's request passes no other goroutine);
		// what gathered meanwhile goes on from a goroutine of its own.
		c.send(key, c.next(key, l))
		if batch := c.next(key, l); batch != nil {
			go func() {
				c.send(key, batch)
				c.drain(key, l)
			}()
		}
	}
	select {
	case res := <-f.done:
		return res, res.err
	case <-ctx.Done():
		// The batch goes on without this client; the commitment may be
		// logged, as with any request whose client gave up.
		return forwardResult{}, fmt.Errorf("%w: %v", httpapi.ErrCanceled, ctx.Err())
	}
}

// drain sends the lane's waiting submissions as batches until none wait.
func (c *coalescer) drain(key laneKey, l *lane) {
	for batch := c.next(key, l); batch != nil; batch = c.next(key, l) {
		c.send(key, batch)
	}
}

// next takes the lane's next batch; when none waits it gives the slot
// back and returns nil.
func (c *coalescer) next(key laneKey, l *lane) []*forwarded {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(l.waiting) == 0 {
		l.inFlight--
		if l.inFlight == 0 {
			delete(c.lanes, key)
		}
		return nil
	}
	n := min(len(l.waiting), maxForwardBatch)
	batch := l.waiting[:n:n]
	l.waiting = l.waiting[n:]
	return batch
}

// send forwards one batch to the leader and hands each submission its
// answer.
func (c *coalescer) send(key laneKey, batch []*forwarded) {
	receipts, firstNew, err := c.post(key, batch)
	for i, f := range batch {
		if err != nil {
			f.done <- forwardResult{err: err}
			continue
		}
		f.done <- forwardResult{receipt: receipts[i], existing: receipts[i].Index < firstNew}
	}
	if c.a.Forwarded != nil {
		c.a.Forwarded(len(batch))
	}
}

// post sends the batch request and returns the leader's receipts as it
// wrote them, each checked to be for its entry; the error is the leader's
// problem, or why it could not be asked.
func (c *coalescer) post(key laneKey, batch []*forwarded) (receipts []notaryapi.RawReceipt, firstNew uint64, err error) {
	_, leader := c.a.Cluster.Leader()
	if leader == "" {
		return nil, 0, fmt.Errorf("%w: this node knows no leader", notaryapi.ErrNoLeader)
	}
	entries := make([]notaryapi.Entry, len(batch))
	for i, f := range batch {
		entries[i] = f.entry
	}
	body, err := notaryapi.AppendBatchJSON(nil, entries)
	if err != nil {
		return nil, 0, err
	}
	url := leader + "/v1/notarize/batch"
	if key.query != "" {
		url += "?" + key.query
	}
	ctx, cancel := context.WithTimeout(context.Background(), forwardTimeout)
	defer cancel()
	var data bytes.Buffer
	// A connection kept idle that the leader closed meanwhile fails before
	// any answer: the batch goes again, once, on a new one.
	for retried := false; ; retried = true {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return nil, 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		if key.auth != "" {
			req.Header.Set("Authorization", key.auth)
		}
		req.Header.Set(notaryapi.HeaderForwarded, "1")
		conn, err := c.conn(ctx, leader)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: forwarding to the leader: %v", notaryapi.ErrNoLeader, err)
		}
		resp, stale, err := conn.Do(req, &data, maxForwardAnswer, forwardTimeout)
		if err != nil {
			conn.Close()
			if stale && !retried {
				continue
			}
			return nil, 0, fmt.Errorf("%w: forwarding to the leader: %v", notaryapi.ErrNoLeader, err)
		}
		c.release(leader, conn)
		if resp.StatusCode != http.StatusOK {
			return nil, 0, &leaderAnswer{httpapi.ReadProblem(resp)}
		}
		break
	}
	receipts, firstNew, err = notaryapi.SplitBatchResponse(data.Bytes())
	if err != nil || len(receipts) != len(batch) {
		return nil, 0, fmt.Errorf("%w: the leader's batch answer does not fit the batch (%d receipts for %d entries, %v)", httpapi.ErrInternal, len(receipts), len(batch), err)
	}
	for i, r := range receipts {
		if r.Commitment != entries[i].Commitment {
			return nil, 0, fmt.Errorf("%w: the leader's receipt %d is for another commitment", httpapi.ErrInternal, i)
		}
	}
	return receipts, firstNew, nil
}

// leaderAnswer is the leader's refusal of a forwarded batch: each of its
// clients gets it as the leader gave it (status included: a 503 during an
// election is one to retry).
type leaderAnswer struct{ problem *httpapi.Problem }

func (e *leaderAnswer) Error() string { return e.problem.Error() }

// Bounds of a forwarded batch's round trip: the leader answers within its
// commit timeout, and a batch's answer is at most its receipts.
const (
	forwardTimeout   = 30 * time.Second
	maxForwardAnswer = 64 << 20
)
