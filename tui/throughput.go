package tui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

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

// throughputTab is the Throughput tab: receipts per second over the last
// minutes (from the event stream), the leader's batch sizes and latency
// (from its status), receipts by kind, and the failures the console met.
type throughputTab struct {
	common
	receipts series
	byKind   map[string]uint64
	// nodes are the nodes' last answers, for the leader's batch figures.
	nodes nodeList
	errs  errorCounts
}

// errorCounts are the failures the console has seen, by source.
type errorCounts struct {
	polls, sessions, stream, actions uint64
	last                             string
	lastAt                           time.Time
}

func newThroughputTab(c common) *throughputTab {
	return &throughputTab{common: c, byKind: map[string]uint64{}, nodes: newNodeList(c.cfg.Nodes)}
}

// Init does nothing: the figures come with other components' data.
func (t *throughputTab) Init() tea.Cmd { return nil }

// Update counts notarizations and failures.
func (t *throughputTab) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case eventMsg:
		if n := msg.ev.Notarized; msg.ev.Type == "notarized" && n != nil {
			t.receipts.add(msg.at, n.Count)
			for k, c := range n.ByKind {
				t.byKind[k] += uint64(c)
			}
		}
	case statusMsg:
		if n := t.nodes.find(msg.node); n != nil {
			n.record(msg)
			if msg.err != nil {
				t.failed(&t.errs.polls, msg.at, n.name()+": "+shortErr(msg.err))
			}
		}
	case sessionsMsg:
		if msg.err != nil {
			t.failed(&t.errs.sessions, msg.at, "signalling server: "+shortErr(msg.err))
		}
	case streamMsg:
		if msg.err != nil {
			t.failed(&t.errs.stream, msg.at, "event stream: "+shortErr(msg.err))
		}
	case actionMsg:
		if msg.err != nil {
			t.errs.actions++
		}
	}
	return t, nil
}

// failed counts one failure and keeps it as the last.
func (t *throughputTab) failed(count *uint64, at time.Time, text string) {
	*count++
	t.errs.last, t.errs.lastAt = text, at
}

// rate is the mean receipts per second over the last d before now.
func (t *throughputTab) rate(now time.Time, d time.Duration) uint64 {
	return t.receipts.sum(now, d) / uint64(d/time.Second)
}

// View is the receipts per second, the batches, latency and failures.
func (t *throughputTab) View() string {
	st := t.styles
	now := t.now()
	rate := func(d time.Duration) string { return fmtInt(t.rate(now, d)) }
	out := []string{
		st.header.Render("Receipts/s") + fmt.Sprintf("  last 5s %s · 1m %s · 5m %s · seen %s",
			rate(5*time.Second), rate(time.Minute), rate(5*time.Minute), fmtInt(t.receipts.total)),
	}
	chart, peak := t.chart(now)
	out[0] += fmt.Sprintf(" · peak %s", fmtInt(peak))
	out = append(out, chart...)
	if l := t.nodes.leader(); l != nil {
		b := l.st.Batches
		out = append(out, fmt.Sprintf("Batches (leader %s): %.1f entries per raft entry · %s recent receipts", l.name(), b.MeanBatchEntries, fmtInt(b.Receipts)),
			fmt.Sprintf("Latency to receipt: p50 %.1f ms · p99 %.1f ms", b.P50Millis, b.P99Millis))
	} else {
		out = append(out, st.warn.Render("Batches and latency: no leader answers"), "")
	}
	out = append(out, "By kind: "+orDash(t.kinds()))
	e := t.errs
	errLine := fmt.Sprintf("Errors: %d status polls · %d stream breaks · %d session polls · %d actions", e.polls, e.stream, e.sessions, e.actions)
	if e.polls+e.stream+e.sessions+e.actions > 0 {
		out = append(out, st.warn.Render(errLine), st.muted.Render(fmt.Sprintf("  last %s: %s", e.lastAt.UTC().Format("15:04:05"), e.last)))
	} else {
		out = append(out, errLine)
	}
	return joinLines(out, t.height)
}

// chart is the sparkline of receipts/s over about five minutes, with its
// axis and legend, and its highest column.
func (t *throughputTab) chart(now time.Time) (lines []string, peak uint64) {
	st := t.styles
	// One column per secs seconds.
	cols := max(10, t.width-2)
	secs := max(1, (300+cols-1)/cols)
	end := now.Unix() // the current second is still filling: not drawn
	values := make([]uint64, cols)
	for c := range cols {
		from := end - int64((cols-c)*secs)
		var sum uint64
		for s := from; s < from+int64(secs); s++ {
			sum += t.receipts.at(s)
		}
		values[c] = sum / uint64(secs)
		peak = max(peak, values[c])
	}
	for _, l := range sparkline(values, clamp(t.height-10, 2, 12)) {
		lines = append(lines, " "+st.spark.Render(l))
	}
	left := "-" + fmtDur(time.Duration(cols*secs)*time.Second)
	lines = append(lines, st.muted.Render(" "+left+strings.Repeat(" ", max(1, cols-len(left)-3))+"now"),
		st.muted.Render(fmt.Sprintf(" one column per %ds, each its mean receipts/s", secs)))
	return lines, peak
}

// kinds is the receipts seen by kind, in the order of the kinds' names.
func (t *throughputTab) kinds() string {
	kinds := make([]string, 0, len(t.byKind))
	for k := range t.byKind {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	ks := make([]string, 0, len(kinds))
	for _, k := range kinds {
		ks = append(ks, fmt.Sprintf("%s %s", k, fmtInt(t.byKind[k])))
	}
	return strings.Join(ks, " · ")
}

// ShortHelp is empty: the tab has no keys of its own.
func (t *throughputTab) ShortHelp() []key.Binding { return nil }

// FullHelp is empty: the tab has no keys of its own.
func (t *throughputTab) FullHelp() [][]key.Binding { return nil }

// Modal is nil: the tab never takes every key.
func (t *throughputTab) Modal() *modal { return nil }
