package tui

import (
	"fmt"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/telenotary/telenotary/session/signalapi"
)

var sessionCols = []column{
	{title: "ROOM", width: 14, flex: true},
	{title: "STATE", width: 12},
	{title: "DURATION", width: 8, right: true},
	{title: "PHYSICIAN", width: 18},
	{title: "PATIENT", width: 18},
	{title: "RCPT", width: 4, right: true},
	{title: "RX", width: 3, right: true, drop: 1},
}

// sessionsTab is the Sessions tab: the live consultations of the
// signalling server (rooms and states, no names), polled on every tick.
// It copies the server's alerts to the alert log, each once.
type sessionsTab struct {
	common
	resp     *signalapi.SessionsResponse
	err      error
	at       time.Time
	inFlight bool
	// seen are the server's alerts already copied to the alert log.
	seen map[string]bool

	filter filter
	scroll int
}

func newSessionsTab(c common) *sessionsTab {
	return &sessionsTab{common: c, seen: map[string]bool{}, filter: newFilter()}
}

// Init starts the first poll.
func (s *sessionsTab) Init() tea.Cmd { return s.pollOnce() }

// pollOnce asks the signalling server unless a request is out.
func (s *sessionsTab) pollOnce() tea.Cmd {
	if !s.poll || s.cfg.Signal == "" || s.inFlight {
		return nil
	}
	s.inFlight = true
	return s.src.sessions()
}

// Update takes the server's answers and the tab's keys.
func (s *sessionsTab) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tickMsg:
		return s, s.pollOnce()
	case sessionsMsg:
		s.onSessions(msg)
	case tea.KeyMsg:
		return s, s.onKey(msg)
	}
	return s, nil
}

func (s *sessionsTab) onSessions(msg sessionsMsg) {
	s.inFlight = false
	s.at = msg.at
	if msg.err != nil {
		if s.err == nil {
			s.alerts.add(msg.at, levelWarn, "console", "signalling server: %s", shortErr(msg.err))
		}
		s.err = msg.err
		return
	}
	s.err, s.resp = nil, msg.resp
	for _, a := range msg.resp.Alerts {
		k := sessionAlertKey(a)
		if s.seen[k] {
			continue
		}
		s.seen[k] = true
		text := string(a.Kind) + ": " + a.Message
		if a.Room != "" {
			text = fmt.Sprintf("%s: room %s: %s", a.Kind, a.Room, a.Message)
		}
		s.alerts.add(a.Time, levelBad, "signal", "%s", text)
	}
}

func sessionAlertKey(a signalapi.Alert) string {
	return fmt.Sprintf("%d|%s|%s|%s", a.Time.UnixNano(), a.Kind, a.Room, a.Message)
}

func (s *sessionsTab) onKey(msg tea.KeyMsg) tea.Cmd {
	k := s.keys
	switch {
	case s.filter.in.active:
		s.scroll = 0
		return s.filter.onKey(msg)
	case key.Matches(msg, k.Filter):
		return s.filter.start()
	case key.Matches(msg, k.Up):
		s.move(-1)
	case key.Matches(msg, k.Down):
		s.move(1)
	case key.Matches(msg, k.Top):
		s.move(-1 << 30)
	case key.Matches(msg, k.Bottom):
		s.move(1 << 30)
	}
	return nil
}

func (s *sessionsTab) move(d int) { s.scroll = scrollBy(s.scroll, d, len(s.visible()), s.rows()) }

// rows is how many consultations fit under the tab's top line and header.
func (s *sessionsTab) rows() int { return s.height - 2 }

// visible are the consultations that match the filter.
func (s *sessionsTab) visible() []signalapi.SessionInfo {
	if s.resp == nil {
		return nil
	}
	var list []signalapi.SessionInfo
	for _, x := range s.resp.Sessions {
		if f := s.filter.value; f == "" || matches(f, x.Room, string(x.State)) {
			list = append(list, x)
		}
	}
	return list
}

// View is the live consultations: no names, only rooms and states.
func (s *sessionsTab) View() string {
	st := s.styles
	switch {
	case s.cfg.Signal == "":
		return st.muted.Render("No signalling server given (--signal URL): no sessions to show.")
	case s.resp == nil && s.err != nil:
		return st.bad.Render("signalling server: " + shortErr(s.err))
	case s.resp == nil:
		return st.muted.Render("waiting for the signalling server…")
	}
	list := s.visible()
	active := 0
	for _, x := range s.resp.Sessions {
		if x.State == "active" {
			active++
		}
	}
	top := fmt.Sprintf("%d consultations, %d active%s · participants: connection/DTLS/ICE path", len(s.resp.Sessions), active, instances(s.resp.Sessions)) + s.filter.describe()
	if s.err != nil {
		top += " · " + st.bad.Render("stale: "+shortErr(s.err))
	}
	out := []string{top}
	lo, hi := window(len(list), s.rows(), s.scroll)
	rows := make([][]cell, 0, hi-lo)
	for _, x := range list[lo:hi] {
		rows = append(rows, s.sessionRow(x))
	}
	header, lines := renderTable(*st, sessionCols, rows, s.width)
	out = append(out, header)
	if len(list) == 0 {
		out = append(out, st.muted.Render("no live consultations"))
	}
	return joinLines(append(out, lines...), s.height)
}

// sessionRow is a consultation's line of the table.
func (s *sessionsTab) sessionRow(x signalapi.SessionInfo) []cell {
	state := plain(string(x.State))
	if x.FingerprintMismatch {
		state = cell{text: string(x.State) + " !FP", style: s.styles.bad}
	} else if x.State == "reconnecting" {
		state.style = s.styles.warn
	}
	dur := "-"
	if x.Started != nil {
		dur = fmtDur(time.Duration(x.DurationMillis) * time.Millisecond)
	}
	return []cell{plain(x.Room), state, plain(dur),
		plain(participant(x, signalapi.RolePhysician)), plain(participant(x, signalapi.RolePatient)),
		plain(fmt.Sprint(x.Receipts)), plain(fmt.Sprint(x.Prescriptions))}
}

// participant is a role's connection and DTLS state, and the kind of ICE
// candidate it reported using (relay: through a TURN server), or "-" when
// absent.
func participant(s signalapi.SessionInfo, role signalapi.Role) string {
	for _, p := range s.Participants {
		if p.Role == role {
			conn := "up"
			if !p.Connected {
				conn = "DOWN"
			}
			out := conn + "/" + string(p.DTLS)
			if p.Path != "" {
				out += "/" + p.Path
			}
			return out
		}
	}
	return "-"
}

// instances names the signalling servers that hold the rooms, for the
// tab's top line: " on NAME", or " on N servers" for several.
func instances(list []signalapi.SessionInfo) string {
	seen := map[string]bool{}
	for _, x := range list {
		if x.Instance != "" {
			seen[x.Instance] = true
		}
	}
	switch len(seen) {
	case 0:
		return ""
	case 1:
		for name := range seen {
			return " on " + name
		}
	}
	return fmt.Sprintf(" on %d servers", len(seen))
}

// ShortHelp is the tab's keys.
func (s *sessionsTab) ShortHelp() []key.Binding {
	return []key.Binding{s.keys.Up, s.keys.Down, s.keys.Filter}
}

// FullHelp is the tab's keys, in one column.
func (s *sessionsTab) FullHelp() [][]key.Binding {
	return [][]key.Binding{{s.keys.Up, s.keys.Down, s.keys.Top, s.keys.Bottom, s.keys.Filter}}
}

// Modal is the filter while it is typed.
func (s *sessionsTab) Modal() *modal { return s.filter.in.modal() }
