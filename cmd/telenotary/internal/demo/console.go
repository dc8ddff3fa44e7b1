package demo

import (
	"context"

	"github.com/telenotary/telenotary/tui"
)

// console attaches the operator console to the demo until ctx ends or the
// operator quits.
func (d *run) console(ctx context.Context) error {
	return tui.Run(ctx, d.consoleConfig())
}

// consoleConfig is the console of the demo: its cluster, its signalling
// server, and on the Try it tab what the demo printed to try by hand, which
// the console covers.
func (d *run) consoleConfig() tui.Config {
	return tui.Config{Nodes: d.urls, Signal: d.base, Token: d.operator, SignalKey: d.operator, Keys: d.keys, TryIt: d.howTo}
}
