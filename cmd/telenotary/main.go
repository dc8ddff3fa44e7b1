// Command telenotary is the one binary of telenotary. Its subcommands own
// flags, environment variables and key and token files, and wire the
// packages together, nothing else:
//
//	demo      a local cluster, the signalling server, simulated consultations and the console (internal/demo)
//	node      one node of a notary cluster (package cluster)
//	signal    the WebRTC signalling server (package session)
//	console   the operator console (package tui)
//	verify    offline verification of a receipt bundle (package notary), and a prescription's status
//	dispense  a pharmacy's dispense of a prescription, counted by the cluster
//	policy    a cluster's trust policy file, for verifiers to pin (package notary)
//	keygen    a node's signing key
//	witness   a transparency log witness that cosigns checkpoints (package notary/witness)
//	monitor   a monitor that follows a log and alerts on split views (package cluster/monitor)
//	bench     load generators for a cluster and a signalling server (internal/bench)
//
// Every flag can also be set from the environment: --min-signatures is
// TELENOTARY_MIN_SIGNATURES. Key and token files must be private to their
// owner (chmod 600), bearer tokens bound for plain http off loopback are
// warned about at start, and the profiler listens on loopback only.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *environment, args []string) int
}

// environment is what a command may touch besides its arguments, so tests
// can run commands in-process.
type environment struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// terminal is standard input when it is a terminal, else nil.
	terminal io.Reader
	// executable is the path of this program; "" in tests, which run
	// commands in the test binary.
	executable string
}

func commands() []command {
	return []command{
		{"demo", "run a local demonstration", runDemo},
		{"verify", "verify a receipt bundle offline", runVerify},
		{"dispense", "dispense a prescription as a pharmacy (the cluster counts its fills)", runDispense},
		{"policy", "print a cluster's trust policy for verifiers to pin", runPolicy},
		{"keygen", "make a signing key for a notary node", runKeygen},
		{"rekey", "replace a node's signing key (the old one keeps its receipts)", runRekey},
		{"node", "run a node of a notary cluster", runNode},
		{"signal", "run the WebRTC signalling server", runSignal},
		{"witness", "run a witness that cosigns a log's consistent checkpoints", runWitness},
		{"monitor", "follow a log and alert on split views and broken rules", runMonitor},
		{"bench", "load-test a cluster or a signalling server", runBench},
		{"console", "watch and operate a cluster (full-screen)", runConsole},
		{"completion", "print a shell completion script", runCompletion},
		{"version", "print the version", runVersion},
	}
}

// Exit codes of every command: 0 when it did what was asked, 1 when it
// started and failed (or, for verify, the receipt is INVALID), 2 when the
// command line cannot be run as given (an unknown or bad flag, a required
// one missing, a file it names that cannot be read or is not what the flag
// says) and nothing was done. --help is not an error: it prints on stdout
// and exits 0. telenotary monitor adds 3 (a split view) and 4 (another
// fault of the log).
const (
	exitOK      = 0
	exitFailure = 1 // the command started and failed
	exitInvalid = 1 // a verification failed
	exitUsage   = 2 // bad flags or unreadable input
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := &environment{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	if st, err := os.Stdin.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		env.terminal = os.Stdin
	}
	env.executable, _ = os.Executable()
	code := run(ctx, env, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, env *environment, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" && len(args) == 1 {
		usage(env.stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] == "help" && len(args) == 2 {
		return run(ctx, env, []string{args[1], "--help"})
	}
	if args[0] == "--version" || args[0] == "-version" {
		return runVersion(ctx, env, nil)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, env, args[1:])
		}
	}
	fmt.Fprintf(env.stderr, "telenotary: unknown command %q\n\n", args[0])
	usage(env.stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "telenotary: a notary for telehealth consultations and prescriptions.")
	fmt.Fprintln(w, "\nUsage: telenotary <command> [flags]\n\nCommands:")
	width := 0
	for _, c := range commands() {
		width = max(width, len(c.name))
	}
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'telenotary <command> --help' for a command's flags.")
}

func runVersion(_ context.Context, env *environment, args []string) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprintln(env.stdout, "Usage: telenotary version\n\nPrints the version, the commit it was built from and its date, and the Go release.")
		return exitOK
	}
	if len(args) > 0 {
		return usageError(env.stderr, "version", fmt.Errorf("unexpected argument %q", args[0]))
	}
	bi, _ := debug.ReadBuildInfo()
	fmt.Fprintln(env.stdout, versionLine(bi))
	return exitOK
}

// unknown stands for what the build did not record.
const unknown = "(unknown)"

// versionLine says what this binary is: the version it was given with
// -ldflags "-X main.version=...", or else its module's version, then the
// commit it was built from, whether the work tree had changes, the commit's
// date and the Go release, from the build information (bi may be nil).
// What the build did not record (go run, or -buildvcs=false, records no
// commit) is "(unknown)".
func versionLine(bi *debug.BuildInfo) string {
	v, commit, date, goVersion := version, unknown, unknown, unknown
	modified := false
	if bi != nil {
		if v == "" {
			v = bi.Main.Version
		}
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.time":
				date = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	if modified {
		commit += " (with uncommitted changes)"
	}
	return fmt.Sprintf("telenotary %s\n  commit: %s\n  date:   %s (of the commit)\n  go:     %s", v, commit, date, goVersion)
}
