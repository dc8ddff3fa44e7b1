package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/filestore"
	"golang.org/x/mod/sumdb/note"
)

// fsm applies committed raft entries to the notary log on disk,
// deterministically and idempotently; cluster/DESIGN.md ("The FSM") says
// what is durable when and what lives in the data directory.
type fsm struct {
	dir    string
	signer note.Signer
	logger *slog.Logger
	// onApply is told of every applied batch (events, metrics); it must
	// not block.
	onApply func(applied)
	// onFail is told when the FSM can no longer apply: the node must stop.
	onFail func(error)
	// committed, when set, is told the last index of each batch raft
	// hands the FSM, before it is applied: raft hands over only what is
	// committed, so a leader can tell its followers at once (see
	// Node.pushCommitted). It must not block.
	committed atomic.Pointer[func(index uint64)]
	// signTook is the time signHead took since ApplyBatch began (ns).
	signTook atomic.Int64

	mu  sync.RWMutex // guards the log pointer: readers hold it so Restore cannot close the log under them
	log *notary.Log
	gen int // generation of the live log directory

	// Owned by raft's FSM goroutine (Apply, Restore), read elsewhere
	// through the atomics.
	applied    atomic.Uint64                 // raft index of the last applied entry
	appliedCh  atomic.Pointer[chan struct{}] // closed and replaced at each apply (tellApplied)
	lastTime   atomic.Int64                  // the stamping floor: no leaf is stamped before it
	headTime   atomic.Int64                  // timestamp of the newest leaf: the checkpoints' time
	checkpoint atomic.Pointer[notary.SignedCheckpoint]
	// recent holds the checkpoints signed lately, checkpoint of size s at
	// s % len: a batch's receipts are proven into the one signed after it.
	recent [64]atomic.Pointer[notary.SignedCheckpoint]
	failed atomic.Pointer[error]
	// held, when set, is waited on before each apply: tests use it to
	// keep a node behind the others.
	held atomic.Pointer[chan struct{}]

	metaMu sync.RWMutex // guards meta
	meta   clusterMeta
	// refused counts the raft commands the FSM refused (see applyMeta).
	refused atomic.Uint64
	// damaged is why the log cannot be trusted, once it is found (see
	// checkServed); damageFound wakes the heal (heal.go) when it is.
	damaged     atomic.Pointer[error]
	damageFound chan struct{}
	// applyMu is held by raft's FSM goroutine while it applies or
	// restores, and by the heal while it switches logs.
	applyMu sync.Mutex
	// stalled is why the FSM is waiting to apply (its disk is full), while
	// it waits; stop ends the wait when the node stops.
	stalled  atomic.Pointer[error]
	stop     chan struct{}
	stopOnce sync.Once
	// grown is closed, and replaced, whenever the log grows (WaitSize).
	grown atomic.Pointer[chan struct{}]
	// rx is the state of the prescriptions with an allowance, derived
	// from the live log (prescriptions.go). rxHealed, while the log it was
	// to be derived from is damaged, is closed once a heal has derived it
	// from a sound copy: until then no dispense or revocation is applied.
	rx       rxBook
	rxHealed atomic.Pointer[chan struct{}]
	// peerLeaves, set by the node, fetches leaves from the peers for a
	// snapshot install; fetched counts the leaves installs fetched.
	peerLeaves leafSource
	fetched    atomic.Uint64
}

// applied describes one applied notarize batch.
type applied struct {
	Index   uint64        // raft index
	First   uint64        // first new leaf
	Size    uint64        // log size after it
	Entries int           // entries submitted
	Time    int64         // the batch's timestamp
	Leaves  []notary.Leaf // the new leaves
	// Refused counts the lifecycle entries the log's rules refused, by
	// code.
	Refused map[string]int
}

// applyResult is what an applied notarize command returns to the raft
// future of the leader that proposed it.
type applyResult struct {
	indexes  []uint64
	firstNew uint64 // log size before the batch: lower indexes were already logged
	size     uint64 // log size after it: the FSM signed a checkpoint of this size
	// refused holds, when the log's rules refused some of the command's
	// entries, why, at their positions (nil for the accepted ones).
	refused []error
	err     error
	timing  applyTiming
}

// applyTiming is when the FSM took the batch that held an entry and when it
// was done with it, and how long it spent signing checkpoints meanwhile
// (the write path's stages: see stageNames).
type applyTiming struct {
	start, end time.Time
	sign       time.Duration
}

const (
	currentName = "current"
	membersName = "members.json"
)

