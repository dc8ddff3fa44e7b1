// Command telenotary is the one binary of telenotary. Its subcommands own
// flags, environment variables and key and token files, and wire the
// packages together, nothing else:
//
//	demo      a local cluster, the signalling server, simulated consultations and the console (internal/demo)
//	node      one node of a notary cluster (package cluster)
//	signal    the WebRTC signalling server (package session)
//	console   the operator console (package tui)
//	verify    offline verification of a receipt bundle (package notary)
//	keygen    a node's signing key
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
}

func commands() []command {
	return []command{
		{"demo", "run a local demonstration", runDemo},
		{"verify", "verify a receipt bundle offline", runVerify},
		{"keygen", "make a signing key for a notary node", runKeygen},
		{"node", "run a node of a notary cluster", runNode},
		{"signal", "run the WebRTC signalling server", runSignal},
		{"bench", "load-test a cluster (bench notarize)", runBench},
		{"console", "watch and operate a cluster (full-screen)", runConsole},
		{"completion", "print a shell completion script", runCompletion},
		{"version", "print the version", runVersion},
	}
}

// Exit codes of every command.
const (
	exitOK      = 0
	exitInvalid = 1 // a verification failed
	exitUsage   = 2 // bad flags or unreadable input
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &environment{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, env *environment, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
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
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'telenotary <command> --help' for a command's flags.")
}

func runVersion(_ context.Context, env *environment, _ []string) int {
	fmt.Fprintln(env.stdout, "telenotary", versionString())
	return exitOK
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
