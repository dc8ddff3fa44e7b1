package tui

import (
	"strings"

	"github.com/charmbracelet/lipgloss"
)

func splitLines(s string) []string { return strings.Split(s, "\n") }

func cellWidth(s string) int { return lipgloss.Width(s) }