// openFSM opens (or creates) the FSM state in dir.
func openFSM(dir string, signer note.Signer, logger *slog.Logger) (*fsm, error) {
	f := &fsm{dir: dir, signer: signer, logger: logger, onApply: func(applied) {}, onFail: func(error) {}, stop: make(chan struct{}), damageFound: make(chan struct{}, 1)}

	gen := 1
	if b, err := os.ReadFile(filepath.Join(dir, currentName)); err == nil {
		if _, err := fmt.Sscanf(string(b), "log-%d\n", &gen); err != nil {
			return nil, fmt.Errorf("%w: %s: %q is not a log directory name", ErrCorruptState, currentName, b)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	removeLeftovers(dir, gen, logger)
	if err := f.openLog(gen); err != nil {
		return nil, err
	}
	meta, err := readMeta(dir, logger)
	if err != nil {
		f.log.Close()
		return nil, err
	}
	f.meta = meta
	if f.meta.Members == nil {
		f.meta.Members = map[string]notaryapi.MemberInfo{}
	}
	f.signHead()
	f.tellGrown()
	return f, nil
}

// removeLeftovers removes what a crash in the middle of a snapshot
// install can leave in dir besides log-<gen>, the live log: the spool of
// fetched leaves, and other log generations (one being built, or one
// replaced but not yet removed).
func removeLeftovers(dir string, gen int, logger *slog.Logger) {
	if err := os.Remove(filepath.Join(dir, spoolName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		logger.Warn("cannot remove the spool of a snapshot install", "error", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		g, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "log-"))
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "log-") || err != nil || g == gen {
			continue
		}
		logger.Info("removing a log generation that is not the live one", "dir", e.Name(), "live", fmt.Sprintf("log-%d", gen))
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			logger.Warn("cannot remove a log generation that is not the live one", "dir", e.Name(), "error", err)
		}
	}
}

func (f *fsm) logDir(gen int) string { return filepath.Join(f.dir, fmt.Sprintf("log-%d", gen)) }

// openLog opens log-<gen> as the live log and loads its app state.
func (f *fsm) openLog(gen int) error {
	l, err := filestore.OpenLog(f.logDir(gen), filestore.Options{Logger: f.logger})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorruptState, err)
	}
	index, ts, err := decodeAppState(l.Head().AppState)
	if err != nil {
		l.Close()
		return fmt.Errorf("%w: log app state: %w", ErrCorruptState, err)
	}
	rx, err := loadRx(l)
	if err != nil {
		// A damaged leaf must not decide a dispense: the node heals its
		// log from its peers (heal.go) and derives the state again, and
		// meanwhile applies no lifecycle entry.
		rx = rxMap{}
		wait := make(chan struct{})
		f.rxHealed.Store(&wait)
		f.markDamaged(fmt.Errorf("the prescriptions' state cannot be derived from the log: %w", err))
	}
	f.rx.mu.Lock()
	f.rx.m = rx
	f.rx.mu.Unlock()
	f.log, f.gen = l, gen
	f.lastTime.Store(ts)
	f.headTime.Store(newestTime(l, ts))
	// The head signed before the applied index is stored, as in apply: a
	// consistent read that sees the index serves a checkpoint holding it.
	// (When the FSM opens, before its members are read, there is no
	// origin to sign with yet, and nobody reads.)
	f.signHead()
	f.applied.Store(index)
	f.tellApplied()
	return nil
}

// newestTime is the timestamp of l's newest leaf (0 for an empty log),
// checked against the hash the log stored for it; otherwise, floor (the
// node finds the damage when it serves).
func newestTime(l *notary.Log, floor int64) int64 {
	size := l.Head().Size
	if size == 0 {
		return 0
	}
	newest := make([]notary.Leaf, 1)
	if l.Leaves(size-1, newest) != nil || l.CheckLeaves(size-1, newest) != nil {
		return floor
	}
	return newest[0].Timestamp
}

// appState is what the FSM commits with every batch: the raft index
// applied and the newest leaf's timestamp.
func appState(index uint64, ts int64) []byte {
	b := binary.BigEndian.AppendUint64(nil, index)
	return binary.BigEndian.AppendUint64(b, uint64(ts))
}

func decodeAppState(b []byte) (uint64, int64, error) {
	switch len(b) {
	case 0:
		return 0, 0, nil // a new log
	case 16:
		return binary.BigEndian.Uint64(b), int64(binary.BigEndian.Uint64(b[8:])), nil
	}
	return 0, 0, fmt.Errorf("%d bytes, want 16", len(b))
}

