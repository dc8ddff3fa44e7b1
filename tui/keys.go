package tui

import (
	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
)

// keyMap is every key binding of the console, with its help text: the
// global ones (tabs, help, quit) that the root model handles, and those of
// the components, each of which returns its own in its help.KeyMap.
type keyMap struct {
	NextTab, PrevTab, Tab1, Tab2, Tab3, Tab4, Tab5, Tab6, Tab7 key.Binding
	Up, Down, Top, Bottom                                      key.Binding
	Filter, Pause, Help, Quit                                  key.Binding
	Remove, Transfer, Open                                     key.Binding
	Confirm, Cancel, Submit                                    key.Binding
}

func newKeyMap() *keyMap {
	return &keyMap{
		NextTab:  key.NewBinding(key.WithKeys("tab", "right", "l"), key.WithHelp("tab", "next tab")),
		PrevTab:  key.NewBinding(key.WithKeys("shift+tab", "left", "h"), key.WithHelp("shift+tab", "previous tab")),
		Tab1:     key.NewBinding(key.WithKeys("1"), key.WithHelp("1-6", "go to tab")),
		Tab2:     key.NewBinding(key.WithKeys("2")),
		Tab3:     key.NewBinding(key.WithKeys("3")),
		Tab4:     key.NewBinding(key.WithKeys("4")),
		Tab5:     key.NewBinding(key.WithKeys("5")),
		Tab6:     key.NewBinding(key.WithKeys("6")),
		Tab7:     key.NewBinding(key.WithKeys("7")), // Try it, when the console has it
		Up:       key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:     key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		Top:      key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("g", "top")),
		Bottom:   key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("G", "bottom")),
		Filter:   key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter")),
		Pause:    key.NewBinding(key.WithKeys("p"), key.WithHelp("p", "pause feed")),
		Help:     key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		Quit:     key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),
		Remove:   key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "remove node")),
		Transfer: key.NewBinding(key.WithKeys("t"), key.WithHelp("t", "make leader")),
		Open:     key.NewBinding(key.WithKeys("o", "enter"), key.WithHelp("o", "open bundle")),
		Confirm:  key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "confirm")),
		Cancel:   key.NewBinding(key.WithKeys("esc", "n"), key.WithHelp("esc", "cancel")),
		Submit:   key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "apply")),
	}
}

// rootHelp is the help.KeyMap of the whole console: the current tab's
// keys and the global ones on the help line; every key with ?.
type rootHelp struct {
	k   *keyMap
	tab help.KeyMap
}

var _ help.KeyMap = rootHelp{}

// ShortHelp is the one-line help at the bottom of the screen.
func (h rootHelp) ShortHelp() []key.Binding {
	return append(h.tab.ShortHelp(), h.k.NextTab, h.k.Help, h.k.Quit)
}

// FullHelp is the help shown with ?: every key of the console.
func (h rootHelp) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{h.k.NextTab, h.k.PrevTab, h.k.Tab1, h.k.Help, h.k.Quit},
		{h.k.Up, h.k.Down, h.k.Top, h.k.Bottom, h.k.Filter},
		{h.k.Pause, h.k.Transfer, h.k.Remove, h.k.Open, h.k.Cancel},
	}
}

// The help lines of the console's modes, in place of the key help.
const (
	footerHelp    = "? or esc: close help"
	footerConfirm = "y: confirm · esc/n: cancel"
	footerInput   = "enter: apply · esc: clear"
)
