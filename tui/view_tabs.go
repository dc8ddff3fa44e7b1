package tui

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/telenotary/telenotary/session/signalapi"
)

// throughputView is receipts/s over the last minutes, batch sizes,
// latency and errors.
func (m *model) throughputView(w, h int) []string {
	st := m.styles
	now := m.now()
	rate := func(d time.Duration) string { return fmtInt(m.receipts.sum(now, d) / uint64(d/time.Second)) }
	out := []string{
		st.header.Render("Receipts/s") + fmt.Sprintf("  last 5s %s · 1m %s · 5m %s · seen %s",
			rate(5*time.Second), rate(time.Minute), rate(5*time.Minute), fmtInt(m.receipts.total)),
	}
	// One column per secs seconds, covering about five minutes.
	cols := max(10, w-2)
	secs := max(1, (300+cols-1)/cols)
	end := now.Unix() // the current second is still filling: not drawn
	values := make([]uint64, cols)
	var peak uint64
	for c := range cols {
		from := end - int64((cols-c)*secs)
		var sum uint64
		for s := from; s < from+int64(secs); s++ {
			sum += m.receipts.at(s)
		}
		values[c] = sum / uint64(secs)
		peak = max(peak, values[c])
	}
	rows := clamp(h-10, 2, 12)
	for _, l := range sparkline(values, rows) {
		out = append(out, " "+st.spark.Render(l))
	}
	left := "-" + fmtDur(time.Duration(cols*secs)*time.Second)
	out = append(out, st.muted.Render(" "+left+strings.Repeat(" ", max(1, cols-len(left)-3))+"now"))
	out[0] += fmt.Sprintf(" · peak %s", fmtInt(peak))
	out = append(out, st.muted.Render(fmt.Sprintf(" one column per %ds, each its mean receipts/s", secs)))
	if l := m.leader(); l != nil {
		b := l.st.Batches
		out = append(out, fmt.Sprintf("Batches (leader %s): %.1f entries per raft entry · %s recent receipts", l.name(), b.MeanBatchEntries, fmtInt(b.Receipts)),
			fmt.Sprintf("Latency to receipt: p50 %.1f ms · p99 %.1f ms", b.P50Millis, b.P99Millis))
	} else {
		out = append(out, st.warn.Render("Batches and latency: no leader answers"), "")
	}
	kinds := make([]string, 0, len(m.byKind))
	for k := range m.byKind {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	var ks []string
	for _, k := range kinds {
		ks = append(ks, fmt.Sprintf("%s %s", k, fmtInt(m.byKind[k])))
	}
	out = append(out, "By kind: "+orDash(strings.Join(ks, " · ")))
	e := m.errs
	errLine := fmt.Sprintf("Errors: %d status polls · %d stream breaks · %d session polls · %d actions", e.polls, e.stream, e.sessions, e.actions)
	if e.polls+e.stream+e.sessions+e.actions > 0 {
		out = append(out, st.warn.Render(errLine), st.muted.Render(fmt.Sprintf("  last %s: %s", e.lastAt.UTC().Format("15:04:05"), e.last)))
	} else {
		out = append(out, errLine)
	}
	return out
}

var feedCols = []column{
	{title: "TIME (UTC)", width: 12},
	{title: "KIND", width: 15},
	{title: "INDEX", width: 10, right: true},
	{title: "COMMITMENT", width: 20, flex: true},
	{title: "LINK", width: 14, drop: 1},
}

// feedView is the live notarizations, newest first.
func (m *model) feedView(w, h int) []string {
	st := m.styles
	rowsH := max(0, h-2)
	_, total := m.feed.visible(m.filters[tabFeed], 0, 0)
	off := &m.scroll[tabFeed]
	*off = clamp(*off, 0, max(0, total-rowsH))
	items, _ := m.feed.visible(m.filters[tabFeed], *off, rowsH)
	state := st.ok.Render("LIVE")
	if m.feed.paused {
		state = st.warn.Render(fmt.Sprintf("PAUSED (%s new)", fmtInt(len(m.feed.items)-m.feed.shown+int(m.feed.missed))))
	}
	top := fmt.Sprintf("%s · %s shown", state, fmtInt(total))
	if f := m.filters[tabFeed]; f != "" {
		top += " · filter: " + f
	}
	out := []string{top}
	var rows [][]cell
	for _, it := range items {
		l := it.leaf
		link := ""
		if !l.Link.IsZero() {
			link = l.Link.String()
		}
		rows = append(rows, []cell{
			plain(time.UnixMilli(l.Timestamp).UTC().Format("15:04:05.000")), plain(it.kind),
			plain(strconv.FormatUint(l.Index, 10)), plain(it.commit), plain(link)})
	}
	header, lines := renderTable(st, feedCols, rows, w)
	out = append(out, header)
	if total == 0 {
		out = append(out, st.muted.Render("no notarizations yet"))
	}
	return append(out, lines...)
}

var sessionCols = []column{
	{title: "ROOM", width: 14, flex: true},
	{title: "STATE", width: 12},
	{title: "DURATION", width: 8, right: true},
	{title: "PHYSICIAN", width: 14},
	{title: "PATIENT", width: 14},
	{title: "RCPT", width: 4, right: true},
	{title: "RX", width: 3, right: true, drop: 1},
}

// participant is a role's connection and DTLS state, or "-" when absent.
func participant(s signalapi.SessionInfo, role signalapi.Role) string {
	for _, p := range s.Participants {
		if p.Role == role {
			conn := "up"
			if !p.Connected {
				conn = "DOWN"
			}
			return conn + "/" + string(p.DTLS)
		}
	}
	return "-"
}

// sessionsView is the live consultations: no names, only rooms and states.
func (m *model) sessionsView(w, h int) []string {
	st := m.styles
	s := m.sessions
	switch {
	case m.cfg.Signal == "":
		return []string{st.muted.Render("No signalling server given (--signal URL): no sessions to show.")}
	case s.resp == nil && s.err != nil:
		return []string{st.bad.Render("signalling server: " + shortErr(s.err))}
	case s.resp == nil:
		return []string{st.muted.Render("waiting for the signalling server…")}
	}
	var list []signalapi.SessionInfo
	for _, x := range s.resp.Sessions {
		if f := m.filters[tabSessions]; f == "" || matches(f, x.Room, string(x.State)) {
			list = append(list, x)
		}
	}
	active := 0
	for _, x := range s.resp.Sessions {
		if x.State == "active" {
			active++
		}
	}
	top := fmt.Sprintf("%d consultations, %d active · participants as connection/DTLS", len(s.resp.Sessions), active)
	if f := m.filters[tabSessions]; f != "" {
		top += " · filter: " + f
	}
	if s.err != nil {
		top += " · " + st.bad.Render("stale: "+shortErr(s.err))
	}
	out := []string{top}
	lo, hi := window(len(list), h-2, &m.scroll[tabSessions])
	var rows [][]cell
	for _, x := range list[lo:hi] {
		state := plain(string(x.State))
		if x.FingerprintMismatch {
			state = cell{text: string(x.State) + " !FP", style: st.bad}
		} else if x.State == "reconnecting" {
			state.style = st.warn
		}
		dur := "-"
		if x.Started != nil {
			dur = fmtDur(time.Duration(x.DurationMillis) * time.Millisecond)
		}
		rows = append(rows, []cell{plain(x.Room), state, plain(dur),
			plain(participant(x, signalapi.RolePhysician)), plain(participant(x, signalapi.RolePatient)),
			plain(fmt.Sprint(x.Receipts)), plain(fmt.Sprint(x.Prescriptions))})
	}
	header, lines := renderTable(st, sessionCols, rows, w)
	out = append(out, header)
	if len(list) == 0 {
		out = append(out, st.muted.Render("no live consultations"))
	}
	return append(out, lines...)
}

var alertCols = []column{
	{title: "UTC", width: 8},
	{title: "LEVEL", width: 5},
	{title: "FROM", width: 7, drop: 1},
	{title: "WHAT", width: 30, flex: true},
}

// alertsView is the alerts, newest first.
func (m *model) alertsView(w, h int) []string {
	st := m.styles
	var list []alert
	for i := len(m.alerts) - 1; i >= 0; i-- {
		a := m.alerts[i]
		if f := m.filters[tabAlerts]; f == "" || matches(f, a.text, a.source, a.level.String()) {
			list = append(list, a)
		}
	}
	top := fmt.Sprintf("%d alerts", len(m.alerts))
	if f := m.filters[tabAlerts]; f != "" {
		top += fmt.Sprintf(" · %d match %q", len(list), f)
	}
	out := []string{top}
	lo, hi := window(len(list), h-2, &m.scroll[tabAlerts])
	var rows [][]cell
	for _, a := range list[lo:hi] {
		ls := m.levelStyle(a.level)
		rows = append(rows, []cell{plain(a.at.UTC().Format("15:04:05")), {text: a.level.String(), style: ls}, plain(a.source), {text: a.text, style: ls}})
	}
	header, lines := renderTable(st, alertCols, rows, w)
	out = append(out, header)
	if len(list) == 0 {
		out = append(out, st.muted.Render("nothing to report"))
	}
	return append(out, lines...)
}

// verifyView opens a bundle file and shows VALID or INVALID and why.
func (m *model) verifyView(w, h int) []string {
	st := m.styles
	keys := "the keys the cluster publishes (/v1/keys)"
	if m.cfg.Keys != nil {
		keys = "the trusted keys given to the console"
	}
	out := []string{
		"Verify a receipt bundle (document, salt and receipt in one JSON file)",
		st.muted.Render("Press o, type the file's path, then enter. Trusted: " + keys + "; 1 signature."),
		"",
	}
	switch {
	case m.verifying:
		out = append(out, "verifying…")
	case m.verified != nil:
		out = append(out, "file: "+m.verified.path, "")
		valid, lines := verifyResult(m.verified)
		style := st.bad
		if valid {
			style = st.ok
		}
		out = append(out, style.Render(lines[0]))
		for _, l := range lines[1:] {
			out = append(out, wrap(l, w, "              ")...)
		}
	}
	return out[:min(len(out), h)]
}

// wrap breaks a long line at w cells, indenting the rest.
func wrap(s string, w int, indent string) []string {
	var out []string
	for len(s) > w && w > len(indent)+10 {
		out = append(out, s[:w])
		s = indent + s[w:]
	}
	return append(out, s)
}