// readLog returns the live notary log and the function that releases it;
// until then Restore cannot swap or close it.
func (f *fsm) readLog() (*notary.Log, func()) {
	f.mu.RLock()
	return f.log, f.mu.RUnlock
}

// ReadLog runs read with the live log, which Restore can neither swap nor
// close until read returns; a damaged log is not read (ErrDamaged).
func (f *fsm) ReadLog(read func(*notary.Log) error) error {
	if errp := f.damaged.Load(); errp != nil {
		return *errp
	}
	l, done := f.readLog()
	defer done()
	return read(l)
}

// Checkpoint returns the checkpoint this node signed over its latest
// head; nil before the cluster's genesis.
func (f *fsm) Checkpoint() *notary.SignedCheckpoint { return f.checkpoint.Load() }

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch implements raft.BatchingFSM: the notarize entries of the whole
// batch go to the log in one commit.
func (f *fsm) ApplyBatch(logs []*raft.Log) (results []any) {
	start := time.Now()
	if c := f.committed.Load(); c != nil && len(logs) > 0 {
		(*c)(logs[len(logs)-1].Index)
	}
	f.signTook.Store(0)
	defer func() {
		t := applyTiming{start: start, end: time.Now(), sign: time.Duration(f.signTook.Load())}
		for _, r := range results {
			if ar, ok := r.(*applyResult); ok {
				ar.timing = t
			}
		}
	}()
	if h := f.held.Load(); h != nil {
		<-*h
	}
	if wait := f.rxHealed.Load(); wait != nil && anyLifecycle(logs) {
		select {
		case <-*wait:
		case <-f.stop:
			results = make([]any, len(logs))
			for i := range results {
				results[i] = &applyResult{err: ErrClosed}
			}
			return results
		}
	}
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	results = make([]any, len(logs))
	if errp := f.failed.Load(); errp != nil {
		for i := range results {
			results[i] = &applyResult{err: *errp}
		}
		return results
	}
	// Apply and Restore both run on raft's FSM goroutine, and the log
	// serves concurrent readers itself: applyMu only keeps a heal from
	// switching logs in the middle.
	p := f.newPlan()
	for i, l := range logs {
		if l.Index <= p.index {
			results[i] = &applyResult{err: errReplayed}
			continue
		}
		if l.Type == raft.LogCommand && len(l.Data) > 0 && l.Data[0] != cmdNotarize {
			// A meta command sees the log as it stands at its index: the
			// leaves before it first.
			if len(p.leaves) > 0 || len(p.refused) > 0 {
				if !f.commit(p, results) {
					return results
				}
				p = f.newPlan()
			}
			results[i] = f.applyMeta(l)
		} else if l.Type == raft.LogCommand && len(l.Data) > 0 {
			if err := p.add(f, i, l); err != nil {
				if errors.Is(err, errBadCommand) {
					results[i] = f.refuse(l, err)
				} else {
					f.fail(err)
					for i := range results {
						results[i] = &applyResult{err: err}
					}
					return results
				}
			}
		}
		p.index = l.Index
	}
	if p.index != f.applied.Load() {
		f.commit(p, results)
	}
	return results
}

// batchPlan is what a run of raft entries appends: the leaves of their
// notarize commands, stamped, and where each command's leaves are.
type batchPlan struct {
	leaves   []notary.Leaf
	spans    []span
	index    uint64 // the last raft index of the run
	lastTime int64  // the newest leaf's timestamp after it
	// rx is what the run changes in the prescriptions' state, and
	// refused counts the lifecycle entries it refused, by code.
	rx      rxPlan
	refused map[string]int
}

// span is the leaves of one notarize command.
type span struct {
	result     int // position in the batch's results
	start, end int // in batchPlan.leaves
	// entries, for a command with lifecycle members, says where each
	// entry went (start and end are unused then).
	entries []entryLeaf
}

// newPlan starts a run after what the log has applied.
func (f *fsm) newPlan() batchPlan {
	return batchPlan{index: f.applied.Load(), lastTime: f.lastTime.Load()}
}

// add decodes notarize command l (result i of the batch) into the plan,
// stamped so that time never goes back, whatever the leader's clock says.
// A malformed command is refused (errBadCommand); any other error means
// the log could not be read.
func (p *batchPlan) add(f *fsm, i int, l *raft.Log) error {
	ts, batch, extra, err := decodeNotarize(l.Data)
	if err != nil {
		return err
	}
	ts = max(ts, p.lastTime)
	lifecycle := extra != nil
	for j := range batch {
		batch[j].Timestamp = ts
		lifecycle = lifecycle || batch[j].Kind == notary.KindAllowance
	}
	p.lastTime = ts
	if lifecycle {
		return p.addLifecycle(f, i, batch, extra)
	}
	p.spans = append(p.spans, span{result: i, start: len(p.leaves), end: len(p.leaves) + len(batch)})
	p.leaves = append(p.leaves, batch...)
	return nil
}

