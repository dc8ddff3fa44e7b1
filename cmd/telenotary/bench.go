package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/cmd/telenotary/internal/bench"
	"github.com/telenotary/telenotary/notary"
)

const benchSynopsis = `bench notarize --nodes URL[,URL...] [--clients N] [--batch B] [--duration D] [--rate R]

Submits fresh random commitments from N concurrent clients (one per request,
or B per batch request) for D, or at R requests per second (open loop:
latency is measured from when each request was due), and reports
receipts/s, latency percentiles and errors. It verifies the receipts it gets
against the cluster's keys: all of them, or a sample (--verify).`

const benchDispenseSynopsis = `bench dispense --nodes URL[,URL...] --token-file FILE --pharmacy-token-file FILE [--clients N] [--prescriptions P] [--fills F] [--duration D] [--rate R]

Notarizes P prescriptions, each with an allowance of F fills (a submitter
token), then N concurrent pharmacies (a pharmacy token) dispense them as
fast as the cluster answers (or R a second across them, open loop: latency
counts from when a dispense was due), for D or until every fill is spent: each
dispense claims the next fill of a prescription with its proof, with a
fresh dispense commitment, and waits for its receipt. The prescriptions
are shared out so that no two clients race for a fill: the run measures
the cluster's dispensing, not refusals. Reports dispenses/s, latency
percentiles and errors, and verifies the receipts (all of them, or a
sample: --verify).`

const benchSignalSynopsis = `bench signal --signal URL --api-key-file FILE [--rooms N] [--setup-parallel P] [--duration D] [--relay-rate R]

Runs N concurrent consultations through a signalling server with the Go
SDK (two pion peers each, on loopback): it creates each room, joins both
participants and times setup (join → data channel open → session-start
receipt, verified) with P setups at a time. With every consultation live,
each physician then sends R relayed messages a second for D (end-of-
candidates markers, which the server relays like any candidate) and the
relay latency from send to the patient's receipt of the message is
reported. Each physician then prescribes once and leaves; every receipt is
verified against the keys the server serves.`

func runBench(ctx context.Context, env *environment, args []string) int {
	switch {
	case len(args) > 0 && args[0] == "notarize":
		return runBenchNotarize(ctx, env, args[1:])
	case len(args) > 0 && args[0] == "dispense":
		return runBenchDispense(ctx, env, args[1:])
	case len(args) > 0 && args[0] == "signal":
		return runBenchSignal(ctx, env, args[1:])
	case len(args) > 0 && (args[0] == "-h" || args[0] == "--help"):
		fmt.Fprintf(env.stdout, "Usage: telenotary %s\n\n   or: telenotary %s\n\n   or: telenotary %s\n", benchSynopsis, benchDispenseSynopsis, benchSignalSynopsis)
		return exitOK
	}
	return usageError(env.stderr, "bench", errors.New("unknown benchmark; try telenotary bench notarize --help, telenotary bench dispense --help or telenotary bench signal --help"))
}

