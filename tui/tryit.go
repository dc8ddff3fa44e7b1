package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

// tryItTab is the Try it tab, there only when Config.TryIt is set: the
// text a caller gives the operator to read while the console covers the
// terminal (the demo's links to join a consultation by hand, to create a
// room and to check a bundle). The text is shown as given, a line wider
// than the screen broken as rows says, so that a link's rows hold only
// the link; the arrow keys scroll it when it is taller than the screen.
type tryItTab struct {
	common
	top int // the first row shown
}

func newTryItTab(c common) *tryItTab { return &tryItTab{common: c} }

// Init does nothing: the text is the configuration's.
func (v *tryItTab) Init() tea.Cmd { return nil }

// Update scrolls.
func (v *tryItTab) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	k, ok := msg.(tea.KeyMsg)
	if !ok {
		return v, nil
	}
	last := max(0, len(v.rows())-v.height)
	switch {
	case key.Matches(k, v.keys.Up):
		v.top = max(0, v.top-1)
	case key.Matches(k, v.keys.Down):
		v.top = min(last, v.top+1)
	case key.Matches(k, v.keys.Top):
		v.top = 0
	case key.Matches(k, v.keys.Bottom):
		v.top = last
	}
	return v, nil
}

// rows is the text fitted to the tab's width. A line too wide breaks at
// spaces, its next rows indented under it; a word wider than a row (a
// link) starts a row of its own and is cut into full-width rows, flush
// left, so that those rows hold the link and nothing else.
func (v *tryItTab) rows() []string {
	w := max(1, v.width)
	var out []string
	for _, line := range strings.Split(strings.TrimRight(v.cfg.TryIt, "\n"), "\n") {
		line = strings.TrimRight(line, " \t\r")
		if ansi.StringWidth(line) <= w {
			out = append(out, line)
			continue
		}
		body := strings.TrimLeft(line, " ")
		indent := line[:len(line)-len(body)]
		next := indent + "    "
		if ansi.StringWidth(next) >= w/2 {
			next = ""
		}
		cur := indent
		for _, word := range strings.Fields(body) {
			switch {
			case strings.TrimSpace(cur) == "" && ansi.StringWidth(cur+word) <= w:
				cur += word
				continue
			case ansi.StringWidth(cur+" "+word) <= w:
				cur += " " + word
				continue
			}
			if strings.TrimSpace(cur) != "" {
				out = append(out, cur)
			}
			if ansi.StringWidth(next+word) <= w {
				cur = next + word
				continue
			}
			for ansi.StringWidth(word) > w {
				out = append(out, ansi.Truncate(word, w, ""))
				word = ansi.TruncateLeft(word, w, "")
			}
			cur = word
		}
		out = append(out, cur)
	}
	return out
}

// View is the rows from the one scrolled to, with a muted last row saying
// how many more are below when they do not fit.
func (v *tryItTab) View() string {
	rows := v.rows()
	v.top = min(v.top, max(0, len(rows)-v.height))
	rows = rows[v.top:]
	if len(rows) > v.height && v.height > 1 {
		more := len(rows) - (v.height - 1)
		rows = append(rows[:v.height-1], v.styles.muted.Render(fmt.Sprintf("%d more rows below: ↓/j scrolls", more)))
	}
	return joinLines(rows, v.height)
}

// ShortHelp is the tab's keys.
func (v *tryItTab) ShortHelp() []key.Binding { return []key.Binding{v.keys.Up, v.keys.Down} }

// FullHelp is the tab's keys.
func (v *tryItTab) FullHelp() [][]key.Binding {
	return [][]key.Binding{{v.keys.Up, v.keys.Down, v.keys.Top, v.keys.Bottom}}
}

// Modal is nil: the tab takes only its own keys.
func (v *tryItTab) Modal() *modal { return nil }
