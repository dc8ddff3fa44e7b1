package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

// column is a column of a table. When a table is wider than the screen,
// the columns with the highest drop number go first; the flex column
// takes the width left over.
type column struct {
	title string
	width int
	right bool
	drop  int
	flex  bool
}

// cell is a table cell and its style.
type cell struct {
	text  string
	style lipgloss.Style
}

func plain(s string) cell { return cell{text: s, style: lipgloss.NewStyle()} }

// renderTable lays out rows under a header within width. Rows are given
// whole; the caller picks the window of rows to show.
func renderTable(st styles, cols []column, rows [][]cell, width int) (header string, lines []string) {
	keep := make([]bool, len(cols))
	for i := range keep {
		keep[i] = true
	}
	used := func() int {
		w := 0
		for i, c := range cols {
			if keep[i] {
				w += c.width + 1
			}
		}
		return w - 1
	}
	for used() > width {
		worst := -1
		for i, c := range cols {
			if keep[i] && c.drop > 0 && (worst < 0 || c.drop > cols[worst].drop) {
				worst = i
			}
		}
		if worst < 0 {
			break
		}
		keep[worst] = false
	}
	widths := make([]int, len(cols))
	extra := max(0, width-used())
	for i, c := range cols {
		widths[i] = c.width
		if c.flex && keep[i] {
			widths[i] += extra
			extra = 0
		}
	}
	line := func(cells []cell, header bool) string {
		var b strings.Builder
		first := true
		for i, c := range cols {
			if !keep[i] {
				continue
			}
			if !first {
				b.WriteByte(' ')
			}
			first = false
			var x cell
			if i < len(cells) {
				x = cells[i]
			}
			text := pad(x.text, widths[i], c.right)
			if header {
				b.WriteString(st.header.Render(text))
			} else {
				b.WriteString(x.style.Render(text))
			}
		}
		return b.String()
	}
	hc := make([]cell, len(cols))
	for i, c := range cols {
		hc[i] = plain(c.title)
	}
	header = line(hc, true)
	for _, r := range rows {
		lines = append(lines, line(r, false))
	}
	return header, lines
}

// pad truncates or pads s to exactly w cells.
func pad(s string, w int, right bool) string {
	if lipgloss.Width(s) > w {
		s = ansi.Truncate(s, w, "…")
	}
	gap := strings.Repeat(" ", max(0, w-lipgloss.Width(s)))
	if right {
		return gap + s
	}
	return s + gap
}

// fit truncates a rendered line to w cells.
func fit(s string, w int) string {
	if lipgloss.Width(s) <= w {
		return s
	}
	return ansi.Truncate(s, w, "…")
}

// window returns the slice of n rows to show in height rows, starting at
// offset, clamped.
func window(n, height, offset int) (lo, hi int) {
	if height <= 0 {
		return 0, 0
	}
	lo = clamp(offset, 0, max(0, n-height))
	return lo, min(n, lo+height)
}

// scrollBy moves a list's offset by d, within a list of n rows shown
// height at a time.
func scrollBy(offset, d, n, height int) int {
	return clamp(offset+d, 0, max(0, n-max(height, 0)))
}

func clamp(v, lo, hi int) int { return max(lo, min(v, hi)) }

// joinLines is a component's view: at most h of its lines.
func joinLines(lines []string, h int) string {
	return strings.Join(lines[:min(len(lines), max(h, 0))], "\n")
}

// sparkline draws values as a bar chart of rows lines, one column per
// value, scaled to the largest.
func sparkline(values []uint64, rows int) []string {
	const bars = " ▁▂▃▄▅▆▇█"
	var top uint64
	for _, v := range values {
		top = max(top, v)
	}
	out := make([]string, rows)
	for r := range rows {
		var b strings.Builder
		for _, v := range values {
			// Eighths of a row filled at this row, from the bottom.
			filled := 0
			if top > 0 {
				filled = int((v*uint64(rows*8) + top - 1) / top)
			}
			lvl := clamp(filled-(rows-1-r)*8, 0, 8)
			b.WriteString(string([]rune(bars)[lvl]))
		}
		out[r] = b.String()
	}
	return out
}

// fmtInt writes n with thousands separators.
func fmtInt[T ~int | ~int64 | ~uint64](n T) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// fmtDur is a short duration: 850ms, 12s, 3m05s, 2h14m.
func fmtDur(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}
