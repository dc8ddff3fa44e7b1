package tui

import (
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
)

// tryItLink is a join link as long as the demo's: wider than any screen.
var tryItLink = "http://127.0.0.1:8443/app/#token=" + strings.Repeat("eyJhbGciOiJFZERTQSJ9.", 12) + "end"

// tryItText is a Try it text like the demo's.
var tryItText = "Join a consultation by hand in two browser windows:\n" +
	"  physician: " + tryItLink + "\n" +
	"  patient:   http://127.0.0.1:8443/try/patient\n" +
	"Check any receipt bundle with:\n" +
	"  telenotary verify run/bundles/<file>.json --keys run/keys.pub --min-signatures 2\n"

// TestTryItTab: without Config.TryIt the console has six tabs and 7 does
// nothing; with it, a seventh, Try it, reached with 7 and by cycling, whose
// text fits the screen, a long link on rows that hold only the link, and
// scrolls when taller than the screen.
func TestTryItTab(t *testing.T) {
	m := testModel(t, "")
	press(m, "7")
	wantTab(t, m, tabCluster)
	press(m, "shift+tab")
	wantTab(t, m, tabVerify)
	if v, keys := m.View(), m.keys.Tab1.Help().Key; strings.Contains(v, "Try it") || keys != "1-6" {
		t.Errorf("a console without TryIt names the tab, or its help says %q, not 1-6:\n%s", keys, v)
	}

	m = testModelOf(t, Config{Nodes: goldenNodes, TryIt: tryItText})
	press(m, "shift+tab")
	wantTab(t, m, tabTryIt)
	press(m, "tab")
	wantTab(t, m, tabCluster)
	press(m, "7")
	wantTab(t, m, tabTryIt)
	view := m.View()
	checkFits(t, view, 80, 24)
	if keys := m.keys.Tab1.Help().Key; !strings.Contains(view, "[7 Try it]") || keys != "1-7" {
		t.Errorf("the tabs do not show Try it, or the help says %q, not 1-7:\n%s", keys, view)
	}
	// The link starts a row of its own, and its rows hold the link and
	// nothing else; the verify line breaks at a space, not in a word.
	body := splitLines(m.tryIt.View())
	if body[1] != "  physician:" {
		t.Errorf("the row before the link is %q, want \"  physician:\"", body[1])
	}
	var link strings.Builder
	for _, row := range body[2:] {
		link.WriteString(row)
		if cellWidth(row) < 80 {
			break
		}
	}
	if link.String() != tryItLink {
		t.Errorf("the link's rows join into\n%q\nwant\n%q", link.String(), tryItLink)
	}
	if last := body[len(body)-1]; last != "      2" && !strings.HasSuffix(last, "--min-signatures 2") {
		t.Errorf("the verify line ends in the row %q", last)
	}
	if !strings.Contains(strings.Join(body, " "), "--keys run/keys.pub --min-signatures") {
		t.Errorf("the verify line is not on the tab:\n%s", view)
	}

	// Taller than the screen: the last row says so, and j scrolls.
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 8}) // a body of 3 rows
	first := splitLines(m.tryIt.View())
	if len(first) != 3 || !strings.Contains(first[2], "more rows below") {
		t.Fatalf("a body of 3 rows shows %q", first)
	}
	press(m, "j")
	if got := splitLines(m.tryIt.View())[0]; got != first[1] {
		t.Errorf("after j the first row is %q, want %q", got, first[1])
	}
	press(m, "G")
	if rows := splitLines(m.tryIt.View()); rows[len(rows)-1] != body[len(body)-1] {
		t.Errorf("after G the last row is %q, want the text's last, %q", rows[len(rows)-1], body[len(body)-1])
	}
}
