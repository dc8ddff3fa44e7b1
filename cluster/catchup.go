package cluster

import (
	"strconv"
	"time"
)

// Catch-up reporting: a node that is far behind the cluster's commit index
// (after a restart, or when it joins) logs its progress while it applies
// the backlog, so an operator sees it move.
const (
	catchUpBehind = 1000            // entries behind before reporting
	catchUpEvery  = 5 * time.Second // between progress lines
)

// catchUp follows one node's applied and commit indexes.
type catchUp struct {
	behind     bool
	start      time.Time
	from       uint64 // applied index when it fell behind
	lastReport time.Time
}

// observe returns the progress line to log now, if any: when the node
// falls behind, every catchUpEvery while behind, and when it has caught up.
func (c *catchUp) observe(now time.Time, applied, commit uint64) (msg string, args []any) {
	lag := uint64(0)
	if commit > applied {
		lag = commit - applied
	}
	switch {
	case !c.behind && lag >= catchUpBehind:
		c.behind, c.start, c.from, c.lastReport = true, now, applied, now
		return "catching up with the cluster", []any{"applied_index", applied, "commit_index", commit, "behind", lag}
	case c.behind && lag < catchUpBehind:
		c.behind = false
		return "caught up with the cluster", []any{"applied_index", applied, "entries", applied - c.from, "took", now.Sub(c.start).Round(time.Millisecond)}
	case c.behind && now.Sub(c.lastReport) >= catchUpEvery:
		c.lastReport = now
		rate := float64(applied-c.from) / now.Sub(c.start).Seconds()
		eta := "unknown"
		if rate > 0 {
			eta = (time.Duration(float64(lag)/rate) * time.Second).Round(time.Second).String()
		}
		done := 100 * float64(applied-c.from) / float64(commit-c.from)
		return "catching up with the cluster", []any{"applied_index", applied, "commit_index", commit, "behind", lag,
			"percent", strconv.FormatFloat(done, 'f', 1, 64), "entries_per_s", int(rate), "eta", eta}
	}
	return "", nil
}