// refuse counts and logs a command the FSM will not apply, and returns its
// result.
func (f *fsm) refuse(l *raft.Log, reason error) *applyResult {
	f.refused.Add(1)
	f.logger.Warn("refused a raft command", "index", l.Index, "command", l.Data[0], "error", reason)
	return &applyResult{err: fmt.Errorf("%w: %w", errRefused, reason)}
}

// commit appends the plan's leaves with the new applied index, signs the
// new head and tells the event hub; a store that cannot commit fails the
// FSM and every result, and commit reports false.
func (f *fsm) commit(p batchPlan, results []any) bool {
	before := f.log.Head().Size
	start := time.Now()
	indexes, err := f.appendChunks(p.leaves, appState(p.index, p.lastTime))
	if took := time.Since(start); took > slowApply && err == nil {
		f.logger.Warn("slow apply", "leaves", len(p.leaves), "took", took)
	}
	if isNoSpace(err) {
		indexes, err = f.retryWhenRoom(p, err)
	}
	if err != nil {
		f.fail(err)
		for i := range results {
			results[i] = &applyResult{err: err}
		}
		return false
	}
	f.lastTime.Store(p.lastTime)
	after := f.log.Head().Size
	for _, s := range p.spans {
		if s.entries == nil {
			results[s.result] = &applyResult{indexes: indexes[s.start:s.end], firstNew: before, size: after}
			continue
		}
		r := &applyResult{indexes: make([]uint64, len(s.entries)), firstNew: before, size: after}
		for j, e := range s.entries {
			switch {
			case e.err != nil:
				if r.refused == nil {
					r.refused = make([]error, len(s.entries))
				}
				r.refused[j] = e.err
			case e.pos >= 0:
				r.indexes[j] = indexes[e.pos]
			default:
				r.indexes[j] = e.index
			}
		}
		results[s.result] = r
	}
	p.rx.commit(&f.rx, indexes)
	if after == before && len(p.refused) > 0 {
		f.onApply(applied{Index: p.index, First: before, Size: after, Time: p.lastTime, Refused: p.refused})
	}
	if after > before {
		// New leaves took consecutive indexes in order of first appearance.
		newLeaves := make([]notary.Leaf, 0, after-before)
		for k, i := range indexes {
			if i == before+uint64(len(newLeaves)) {
				newLeaves = append(newLeaves, p.leaves[k])
			}
		}
		// A checkpoint's time is its newest leaf's, not the stamping
		// floor, which refused and repeated entries move too: every node
		// signs the same body for a size, restarted or not.
		f.headTime.Store(newLeaves[len(newLeaves)-1].Timestamp)
		f.signHead()
		f.tellGrown()
		f.onApply(applied{Index: p.index, First: before, Size: after, Entries: len(p.leaves), Time: p.lastTime, Leaves: newLeaves, Refused: p.refused})
	}
	// The applied index last, once the new head is signed: a consistent
	// read (ReadBarrier) that sees it serves from that checkpoint, which
	// must hold these leaves.
	f.applied.Store(p.index)
	f.tellApplied()
	return true
}

var errReplayed = errors.New("raft entry already applied")

// slowApply is how long a store commit may take before it is logged.
const slowApply = 50 * time.Millisecond

// appendChunks appends leaves in commits of at most notary.MaxBatch; the
// app state goes with the last, and the ones before keep the applied index
// as it was, with their newest leaf's time. A crash (or a full disk)
// between chunks is harmless: the replayed entry finds the first chunks'
// commitments already logged, and time never goes back.
func (f *fsm) appendChunks(leaves []notary.Leaf, state []byte) ([]uint64, error) {
	var out []uint64
	for start := 0; ; start += notary.MaxBatch {
		end := min(start+notary.MaxBatch, len(leaves))
		st := state
		if end < len(leaves) {
			st = appState(f.applied.Load(), leaves[end-1].Timestamp)
		}
		idx, err := f.log.Append(leaves[start:end], st)
		if err != nil {
			return nil, err
		}
		out = append(out, idx...)
		if end == len(leaves) {
			return out, nil
		}
	}
}

// isNoSpace reports whether err is a file system out of room.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// applyRetry is how often an FSM whose disk was full tries its batch again.
const applyRetry = time.Second

