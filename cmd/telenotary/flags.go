package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// envPrefix starts the environment variable of every flag: --min-signatures
// is also TELENOTARY_MIN_SIGNATURES.
const envPrefix = "TELENOTARY_"

// envName returns the environment variable that sets a flag.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// newFlagSet returns a flag set for a command whose help lists each flag
// with its environment variable.
func newFlagSet(env *environment, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: telenotary %s\n\nFlags (each also from the environment variable shown):\n", synopsis)
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" && f.DefValue != "false" {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(w, "  --%s  [%s]\n      %s%s\n", f.Name, envName(f.Name), f.Usage, def)
		})
	}
	return fs
}

// parseFlags parses args, which may mix flags and positional arguments, and
// then fills every flag not given on the command line from its environment
// variable. It returns the positional arguments. A --help returns
// flag.ErrHelp after printing the usage on stdout; a bad flag returns an
// error after printing it and the usage on stderr.
func parseFlags(fs *flag.FlagSet, env *environment, args []string) ([]string, error) {
	var positional []string
	for {
		var printed bytes.Buffer
		fs.SetOutput(&printed)
		err := fs.Parse(args)
		fs.SetOutput(env.stderr)
		if err != nil {
			w := env.stderr
			if errors.Is(err, flag.ErrHelp) {
				w = env.stdout
			}
			w.Write(printed.Bytes())
			return nil, reportedError{err} // printed above
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			positional = append(positional, args[1:]...)
			break
		}
		positional, args = append(positional, args[0]), args[1:]
	}
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		if v := env.getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName(f.Name), v, err))
			}
		}
	})
	return positional, errors.Join(errs...)
}

// reportedError is an error already shown to the user.
type reportedError struct{ error }

func (e reportedError) Unwrap() error { return e.error }

// usageError prints a usage problem and returns exitUsage; --help is not a
// problem.
func usageError(w io.Writer, cmd string, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if !errors.As(err, new(reportedError)) {
		fmt.Fprintf(w, "telenotary %s: %v\n", cmd, err)
	}
	return exitUsage
}

// failure prints why a command that had started failed, and returns
// exitFailure.
func failure(w io.Writer, cmd string, err error) int {
	fmt.Fprintf(w, "telenotary %s: %v\n", cmd, err)
	return exitFailure
}

// parseFlagsOnly parses a command line of flags only, as parseFlags does:
// it refuses positional arguments, and names the first of the required
// flags left empty (on the command line and in the environment).
func parseFlagsOnly(fs *flag.FlagSet, env *environment, args []string, required ...string) error {
	pos, err := parseFlags(fs, env, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	for _, name := range required {
		if fs.Lookup(name).Value.String() == "" {
			return fmt.Errorf("--%s is required (see telenotary %s --help)", name, fs.Name())
		}
	}
	return nil
}

// newLogger returns the logger of a long-running command, from its
// --log-level and --log-json.
func newLogger(w io.Writer, level string, asJSON bool) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	if asJSON {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
