package demo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/telenotary/telenotary/session/peer"
	"github.com/telenotary/telenotary/session/signalapi"
)

// prescriptionsPerConsultation is how many prescriptions a simulated
// physician issues before leaving.
const prescriptionsPerConsultation = 3

// slot runs consultations one after another until ctx ends.
func (d *run) slot(ctx context.Context) {
	for ctx.Err() == nil {
		d.mu.Lock()
		n := d.started
		d.started++
		d.mu.Unlock()
		if err := d.consultation(ctx, n); err != nil && ctx.Err() == nil {
			d.log.WarnContext(ctx, "simulated consultation failed", "consultation", n+1, "error", err)
			d.progress("consultation %d failed: %v", n+1, err)
		}
	}
}

// consultation n: a patient and a physician join, the physician
// prescribes a few FHIR examples, one every interval, then leaves; every
// bundle the patient receives is verified and written to bundles/.
func (d *run) consultation(ctx context.Context, n int) error {
	pat, doc, err := d.connect(ctx, n)
	if err != nil {
		return err
	}
	defer pat.Close()
	defer doc.Close()
	// The patient keeps what it receives until the session ends, or until
	// this consultation gives up on it.
	stop, kept := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(kept)
		d.keepAll(n, pat, stop)
	}()
	defer func() {
		close(stop)
		<-kept
	}()
	if err := d.prescribe(ctx, n, doc); err != nil {
		return err
	}
	// End the consultation, even when the demo is stopping.
	leaveCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := doc.Leave(leaveCtx, "consultation over"); err != nil {
		return err
	}
	pat.WaitEnd(leaveCtx)
	return nil
}

// connect creates consultation n's room and connects its two peers.
func (d *run) connect(ctx context.Context, n int) (pat, doc *peer.Peer, err error) {
	room, err := d.createRoom(ctx, fmt.Sprintf("demo-patient-%d", n+1), fmt.Sprintf("demo-physician-%d", n+1))
	if err != nil {
		return nil, nil, err
	}
	ws := "ws" + strings.TrimPrefix(d.base, "http") + "/v1/signal"
	cfg := peer.Config{URL: ws, Policy: &d.policy, Loopback: true, Logger: d.log}
	patCfg, docCfg := cfg, cfg
	patCfg.Token, docCfg.Token = room.Tokens[signalapi.RolePatient], room.Tokens[signalapi.RolePhysician]
	if pat, doc, err = peer.Pair(ctx, patCfg, docCfg); err != nil {
		return nil, nil, err
	}
	d.mu.Lock()
	d.live[n] = true
	d.mu.Unlock()
	d.progress("consultation %d: connected (room %.8s…)", n+1, room.Room)
	return pat, doc, nil
}

// keepAll keeps every receipt the patient receives until the session has
// ended or stop is closed, and then those still waiting.
func (d *run) keepAll(n int, pat *peer.Peer, stop <-chan struct{}) {
	for {
		select {
		case r := <-pat.Receipts():
			d.keep(n, r)
		case <-pat.Ended():
			d.keepWaiting(n, pat)
			return
		case <-stop:
			d.keepWaiting(n, pat)
			return
		}
	}
}

// keepWaiting keeps the receipts the patient has received but not read.
func (d *run) keepWaiting(n int, pat *peer.Peer) {
	for {
		select {
		case r := <-pat.Receipts():
			d.keep(n, r)
		default:
			return
		}
	}
}

// prescribe has the physician issue the consultation's prescriptions, one
// every interval, until they are all issued or ctx ends.
func (d *run) prescribe(ctx context.Context, n int, doc *peer.Peer) error {
	t := time.NewTimer(d.cfg.Interval)
	defer t.Stop()
	for i := range prescriptionsPerConsultation {
		t.Reset(d.cfg.Interval)
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil
		}
		k := (n*prescriptionsPerConsultation + i) % len(d.rxDocs)
		if _, err := doc.Prescribe(ctx, d.rxNames[k], d.rxDocs[k]); err != nil {
			return err
		}
	}
	return nil
}

// keep verifies a bundle the patient received and writes it to bundles/.
func (d *run) keep(n int, r peer.Receipt) {
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
func (d *run) progress(format string, args ...any) {
	if d.cfg.Headless {
		d.outMu.Lock()
		defer d.outMu.Unlock()
		fmt.Fprintf(d.out, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
}
