package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
)

// lineInput is a line of text the operator types on the status line: a
// filter, or the path of a bundle to verify.
type lineInput struct {
	ti     textinput.Model
	active bool
}

func newLineInput(prompt string) lineInput {
	ti := textinput.New()
	ti.Prompt = prompt
	ti.CharLimit = 4096
	// A steady cursor: a blinking one would redraw the screen twice a
	// second while the operator types, for nothing.
	ti.Cursor.SetMode(cursor.CursorStatic)
	return lineInput{ti: ti}
}

// start begins typing, from value.
func (in *lineInput) start(value string) tea.Cmd {
	in.active = true
	in.ti.SetValue(value)
	in.ti.CursorEnd()
	return in.ti.Focus()
}

// inputEvent is what a key did to a lineInput.
type inputEvent int

const (
	inputTyped     inputEvent = iota // the text may have changed
	inputDone                        // enter
	inputCancelled                   // esc
)

// update handles a key while typing.
func (in *lineInput) update(msg tea.KeyMsg) (inputEvent, tea.Cmd) {
	switch msg.Type {
	case tea.KeyEsc:
		in.active = false
		in.ti.Blur()
		return inputCancelled, nil
	case tea.KeyEnter:
		in.active = false
		in.ti.Blur()
		return inputDone, nil
	}
	var cmd tea.Cmd
	in.ti, cmd = in.ti.Update(msg)
	return inputTyped, cmd
}

// value is the text typed, trimmed.
func (in *lineInput) value() string { return strings.TrimSpace(in.ti.Value()) }

// modal is what the chrome shows while typing, or nil.
func (in *lineInput) modal() *modal {
	if !in.active {
		return nil
	}
	return &modal{status: in.ti.View(), footer: footerInput}
}

// filter is the filter of a list tab: applied as the operator types, kept
// on enter, cleared on esc.
type filter struct {
	in    lineInput
	value string
}

func newFilter() filter { return filter{in: newLineInput("/")} }

// onKey handles a key while typing the filter; the list it filters goes
// back to its top.
func (f *filter) onKey(msg tea.KeyMsg) tea.Cmd {
	ev, cmd := f.in.update(msg)
	switch ev {
	case inputCancelled:
		f.value = ""
	case inputDone:
		f.value = f.in.value()
	default:
		f.value = f.in.ti.Value()
	}
	return cmd
}

// start begins typing the filter, from its current value.
func (f *filter) start() tea.Cmd { return f.in.start(f.value) }

// describe is the filter for a list's top line ("" when none).
func (f *filter) describe() string {
	if f.value == "" {
		return ""
	}
	return " · filter: " + f.value
}
