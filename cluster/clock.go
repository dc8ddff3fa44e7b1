package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/telenotary/telenotary/cluster/notaryapi"
)

// The time guard. A leader stamps every batch with its clock (never going
// back), so one node whose clock is wrong would freeze the log's time or
// push it forward for every later receipt. Every node compares its clock
// with the other members' a few times a second (GET /v1/time, halfway
// through the round trip), and a leader stamps only while its clock agrees,
// within Config.MaxClockSkew, with those of a majority of the voters,
// itself included, and while the log's newest time is not ahead of it.
// Otherwise it refuses writes with 503 and an alert, hands leadership to a
// voter whose clock agrees, and stamps nothing.

// clockInterval is how often a node compares its clock with its peers'.
const clockInterval = 500 * time.Millisecond

// clockFresh is how long a comparison stands: a leader whose last one is
// older does not stamp.
const clockFresh = 5 * time.Second

// peerProbeTimeout bounds one question to a peer about its clock; a
// peer's last answer stands for peerFresh when a question goes unanswered
// (a loaded machine), so a slow peer is not taken for one whose clock
// disagrees.
const (
	peerProbeTimeout = 2 * time.Second
	peerFresh        = 10 * time.Second
)

// peerClock is a peer's clock as last measured.
type peerClock struct {
	offset, uncertainty time.Duration
	at                  time.Time // when measured (this machine's monotonic clock)
}

// agrees reports whether the peer's clock agrees with this node's.
func (p peerClock) agrees(bound time.Duration) bool { return p.offset.Abs() <= bound+p.uncertainty }

// clockGuard holds a node's latest comparison of its clock with the others'.
type clockGuard struct {
	now    func() time.Time
	bound  time.Duration
	client *http.Client

	mu       sync.Mutex           // guards below
	checked  time.Time            // by now, when the last comparison finished
	agrees   bool                 // a majority of voters, this node included, agrees with its clock
	outvoted bool                 // a majority of the peers heard from disagrees with this node's clock
	peers    map[string]peerClock // the peers' clocks measured within peerFresh
	voters   int
}

// peerTime asks a peer's API for its clock and returns how far it is from
// this node's, counted at the middle of the round trip, and the
// uncertainty: half the round trip.
func (g *clockGuard) peerTime(ctx context.Context, base string) (offset, uncertainty time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, peerProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/time", nil)
	if err != nil {
		return 0, 0, err
	}
	t0 := g.now()
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var body notaryapi.TimeResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<10)).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("GET %s/v1/time: HTTP %d %v", base, resp.StatusCode, err)
	}
	t1 := g.now()
	mid := t0.Add(t1.Sub(t0) / 2)
	return time.UnixMilli(body.UnixMillis).Sub(mid), t1.Sub(t0)/2 + time.Millisecond, nil
}

// compare measures the clocks of the voters it knows the addresses of
// against this node's, and records whether a majority of all voters
// (voterCount, this node among them) agrees with it.
func (g *clockGuard) compare(ctx context.Context, self string, voters []notaryapi.MemberInfo, voterCount int) {
	type answer struct {
		id                  string
		offset, uncertainty time.Duration
		err                 error
	}
	answers := make(chan answer, len(voters))
	var wg sync.WaitGroup
	for _, m := range voters {
		if m.ID == self {
			continue
		}
		wg.Go(func() {
			off, unc, err := g.peerTime(ctx, m.HTTPAddr)
			answers <- answer{m.ID, off, unc, err}
		})
	}
	wg.Wait()
	close(answers)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.peers == nil {
		g.peers = map[string]peerClock{}
	}
	now := time.Now()
	for a := range answers {
		if a.err == nil {
			g.peers[a.id] = peerClock{offset: a.offset, uncertainty: a.uncertainty, at: now}
		}
	}
	agree, disagree := 1, 0 // this node agrees with itself
	for id, p := range g.peers {
		switch {
		case now.Sub(p.at) > peerFresh || !slices.ContainsFunc(voters, func(m notaryapi.MemberInfo) bool { return m.ID == id }):
			delete(g.peers, id) // not heard from lately, or no longer a voter
		case p.agrees(g.bound):
			agree++
		default:
			disagree++
		}
	}
	g.checked, g.voters = g.now(), max(voterCount, 1)
	g.agrees = agree > g.voters/2
	g.outvoted = disagree > 0 && disagree >= agree
}

