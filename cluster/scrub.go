package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// The scrubber reads the whole notary log again and again in the
// background, at a bounded rate (Config.ScrubRate leaves a second), and
// checks every leaf, stored hash and index entry against the rest (see
// notary.Scrub): damage that no request has touched yet is found within a
// pass. After each pass it checks raft's snapshots against their
// checksums. Damage to the log marks the node damaged (it serves nothing
// from its log, is not ready, alerts, and heals from its peers: heal.go);
// a damaged snapshot makes the
// node not ready until it has taken a sound one in its place.

// scrubTick is how often the scrubber takes its next share of leaves.
const scrubTick = 100 * time.Millisecond

// minScrubPass is the shortest time between the starts of two passes, so
// a small log is not re-read (nor its snapshots) many times a second.
const minScrubPass = time.Minute

// scrubber is the state of the background scrub that Status reports.
type scrubber struct {
	checked  atomic.Uint64 // leaves checked in the current pass
	passes   atomic.Uint64 // passes completed
	total    atomic.Uint64 // leaves checked in all
	lastPass atomic.Int64  // when the last pass completed, Unix ms; 0 before
	heals    atomic.Uint64 // damaged logs healed from the peers
}

// status reports the scrub for /v1/status.
func (s *scrubber) status(rate int) notaryapi.ScrubStatus {
	st := notaryapi.ScrubStatus{Rate: rate, Checked: s.checked.Load(), Passes: s.passes.Load(), Heals: s.heals.Load()}
	if ms := s.lastPass.Load(); ms != 0 {
		st.LastPass = time.UnixMilli(ms).UTC()
	}
	return st
}

// scrubLoop runs the scrub until ctx ends; it pauses while the log is
// damaged.
func (n *Node) scrubLoop(ctx context.Context) {
	share := max(1, n.cfg.ScrubRate*int(scrubTick)/int(time.Second))
	tick := time.NewTicker(scrubTick)
	defer tick.Stop()
	var (
		scrub       *notary.Scrub
		scrubbed    *notary.Log // the log scrub reads; Restore may swap it
		passStart   time.Time
		lastRepair  time.Time // when a damaged snapshot was last set to be replaced
		repairAgain bool      // it could not be: try again soon
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if repairAgain && time.Since(lastRepair) > snapshotRetry {
			repairAgain, lastRepair = !n.checkSnapshots(ctx), time.Now()
		}
		if scrub == nil && time.Since(passStart) < minScrubPass && !passStart.IsZero() {
			continue
		}
		done := false
		err := n.fsm.ReadLog(func(l *notary.Log) error {
			if l != scrubbed || scrub == nil {
				scrub, scrubbed, passStart = l.NewScrub(), l, time.Now()
			}
			k, err := scrub.Step(share)
			n.scrub.total.Add(uint64(k))
			n.scrub.checked.Store(scrub.Checked())
			done = err == nil && k == 0
			return err
		})
		switch {
		case errors.Is(err, notaryapi.ErrDamaged):
			// Marked damaged already: nothing more to find until the
			// heal has replaced the log; then a new pass starts at once.
			scrub, passStart = nil, time.Time{}
			continue
		case errors.Is(err, notary.ErrDamaged):
			n.fsm.markDamaged(fmt.Errorf("the scrub found: %w", err))
			scrub, passStart = nil, time.Time{}
			continue
		case err != nil:
			// The log closed or was swapped under a restore: start over.
			n.logger.DebugContext(ctx, "scrub interrupted", "error", err)
			scrub = nil
			continue
		}
		if !done {
			continue
		}
		if scrub.Checked() == 0 {
			scrub, passStart = nil, time.Time{} // an empty log: look again at the next tick
			continue
		}
		repairAgain, lastRepair = !n.checkSnapshots(ctx), time.Now()
		n.scrub.passes.Add(1) // over the log, then the snapshots
		n.scrub.lastPass.Store(time.Now().UnixMilli())
		n.logger.DebugContext(ctx, "scrub pass complete", "leaves", scrub.Checked(), "took", time.Since(passStart).Round(time.Millisecond))
		scrub = nil
	}
}

// snapshotRetry is how soon the scrubber tries again to replace a damaged
// snapshot it could not replace (raft takes none before the node has
// applied an entry since it started).
const snapshotRetry = 2 * time.Second

// checkSnapshots reads every snapshot raft keeps against its checksum. A
// damaged one makes the node not ready; the node then takes a new snapshot
// and removes the damaged one, which makes it ready again. It reports
// whether the node's snapshots are sound now.
func (n *Node) checkSnapshots(ctx context.Context) bool {
	damaged := n.snapshots.damaged()
	if len(damaged) == 0 {
		return true
	}
	n.snapshots.fail(fmt.Errorf("snapshot %s is damaged: %w", strings.Join(damaged, ", "), errSnapshotDamaged))
	n.logger.ErrorContext(ctx, "damaged snapshot: taking a new one in its place", "snapshots", damaged)
	if err := n.raft.Snapshot().Error(); err != nil {
		n.logger.WarnContext(ctx, "could not take a snapshot in place of a damaged one yet", "error", err)
		return false
	}
	for _, id := range damaged {
		if err := os.RemoveAll(filepath.Join(n.snapshots.dir, id)); err != nil {
			n.logger.WarnContext(ctx, "could not remove a damaged snapshot", "snapshot", id, "error", err)
		}
	}
	n.logger.InfoContext(ctx, "replaced damaged snapshots", "snapshots", damaged)
	return true
}

// errSnapshotDamaged says a snapshot failed its checksum.
var errSnapshotDamaged = errors.New("it fails its checksum or its metadata cannot be read")

// damaged returns the snapshots in the store's directory that fail their
// checksum (raft's file store checks it when it opens a snapshot) or whose
// metadata does not parse (the store would leave them out of its list, and
// so fall back on an older snapshot without a word).
func (s *watchedSnapshots) damaged() []string {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil
	}
	var bad []string
	for _, e := range entries {
		if !e.IsDir() || strings.HasSuffix(e.Name(), snapshotTemp) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name(), "meta.json"))
		if errors.Is(err, os.ErrNotExist) {
			continue // removed meanwhile, by raft's retention
		}
		var meta raft.SnapshotMeta
		if err == nil {
			err = json.Unmarshal(b, &meta)
		}
		if err == nil {
			var rc io.ReadCloser
			if _, rc, err = s.Open(e.Name()); err == nil {
				rc.Close()
			}
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			bad = append(bad, e.Name())
		}
	}
	return bad
}