// runBenchNotarize parses the flags, reads the token, builds the HTTP
// client, sets up profiling and runs bench.Notarize: exit 1 if it got no
// receipt or one did not verify.
func runBenchNotarize(ctx context.Context, env *environment, args []string) int {
	fs := newFlagSet(env, "bench notarize", benchSynopsis)
	cfg := bench.NotarizeConfig{Out: env.stdout}
	nodes := fs.String("nodes", "", "comma-separated API URLs of the cluster's nodes (required)")
	fs.IntVar(&cfg.Clients, "clients", 16, "concurrent clients")
	fs.IntVar(&cfg.Batch, "batch", 1, "commitments per request: 1 uses /v1/notarize, more /v1/notarize/batch")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to run")
	fs.Float64Var(&cfg.Rate, "rate", 0, "requests per second to offer across all clients (0: as fast as they go)")
	tokenFile := fs.String("token-file", "", "file (mode 0600) holding a submitter token (or set TELENOTARY_TOKEN)")
	fs.Float64Var(&cfg.VerifyShare, "verify", 0.01, "share of receipts to verify, 0 to 1 (1: all)")
	signatures := fs.String("signatures", "1", "nodes that sign each receipt's checkpoint: a number, or majority (the signalling server's default); the receipts verified must carry that many")
	caFile := fs.String("tls-ca", "", "CA certificates (PEM) of the nodes' API certificates")
	cpuProfile := fs.String("cpuprofile", "", "write the load generator's own CPU profile to this file")
	fs.BoolVar(&cfg.Trace, "trace", false, "break the latency down into the write path's stages, as the leader timed them (its /metrics, read before and after the run)")
	fs.StringVar(&cfg.Via, "via", "", "with --http direct: send every request to this node (a follower, which forwards them) instead of the leader")
	httpMode := fs.String("http", "direct", "direct: each client keeps one connection to the leader and drives it on its own goroutine (plain HTTP; the Go client takes over after a failure); client: every request through the Go client's http.Client")
	fail := func(err error) int { return usageError(env.stderr, "bench notarize", err) }
	switch err := parseFlagsOnly(fs, env, args, "nodes"); {
	case err != nil:
		return fail(err)
	case cfg.Clients < 1 || cfg.Batch < 1 || cfg.Batch > notaryapi.MaxBatchRequest || cfg.Duration <= 0 || cfg.Rate < 0 || cfg.VerifyShare < 0 || cfg.VerifyShare > 1:
		return fail(fmt.Errorf("need --clients ≥ 1, --batch 1 to %d, --duration > 0, --rate ≥ 0, --verify 0 to 1", notaryapi.MaxBatchRequest))
	case *httpMode != "direct" && *httpMode != "client":
		return fail(fmt.Errorf("--http is direct or client, not %q", *httpMode))
	case cfg.Via != "" && (*httpMode != "direct" || !strings.HasPrefix(cfg.Via, "http://")):
		return fail(errors.New("--via needs --http direct and a plain http:// node URL"))
	}
	var err error
	if cfg.Signatures, err = parseSignatures(*signatures, "--signatures"); err != nil {
		return fail(err)
	}
	cfg.Nodes = strings.Split(*nodes, ",")
	// Direct connections speak plain HTTP: over TLS every request goes
	// through the Go client.
	cfg.Direct = *httpMode == "direct" && !strings.Contains(*nodes, "https://")
	if cfg.Token, err = optionalSecret(*tokenFile, "--token-file", env.getenv("TELENOTARY_TOKEN")); err != nil {
		return fail(err)
	}
	tlsConfig, err := clientTLS(*caFile, "--tls-ca")
	if err != nil {
		return fail(err)
	}
	cfg.HTTPClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Clients + 8, IdleConnTimeout: 90 * time.Second, TLSClientConfig: tlsConfig}}
	if cfg.Token != "" {
		warnClearText(func(line string) { fmt.Fprintf(env.stderr, "telenotary bench: warning: %s\n", line) }, "--nodes", "submitter token", cfg.Nodes)
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return fail(err)
		}
		defer stop()
	}
	if env.getenv("GOGC") == "" {
		// The load generator's heap is small and short-lived: collecting it
		// less often leaves more of a shared machine to the cluster.
		debug.SetGCPercent(400)
	}
	res, err := bench.Notarize(ctx, cfg)
	if err != nil {
		return failure(env.stderr, "bench notarize", err)
	}
	if !res.OK() {
		return exitFailure
	}
	return exitOK
}

