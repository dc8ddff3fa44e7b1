package tui

import (
	"time"

	"github.com/charmbracelet/bubbles/help"
	tea "github.com/charmbracelet/bubbletea"
)

// component is one tab of the console, as soft-serve's
// pkg/ui/common.Component: a Bubble Tea model with its own key map and a
// size. The root model sends it every key while its tab is shown and
// every other message always; View draws the tab's body in the size last
// given to SetSize. A component's state is its own: it learns what it
// shows from messages, never from another component.
type component interface {
	tea.Model
	help.KeyMap
	// SetSize gives the component the size of a tab's body.
	SetSize(width, height int)
	// Modal returns what the component shows while it takes every key (a
	// line of text being typed, a confirmation), or nil when it takes only
	// its own keys and leaves the others to the root.
	Modal() *modal
}

// modal replaces the chrome's last two lines while a component takes
// every key.
type modal struct {
	// status replaces the status line when not "" (the line being typed).
	status string
	// footer replaces the help line.
	footer string
}

// common is the context every component shares, as soft-serve's
// common.Common: the configuration and the sources, the clock, one set of
// styles and keys, and the alert log, which every component may add to
// (as soft-serve's components write to one logger) and the Alerts tab and
// the status line read. Each component holds a copy whose width and
// height are its own; the pointers are shared. It is used only on the
// program's goroutine (Update and View), so nothing in it is locked.
type common struct {
	cfg *Config
	src *source
	now func() time.Time
	// poll is false in tests that feed recorded answers as messages.
	poll bool

	styles *styles
	keys   *keyMap
	// alerts is the Alerts tab's log; every component may add to it.
	alerts *alertLog

	width, height int
}

// SetSize records the size of a tab's body.
func (c *common) SetSize(width, height int) { c.width, c.height = width, height }
