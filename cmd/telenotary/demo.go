package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"time"

	"github.com/telenotary/telenotary/cmd/telenotary/internal/demo"
)

const demoSynopsis = `demo [--dir DIR] [--listen ADDR] [--consultations N] [--interval D] [--headless --duration D] [--clean]

Runs the whole system on this machine: a 3-node notary cluster, the
signalling server, simulated consultations (pion patient and physician
pairs issuing the HL7 FHIR example prescriptions) and the operator console.
It prints the links to join a consultation by hand in a browser, an app
key with a curl line that creates a room (POST /v1/rooms), and where
receipt bundles are written with the telenotary verify line to check one;
all of it is also in the run's TRY-IT.txt and is printed again at the end.
The console opens when you press Enter. Ctrl-C stops everything. With --headless it runs without the console for
--duration and exits 0 once every consultation has a verified receipt.`

func runDemo(ctx context.Context, env *environment, args []string) int {
	fs := newFlagSet(env, "demo", demoSynopsis)
	cfg := demo.Config{Out: env.stdout, In: env.terminal, Executable: notInstalled(env.executable)}
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

// notInstalled returns exe, the path of this program, unless it is the
// telenotary found on PATH: then the demo can print "telenotary verify",
// else (go run, or a binary run by its path) it copies exe into its run's
// directory and prints that.
func notInstalled(exe string) string {
	if exe == "" {
		return ""
	}
	onPath, err := exec.LookPath("telenotary")
	if err != nil {
		return exe
	}
	a, errA := os.Stat(onPath)
	b, errB := os.Stat(exe)
	if errA == nil && errB == nil && os.SameFile(a, b) {
		return ""
	}
	return exe
}
