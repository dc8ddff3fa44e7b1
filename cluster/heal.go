package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/filestore"
	"golang.org/x/mod/sumdb/note"
)

// A node whose log is found damaged heals itself from the cluster: it
// rebuilds the log, in a new log directory, from the leaves its peers
// serve, checks the rebuilt tree against a checkpoint that a majority of
// the members signed, adds what it applied meanwhile, and only then
// switches to it (as a snapshot restore does) and serves again. Nothing it
// takes from one peer is trusted on that peer's word: a peer that serves
// other leaves gives another root, which no majority signed, and the node
// stays damaged and tries again later. Until it has healed, it serves
// nothing from its log (see integrity.go).

// healRetry is how long a damaged node waits before it tries again to heal.
const healRetry = 5 * time.Second

// healDir is where the heal rebuilds the log, in the data directory.
const healDir = "log-heal"

// healLoop heals the log each time it is found damaged, until ctx ends.
func (n *Node) healLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.fsm.damageFound:
		}
		for n.fsm.damaged.Load() != nil {
			start := time.Now()
			size, err := n.heal(ctx)
			if err == nil {
				n.scrub.heals.Add(1)
				n.logger.InfoContext(ctx, "healed the damaged log from the cluster: it serves again", "leaves", size, "took", time.Since(start).Round(time.Millisecond))
				break
			}
			if ctx.Err() != nil {
				return
			}
			if n.fsm.damaged.Load() == nil {
				break // a snapshot restore replaced the damaged log
			}
			n.logger.WarnContext(ctx, "cannot heal the damaged log from the cluster yet", "error", err, "retry_in", healRetry)
			select {
			case <-ctx.Done():
				return
			case <-time.After(healRetry):
			}
		}
	}
}

// heal rebuilds the damaged log from the peers and switches to it; it
// returns the size of the healed log.
func (n *Node) heal(ctx context.Context) (uint64, error) {
	f := n.fsm
	g, members := f.clusterInfo()
	if g == nil {
		return 0, errors.New("the cluster has no genesis yet")
	}
	var peers []string
	for _, m := range members {
		if m.ID != n.cfg.ID && m.HTTPAddr != "" {
			peers = append(peers, m.HTTPAddr)
		}
	}
	if len(peers) == 0 {
		return 0, errors.New("no other member to heal from: restore the data directory from a copy (see OPERATIONS.md)")
	}
	f.mu.RLock()
	gen, size := f.gen, f.log.Head().Size
	f.mu.RUnlock()

	anchor, err := n.majorityCheckpoint(ctx, g.Origin, members, size)
	if err != nil {
		return 0, err
	}
	// The heal builds in a directory of its own, which a snapshot
	// restore meanwhile (it takes log-<gen+1>) cannot touch.
	dir := filepath.Join(f.dir, healDir)
	if err := os.RemoveAll(dir); err != nil {
		return 0, err
	}
	l, err := filestore.OpenLog(dir, filestore.Options{Logger: f.logger})
	if err != nil {
		return 0, err
	}
	switched := false
	defer func() {
		if !switched {
			l.Close()
			os.RemoveAll(dir)
		}
	}()
	client := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: peers, HTTPClient: n.forward})
	if err := n.fetchLeaves(ctx, client, l, size); err != nil {
		return 0, err
	}
	if got := l.Head(); got.Root != anchor.Root {
		return 0, fmt.Errorf("the leaves the peers serve give root %s at size %d, but %s signed %s", got.Root, size, anchor.Signers, anchor.Root)
	}

	var healed uint64
	switched, healed, err = n.switchHealed(ctx, client, l, gen, size)
	return healed, err
}