// runBenchDispense parses the flags, reads the tokens and runs
// bench.Dispense: exit 1 if nothing was dispensed, a receipt did not
// verify or the cluster refused a dispense.
func runBenchDispense(ctx context.Context, env *environment, args []string) int {
	fs := newFlagSet(env, "bench dispense", benchDispenseSynopsis)
	cfg := bench.DispenseConfig{Out: env.stdout}
	nodes := fs.String("nodes", "", "comma-separated API URLs of the cluster's nodes (required)")
	fs.IntVar(&cfg.Clients, "clients", 16, "concurrent pharmacies")
	fs.IntVar(&cfg.Prescriptions, "prescriptions", 2000, "prescriptions to notarize and dispense (at least --clients)")
	fs.IntVar(&cfg.Fills, "fills", notary.MaxFills, fmt.Sprintf("fills each prescription allows, 1 to %d", notary.MaxFills))
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to dispense at most")
	fs.BoolVar(&cfg.Trace, "trace", false, "break the latency down into the write path's stages, as the leader timed them (its /metrics, read before and after the run)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "dispenses per second to offer across all clients (0: as fast as they go)")
	tokenFile := fs.String("token-file", "", "file (mode 0600) holding a submitter token, to notarize the prescriptions (or set TELENOTARY_TOKEN)")
	pharmacyFile := fs.String("pharmacy-token-file", "", "file (mode 0600) holding a pharmacy token, to dispense (or set TELENOTARY_PHARMACY_TOKEN)")
	fs.Float64Var(&cfg.VerifyShare, "verify", 0.01, "share of receipts to verify, 0 to 1 (1: all)")
	signatures := fs.String("signatures", "1", "nodes that sign each receipt's checkpoint: a number, or majority")
	caFile := fs.String("tls-ca", "", "CA certificates (PEM) of the nodes' API certificates")
	cpuProfile := fs.String("cpuprofile", "", "write the load generator's own CPU profile to this file")
	httpMode := fs.String("http", "direct", "direct: each client keeps one connection to the leader (plain HTTP; the Go client takes over after a failure); client: every request through the Go client")
	fail := func(err error) int { return usageError(env.stderr, "bench dispense", err) }
	switch err := parseFlagsOnly(fs, env, args, "nodes"); {
	case err != nil:
		return fail(err)
	case cfg.Clients < 1 || cfg.Prescriptions < cfg.Clients || cfg.Fills < 1 || cfg.Fills > notary.MaxFills || cfg.Duration <= 0 || cfg.Rate < 0 || cfg.VerifyShare < 0 || cfg.VerifyShare > 1:
		return fail(fmt.Errorf("need --clients ≥ 1, --prescriptions ≥ --clients, --fills 1 to %d, --duration > 0, --rate ≥ 0, --verify 0 to 1", notary.MaxFills))
	case *httpMode != "direct" && *httpMode != "client":
		return fail(fmt.Errorf("--http is direct or client, not %q", *httpMode))
	}
	var err error
	if cfg.Signatures, err = parseSignatures(*signatures, "--signatures"); err != nil {
		return fail(err)
	}
	cfg.Nodes = strings.Split(*nodes, ",")
	cfg.Direct = *httpMode == "direct" && !strings.Contains(*nodes, "https://")
	if cfg.Token, err = optionalSecret(*tokenFile, "--token-file", env.getenv("TELENOTARY_TOKEN")); err != nil {
		return fail(err)
	}
	if cfg.PharmacyToken, err = optionalSecret(*pharmacyFile, "--pharmacy-token-file", env.getenv("TELENOTARY_PHARMACY_TOKEN")); err != nil {
		return fail(err)
	}
	if cfg.Token == "" || cfg.PharmacyToken == "" {
		return fail(errors.New("--token-file (a submitter token) and --pharmacy-token-file (a pharmacy token) are required"))
	}
	tlsConfig, err := clientTLS(*caFile, "--tls-ca")
	if err != nil {
		return fail(err)
	}
	cfg.HTTPClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Clients + 8, IdleConnTimeout: 90 * time.Second, TLSClientConfig: tlsConfig}}
	warnClearText(func(line string) { fmt.Fprintf(env.stderr, "telenotary bench: warning: %s\n", line) }, "--nodes", "tokens", cfg.Nodes)
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return fail(err)
		}
		defer stop()
	}
	if env.getenv("GOGC") == "" {
		debug.SetGCPercent(400) // as bench notarize: leave the CPU to the cluster
	}
	res, err := bench.Dispense(ctx, cfg)
	if err != nil {
		return failure(env.stderr, "bench dispense", err)
	}
	if !res.OK() {
		return exitFailure
	}
	return exitOK
}