// check says whether this node may stamp now, with a log whose newest
// leaf has timestamp lastMillis: nil, or an error wrapping ErrClockSkew or
// ErrLogTimeAhead.
func (g *clockGuard) check(lastMillis int64) error {
	now := g.now()
	g.mu.Lock()
	agrees, checked := g.agrees, g.checked
	g.mu.Unlock()
	switch {
	case now.Sub(checked) > clockFresh || checked.Sub(now) > clockFresh:
		return fmt.Errorf("%w: this node has not compared its clock with the cluster's since %s", notaryapi.ErrClockSkew, checked.UTC().Format(time.RFC3339))
	case !agrees:
		return fmt.Errorf("%w: this node's clock does not agree with a majority of the cluster's within %v; it stamps nothing until it does", notaryapi.ErrClockSkew, g.bound)
	case time.UnixMilli(lastMillis).Sub(now) > g.bound:
		return fmt.Errorf("%w: the log's newest leaf is stamped %s, %v ahead of the cluster's clock; see OPERATIONS.md, \"A log stamped in the future\"",
			notaryapi.ErrLogTimeAhead, time.UnixMilli(lastMillis).UTC().Format(time.RFC3339), time.UnixMilli(lastMillis).Sub(now).Round(time.Second))
	}
	return nil
}

// alerts describes what an operator must know of the clocks: this node's
// own disagreement, peers whose clocks are off, a log stamped ahead.
func (g *clockGuard) alerts(id string, lastMillis int64) []notaryapi.Alert {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []notaryapi.Alert
	if !g.checked.IsZero() && !g.agrees {
		out = append(out, notaryapi.Alert{Kind: notaryapi.AlertClockSkew, Node: id,
			Message: fmt.Sprintf("%s's clock does not agree with a majority of the cluster's within %v: as leader it would stamp nothing", id, g.bound)})
	}
	for peer, p := range g.peers {
		if !p.agrees(g.bound) {
			out = append(out, notaryapi.Alert{Kind: notaryapi.AlertClockSkew, Node: peer,
				Message: fmt.Sprintf("%s's clock is %v from %s's", peer, p.offset.Round(time.Millisecond), id)})
		}
	}
	if ahead := time.UnixMilli(lastMillis).Sub(now); ahead > g.bound {
		out = append(out, notaryapi.Alert{Kind: notaryapi.AlertLogTimeAhead, Node: id,
			Message: fmt.Sprintf("the log's newest leaf is stamped %v ahead of %s's clock: no leader stamps until that time has passed", ahead.Round(time.Second), id)})
	}
	return out
}

// watchClock compares this node's clock with the others' every
// clockInterval until ctx ends; a leader whose clock disagrees hands
// leadership to a voter whose clock agrees with the majority.
func (n *Node) watchClock(ctx context.Context) {
	tick := time.NewTicker(clockInterval)
	defer tick.Stop()
	var lastHandOff time.Time
	for {
		_, members := n.fsm.clusterInfo()
		voters, count := n.voters(members)
		n.clock.compare(ctx, n.cfg.ID, voters, count)
		if n.raft.State() == raft.Leader && n.clock.isOutvoted() && time.Since(lastHandOff) > 5*time.Second {
			if to := n.clock.agreeingPeer(); to != "" {
				lastHandOff = time.Now()
				n.logger.WarnContext(ctx, "this node's clock disagrees with the cluster's: handing leadership on", "to", to)
				if err := n.Transfer(ctx, to); err != nil {
					n.logger.WarnContext(ctx, "leadership hand-off failed", "to", to, "error", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// isOutvoted reports whether the peers heard from lately disagree with
// this node's clock, more of them than agree: this node's clock is the
// one that is off, and it should not lead. A peer that does not answer is
// no vote either way.
func (g *clockGuard) isOutvoted() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.outvoted
}

// agreeingPeer names a peer to hand leadership to when this node's clock
// is the one that is off: the one closest to the others' mean offset.
func (g *clockGuard) agreeingPeer() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.peers) == 0 {
		return ""
	}
	var sum time.Duration
	for _, p := range g.peers {
		sum += p.offset
	}
	mean := sum / time.Duration(len(g.peers))
	best, bestDist := "", time.Duration(-1)
	for id, p := range g.peers {
		if d := (p.offset - mean).Abs(); bestDist < 0 || d < bestDist {
			best, bestDist = id, d
		}
	}
	return best
}

// voters returns the members that vote in raft's configuration and the
// number of voters (some may have no member record yet); with no
// configuration to read, all members.
func (n *Node) voters(members []notaryapi.MemberInfo) ([]notaryapi.MemberInfo, int) {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return members, len(members)
	}
	voting := map[string]bool{}
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voting[string(s.ID)] = true
		}
	}
	var out []notaryapi.MemberInfo
	for _, m := range members {
		if voting[m.ID] {
			out = append(out, m)
		}
	}
	return out, len(voting)
}
