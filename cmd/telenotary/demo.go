package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/fhirdata"
	"github.com/telenotary/telenotary/session"
	"github.com/telenotary/telenotary/session/peer"
	"github.com/telenotary/telenotary/session/signalapi"
	"golang.org/x/mod/sumdb/note"
)

const demoOrigin = "demo.telenotary.local/log"

const demoSynopsis = `demo [--dir DIR] [--listen ADDR] [--consultations N] [--interval D] [--headless --duration D] [--clean]

Runs the whole system on this machine: a 3-node notary cluster, the
signalling server, simulated consultations (pion patient and physician
pairs issuing the HL7 FHIR example prescriptions) and the operator console.
It prints the address of the browser client, to join a consultation by
hand, and where receipt bundles are written, to try telenotary verify on.
Ctrl-C stops everything. With --headless it runs without the console for
--duration and exits 0 once every consultation has a verified receipt.`

// demoConfig is what a demo run is asked to do.
type demoConfig struct {
	dir           string
	listen        string
	consultations int
	interval      time.Duration
	headless      bool
	duration      time.Duration
	clean         bool
}

func runDemo(ctx context.Context, env *environment, args []string) int {
	fs := newFlagSet(env, "demo", demoSynopsis)
	var c demoConfig
	fs.StringVar(&c.dir, "dir", "demo-data", "where the demo keeps the cluster's data, logs, keys and receipt bundles (each run in a directory of its own)")
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8443", "address of the signalling server and the browser client")
	fs.IntVar(&c.consultations, "consultations", 3, "simulated consultations at a time")
	fs.DurationVar(&c.interval, "interval", 3*time.Second, "time between a simulated physician's prescriptions")
	fs.BoolVar(&c.headless, "headless", false, "no console: print progress lines instead")
	fs.DurationVar(&c.duration, "duration", 0, "stop after this long (0: at Ctrl-C); with --headless, exit 0 only if every consultation got a verified receipt")
	fs.BoolVar(&c.clean, "clean", false, "remove this run's directory when the demo stops")
	pos, err := parseFlags(fs, env, args)
	if err != nil {
		return usageError(env.stderr, "demo", err)
	}
	switch {
	case len(pos) > 0:
		return usageError(env.stderr, "demo", fmt.Errorf("unexpected argument %q", pos[0]))
	case c.consultations < 1 || c.interval <= 0 || c.duration < 0:
		return usageError(env.stderr, "demo", errors.New("need --consultations ≥ 1, --interval > 0 and --duration ≥ 0"))
	}
	if c.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.duration)
		defer cancel()
	}
	if err := demo(ctx, env, c); err != nil {
		fmt.Fprintf(env.stderr, "telenotary demo: %v\n", err)
		return exitInvalid
	}
	return exitOK
}

// demoRun is a running demo: its cluster, server and simulations.
type demoRun struct {
	cfg      demoConfig
	env      *environment
	dir      string
	log      *slog.Logger
	nodes    []*cluster.Node
	urls     []string
	keys     []byte
	policy   notary.Policy
	operator string // cluster operator token and signal operator key
	appKey   string
	signal   *session.Server
	http     *http.Server
	base     string

	rxNames []string
	rxDocs  [][]byte

	outMu    sync.Mutex // serializes progress lines
	mu       sync.Mutex
	started  int          // consultations begun
	live     map[int]bool // consultations whose peers connected
	verified map[int]int  // verified bundles by consultation
	failed   atomic.Int64
	bundles  atomic.Int64
}

