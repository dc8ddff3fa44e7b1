package demo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/fhirdata"
	"github.com/telenotary/telenotary/session"
	"github.com/telenotary/telenotary/session/signalapi"
)

// Origin names the demo cluster's log: verify the demo's bundles with
// telenotary verify --origin Origin.
const Origin = "demo.telenotary.local/log"

// Config is what a demo run is asked to do. The command line checks the
// numbers before it calls Run.
type Config struct {
	// Dir keeps the runs: each in a directory Dir/run-YYYYMMDD-HHMMSS.
	Dir string
	// Listen is the address of the signalling server and the browser
	// client; port 0 picks a free one.
	Listen string
	// Consultations is how many simulated consultations run at a time (at
	// least 1).
	Consultations int
	// Interval is the time between a simulated physician's prescriptions.
	Interval time.Duration
	// Headless runs without the console and prints a progress line per
	// event instead; Run then fails unless every consultation got a
	// verified receipt.
	Headless bool
	// Clean removes the run's directory when the demo stops.
	Clean bool
	// Out receives the addresses to try by hand and, headless, the
	// progress lines.
	Out io.Writer
	// In, when set, is the terminal: the console opens when a line (Enter)
	// is read from it, not before. Nil opens it after 3 s.
	In io.Reader
	// Executable, when set, is this telenotary program: it is copied into
	// the run's directory, and the verify line printed names that copy, so
	// that the line works as printed after go run, which leaves no binary
	// behind. "" prints "telenotary" (one is installed).
	Executable string
}

// Run runs the demo until ctx ends or, with the console, until the
// operator quits it. It stops everything it started before it returns.
func Run(ctx context.Context, cfg Config) error {
	d := &run{cfg: cfg, out: cfg.Out, dir: filepath.Join(cfg.Dir, "run-"+time.Now().UTC().Format("20060102-150405")),
		verified: map[int]int{}, live: map[int]bool{}}
	d.rxNames, d.rxDocs = fhirdata.MedicationRequests()
	if err := d.makeDirs(); err != nil {
		return err
	}
	if cfg.Clean {
		defer os.RemoveAll(d.dir) // last, once nothing writes there any more
	}
	if err := d.openLog(); err != nil {
		return err
	}
	defer d.closeLogs()

	// Stop in the reverse order: the signalling server first, so that the
	// sessions it ends still reach the cluster, then the nodes.
	fmt.Fprintf(d.out, "telenotary demo: starting a 3-node notary cluster in %s\n", d.dir)
	defer d.stopCluster()
	if err := d.startCluster(ctx); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "  cluster ready: %s\n", strings.Join(d.urls, " "))
	defer d.stopSignal()
	if err := d.startSignal(); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "  signalling server: %s\n", d.base)

	room, err := d.createRoom(ctx, "you-patient", "you-physician")
	if err != nil {
		return err
	}
	if err := d.writeHowTo(room); err != nil {
		return err
	}
	d.printHowTo()
	if !cfg.Headless {
		d.pauseBeforeConsole(ctx)
	}
	return d.simulate(ctx)
}

// run is a running demo: its cluster, server and simulations.
type run struct {
	cfg  Config
	out  io.Writer
	dir  string
	log  *slog.Logger // the demo's own log, logs/demo.log
	logs []*os.File   // every log file, closed at the end

	nodes    []*cluster.Node
	urls     []string
	keys     []byte // the nodes' verifier keys, as keys.pub holds them
	policy   notary.Policy
	operator string // cluster operator token and signal operator key
	appKey   string // the app's (submitter) API key of the signalling server
	signal   *session.Server
	http     *http.Server
	served   chan struct{} // closed when http stops serving
	base     string
	rooms    *signalapi.Client

	rxNames    []string
	rxDocs     [][]byte
	howTo      string                            // what to try by hand, printed, in howToFile and on the console's Try it tab
	joins      atomic.Pointer[map[string]string] // the join link of each role, behind /try/{role}
	telenotary string                            // the command that runs telenotary, as printed

	outMu    sync.Mutex   // serializes progress lines
	mu       sync.Mutex   // guards started, live and verified
	started  int          // consultations begun
	live     map[int]bool // consultations whose peers connected
	verified map[int]int  // verified bundles by consultation
	failed   atomic.Int64
	bundles  atomic.Int64
}

// makeDirs makes the run's directory and its logs/ and bundles/.
func (d *run) makeDirs() error {
	for _, sub := range []string{"logs", "bundles"} {
		if err := os.MkdirAll(filepath.Join(d.dir, sub), 0o700); err != nil {
			return err
		}
	}
	return nil
}

// openLog opens logs/demo.log, the demo's own log.
func (d *run) openLog() error {
	f, err := d.openLogFile("demo")
	if err != nil {
		return err
	}
	d.log = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return nil
}

