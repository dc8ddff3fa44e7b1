package tui

import "github.com/charmbracelet/lipgloss"

// theme is the console's palette. Adaptive colours pick a shade for light
// or dark terminals; on a terminal without colour (the ASCII profile)
// every colour drops out and the console still reads: the leader is marked
// with a star and roles, health and alerts are words, not colours.
type theme struct {
	accent, muted, ok, warn, bad, text lipgloss.AdaptiveColor
}

var defaultTheme = theme{
	accent: lipgloss.AdaptiveColor{Light: "#5A3FC0", Dark: "#9D8CFF"},
	muted:  lipgloss.AdaptiveColor{Light: "#6C6C6C", Dark: "#8A8A8A"},
	ok:     lipgloss.AdaptiveColor{Light: "#1E7F3B", Dark: "#58D68D"},
	warn:   lipgloss.AdaptiveColor{Light: "#A66300", Dark: "#F5B041"},
	bad:    lipgloss.AdaptiveColor{Light: "#B0201A", Dark: "#FF6B61"},
	text:   lipgloss.AdaptiveColor{Light: "#1A1A1A", Dark: "#EAEAEA"},
}

// styles are every style the views use, built from one theme; the
// components share one set through their common context.
type styles struct {
	title, tab, activeTab, tabGap lipgloss.Style
	header, muted, selected, text lipgloss.Style
	leader, ok, warn, bad         lipgloss.Style
	box, footer, dialog, notice   lipgloss.Style
	spark                         lipgloss.Style
}

func newStyles(t theme) *styles {
	return &styles{
		title:     lipgloss.NewStyle().Bold(true).Foreground(t.accent),
		tab:       lipgloss.NewStyle().Foreground(t.muted),
		activeTab: lipgloss.NewStyle().Bold(true).Underline(true).Foreground(t.accent),
		tabGap:    lipgloss.NewStyle().Foreground(t.muted),
		header:    lipgloss.NewStyle().Bold(true).Foreground(t.text),
		muted:     lipgloss.NewStyle().Foreground(t.muted),
		selected:  lipgloss.NewStyle().Reverse(true),
		text:      lipgloss.NewStyle().Foreground(t.text),
		leader:    lipgloss.NewStyle().Bold(true).Foreground(t.accent),
		ok:        lipgloss.NewStyle().Foreground(t.ok),
		warn:      lipgloss.NewStyle().Foreground(t.warn),
		bad:       lipgloss.NewStyle().Bold(true).Foreground(t.bad),
		box:       lipgloss.NewStyle().Border(lipgloss.NormalBorder()).BorderForeground(t.muted).Padding(0, 1),
		footer:    lipgloss.NewStyle().Foreground(t.muted),
		dialog:    lipgloss.NewStyle().Border(lipgloss.DoubleBorder()).BorderForeground(t.warn).Padding(0, 2),
		notice:    lipgloss.NewStyle().Foreground(t.accent),
		spark:     lipgloss.NewStyle().Foreground(t.ok),
	}
}

// level is the style of an alert of level l.
func (s *styles) level(l level) lipgloss.Style {
	switch l {
	case levelWarn:
		return s.warn
	case levelBad:
		return s.bad
	}
	return s.text
}