func demo(ctx context.Context, env *environment, cfg demoConfig) error {
	run := time.Now().UTC().Format("20060102-150405")
	d := &demoRun{cfg: cfg, env: env, dir: filepath.Join(cfg.dir, "run-"+run), verified: map[int]int{}, live: map[int]bool{}}
	d.rxNames, d.rxDocs = fhirdata.MedicationRequests()
	for _, sub := range []string{"logs", "bundles"} {
		if err := os.MkdirAll(filepath.Join(d.dir, sub), 0o700); err != nil {
			return err
		}
	}
	if cfg.clean {
		defer os.RemoveAll(d.dir)
	}
	logFile, err := os.OpenFile(filepath.Join(d.dir, "logs", "demo.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	d.log = slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))
	out := env.stdout

	fmt.Fprintf(out, "telenotary demo: starting a 3-node notary cluster in %s\n", d.dir)
	if err := d.startCluster(ctx); err != nil {
		return err
	}
	defer d.stopCluster()
	fmt.Fprintf(out, "  cluster ready: %s\n", strings.Join(d.urls, " "))
	if err := d.startSignal(); err != nil {
		return err
	}
	defer d.stopSignal()
	fmt.Fprintf(out, "  signalling server: %s\n", d.base)

	room, err := d.createRoom(ctx, "you-patient", "you-physician")
	if err != nil {
		return err
	}
	howTo := func() {
		fmt.Fprintf(out, "\nJoin a consultation by hand in two browser windows:\n")
		fmt.Fprintf(out, "  physician: %s/app/#token=%s\n", d.base, room.Tokens[signalapi.RolePhysician])
		fmt.Fprintf(out, "  patient:   %s/app/#token=%s\n", d.base, room.Tokens[signalapi.RolePatient])
		fmt.Fprintf(out, "Check any receipt bundle on %s/verify/ or with:\n", d.base)
		fmt.Fprintf(out, "  telenotary verify %s/bundles/<file>.json --keys %s/keys.pub\n", d.dir, d.dir)
		fmt.Fprintf(out, "Logs are in %s/logs. Ctrl-C stops everything.\n\n", d.dir)
	}
	howTo()
	if !cfg.headless {
		fmt.Fprintf(out, "Starting the console in 3 s (q quits it and stops the demo)...\n")
		t := time.NewTimer(3 * time.Second)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}

	simCtx, stopSims := context.WithCancel(ctx)
	var sims sync.WaitGroup
	for range cfg.consultations {
		sims.Add(1)
		go func() {
			defer sims.Done()
			d.simulate(simCtx)
		}()
	}
	if cfg.headless {
		<-ctx.Done()
	} else {
		err := d.console(ctx)
		howTo()
		if err != nil {
			stopSims()
			sims.Wait()
			return err
		}
	}
	stopSims()
	sims.Wait()
	fmt.Fprintf(out, "\nstopping: %d receipt bundles written to %s/bundles\n", d.bundles.Load(), d.dir)
	if cfg.headless {
		return d.judge()
	}
	return nil
}

// judge says whether every consultation got a verified receipt.
func (d *demoRun) judge() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failed.Load() > 0 {
		return fmt.Errorf("%d receipts did not verify", d.failed.Load())
	}
	if len(d.live) == 0 {
		return errors.New("no consultation connected")
	}
	for i := range d.live {
		if d.verified[i] == 0 {
			return fmt.Errorf("consultation %d got no verified receipt", i+1)
		}
	}
	fmt.Fprintf(d.env.stdout, "all %d consultations got verified receipts\n", len(d.live))
	return nil
}

func (d *demoRun) startCluster(ctx context.Context) error {
	d.operator = randomHex("operator")
	submitter := randomHex("submitter")
	tokens, err := auth.ParseTokens([]byte("submitter " + submitter + "\noperator " + d.operator + "\n"))
	if err != nil {
		return err
	}
	var keys strings.Builder
	fmt.Fprintf(&keys, "# verifier keys of the demo cluster's nodes (%s)\n", demoOrigin)
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("demo-node-%d", i)
		skey, vkey, err := note.GenerateKey(rand.Reader, id)
		if err != nil {
			return err
		}
		signer, err := note.NewSigner(skey)
		if err != nil {
			return err
		}
		keys.WriteString(vkey + "\n")
		cfg := cluster.DefaultConfig()
		cfg.ID, cfg.DataDir = id, filepath.Join(d.dir, id)
		cfg.RaftAddr, cfg.HTTPAddr, cfg.InsecureRaft = "127.0.0.1:0", "127.0.0.1:0", true // a demo on one machine: loopback only
		cfg.Signer, cfg.VerifierKey, cfg.Tokens = signer, vkey, tokens
		cfg.Logger = d.logger(id)
		if i == 1 {
			cfg.Bootstrap, cfg.Origin = true, demoOrigin
		} else {
			cfg.Join, cfg.JoinToken = d.urls[:1], d.operator
		}
		n, err := cluster.New(ctx, cfg)
		if err != nil {
			return fmt.Errorf("start %s: %w", id, err)
		}
		d.nodes = append(d.nodes, n)
		d.urls = append(d.urls, "http://"+n.HTTPAddr())
		if i == 1 {
			if err := waitUntil(ctx, 30*time.Second, n.Ready); err != nil {
				return fmt.Errorf("%s did not become leader: %w", id, err)
			}
		}
	}
	d.keys = []byte(keys.String())
	if err := os.WriteFile(filepath.Join(d.dir, "keys.pub"), d.keys, 0o644); err != nil {
		return err
	}
	verifiers, err := notary.ParseVerifierKeys(d.keys)
	if err != nil {
		return err
	}
	d.policy = notary.Policy{Verifiers: verifiers, MinSignatures: 1, Origin: demoOrigin}
	// Ready when all three are voters that answer (the peers are an
	// operator's to see).
	client := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: d.urls, Token: d.operator})
	return waitUntil(ctx, 60*time.Second, func() bool {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		st, err := client.Status(sctx)
		if err != nil {
			return false
		}
		voters := 0
		for _, p := range st.Peers {
			if p.Suffrage == "Voter" {
				voters++
			}
		}
		return voters == 3
	})
}

func (d *demoRun) stopCluster() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := len(d.nodes) - 1; i >= 0; i-- {
		d.nodes[i].Close(ctx)
	}
}

