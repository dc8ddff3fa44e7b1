package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/fhirdata"
	"github.com/telenotary/telenotary/session/peer"
	"github.com/telenotary/telenotary/session/signalapi"
)

// MaxRelayMarkers is the most relay markers (RelayRate × Duration) one
// consultation may send: under the server's limit of candidates per offer,
// with room for the real ones.
const MaxRelayMarkers = 90

// SignalConfig is what one run of Signal is asked to do. The command line
// checks the numbers before it calls Signal.
type SignalConfig struct {
	// Base is the signalling server's base URL, such as
	// http://127.0.0.1:8443; or the base URLs of the instances of a group,
	// separated by commas: consultation i is created on instance i, its
	// patient connects through instance i+1 and its physician through i+2
	// (modulo their number), so that with three or more both are relayed,
	// as behind a balancer.
	Base string
	// Key is an app (submitter) API key of the server: it creates the rooms.
	Key string
	// Rooms is how many consultations run at once (two peers each).
	Rooms int
	// Parallel is how many consultations are set up at a time.
	Parallel int
	// Duration is how long physicians relay messages once every
	// consultation is live; 0 skips the relay phase.
	Duration time.Duration
	// RelayRate is how many messages a second each physician relays; at
	// most MaxRelayMarkers in all.
	RelayRate float64
	// Light runs light participants (signal_light.go): the signalling
	// protocol only, no WebRTC, so that the load generator's CPU goes to
	// the server's protocol rather than to pion's ICE, DTLS and SCTP.
	Light bool
	// Out receives progress lines and the report.
	Out io.Writer
}

// Signal runs cfg.Rooms consultations through the signalling server with
// the Go SDK (two pion peers each, on loopback): it sets them up, relays
// messages among them for cfg.Duration, then has each physician prescribe
// once and leave, verifying every receipt against the keys the server
// serves. It prints progress and the report to cfg.Out and returns an
// error if any step failed, a message was lost or a receipt did not
// verify.
func Signal(ctx context.Context, cfg SignalConfig) error {
	b := &signalBench{cfg: cfg, sent: map[string]time.Time{}}
	bases := strings.Split(cfg.Base, ",")
	for _, base := range bases {
		base = strings.TrimSuffix(strings.TrimSpace(base), "/")
		b.rooms = append(b.rooms, signalapi.NewClient(signalapi.Config{Base: base, Key: cfg.Key}))
		b.ws = append(b.ws, "ws"+strings.TrimPrefix(base, "http")+"/v1/signal")
	}
	if cfg.Light {
		var err error
		if b.sdp, err = newLightSDP(); err != nil {
			return fmt.Errorf("make the light participants' SDP: %w", err)
		}
		if b.verifier, err = lightVerifier(ctx, strings.TrimSpace(bases[0])); err != nil {
			return fmt.Errorf("the server's verifier keys: %w", err)
		}
	}
	return b.run(ctx)
}

// signalBench is one run of Signal.
type signalBench struct {
	cfg   SignalConfig
	rooms []*signalapi.Client // create the rooms, one per instance
	ws    []string            // the WebSocket URLs peers dial, one per instance
	// sdp and verifier are the light participants' (cfg.Light).
	sdp      *lightSDP
	verifier *notary.Verifier

	mu      sync.Mutex // guards setups, relays, sent and drained
	setups  []time.Duration
	relays  []time.Duration
	sent    map[string]time.Time // relay markers in flight, by id
	drained chan struct{}        // closed when sent empties, once asked for

	lost       atomic.Int64
	errors     atomic.Int64
	unverified atomic.Int64
	lastErr    atomic.Pointer[string]
}

// consultation is the two participants of one live room.
type consultation struct {
	pat, doc participant
}

func (b *signalBench) failed(err error) {
	b.errors.Add(1)
	s := err.Error()
	b.lastErr.Store(&s)
}