// logger returns a logger that writes a component's logs to its file
// under logs/ (or to the demo's log if that file cannot be made).
func (d *run) logger(name string) *slog.Logger {
	f, err := d.openLogFile(name)
	if err != nil {
		return d.log
	}
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func (d *run) openLogFile(name string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(d.dir, "logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	d.logs = append(d.logs, f)
	return f, nil
}

func (d *run) closeLogs() {
	for _, f := range d.logs {
		f.Close()
	}
}

// howToFile, in the run's directory, keeps what the demo prints to try by
// hand: the console covers the terminal, and the links are long.
const howToFile = "TRY-IT.txt"

// writeHowTo writes the app key and the how-to of a run into its
// directory, and the copy of the telenotary program its verify line
// names, if it runs one.
func (d *run) writeHowTo(room *signalapi.CreateRoomResponse) error {
	appKey := filepath.Join(d.dir, "app.key")
	if err := os.WriteFile(appKey, []byte(d.appKey+"\n"), 0o600); err != nil {
		return err
	}
	d.telenotary = "telenotary"
	if d.cfg.Executable != "" {
		d.telenotary = filepath.Join(d.dir, "telenotary")
		if err := copyExecutable(d.cfg.Executable, d.telenotary); err != nil {
			return fmt.Errorf("copying the telenotary program into the run's directory: %w", err)
		}
	}
	joins := map[string]string{}
	for _, role := range []signalapi.Role{signalapi.RolePhysician, signalapi.RolePatient} {
		joins[string(role)] = d.base + "/app/#token=" + room.Tokens[role]
	}
	d.joins.Store(&joins)
	var b strings.Builder
	fmt.Fprintf(&b, "Join a consultation by hand in two browser windows:\n")
	fmt.Fprintf(&b, "  physician: %s%s%s\n", d.base, tryPath, signalapi.RolePhysician)
	fmt.Fprintf(&b, "  patient:   %s%s%s\n", d.base, tryPath, signalapi.RolePatient)
	fmt.Fprintf(&b, "The same links in full, as an app sends them (the token is in the #fragment):\n")
	fmt.Fprintf(&b, "  physician: %s\n", joins[string(signalapi.RolePhysician)])
	fmt.Fprintf(&b, "  patient:   %s\n", joins[string(signalapi.RolePatient)])
	fmt.Fprintf(&b, "Create a room as an app backend does (POST /v1/rooms with the app key in %s):\n", appKey)
	fmt.Fprintf(&b, "  curl -sS -H \"Authorization: Bearer $(cat %s)\" -d '{\"patient\":\"p-1\",\"physician\":\"d-1\"}' %s/v1/rooms\n", appKey, d.base)
	fmt.Fprintf(&b, "  (it answers with a token for each: open %s/app/#token=TOKEN with each)\n", d.base)
	fmt.Fprintf(&b, "Check any receipt bundle on %s/verify/ or with:\n", d.base)
	fmt.Fprintf(&b, "  %s verify %s/bundles/<file>.json --keys %s/keys.pub --min-signatures 2\n", d.telenotary, d.dir, d.dir)
	fmt.Fprintf(&b, "Dispense a prescription as a pharmacy does (the cluster counts its fills; a pharmacy token is in %s):\n", filepath.Join(d.dir, pharmacyTokenFile))
	fmt.Fprintf(&b, "  %s dispense %s/bundles/prescription-<file>.json --pharmacy-token-file %s --nodes %s --keys %s/keys.pub --min-signatures 2\n",
		d.telenotary, d.dir, filepath.Join(d.dir, pharmacyTokenFile), strings.Join(d.urls, ","), d.dir)
	fmt.Fprintf(&b, "Logs are in %s/logs; all of the above is in %s.\n", d.dir, filepath.Join(d.dir, howToFile))
	d.howTo = b.String()
	return os.WriteFile(filepath.Join(d.dir, howToFile), []byte(d.howTo), 0o600)
}

// copyExecutable puts the program at from at to: a hard link if it can,
// else a copy.
func copyExecutable(from, to string) error {
	if os.Link(from, to) == nil {
		return nil
	}
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o700)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// printHowTo says how to join a consultation by hand, create a room and
// check a bundle.
func (d *run) printHowTo() {
	fmt.Fprintf(d.out, "\n%sCtrl-C stops everything.\n\n", d.howTo)
}

// pauseBeforeConsole leaves the operator time to read the addresses before
// the console takes the screen: until Enter, or 3 s without a terminal.
func (d *run) pauseBeforeConsole(ctx context.Context) {
	if d.cfg.In != nil {
		fmt.Fprintf(d.out, "Press Enter to open the console (its Try it tab, key 7, shows the lines above; q quits it and stops the demo; the lines are in %s and are printed again at the end)...\n", filepath.Join(d.dir, howToFile))
		read := make(chan struct{})
		go func() {
			defer close(read)
			bufio.NewReader(d.cfg.In).ReadString('\n')
		}()
		select {
		case <-read:
		case <-ctx.Done():
		}
		return
	}
	fmt.Fprintf(d.out, "Starting the console in 3 s (its Try it tab, key 7, shows the lines above; q quits it and stops the demo)...\n")
	t := time.NewTimer(3 * time.Second)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// simulate runs the simulated consultations until ctx ends (headless) or
// the operator quits the console, then stops them and, headless, judges
// the run.
func (d *run) simulate(ctx context.Context) error {
	simCtx, stopSims := context.WithCancel(ctx)
	var sims sync.WaitGroup
	for range d.cfg.Consultations {
		sims.Go(func() { d.slot(simCtx) })
	}
	var err error
	if d.cfg.Headless {
		<-ctx.Done()
	} else {
		err = d.console(ctx)
		d.printHowTo() // the console hid them: show them again
	}
	stopSims()
	sims.Wait()
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "\nstopping: %d receipt bundles written to %s/bundles\n", d.bundles.Load(), d.dir)
	if b, _ := filepath.Glob(filepath.Join(d.dir, "bundles", "prescription-*.json")); len(b) > 0 {
		fmt.Fprintf(d.out, "check one (a majority of the three nodes signed it):\n  %s verify %s --keys %s/keys.pub --min-signatures 2\n", d.telenotary, b[0], d.dir)
	}
	if d.cfg.Headless {
		return d.judge()
	}
	return nil
}

// judge says whether every consultation got a verified receipt.
func (d *run) judge() error {
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
	fmt.Fprintf(d.out, "all %d consultations got verified receipts\n", len(d.live))
	return nil
}
