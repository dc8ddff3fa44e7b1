package tui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/session/signalapi"
)

// nodeState is what the console knows of one configured node.
type nodeState struct {
	url string
	// st is the last status the node answered; err is why the last poll
	// failed (nil when it answered).
	st      *notaryapi.Status
	err     error
	lastOK  time.Time
	failing time.Time // when polls started failing (zero when answering)
	// inFlight is true while a poll is out: a slow node gets no second.
	inFlight bool
	// down and lagging are what the alerts last said of the node.
	down, lagging bool
}

// name is the node's id once known, else its address.
func (n *nodeState) name() string {
	if n.st != nil && n.st.ID != "" {
		return n.st.ID
	}
	return hostOf(n.url)
}

func (n *nodeState) reachable() bool { return n.err == nil && n.st != nil }

// hostOf strips the scheme of a URL for display.
func hostOf(u string) string {
	if _, rest, ok := strings.Cut(u, "://"); ok {
		return rest
	}
	return u
}

// series counts something per second over the last seriesLen seconds.
type series struct {
	secs   [seriesLen]int64
	counts [seriesLen]uint64
	total  uint64
}

const seriesLen = 600

func (s *series) add(at time.Time, n uint64) {
	sec := at.Unix()
	i := sec % seriesLen
	if s.secs[i] != sec {
		s.secs[i], s.counts[i] = sec, 0
	}
	s.counts[i] += n
	s.total += n
}

// at returns the count of the second sec.
func (s *series) at(sec int64) uint64 {
	if i := sec % seriesLen; sec >= 0 && s.secs[i] == sec {
		return s.counts[i]
	}
	return 0
}

// sum returns the count of the d before now's second (that second, still
// filling, excluded).
func (s *series) sum(now time.Time, d time.Duration) uint64 {
	var total uint64
	end := now.Unix()
	for sec := end - int64(d/time.Second); sec < end; sec++ {
		total += s.at(sec)
	}
	return total
}

// alert is one line of the Alerts tab.
type alert struct {
	at     time.Time
	level  level
	source string // cluster, console, signal
	text   string
}

type level int

const (
	levelInfo level = iota
	levelWarn
	levelBad
)

func (l level) String() string {
	switch l {
	case levelWarn:
		return "WARN"
	case levelBad:
		return "ALERT"
	}
	return "info"
}

const (
	maxAlerts    = 500
	maxFeed      = 2000
	feedOnResume = 500 // the feed keeps this many once unpaused
)

// feedItem is one notarization of the feed, with the texts the filter
// matches, made once.
type feedItem struct {
	leaf         notaryapi.LeafInfo
	kind, commit string
}

// feedState is the live feed: newest last. While paused, new items are
// counted and kept (up to maxFeed) but not shown.
type feedState struct {
	items  []feedItem
	paused bool
	shown  int // items visible while paused
	missed uint64
}

func (f *feedState) add(leaves []notaryapi.LeafInfo) {
	for _, l := range leaves {
		if f.paused && len(f.items) >= maxFeed {
			f.missed++
			continue
		}
		f.items = append(f.items, feedItem{leaf: l, kind: l.Kind.String(), commit: l.Commitment.String()})
	}
	if !f.paused && len(f.items) > maxFeed {
		f.items = slices.Delete(f.items, 0, len(f.items)-feedOnResume)
	}
}

func (f *feedState) togglePause() {
	f.paused = !f.paused
	if f.paused {
		f.shown = len(f.items)
		return
	}
	f.missed = 0
	if len(f.items) > maxFeed {
		f.items = slices.Delete(f.items, 0, len(f.items)-feedOnResume)
	}
}

// visible returns, newest first, the filtered items from the skip-th to
// at most limit of them, and how many match in all. It runs at every
// frame: without a filter it copies only what is shown.
func (f *feedState) visible(filter string, skip, limit int) (shown []feedItem, total int) {
	end := len(f.items)
	if f.paused {
		end = f.shown
	}
	if filter == "" {
		lo, hi := max(0, end-skip-limit), max(0, end-skip)
		for i := hi - 1; i >= lo; i-- {
			shown = append(shown, f.items[i])
		}
		return shown, end
	}
	filter = strings.ToLower(filter)
	for i := end - 1; i >= 0; i-- {
		it := f.items[i]
		if strings.Contains(it.kind, filter) || strings.HasPrefix(it.commit, filter) {
			if total >= skip && len(shown) < limit {
				shown = append(shown, it)
			}
			total++
		}
	}
	return shown, total
}

// matches reports whether any field contains the filter, ignoring case.
func matches(filter string, fields ...string) bool {
	filter = strings.ToLower(filter)
	for _, f := range fields {
		if strings.Contains(strings.ToLower(f), filter) {
			return true
		}
	}
	return false
}

// sessionsState is the last answer of the signalling server.
type sessionsState struct {
	resp     *signalapi.SessionsResponse
	err      error
	at       time.Time
	inFlight bool
	// seen are the server's alerts already copied to the Alerts tab.
	seen map[string]bool
}

func sessionAlertKey(a signalapi.Alert) string {
	return fmt.Sprintf("%d|%s|%s|%s", a.Time.UnixNano(), a.Kind, a.Room, a.Message)
}

// confirmation is an operator action waiting for y or esc.
type confirmation struct {
	act    action
	target string // node id
}

// notice is the outcome of the last action, shown above the help line.
type notice struct {
	at   time.Time
	text string
	bad  bool
}
