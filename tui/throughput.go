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
}

const seriesLen = 600

func (s *series) add(at time.Time, n uint64) {
	sec := at.Unix()
	i := sec % seriesLen
	if s.secs[i] != sec {
		s.secs[i], s.counts[i] = sec, 0
	}
	s.counts[i] += n
}

// at returns the count of the second sec.
func (s *series) at(sec int64) uint64 {
	if i := sec % seriesLen; sec >= 0 && s.secs[i] == sec {
		return s.counts[i]
	}
	return 0
}

// spread adds n counted over the time from..to, to each second in
// proportion to its share of that time. Of a time longer than the series,
// only the share of its last seriesLen seconds is kept.
func (s *series) spread(from, to time.Time, n uint64) {
	total := to.Sub(from)
	if total <= 0 {
		s.add(to, n)
		return
	}
	start := from
	if keep := to.Add(-seriesLen * time.Second); keep.After(start) {
		start = keep
	}
	// The share of the time before start is not kept.
	given := uint64(float64(n)*float64(start.Sub(from))/float64(total) + 0.5)
	for sec := start.Unix(); sec <= to.Unix(); sec++ {
		lo, hi := time.Unix(sec, 0), time.Unix(sec+1, 0)
		if lo.Before(start) {
			lo = start
		}
		if hi.After(to) {
			hi = to
		}
		// What the time up to hi is owed, less what was given before.
		upTo := uint64(float64(n)*float64(hi.Sub(from))/float64(total) + 0.5)
		if upTo > given {
			s.add(lo, upTo-given)
			given = upTo
		}
	}
}

// throughputTab is the Throughput tab: receipts per second over the last
// minutes, the leader's batch sizes and latency, receipts by kind, and the
// failures the console met. The receipts per second are the growth of
// the leader's log between its statuses: they hold whichever node's
// event stream the console follows, and however few leaves its events
// list. The kinds come from the event stream.
type throughputTab struct {
	common
	// receipts is the log's growth per second, each growth spread over
	// the time between the two statuses that show it.
	receipts series
	// samples are the leader's log size at its answers, oldest first,
	// over the last seriesLen seconds; seen is the growth since the first.
	samples []logSample
	seen    uint64
	// streamed counts the receipts the event stream reported.
	streamed uint64
	byKind   map[string]uint64
	// refused counts the dispenses and revocations the cluster refused,
	// by reason.
	refused map[string]int
	// nodes are the nodes' last answers, for the leader's figures.
	nodes *nodeList
	errs  errorCounts
}

// logSample is the leader's log size at one of its answers.
type logSample struct {
	at   time.Time
	size uint64
}

// errorCounts are the failures the console has seen, by source.
type errorCounts struct {
	polls, sessions, stream, actions uint64
	last                             string
	lastAt                           time.Time
}

func newThroughputTab(c common) *throughputTab {
	return &throughputTab{common: c, byKind: map[string]uint64{}, refused: map[string]int{}, nodes: newNodeList(c.cfg.Nodes)}
}

// Init does nothing: the figures come with other components' data.
func (t *throughputTab) Init() tea.Cmd { return nil }

// Update counts notarizations and failures.
func (t *throughputTab) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case eventMsg:
		if n := msg.ev.Notarized; msg.ev.Type == "notarized" && n != nil {
			t.streamed += n.Count
			for k, c := range n.ByKind {
				t.byKind[k] += uint64(c)
			}
			for code, c := range n.Refused {
				t.refused[code] += c
			}
		}
	case statusMsg:
		n, _ := t.nodes.record(msg)
		switch {
		case n == nil:
		case msg.err != nil:
			t.failed(&t.errs.polls, msg.at, n.name()+": "+unreachableReason(msg.err, t.cfg.RequestTimeout))
		case n == t.nodes.leader():
			t.logSize(msg.at, msg.st.LogSize)
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

// logSize takes the leader's log size at one of its answers. The log
// only grows, whichever node leads: a smaller size is an answer that was
// overtaken.
func (t *throughputTab) logSize(at time.Time, size uint64) {
	if k := len(t.samples); k > 0 {
		last := t.samples[k-1]
		if !at.After(last.at) {
			return
		}
		if size > last.size {
			t.receipts.spread(last.at, at, size-last.size)
			t.seen += size - last.size
		}
		size = max(size, last.size)
	}
	t.samples = append(t.samples, logSample{at: at, size: size})
	// Keep seriesLen seconds, and the sample before them.
	keep := at.Add(-seriesLen * time.Second)
	i := 0
	for i+1 < len(t.samples) && !t.samples[i+1].at.After(keep) {
		i++
	}
	t.samples = t.samples[i:]
}

// staleAfter is how long after the leader's last answer the rates are
// no longer known: a few polls missed.
func (t *throughputTab) staleAfter() time.Duration {
	return 2*t.cfg.PollInterval + t.cfg.RequestTimeout
}

// rate is the mean receipts per second over the last d of the leader's
// answers, as of now; ok is false when the answers cover less than half
// of d, or the leader has not answered lately.
func (t *throughputTab) rate(now time.Time, d time.Duration) (rate uint64, ok bool) {
	k := len(t.samples)
	if k < 2 || now.Sub(t.samples[k-1].at) > t.staleAfter() {
		return 0, false
	}
	last := t.samples[k-1]
	from := t.samples[0]
	for _, s := range t.samples {
		if s.at.After(last.at.Add(-d)) {
			break
		}
		from = s
	}
	span := last.at.Sub(from.at)
	if span <= 0 || span < d/2 {
		return 0, false
	}
	return uint64(float64(last.size-from.size)/span.Seconds() + 0.5), true
}

// rateText is the rate over d as the screen shows it: "-" when unknown.
func (t *throughputTab) rateText(now time.Time, d time.Duration) string {
	r, ok := t.rate(now, d)
	if !ok {
		return "-"
	}
	return fmtInt(r)
}

// View is the receipts per second, the batches, latency and failures.
func (t *throughputTab) View() string {
	st := t.styles
	now := t.now()
	rate := func(d time.Duration) string { return t.rateText(now, d) }
	out := []string{
		st.header.Render("Receipts/s") + fmt.Sprintf("  last 5s %s · 1m %s · 5m %s · seen %s",
			rate(5*time.Second), rate(time.Minute), rate(5*time.Minute), fmtInt(t.seen)),
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
	if len(t.refused) > 0 {
		out = append(out, "Refused dispenses and revocations: "+refusalText(t.refused, true))
	}
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
	// The chart ends at the leader's last answer: the second it falls in,
	// and those after, are still filling: not drawn.
	end := now.Unix()
	if k := len(t.samples); k > 0 {
		end = min(end, t.samples[k-1].at.Unix())
	}
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
	legend := st.muted.Render(fmt.Sprintf(" one column per %ds, each its mean receipts/s: the growth of the leader's log", secs))
	if k := len(t.samples); k == 0 {
		legend = st.warn.Render(" no leader has answered: its log's growth is not known")
	} else if age := now.Sub(t.samples[k-1].at); age > t.staleAfter() {
		legend = st.warn.Render(fmt.Sprintf(" the leader has not answered for %s: its log's growth since is not known", fmtDur(age)))
	}
	lines = append(lines, st.muted.Render(" "+left+strings.Repeat(" ", max(1, cols-len(left)-3))+"now"), legend)
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