// retryWhenRoom waits for room on a full disk and applies the plan again,
// every applyRetry, until it succeeds, fails otherwise, or the node stops.
// A store whose commit failed must be reopened, which cuts off whatever
// the failed commit wrote; leaves committed by the chunks before it are
// found again (a commitment is logged once). Meanwhile the node is not
// ready and says why; raft goes on logging entries as long as it can.
func (f *fsm) retryWhenRoom(p batchPlan, cause error) ([]uint64, error) {
	stalled := fmt.Errorf("%w: no room to apply committed entries (%v); trying again every %v", notaryapi.ErrDiskLow, cause, applyRetry)
	f.stalled.Store(&stalled)
	defer f.stalled.Store(nil)
	f.logger.Error("disk full: the state machine waits for room to apply", "error", cause)
	for attempt := 1; ; attempt++ {
		select {
		case <-f.stop:
			return nil, fmt.Errorf("stopped while waiting for room: %w", cause)
		case <-time.After(applyRetry):
		}
		f.mu.Lock()
		f.log.Close()
		err := f.openLog(f.gen)
		f.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("reopen the log after a full disk: %w", err)
		}
		indexes, err := f.appendChunks(p.leaves, appState(p.index, p.lastTime))
		if err == nil {
			f.logger.Info("room again: the state machine applies", "attempts", attempt)
			return indexes, nil
		}
		if !isNoSpace(err) {
			return nil, err
		}
	}
}

// stopWaiting ends a wait for room (retryWhenRoom): the node is stopping.
func (f *fsm) stopWaiting() { f.stopOnce.Do(func() { close(f.stop) }) }

// fail stops the FSM: a node whose store cannot commit must not go on.
func (f *fsm) fail(err error) {
	err = fmt.Errorf("cluster: the log cannot apply committed entries: %w", err)
	if f.failed.CompareAndSwap(nil, &err) {
		f.logger.Error("state machine failed; the node stops", "error", err)
		f.onFail(err)
	}
}

// signHead signs a checkpoint over the committed head with this node's key.
// Its time is the newest leaf's, so every node signs the same body for the
// same size: the signatures of several nodes combine into one note.
func (f *fsm) signHead() {
	f.metaMu.RLock()
	g := f.meta.Genesis
	f.metaMu.RUnlock()
	if g == nil {
		return // no origin before genesis
	}
	defer func(start time.Time) { f.signTook.Add(int64(time.Since(start))) }(time.Now())
	head := f.log.Head()
	cp, err := notary.Checkpoint{Origin: g.Origin, Size: head.Size, Root: head.Root, Timestamp: f.headTime.Load()}.Sign(f.signer)
	if err != nil {
		f.logger.Error("cannot sign checkpoint", "error", err)
		return
	}
	f.checkpoint.Store(&cp)
	f.recent[cp.Size%uint64(len(f.recent))].Store(&cp)
}

// checkpointOf returns the checkpoint of size leaves that the FSM signed
// lately, or its latest when that one is gone or it signed none of size.
func (f *fsm) checkpointOf(size uint64) *notary.SignedCheckpoint {
	if cp := f.recent[size%uint64(len(f.recent))].Load(); cp != nil && cp.Size == size {
		return cp
	}
	return f.checkpoint.Load()
}

// tellGrown wakes those waiting for the log to grow.
func (f *fsm) tellGrown() {
	next := make(chan struct{})
	if old := f.grown.Swap(&next); old != nil {
		close(*old)
	}
}

// tellApplied wakes those waiting on appliedNotice: the applied index
// moved.
func (f *fsm) tellApplied() {
	next := make(chan struct{})
	if old := f.appliedCh.Swap(&next); old != nil {
		close(*old)
	}
}

// appliedNotice returns a channel closed at the next apply; take it before
// reading the applied index, so that no apply is missed in between.
func (f *fsm) appliedNotice() <-chan struct{} {
	if ch := f.appliedCh.Load(); ch != nil {
		return *ch
	}
	f.tellApplied()
	return *f.appliedCh.Load()
}

// WaitSize waits until the log holds size leaves or ctx ends.
func (f *fsm) WaitSize(ctx context.Context, size uint64) {
	for {
		grown := f.grown.Load()
		if f.size() >= size {
			return
		}
		select {
		case <-*grown:
		case <-ctx.Done():
			return
		}
	}
}

// size is the number of leaves in the log.
func (f *fsm) size() uint64 {
	l, done := f.readLog()
	defer done()
	return l.Head().Size
}

// close closes the log.
func (f *fsm) close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.log.Close()
}