// startCPUProfile writes the process's CPU profile to path until stop is
// called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// runBenchSignal parses the flags, reads the API key and runs
// bench.Signal: exit 1 if anything in the run failed.
func runBenchSignal(ctx context.Context, env *environment, args []string) int {
	fs := newFlagSet(env, "bench signal", benchSignalSynopsis)
	cfg := bench.SignalConfig{Out: env.stdout}
	fs.StringVar(&cfg.Base, "signal", "", "base URL of the signalling server, such as http://127.0.0.1:8443, or the comma-separated base URLs of a group's instances: rooms are created on each in turn, and their participants connect through the next two (relayed, as behind a balancer) (required)")
	keyFile := fs.String("api-key-file", "", "file (mode 0600) holding an app (submitter) API key of the server (or set TELENOTARY_API_KEY)")
	fs.IntVar(&cfg.Rooms, "rooms", 100, "concurrent consultations (two WebSocket peers each)")
	fs.IntVar(&cfg.Parallel, "setup-parallel", 8, "consultations being set up at once")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to relay messages once every consultation is live")
	fs.Float64Var(&cfg.RelayRate, "relay-rate", 2, "relayed messages a second per consultation")
	fs.BoolVar(&cfg.Light, "light", false, "light participants: the signalling protocol only (a fixed SDP offer and answer, no ICE, DTLS or media), every receipt still verified; to measure the server with more participants than the load generator could run pion peers for")
	gcHeap := fs.Int("gc-heap", 4096, "MiB: the load generator collects its garbage only when its heap reaches this size, so that its own collections, which delay its reading of relayed messages, are not counted as the server's relay time; 0 collects as usual (GOGC 400); a GOGC in the environment takes precedence")
	fail := func(err error) int { return usageError(env.stderr, "bench signal", err) }
	switch err := parseFlagsOnly(fs, env, args, "signal"); {
	case err != nil:
		return fail(err)
	case cfg.Rooms < 1 || cfg.Parallel < 1 || cfg.Duration < 0 || cfg.RelayRate <= 0 || *gcHeap < 0:
		return fail(errors.New("need --rooms ≥ 1, --setup-parallel ≥ 1, --duration ≥ 0, --relay-rate above 0, --gc-heap ≥ 0"))
	case cfg.RelayRate*cfg.Duration.Seconds() > bench.MaxRelayMarkers:
		return fail(fmt.Errorf("--relay-rate × --duration is %.0f messages per consultation; the server relays at most 100 candidates per offer, so keep it under %d", cfg.RelayRate*cfg.Duration.Seconds(), bench.MaxRelayMarkers))
	}
	var err error
	if cfg.Key, err = optionalSecret(*keyFile, "--api-key-file", env.getenv("TELENOTARY_API_KEY")); err != nil {
		return fail(err)
	}
	if cfg.Key == "" {
		return fail(errors.New("--api-key-file (or TELENOTARY_API_KEY) is required to create rooms"))
	}
	warnClearText(func(line string) { fmt.Fprintf(env.stderr, "telenotary bench signal: warning: %s\n", line) }, "--signal", "API key", strings.Split(cfg.Base, ","))
	if env.getenv("GOGC") == "" {
		if *gcHeap > 0 {
			defer debug.SetMemoryLimit(debug.SetMemoryLimit(int64(*gcHeap) << 20))
			defer debug.SetGCPercent(debug.SetGCPercent(-1))
			fmt.Fprintf(env.stdout, "load generator: garbage collected only at a %d MiB heap (--gc-heap)\n", *gcHeap)
		} else {
			defer debug.SetGCPercent(debug.SetGCPercent(400)) // as bench notarize
		}
	}
	if err := bench.Signal(ctx, cfg); err != nil {
		return failure(env.stderr, "bench signal", err)
	}
	return exitOK
}

// parseSignatures reads a count of signatures as flag name takes it: a
// number from 1 to notaryapi.MaxSignatures, or "majority"
// (notaryapi.Majority).
func parseSignatures(s, name string) (int, error) {
	if s == notaryapi.SignaturesMajority {
		return notaryapi.Majority, nil
	}
	k, err := strconv.Atoi(s)
	if err != nil || k < 1 || k > notaryapi.MaxSignatures {
		return 0, fmt.Errorf("%s %q: give a number from 1 to %d, or %s", name, s, notaryapi.MaxSignatures, notaryapi.SignaturesMajority)
	}
	return k, nil
}
