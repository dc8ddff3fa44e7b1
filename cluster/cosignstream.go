package cluster

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/telenotary/telenotary/notary"
)

// cosignStreams follows, on the leader, each follower's stream of signed
// checkpoints (GET /v1/checkpoint/stream), so that a gathering finds a
// follower's signature over a batch's checkpoint as soon as the follower
// has applied the batch, a round trip sooner than by asking for it. A
// stream opens at the first gathering that wants it and closes when no
// gathering has used it for streamIdle, when it fails (the next gathering
// opens it again) or when the node stops.
type cosignStreams struct {
	client *http.Client // no overall timeout: a stream lasts
	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup // the streams' readers
	mu     sync.Mutex
	by     map[string]*cosignStream // by member ID
}

// cosignStream is one follower's stream: the notes it sent lately, by
// checkpoint size.
type cosignStream struct {
	url     string
	mu      sync.Mutex
	recent  map[uint64][]byte
	newest  uint64        // the largest size it sent
	up      bool          // a reader follows it
	ended   time.Time     // when its reader last stopped
	changed chan struct{} // closed and replaced when a note comes or the stream ends
	used    time.Time     // when a gathering last waited on it
}

const (
	// streamKeep is how many sizes below its newest a stream remembers.
	streamKeep = 64
	// streamIdle is how long a stream no gathering waits on stays open.
	streamIdle = 30 * time.Second
	// streamRetry is how soon a stream that stopped is opened again.
	streamRetry = time.Second
	// maxStreamNote bounds a note read from a stream.
	maxStreamNote = 64 << 10
)

// newCosignStreams follows streams with client's transport.
func newCosignStreams(client *http.Client) *cosignStreams {
	ctx, stop := context.WithCancel(context.Background())
	return &cosignStreams{client: &http.Client{Transport: client.Transport}, ctx: ctx, stop: stop, by: map[string]*cosignStream{}}
}

// close ends every stream and waits for their readers.
func (c *cosignStreams) close() {
	c.stop()
	c.wg.Wait()
}

// wait returns member's note over the checkpoint of size from its stream
// (served at url), once the stream has it. It reports false when the
// stream is not up (it opens it then, for the next gatherings, unless it
// stopped within streamRetry), passed size without it (the follower
// applied several batches at once), or sent nothing of size within limit:
// the caller asks instead. A nil cosignStreams follows none.
func (c *cosignStreams) wait(ctx context.Context, member, url string, size uint64, limit time.Duration) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	s := c.by[member]
	if s == nil || s.url != url {
		s = &cosignStream{url: url, recent: map[uint64][]byte{}, changed: make(chan struct{})}
		c.by[member] = s
	}
	c.mu.Unlock()
	s.mu.Lock()
	s.used = time.Now()
	if !s.up {
		if c.ctx.Err() == nil && time.Since(s.ended) > streamRetry {
			s.up = true
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				c.follow(s)
			}()
		}
		s.mu.Unlock()
		return nil, false
	}
	s.mu.Unlock()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		s.mu.Lock()
		note, have := s.recent[size]
		passed, up, changed := s.newest >= size, s.up, s.changed
		s.mu.Unlock()
		switch {
		case have:
			return note, true
		case passed || !up:
			return nil, false
		}
		select {
		case <-changed:
		case <-timer.C:
			return nil, false
		case <-ctx.Done():
			return nil, false
		}
	}
}

// follow reads s's stream until it fails, ends, or no gathering used it
// for streamIdle, remembering each note by its size.
func (c *cosignStreams) follow(s *cosignStream) {
	defer func() {
		s.mu.Lock()
		s.up, s.ended = false, time.Now()
		s.recent, s.newest = map[uint64][]byte{}, 0
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
	}()
	req, err := http.NewRequestWithContext(c.ctx, http.MethodGet, s.url+"/v1/checkpoint/stream", nil)
	if err != nil {
		return
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return
	}
	br := bufio.NewReader(resp.Body)
	for {
		note, err := readStreamNote(br)
		if err != nil {
			return
		}
		s.mu.Lock()
		idle := time.Since(s.used) > streamIdle
		s.mu.Unlock()
		if idle {
			return
		}
		if note == nil {
			continue // a keep-alive
		}
		cp, err := notary.ParseSignedCheckpoint(note)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.recent[cp.Size] = note
		s.newest = max(s.newest, cp.Size)
		for size := range s.recent {
			if size+streamKeep < s.newest {
				delete(s.recent, size)
			}
		}
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
	}
}

// errBadStream is a checkpoint stream's frame that is not one.
var errBadStream = errors.New("checkpoint stream: bad frame")

// readStreamNote reads one frame of a checkpoint stream: a line with the
// note's length in bytes, then the note; nil for a keep-alive (length 0).
func readStreamNote(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n') // at most the reader's buffer
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSuffix(string(line), "\n"))
	if err != nil || n < 0 || n > maxStreamNote {
		return nil, errBadStream
	}
	if n == 0 {
		return nil, nil
	}
	note := make([]byte, n)
	if _, err := io.ReadFull(br, note); err != nil {
		return nil, err
	}
	return note, nil
}