func (b *signalBench) lastError() string {
	if p := b.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

// run sets every consultation up, relays, ends them and reports.
func (b *signalBench) run(ctx context.Context) error {
	out := b.cfg.Out
	fmt.Fprintf(out, "setting up %d consultations (%d WebSocket peers), %d at a time\n", b.cfg.Rooms, 2*b.cfg.Rooms, b.cfg.Parallel)
	cons, setupTime := b.setupAll(ctx)
	defer func() {
		for _, c := range cons {
			c.pat.Close()
			c.doc.Close()
		}
	}()
	if len(cons) == 0 {
		return fmt.Errorf("no consultation could be set up: %s", b.lastError())
	}
	p50, p90, p99, max := quantiles(b.setups)
	fmt.Fprintf(out, "\nsetup:   %d consultations in %.1f s (%.1f setups/s), %d failed\n", len(cons), setupTime.Seconds(), float64(len(cons))/setupTime.Seconds(), b.cfg.Rooms-len(cons))
	fmt.Fprintf(out, "         join → data channel open → verified session-start receipt: p50 %s  p90 %s  p99 %s  max %s\n", millis(p50), millis(p90), millis(p99), millis(max))

	if b.cfg.Duration > 0 {
		b.relay(ctx, cons)
		p50, p90, p99, max = quantiles(b.relays)
		fmt.Fprintf(out, "relay:   %d messages among %d live consultations (%d peers) in %.0f s (%.0f/s), %d lost\n", len(b.relays), len(cons), 2*len(cons), b.cfg.Duration.Seconds(), float64(len(b.relays))/b.cfg.Duration.Seconds(), b.lost.Load())
		fmt.Fprintf(out, "         physician → server → patient: p50 %s  p90 %s  p99 %s  max %s\n", millis(p50), millis(p90), millis(p99), millis(max))
	}

	endStart := time.Now()
	prescribed := b.endAll(ctx, cons)
	fmt.Fprintf(out, "end:     %d prescriptions and session ends notarized in %.1f s\n", prescribed, time.Since(endStart).Seconds())
	return b.report()
}

// setupAll sets the consultations up, cfg.Parallel at a time, and returns
// those that went live and how long it took.
func (b *signalBench) setupAll(ctx context.Context) ([]*consultation, time.Duration) {
	var (
		mu   sync.Mutex // guards cons
		cons []*consultation
		wg   sync.WaitGroup
	)
	start := time.Now()
	work := make(chan int)
	for range b.cfg.Parallel {
		wg.Go(func() {
			for i := range work {
				c, err := b.setup(ctx, i)
				if err != nil {
					b.failed(err)
					continue
				}
				mu.Lock()
				cons = append(cons, c)
				n := len(cons)
				mu.Unlock()
				if n%100 == 0 {
					fmt.Fprintf(b.cfg.Out, "  %d live after %.1f s\n", n, time.Since(start).Seconds())
				}
			}
		})
	}
	for i := range b.cfg.Rooms {
		if ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	return cons, time.Since(start)
}

// setup creates a room and connects its two participants; it returns once
// both hold a verified session-start receipt.
func (b *signalBench) setup(ctx context.Context, i int) (*consultation, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	n := len(b.rooms)
	room, err := b.rooms[i%n].CreateRoom(ctx, signalapi.CreateRoomRequest{Patient: fmt.Sprintf("bench-patient-%d", i), Physician: fmt.Sprintf("bench-physician-%d", i)})
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if b.cfg.Light {
		c, err := b.setupLight(ctx, room, b.ws[(i+1)%n], b.ws[(i+2)%n])
		if err != nil {
			return nil, err
		}
		b.setUp(start)
		return c, nil
	}
	pat, doc, err := peer.Pair(ctx,
		peer.Config{URL: b.ws[(i+1)%n], Token: room.Tokens[signalapi.RolePatient], Loopback: true, OnSignal: b.onSignal},
		peer.Config{URL: b.ws[(i+2)%n], Token: room.Tokens[signalapi.RolePhysician], Loopback: true})
	if err != nil {
		return nil, err
	}
	for _, p := range []*peer.Peer{pat, doc} {
		if err := waitStart(ctx, p); err != nil {
			pat.Close()
			doc.Close()
			return nil, err
		}
	}
	b.setUp(start)
	return &consultation{pat: pat, doc: doc}, nil
}

// setUp records the time of a setup that began at start.
func (b *signalBench) setUp(start time.Time) {
	b.mu.Lock()
	b.setups = append(b.setups, time.Since(start))
	b.mu.Unlock()
}

// setupLight connects a room's light participants through the URLs given
// and waits for both verified session-start receipts.
func (b *signalBench) setupLight(ctx context.Context, room *signalapi.CreateRoomResponse, patURL, docURL string) (*consultation, error) {
	pat, err := joinLight(ctx, patURL, room.Tokens[signalapi.RolePatient], b.sdp, b.verifier, b.onSignal)
	if err != nil {
		return nil, fmt.Errorf("patient: %w", err)
	}
	doc, err := joinLight(ctx, docURL, room.Tokens[signalapi.RolePhysician], b.sdp, b.verifier, nil)
	if err != nil {
		pat.Close()
		return nil, fmt.Errorf("physician: %w", err)
	}
	for _, p := range []*lightPeer{pat, doc} {
		if err := p.waitStarted(ctx); err != nil {
			pat.Close()
			doc.Close()
			return nil, err
		}
	}
	return &consultation{pat: pat, doc: doc}, nil
}

// waitStart waits for a peer's verified session-start receipt.
func waitStart(ctx context.Context, p *peer.Peer) error {
	for {
		select {
		case r := <-p.Receipts():
			if r.Err != nil {
				return fmt.Errorf("%s receipt does not verify: %w", r.Kind, r.Err)
			}
			if r.Kind == notary.KindSessionStart {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("no session-start receipt: %w", ctx.Err())
		}
	}
}

// onSignal times the relay markers a patient receives.
func (b *signalBench) onSignal(m *signalapi.Message) {
	if m.Type != signalapi.TypeCandidate || m.Candidate == nil || m.Candidate.Candidate != "" || m.Candidate.SDPMid == nil {
		return
	}
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if sent, ok := b.sent[*m.Candidate.SDPMid]; ok {
		b.relays = append(b.relays, now.Sub(sent))
		delete(b.sent, *m.Candidate.SDPMid)
		b.signalDrainedLocked()
	}
}

// signalDrainedLocked closes drained once no marker is in flight. b.mu is
// held.
func (b *signalBench) signalDrainedLocked() {
	if len(b.sent) == 0 && b.drained != nil {
		close(b.drained)
		b.drained = nil
	}
}

// relay has every physician send cfg.RelayRate markers a second for
// cfg.Duration, spread evenly, and then waits up to 2 s for those in
// flight to arrive; the rest count as lost.
func (b *signalBench) relay(ctx context.Context, cons []*consultation) {
	fmt.Fprintf(b.cfg.Out, "relaying %.0f messages/s per consultation for %s\n", b.cfg.RelayRate, b.cfg.Duration)
	interval := time.Duration(float64(time.Second) / b.cfg.RelayRate)
	sendCtx, cancel := context.WithTimeout(ctx, b.cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup
	var seq atomic.Int64
	for i, c := range cons {
		// Stagger the consultations over one interval.
		offset := time.Duration(int64(interval) * int64(i) / int64(len(cons)))
		wg.Go(func() { b.sendMarkers(sendCtx, c, offset, interval, &seq) })
	}
	wg.Wait()

	b.mu.Lock()
	drained := make(chan struct{})
	b.drained = drained
	b.signalDrainedLocked()
	b.mu.Unlock()
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	select {
	case <-drained:
	case <-t.C:
	case <-ctx.Done():
	}
	b.mu.Lock()
	b.drained = nil
	b.lost.Add(int64(len(b.sent)))
	b.mu.Unlock()
}

// sendMarkers has one physician send a marker every interval, the first
// after offset, until ctx ends.
func (b *signalBench) sendMarkers(ctx context.Context, c *consultation, offset, interval time.Duration, seq *atomic.Int64) {
	first := time.NewTimer(offset)
	defer first.Stop()
	select {
	case <-first.C:
	case <-ctx.Done():
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		id := strconv.FormatInt(seq.Add(1), 10)
		b.mu.Lock()
		b.sent[id] = time.Now()
		b.mu.Unlock()
		if err := c.doc.SendSignal(ctx, &signalapi.Message{Type: signalapi.TypeCandidate, Candidate: &signalapi.Candidate{SDPMid: &id}}); err != nil {
			b.mu.Lock()
			delete(b.sent, id)
			b.mu.Unlock()
			if ctx.Err() == nil {
				b.failed(err)
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// endAll has each physician prescribe once and leave, and each patient
// wait for the end; it returns how many prescriptions were notarized.
// Receipts that do not verify and the peers' own errors are counted.
func (b *signalBench) endAll(ctx context.Context, cons []*consultation) int64 {
	_, examples := fhirdata.MedicationRequests()
	prescription := examples[0]
	var rx atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, b.cfg.Parallel*4)
	for _, c := range cons {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if b.end(ctx, c, prescription) {
				rx.Add(1)
			}
		})
	}
	wg.Wait()
	for _, c := range cons {
		for _, p := range []participant{c.pat, c.doc} {
			for _, e := range p.Errors() {
				b.failed(e)
			}
		}
	}
	return rx.Load()
}

// end has one physician prescribe and leave; it reports whether the
// prescription was notarized.
func (b *signalBench) end(ctx context.Context, c *consultation, prescription []byte) (prescribed bool) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	r, err := c.doc.Prescribe(ctx, "bench-rx", prescription)
	if err != nil {
		b.failed(err)
		return false
	}
	if r.Err != nil {
		b.unverified.Add(1)
	}
	end, err := c.doc.Leave(ctx, "bench over")
	if err != nil {
		b.failed(err)
		return true
	}
	if end == nil || end.Err != nil {
		b.unverified.Add(1)
	}
	c.pat.WaitEnd(ctx)
	return true
}

// report prints the errors and the load generator's heap, and fails if
// anything went wrong.
func (b *signalBench) report() error {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(b.cfg.Out, "errors:  %d; receipts failing verification: %d; load generator heap %d MiB\n", b.errors.Load(), b.unverified.Load(), ms.HeapInuse>>20)
	if e := b.lastError(); e != "" {
		fmt.Fprintf(b.cfg.Out, "last error: %s\n", e)
	}
	if b.errors.Load() > 0 || b.unverified.Load() > 0 || b.lost.Load() > 0 {
		return errors.New("errors, lost messages or receipts that do not verify (see above)")
	}
	return nil
}
