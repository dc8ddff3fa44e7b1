package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/telenotary/telenotary/notary"
)

// verifyTab is the Verify tab: the operator types the path of a receipt
// bundle and sees VALID or INVALID and why.
type verifyTab struct {
	common
	path      lineInput
	verifying bool
	verified  *verifyMsg
}

func newVerifyTab(c common) *verifyTab {
	return &verifyTab{common: c, path: newLineInput("bundle file: ")}
}

// Init does nothing: the tab waits for a path.
func (v *verifyTab) Init() tea.Cmd { return nil }

// Update takes the tab's keys and the outcome of a verification.
func (v *verifyTab) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case verifyMsg:
		v.verifying, v.verified = false, &msg
	case tea.KeyMsg:
		return v, v.onKey(msg)
	}
	return v, nil
}

func (v *verifyTab) onKey(msg tea.KeyMsg) tea.Cmd {
	switch {
	case v.path.active:
		ev, cmd := v.path.update(msg)
		if ev != inputDone {
			return cmd
		}
		p := v.path.value()
		if p == "" {
			return nil
		}
		v.verifying, v.verified = true, nil
		return v.src.verify(p)
	case key.Matches(msg, v.keys.Open):
		return v.path.start("")
	}
	return nil
}

// View is how to verify, and the outcome of the last verification.
func (v *verifyTab) View() string {
	st := v.styles
	keys := "the keys the cluster publishes (/v1/keys)"
	if v.cfg.Keys != nil {
		keys = "the trusted keys given to the console"
	}
	out := []string{
		"Verify a receipt bundle (document, salt and receipt in one JSON file)",
		st.muted.Render("Press o, type the file's path, then enter. Trusted: " + keys + "; 1 signature."),
		"",
	}
	switch {
	case v.verifying:
		out = append(out, "verifying…")
	case v.verified != nil:
		out = append(out, "file: "+v.verified.path, "")
		valid, lines := verifyResult(v.verified)
		style := st.bad
		if valid {
			style = st.ok
		}
		out = append(out, style.Render(lines[0]))
		for _, l := range lines[1:] {
			out = append(out, wrap(l, v.width, "              ")...)
		}
	}
	return joinLines(out, v.height)
}

// verifyResult is the text of a verification outcome.
func verifyResult(v *verifyMsg) (valid bool, lines []string) {
	switch {
	case v.problem != nil:
		return false, []string{"CANNOT VERIFY: " + v.problem.Error()}
	case v.err != nil:
		return false, []string{"INVALID: " + notary.Reason(v.err), "  detail: " + v.err.Error()}
	}
	r := v.res
	lines = []string{
		fmt.Sprintf("VALID: %s notarized %s", r.Leaf.Kind, r.Leaf.Time().Format("2006-01-02 15:04:05.000 UTC")),
		"  log:        " + r.Origin,
		fmt.Sprintf("  index:      %d, in a checkpoint of %d entries", r.Index, r.Checkpoint.Size),
		"  signed by:  " + strings.Join(r.Signers, ", "),
		"  commitment: " + r.Leaf.Commitment.String(),
	}
	if !r.Leaf.Link.IsZero() {
		lines = append(lines, "  linked to:  "+r.Leaf.Link.String())
	}
	return true, lines
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

// ShortHelp is the tab's key.
func (v *verifyTab) ShortHelp() []key.Binding { return []key.Binding{v.keys.Open} }

// FullHelp is the tab's key.
func (v *verifyTab) FullHelp() [][]key.Binding { return [][]key.Binding{{v.keys.Open}} }

// Modal is the path while it is typed.
func (v *verifyTab) Modal() *modal { return v.path.modal() }