func (d *demoRun) startSignal() error {
	d.appKey = randomHex("app")
	keys, err := auth.ParseTokens([]byte("submitter " + d.appKey + "\noperator " + d.operator + "\n"))
	if err != nil {
		return err
	}
	tk := make([]byte, 32)
	rand.Read(tk)
	tokenKey, err := session.NewTokenKey(tk)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", d.cfg.listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w (another demo or server may be running; try --listen 127.0.0.1:0)", d.cfg.listen, err)
	}
	notaryClient := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: d.urls, Token: d.operator})
	cfg := session.DefaultConfig()
	cfg.Notary, cfg.TokenKey, cfg.APIKeys, cfg.Logger = notaryClient, tokenKey, keys, d.logger("signal")
	d.signal, err = session.NewServer(context.Background(), cfg) // stopSignal closes it
	if err != nil {
		ln.Close()
		return err
	}
	d.http = &http.Server{Handler: d.signal.Handler(), ReadHeaderTimeout: 10 * time.Second}
	d.base = "http://" + ln.Addr().String()
	go d.http.Serve(ln)
	return nil
}

func (d *demoRun) stopSignal() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d.signal.Close(ctx)
	d.http.Shutdown(ctx)
}

// logger writes a component's logs to its file under logs/.
func (d *demoRun) logger(name string) *slog.Logger {
	f, err := os.OpenFile(filepath.Join(d.dir, "logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return d.log
	}
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func (d *demoRun) createRoom(ctx context.Context, patient, physician string) (*signalapi.CreateRoomResponse, error) {
	return createRoom(ctx, d.base, d.appKey, patient, physician)
}

// simulate runs consultations one after another in a slot: a patient and a
// physician join, the physician prescribes a few FHIR examples, one every
// interval, then leaves; every bundle is verified and written to bundles/.
func (d *demoRun) simulate(ctx context.Context) {
	for ctx.Err() == nil {
		d.mu.Lock()
		n := d.started
		d.started++
		d.mu.Unlock()
		if err := d.consultation(ctx, n); err != nil && ctx.Err() == nil {
			d.log.Warn("simulated consultation failed", "consultation", n+1, "err", err)
			d.progress("consultation %d failed: %v", n+1, err)
		}
	}
}

func (d *demoRun) consultation(ctx context.Context, n int) error {
	room, err := d.createRoom(ctx, fmt.Sprintf("demo-patient-%d", n+1), fmt.Sprintf("demo-physician-%d", n+1))
	if err != nil {
		return err
	}
	ws := "ws" + strings.TrimPrefix(d.base, "http") + "/v1/signal"
	cfg := peer.Config{URL: ws, Policy: &d.policy, Loopback: true, Logger: d.log}
	patCfg, docCfg := cfg, cfg
	patCfg.Token, docCfg.Token = room.Tokens[signalapi.RolePatient], room.Tokens[signalapi.RolePhysician]
	pat, doc, err := peer.Pair(ctx, patCfg, docCfg)
	if err != nil {
		return err
	}
	defer pat.Close()
	defer doc.Close()
	d.mu.Lock()
	d.live[n] = true
	d.mu.Unlock()
	d.progress("consultation %d: connected (room %.8s…)", n+1, room.Room)
	done := make(chan struct{})
	go func() { // the patient keeps what it receives
		defer close(done)
		for {
			select {
			case r := <-pat.Receipts():
				d.keep(n, r)
			case <-pat.Ended():
				for {
					select {
					case r := <-pat.Receipts():
						d.keep(n, r)
					default:
						return
					}
				}
			}
		}
	}()
	for i := range 3 {
		t := time.NewTimer(d.cfg.interval)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		if ctx.Err() != nil {
			break
		}
		k := (n*3 + i) % len(d.rxDocs)
		if _, err := doc.Prescribe(ctx, d.rxNames[k], d.rxDocs[k]); err != nil {
			return err
		}
	}
	// End the consultation, even when the demo is stopping.
	leaveCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := doc.Leave(leaveCtx, "consultation over"); err != nil {
		return err
	}
	pat.WaitEnd(leaveCtx)
	<-done
	return nil
}

// keep verifies a bundle the patient received and writes it to bundles/.
func (d *demoRun) keep(n int, r peer.Receipt) {
	if r.Err != nil {
		d.failed.Add(1)
		d.progress("consultation %d: %s receipt DOES NOT VERIFY: %v", n+1, r.Kind, r.Err)
		return
	}
	idx := r.Bundle.Receipt.Index
	name := fmt.Sprintf("%s-%d.json", r.Kind, idx)
	if err := os.WriteFile(filepath.Join(d.dir, "bundles", name), r.Raw, 0o644); err != nil {
		d.progress("write bundle: %v", err)
		return
	}
	d.bundles.Add(1)
	d.mu.Lock()
	d.verified[n]++
	d.mu.Unlock()
	d.progress("consultation %d: %-13s #%-6d verified → bundles/%s", n+1, r.Kind, idx, name)
}

// progress prints a line in headless mode (the console shows the rest).
func (d *demoRun) progress(format string, args ...any) {
	if d.cfg.headless {
		d.outMu.Lock()
		defer d.outMu.Unlock()
		fmt.Fprintf(d.env.stdout, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
}

// waitUntil polls cond until it holds, ctx ends or timeout passes.
func waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", timeout)
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	return nil
}

func randomHex(prefix string) string {
	var b [16]byte
	rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}
