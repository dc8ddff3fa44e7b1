package httpd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
// once: one fills while the other travels.
const forwardsInFlight = 2

// coalescer gathers a follower's forwarded submissions into batches.
type coalescer struct {
	a     *api
	mu    sync.Mutex
	lanes map[laneKey]*lane
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

type forwardResult struct {
	resp notaryapi.NotarizeResponse
	err  error
}

// submit forwards e as part of a batch and returns its receipt.
func (c *coalescer) submit(ctx context.Context, r *http.Request, e notaryapi.Entry) (notaryapi.NotarizeResponse, error) {
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
		go c.drain(key, l)
	}
	select {
	case res := <-f.done:
		return res.resp, res.err
	case <-ctx.Done():
		// The batch goes on without this client; the commitment may be
		// logged, as with any request whose client gave up.
		return notaryapi.NotarizeResponse{}, fmt.Errorf("%w: %v", httpapi.ErrCanceled, ctx.Err())
	}
}

// drain sends the lane's waiting submissions as batches until none wait.
func (c *coalescer) drain(key laneKey, l *lane) {
	for {
		c.mu.Lock()
		if len(l.waiting) == 0 {
			l.inFlight--
			if l.inFlight == 0 {
				delete(c.lanes, key)
			}
			c.mu.Unlock()
			return
		}
		n := min(len(l.waiting), maxForwardBatch)
		batch := l.waiting[:n:n]
		l.waiting = l.waiting[n:]
		c.mu.Unlock()
		c.send(key, batch)
	}
}

// send forwards one batch to the leader and hands each submission its
// answer.
func (c *coalescer) send(key laneKey, batch []*forwarded) {
	resp, err := c.post(key, batch)
	for i, f := range batch {
		if err != nil {
			f.done <- forwardResult{err: err}
			continue
		}
		r := resp.Receipts[i]
		f.done <- forwardResult{resp: notaryapi.NotarizeResponse{Receipt: r, Existing: r.Index < resp.FirstNew}}
	}
	if c.a.Forwarded != nil {
		c.a.Forwarded(len(batch))
	}
}

// post sends the batch request; the error is the leader's problem, or why
// it could not be asked.
func (c *coalescer) post(key laneKey, batch []*forwarded) (*notaryapi.BatchResponse, error) {
	_, leader := c.a.Cluster.Leader()
	if leader == "" {
		return nil, fmt.Errorf("%w: this node knows no leader", notaryapi.ErrNoLeader)
	}
	entries := make([]notaryapi.Entry, len(batch))
	for i, f := range batch {
		entries[i] = f.entry
	}
	body, err := json.Marshal(notaryapi.BatchRequest{Entries: entries})
	if err != nil {
		return nil, err
	}
	url := leader + "/v1/notarize/batch"
	if key.query != "" {
		url += "?" + key.query
	}
	ctx, cancel := context.WithTimeout(context.Background(), forwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if key.auth != "" {
		req.Header.Set("Authorization", key.auth)
	}
	req.Header.Set(notaryapi.HeaderForwarded, "1")
	resp, err := c.a.Forward.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: forwarding to the leader: %v", notaryapi.ErrNoLeader, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &leaderAnswer{httpapi.ReadProblem(resp)}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxForwardAnswer))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the leader's answer: %v", notaryapi.ErrNoLeader, err)
	}
	var out notaryapi.BatchResponse
	if err := out.UnmarshalJSON(data); err != nil || len(out.Receipts) != len(batch) {
		return nil, fmt.Errorf("%w: the leader's batch answer does not fit the batch (%v)", httpapi.ErrInternal, err)
	}
	for i, r := range out.Receipts {
		if r == nil || r.Leaf.Commitment != entries[i].Commitment {
			return nil, fmt.Errorf("%w: the leader's receipt %d is for another commitment", httpapi.ErrInternal, i)
		}
	}
	return &out, nil
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
