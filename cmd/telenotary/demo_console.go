package main

import (
	"context"
	"fmt"
)

// console attaches the operator console to the demo until ctx ends or the
// operator quits.
func (d *demoRun) console(ctx context.Context) error {
	fmt.Fprintf(d.env.stdout, "(the console is not built yet: run with --headless to see progress lines)\n")
	<-ctx.Done()
	return nil
}