// switchHealed adds to the healed log l (the first size leaves, rebuilt
// in healDir while generation gen was live) what the FSM applied since,
// with applies held, and makes it the live generation gen+1; it reports
// whether it did (healDir is then gone).
func (n *Node) switchHealed(ctx context.Context, client *notaryapi.Client, l *notary.Log, gen int, size uint64) (switched bool, healed uint64, err error) {
	f := n.fsm
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	if f.damaged.Load() == nil || f.gen != gen {
		return false, 0, errors.New("a snapshot restore replaced the log while it healed")
	}
	head := f.log.Head()
	if err := copyTail(f.log, l, size, head); err != nil {
		return false, 0, fmt.Errorf("copy the leaves applied while healing: %w", err)
	}
	if got := l.Head(); got.Root != head.Root {
		// The damaged log's root over the new leaves is not the one
		// they give here: one of the two came from damaged data. A
		// peer's signed root says which.
		if err := n.checkTail(ctx, client, got); err != nil {
			return false, 0, err
		}
	}
	// Move it into place as the next generation and open it there.
	if err := l.Close(); err != nil {
		return false, 0, err
	}
	next := f.logDir(gen + 1)
	if err := os.RemoveAll(next); err != nil {
		return false, 0, err
	}
	if err := os.Rename(filepath.Join(f.dir, healDir), next); err != nil {
		return false, 0, err
	}
	nl, err := filestore.OpenLog(next, filestore.Options{Logger: f.logger})
	if err != nil {
		os.RemoveAll(next)
		return false, 0, fmt.Errorf("open the healed log: %w", err)
	}
	if got, want := nl.Head(), l.Head(); got.Size != want.Size || got.Root != want.Root {
		nl.Close()
		os.RemoveAll(next)
		return false, 0, errors.New("the healed log did not reopen as it was written")
	}
	rx, err := loadRx(nl)
	if err != nil {
		nl.Close()
		os.RemoveAll(next)
		return false, 0, fmt.Errorf("the prescriptions' state from the healed log: %w", err)
	}
	if err := filestore.WriteFileDurably(filepath.Join(f.dir, currentName), []byte(fmt.Sprintf("log-%d\n", gen+1))); err != nil {
		nl.Close()
		os.RemoveAll(next)
		return false, 0, err
	}
	f.mu.Lock()
	old := f.log
	f.log, f.gen = nl, gen+1
	f.rx.mu.Lock()
	f.rx.m = rx
	f.rx.mu.Unlock()
	f.mu.Unlock()
	old.Close()
	if err := os.RemoveAll(f.logDir(gen)); err != nil {
		n.logger.WarnContext(ctx, "could not remove the damaged log", "dir", f.logDir(gen), "error", err)
	}
	f.headTime.Store(newestTime(nl, f.lastTime.Load()))
	if wait := f.rxHealed.Swap(nil); wait != nil {
		close(*wait)
	}
	f.damaged.Store(nil)
	f.signHead()
	f.tellGrown()
	return true, head.Size, nil
}

// majorityCheckpoint gathers the members' checkpoints of the first size
// leaves (this node's too, which counts only where it agrees with theirs)
// and returns the one a majority of the members signed.
func (n *Node) majorityCheckpoint(ctx context.Context, origin string, members []notaryapi.MemberInfo, size uint64) (notary.SignedCheckpoint, error) {
	var verifiers []note.Verifier
	for _, m := range members {
		if v, err := note.NewVerifier(m.VerifierKey); err == nil {
			verifiers = append(verifiers, v)
		}
	}
	policy := notary.Policy{Verifiers: verifiers, MinSignatures: len(members)/2 + 1, Origin: origin}
	byBody := map[string][][]byte{}
	add := func(msg []byte) {
		cp, err := notary.ParseSignedCheckpoint(msg)
		if err != nil {
			return
		}
		body, err := cp.Checkpoint.Body()
		if err != nil {
			return
		}
		byBody[string(body)] = append(byBody[string(body)], msg)
	}
	if own, err := n.fsm.CheckpointAt(size); err == nil {
		add(own.Note)
	}
	client := notaryapi.NewClient(notaryapi.ClientConfig{HTTPClient: n.forward})
	ask, cancel := context.WithTimeout(ctx, cosignWait)
	defer cancel()
	for _, m := range members {
		if m.ID == n.cfg.ID || m.HTTPAddr == "" {
			continue
		}
		// A peer that has not applied this size yet soon will: retry.
		wait := &backoff.ExponentialBackOff{InitialInterval: 10 * time.Millisecond, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: 200 * time.Millisecond}
		msg, err := backoff.Retry(ask, func() ([]byte, error) { return client.CheckpointOf(ask, m.HTTPAddr, size) },
			backoff.WithBackOff(wait), backoff.WithMaxElapsedTime(0))
		if err == nil {
			add(msg)
		}
	}
	var last error = fmt.Errorf("no member answered with its checkpoint of %d leaves", size)
	for _, notes := range byBody {
		combined, err := notary.CombineSignatures(notes...)
		if err != nil {
			last = err
			continue
		}
		cp, err := notary.OpenCheckpoint(combined, policy)
		if err == nil {
			return cp, nil
		}
		last = err
	}
	return notary.SignedCheckpoint{}, fmt.Errorf("no checkpoint of %d leaves that a majority of the %d members signed: %w", size, len(members), last)
}

