package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/telenotary/telenotary/notary/witness"
)

const witnessSynopsis = `witness --data-dir DIR --signer-key FILE --logs FILE [flags]

Runs a transparency log witness (c2sp.org/tlog-witness): it cosigns, with
cosignature/v1 (c2sp.org/tlog-cosignature), each checkpoint of the logs it
is given that is consistent with the last one of that log it cosigned, and
records it on disk before answering, so that it never cosigns two
inconsistent checkpoints of one log, across restarts and crashes. Logs POST
to /add-checkpoint; GET /metrics serves Prometheus metrics.

The key is a signer key from telenotary keygen; the witness's verifier key,
for logs and verifiers to trust, is printed by --print-key and logged at
start. The logs file has lines of "<origin> <verifier key>", one line per
key of a log.`

// witnessStopTimeout bounds the witness's shutdown.
const witnessStopTimeout = 10 * time.Second

// witnessFlags is the command line of telenotary witness.
type witnessFlags struct {
	listen, dataDir, keyFile, logsFile string
	tlsCert, tlsKey                    string
	printKey                           bool
	logLevel                           string
	logJSON                            bool
}

func (f *witnessFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&f.listen, "listen", "127.0.0.1:7380", "address to serve HTTP (or HTTPS with --tls-cert) on")
	fs.StringVar(&f.dataDir, "data-dir", "", "directory of the witness's state, one small file per log (created if missing; required)")
	fs.StringVar(&f.keyFile, "signer-key", "", "the witness's signer key file (mode 0600), from telenotary keygen (required)")
	fs.StringVar(&f.logsFile, "logs", "", `the logs witnessed: lines of "<origin> <verifier key>", one per key of a log (required)`)
	fs.StringVar(&f.tlsCert, "tls-cert", "", "certificate (PEM) to serve HTTPS")
	fs.StringVar(&f.tlsKey, "tls-key", "", "private key (PEM, mode 0600) of --tls-cert")
	fs.BoolVar(&f.printKey, "print-key", false, "print the witness's cosignature/v1 verifier key and exit (needs --signer-key only)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&f.logJSON, "log-json", false, "log JSON lines instead of text")
}

// runWitness parses the flags, opens the witness's state, serves it until
// interrupted, and shuts down.
func runWitness(ctx context.Context, env *environment, args []string) int {
	fail := func(err error) int { return usageError(env.stderr, "witness", err) }
	var f witnessFlags
	fs := newFlagSet(env, "witness", witnessSynopsis)
	f.define(fs)
	if err := parseFlagsOnly(fs, env, args, "signer-key"); err != nil {
		return fail(err)
	}
	skey, err := readSecret(f.keyFile, "--signer-key", 1)
	if err != nil {
		return fail(err)
	}
	signer, err := witness.NewSigner(string(skey))
	if err != nil {
		return fail(fmt.Errorf("--signer-key %s: %w (make one with telenotary keygen)", f.keyFile, err))
	}
	if f.printKey {
		fmt.Fprintln(env.stdout, signer.Verifier().String())
		return exitOK
	}
	for _, name := range []string{"data-dir", "logs"} {
		if fs.Lookup(name).Value.String() == "" {
			return fail(fmt.Errorf("--%s is required (see telenotary witness --help)", name))
		}
	}
	logsText, err := os.ReadFile(f.logsFile)
	if err != nil {
		return fail(fmt.Errorf("--logs: %w", err))
	}
	logs, err := witness.ParseLogs(logsText)
	if err != nil {
		return fail(fmt.Errorf("--logs %s: %w", f.logsFile, err))
	}
	srvTLS, _, err := apiTLS(f.tlsCert, f.tlsKey, "")
	if err != nil {
		return fail(err)
	}
	logger, err := newLogger(env.stderr, f.logLevel, f.logJSON)
	if err != nil {
		return fail(err)
	}
	// From here on the command line was sound: what fails is the run.
	failed := func(err error) int { return failure(env.stderr, "witness", err) }
	if err := os.MkdirAll(f.dataDir, 0o700); err != nil {
		return failed(fmt.Errorf("--data-dir: %w", err))
	}
	w, err := witness.New(witness.Config{Dir: f.dataDir, Signer: signer, Logs: logs, Logger: logger})
	if err != nil {
		return failed(err)
	}
	defer w.Close()
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return failed(fmt.Errorf("--listen %s: %w (is another server on that port?)", f.listen, err))
	}
	return serveWitness(ctx, env, logger, w, ln, srvTLS, len(logs))
}

// serveWitness serves w on ln until ctx ends or serving fails.
func serveWitness(ctx context.Context, env *environment, logger *slog.Logger, w *witness.Witness, ln net.Listener, srvTLS *tls.Config, logs int) int {
	srv := &http.Server{
		Handler:           w,
		TLSConfig:         srvTLS,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if srvTLS != nil {
		scheme = "https"
		ln = tls.NewListener(ln, srvTLS)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.InfoContext(ctx, "witness started", "url", scheme+"://"+ln.Addr().String(), "verifier_key", w.VerifierKey(), "logs", logs)
	select {
	case <-ctx.Done():
	case err := <-served:
		return failure(env.stderr, "witness", err)
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), witnessStopTimeout)
	defer cancel()
	if err := srv.Shutdown(stopCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return failure(env.stderr, "witness", fmt.Errorf("shutdown: %w", err))
	}
	return exitOK
}
