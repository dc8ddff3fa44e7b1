package main

import (
	"context"
	"errors"
	"time"

	"github.com/telenotary/telenotary/cmd/telenotary/internal/demo"
)

const demoSynopsis = `demo [--dir DIR] [--listen ADDR] [--consultations N] [--interval D] [--headless --duration D] [--clean]

Runs the whole system on this machine: a 3-node notary cluster, the
signalling server, simulated consultations (pion patient and physician
pairs issuing the HL7 FHIR example prescriptions) and the operator console.
It prints the address of the browser client, to join a consultation by
hand, and where receipt bundles are written, to try telenotary verify on.
Ctrl-C stops everything. With --headless it runs without the console for
--duration and exits 0 once every consultation has a verified receipt.`

func runDemo(ctx context.Context, env *environment, args []string) int {
	fs := newFlagSet(env, "demo", demoSynopsis)
	cfg := demo.Config{Out: env.stdout}
	var duration time.Duration
	fs.StringVar(&cfg.Dir, "dir", "demo-data", "where the demo keeps the cluster's data, logs, keys and receipt bundles (each run in a directory of its own)")
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:8443", "address of the signalling server and the browser client")
	fs.IntVar(&cfg.Consultations, "consultations", 3, "simulated consultations at a time")
	fs.DurationVar(&cfg.Interval, "interval", 3*time.Second, "time between a simulated physician's prescriptions")
	fs.BoolVar(&cfg.Headless, "headless", false, "no console: print progress lines instead")
	fs.DurationVar(&duration, "duration", 0, "stop after this long (0: at Ctrl-C); with --headless, exit 0 only if every consultation got a verified receipt")
	fs.BoolVar(&cfg.Clean, "clean", false, "remove this run's directory when the demo stops")
	err := parseFlagsOnly(fs, env, args)
	if err == nil && (cfg.Consultations < 1 || cfg.Interval <= 0 || duration < 0) {
		err = errors.New("need --consultations ≥ 1, --interval > 0 and --duration ≥ 0")
	}
	if err != nil {
		return usageError(env.stderr, "demo", err)
	}
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	if err := demo.Run(ctx, cfg); err != nil {
		return failure(env.stderr, "demo", err)
	}
	return exitOK
}