// healPageWait bounds how long the heal waits for a peer that has fewer
// leaves than it asks for.
const healPageWait = 10 * time.Second

// fetchLeaves appends the first size leaves, as the peers serve them, to l.
func (n *Node) fetchLeaves(ctx context.Context, client *notaryapi.Client, l *notary.Log, size uint64) error {
	return n.pageLeaves(ctx, client, "healing the damaged log from the cluster", 0, size, func(page []notary.Leaf) error {
		_, err := l.Append(page, nil)
		return err
	})
}

// pageLeaves hands the leaves [from, to), as the peers serve them, to page
// in order, a page at a time, logging its progress (as what) on a long
// run; an error from page ends it with that error.
func (n *Node) pageLeaves(ctx context.Context, client *notaryapi.Client, what string, from, to uint64, page func([]notary.Leaf) error) error {
	start, last := time.Now(), time.Now()
	buf := make([]notary.Leaf, 0, notaryapi.MaxLeavesPage)
	for done := from; done < to; {
		want := min(uint64(notaryapi.MaxLeavesPage), to-done)
		wait := &backoff.ExponentialBackOff{InitialInterval: 20 * time.Millisecond, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: time.Second}
		infos, err := backoff.Retry(ctx, func() ([]notaryapi.LeafInfo, error) {
			infos, err := client.Leaves(ctx, done, want)
			if err == nil && len(infos) == 0 {
				err = fmt.Errorf("no peer has leaf %d yet", done)
			}
			return infos, err
		}, backoff.WithBackOff(wait), backoff.WithMaxElapsedTime(healPageWait))
		if err != nil {
			return fmt.Errorf("fetch leaves from %d: %w", done, err)
		}
		buf = buf[:0]
		for i, li := range infos {
			if li.Index != done+uint64(i) || uint64(len(buf)) == want {
				return fmt.Errorf("a peer answered leaf %d where %d was due", li.Index, done+uint64(i))
			}
			buf = append(buf, notary.Leaf{Kind: li.Kind, Commitment: li.Commitment, Link: li.Link, Timestamp: li.Timestamp})
		}
		if err := page(buf); err != nil {
			return err
		}
		done += uint64(len(buf))
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			n.logger.InfoContext(ctx, what, "leaves", done, "of", to, "from", from,
				"percent", strconv.FormatFloat(100*float64(done-from)/float64(to-from), 'f', 1, 64), "elapsed", time.Since(start).Round(time.Second))
		}
	}
	return nil
}

// copyTail appends to healed the leaves of the damaged log from from to
// head's size, with head's app state.
func copyTail(damaged, healed *notary.Log, from uint64, head notary.Head) error {
	const chunk = 4096
	buf := make([]notary.Leaf, chunk)
	for start := from; start < head.Size; start += chunk {
		k := min(chunk, head.Size-start)
		if err := damaged.Leaves(start, buf[:k]); err != nil {
			return err
		}
		var state []byte
		if start+k == head.Size {
			state = head.AppState
		}
		if _, err := healed.Append(buf[:k], state); err != nil {
			return err
		}
	}
	if head.Size == from {
		_, err := healed.Append(nil, head.AppState)
		return err
	}
	return nil
}

// checkTail checks the healed head against a peer's checkpoint of the same
// size, signed by that peer.
func (n *Node) checkTail(ctx context.Context, client *notaryapi.Client, head notary.Head) error {
	_, members := n.fsm.clusterInfo()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, m := range members {
		if m.ID == n.cfg.ID || m.HTTPAddr == "" {
			continue
		}
		v, err := note.NewVerifier(m.VerifierKey)
		if err != nil {
			continue
		}
		msg, err := client.CheckpointOf(ctx, m.HTTPAddr, head.Size)
		if err != nil {
			continue
		}
		cp, err := notary.OpenCheckpoint(msg, notary.Policy{Verifiers: []note.Verifier{v}})
		if err != nil {
			continue
		}
		if cp.Root != head.Root {
			return fmt.Errorf("the healed log's root %s at size %d is not the %s that %s signed", head.Root, head.Size, cp.Root, m.ID)
		}
		return nil
	}
	return fmt.Errorf("no peer confirmed the root of %d leaves", head.Size)
}
