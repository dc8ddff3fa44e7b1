package demo

import (
	"context"

	"github.com/telenotary/telenotary/tui"
)

// console attaches the operator console to the demo until ctx ends or the
// operator quits.
func (d *run) console(ctx context.Context) error {
	return tui.Run(ctx, tui.Config{Nodes: d.urls, Signal: d.base, Token: d.operator, SignalKey: d.operator, Keys: d.keys})
}
