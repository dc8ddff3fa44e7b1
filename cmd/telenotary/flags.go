package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
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
// flag.ErrHelp after printing the usage.
func parseFlags(fs *flag.FlagSet, env *environment, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, reportedError{err} // the flag package printed it
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
