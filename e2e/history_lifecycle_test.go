package e2e

import (
	"context"
	"crypto/rand"
	"errors"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"golang.org/x/time/rate"
)

// A prescription's life under faults: the lifecycle workload issues
// prescriptions with allowances, dispenses them from several pharmacy
// tills at once, each entering the cluster through a different node (half
// of them with notaryapi.Client.Dispense, the others claiming fills
// themselves), and revokes some while the tills race for their fills. Every dispense and
// revocation is recorded with its outcome, for the checker's lifecycle
// rules (checker_lifecycle_test.go).

// Operation kinds of a prescription's life.
const (
	opDispense opKind = iota + 10 // POST /v1/notarize of a dispense
	opRevoke                      // POST /v1/notarize of a revocation
)

// lifecycleOp is what a dispense or revocation operation adds to a histOp.
type lifecycleOp struct {
	// link is the prescription the entry is for.
	link notary.Commitment
	// claim is the fill a dispense claimed; fill the one its answer gave
	// (0 when the answer did not say).
	claim, fill int
	// refused is the problem code of a 409 answer (the operation answered:
	// ok is false, and the outcome is known: nothing was logged).
	refused string
	// wrongProof marks a dispense sent with a proof that does not open the
	// fill on purpose: a till without the bundle.
	wrongProof bool
}

// rxIssued is a prescription the workload issued with an allowance.
type rxIssued struct {
	c    notary.Commitment
	salt notary.Salt
	a    notary.Allowance
}

// lifecycleConfig sizes a lifecycle workload.
type lifecycleConfig struct {
	tills      int           // pharmacy clients, each through its own node first
	rate       float64       // requests per second, issue, dispenses and revocations together
	active     int           // prescriptions the tills share at once: few, so that they race
	maxFills   int           // each prescription allows 1 to maxFills fills
	revokeOne  int           // at each of its turns, the issuer revokes an active prescription with probability 1/revokeOne
	reqTimeout time.Duration // one request, retries through elections included
	seed       uint64
}

// lifecycle is the running lifecycle workload.
type lifecycle struct {
	h       *history
	w       *workload // its gate splits the history for porcupine
	cfg     lifecycleConfig
	limiter *rate.Limiter
	issuer  *notaryapi.Client
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu     sync.Mutex
	active []*rxIssued // dispensed now
	done   []*rxIssued // fully dispensed or revoked: a till now and then tries one again
}

// hideLeader drops the leader hint from a node's answers, so that a
// client never learns the leader and sends each request to the next node
// of its list: a follower forwards it. The tills use it to dispense
// through every node, not only the leader.
type hideLeader struct{ rt http.RoundTripper }

// RoundTrip sends the request and removes the leader header of the answer.
func (h hideLeader) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := h.rt.RoundTrip(r)
	if resp != nil {
		resp.Header.Del(notaryapi.HeaderLeader)
	}
	return resp, err
}

// startLifecycle starts the issuer and the tills; stop ends them. The
// prescriptions' notarizations hold w's gate as the notarizers' do: they
// are operations of the linearizability model.
func startLifecycle(h *history, w *workload, nodes []string, submitter, pharmacy string, cfg lifecycleConfig) *lifecycle {
	ctx, cancel := context.WithCancel(context.Background())
	transport := &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: transport}
	l := &lifecycle{h: h, w: w, cfg: cfg, cancel: cancel, limiter: rate.NewLimiter(rate.Limit(cfg.rate), 1),
		issuer: notaryapi.NewClient(notaryapi.ClientConfig{Nodes: nodes, Token: submitter, HTTPClient: hc, MaxBackoff: 100 * time.Millisecond})}
	const firstClient = 100 // the workload's clients are numbered from 0
	l.wg.Add(1)
	go l.issue(ctx, firstClient, mrand.New(mrand.NewPCG(cfg.seed, firstClient)))
	for i := range cfg.tills {
		// Till i tries node i first, then the next, one node per request.
		order := append(slices.Clone(nodes[i%len(nodes):]), nodes[:i%len(nodes)]...)
		till := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: order, Token: pharmacy, MaxBackoff: 100 * time.Millisecond,
			HTTPClient: &http.Client{Timeout: 2 * time.Second, Transport: hideLeader{transport}}})
		id := firstClient + 1 + i
		l.wg.Add(1)
		go l.dispenser(ctx, id, till, i%2 == 1, mrand.New(mrand.NewPCG(cfg.seed, uint64(id))))
	}
	return l
}

// stop ends the workload and waits for its workers.
func (l *lifecycle) stop() {
	l.cancel()
	l.wg.Wait()
}

// issue issues prescriptions, keeping cfg.active of them for the tills,
// and revokes one in cfg.revokeOne of them while the tills dispense it.
func (l *lifecycle) issue(ctx context.Context, client int, rng *mrand.Rand) {
	defer l.wg.Done()
	for ctx.Err() == nil {
		if l.limiter.Wait(ctx) != nil {
			return
		}
		l.mu.Lock()
		n := len(l.active)
		var victim *rxIssued
		if n > 0 && rng.IntN(l.cfg.revokeOne) == 0 {
			victim = l.active[rng.IntN(n)]
		}
		l.mu.Unlock()
		switch {
		case victim != nil:
			l.revoke(ctx, client, victim)
		case n < l.cfg.active:
			if rx := l.prescribe(ctx, client, 1+rng.IntN(l.cfg.maxFills)); rx != nil {
				l.mu.Lock()
				l.active = append(l.active, rx)
				l.mu.Unlock()
			}
		default:
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

// prescribe notarizes a fresh prescription allowing fills, retrying until
// it is acknowledged; nil when ctx ended first.
func (l *lifecycle) prescribe(ctx context.Context, client, fills int) *rxIssued {
	rx := &rxIssued{}
	rand.Read(rx.salt[:])
	rand.Read(rx.c[:])
	a, err := notary.NewAllowance(rx.salt, rx.c, fills)
	if err != nil {
		panic(err) // fills is within 1..MaxFills
	}
	rx.a = a
	e := notaryapi.Entry{Kind: notary.KindPrescription, Commitment: rx.c, Allowance: &rx.a}
	l.h.mu.Lock()
	l.h.submitted[rx.c] = true
	l.h.mu.Unlock()
	l.w.gate.RLock()
	defer l.w.gate.RUnlock()
	var failed []int
	for ctx.Err() == nil {
		op, receipts := l.w.notarizeWith(ctx, l.issuer, client, []notaryapi.Entry{e}, []notary.Commitment{rx.c}, l.cfg.reqTimeout)
		op.retry = len(failed) > 0
		pos := l.h.add(op)
		for _, r := range receipts {
			l.h.sawReceipt(r)
		}
		if op.ok {
			l.h.mu.Lock()
			for _, f := range failed {
				l.h.ops[f].ret = op.ret
			}
			l.h.mu.Unlock()
			return rx
		}
		failed = append(failed, pos)
	}
	return nil
}

// revoke revokes rx, retrying until it is acknowledged or refused. It
// stays among the active ones a while: the tills race it.
func (l *lifecycle) revoke(ctx context.Context, client int, rx *rxIssued) {
	seed := notary.DispenseSeed(rx.salt, rx.c)
	e := notaryapi.Entry{Kind: notary.KindRevocation, Commitment: notary.RevocationCommitment(rx.c), Link: rx.c, Proof: &seed}
	l.h.mu.Lock()
	l.h.submitted[e.Commitment] = true
	l.h.mu.Unlock()
	l.submit(ctx, histOp{client: client, kind: opRevoke, commitments: []notary.Commitment{e.Commitment}, life: lifecycleOp{link: rx.c}},
		func(ctx context.Context) (*notaryapi.NotarizeResponse, error) { return l.issuer.Notarize(ctx, e) }, rx)
}

// dispenser dispenses the active prescriptions until ctx ends: mostly one
// of those the tills share, now and then one that is done (a till that
// should not). A till of the API client (viaClient) dispenses with
// notaryapi.Client.Dispense, as a pharmacy's software does; the others
// claim fills themselves (dispenseByHand), now and then with a proof that
// does not open the fill. Each till knows only what it was told: the
// fills it won, and the statuses it read.
func (l *lifecycle) dispenser(ctx context.Context, client int, till *notaryapi.Client, viaClient bool, rng *mrand.Rand) {
	defer l.wg.Done()
	taken := map[notary.Commitment]int{} // the highest fill of each prescription the till knows taken
	for ctx.Err() == nil {
		if l.limiter.Wait(ctx) != nil {
			return
		}
		l.mu.Lock()
		var rx *rxIssued
		switch {
		case len(l.done) > 0 && rng.IntN(10) == 0:
			rx = l.done[rng.IntN(len(l.done))]
		case len(l.active) > 0:
			rx = l.active[rng.IntN(len(l.active))]
		}
		l.mu.Unlock()
		if rx == nil {
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		var d notary.Commitment
		rand.Read(d[:])
		l.h.mu.Lock()
		l.h.submitted[d] = true
		l.h.mu.Unlock()
		if viaClient {
			l.dispenseViaClient(ctx, client, till, rx, d, rng.IntN(10) == 0)
		} else {
			l.dispenseByHand(ctx, client, till, rx, d, taken, rng.IntN(40) == 0)
		}
	}
}

// dispenseViaClient dispenses rx with the API client's Dispense, sending
// it again while its outcome is unknown (a timeout under a fault): the
// same dispense d is logged once. Each call is one operation, whose fill
// tries inside are not seen. With resend, it sends d once more after it
// was acknowledged, as a till that lost the answer (it restarted before
// keeping the receipt) would: the answer must be the same fill.
func (l *lifecycle) dispenseViaClient(ctx context.Context, client int, till *notaryapi.Client, rx *rxIssued, d notary.Commitment, resend bool) {
	b := &notary.Bundle{Salt: rx.salt, Receipt: notary.Receipt{Leaf: notary.Leaf{Kind: notary.KindPrescription, Commitment: rx.c}}}
	op := histOp{client: client, kind: opDispense, commitments: []notary.Commitment{d}, life: lifecycleOp{link: rx.c}}
	send := func(ctx context.Context) (*notaryapi.NotarizeResponse, error) { return till.Dispense(ctx, b, d) }
	if got := l.submit(ctx, op, send, rx); got.ok && resend {
		l.submit(ctx, op, send, rx)
	}
}

// dispenseByHand dispenses rx once, as a till that claims fills itself:
// it claims the next fill it knows of; on fill_taken it reads the
// prescription's status and claims the next; on an outcome it does not
// know (a timeout under a fault) it sends the same dispense again, which
// is idempotent. It stops at an acknowledgement, or at a refusal that no
// other fill can change.
func (l *lifecycle) dispenseByHand(ctx context.Context, client int, till *notaryapi.Client, rx *rxIssued, d notary.Commitment, taken map[notary.Commitment]int, wrongProof bool) {
	k := taken[rx.c] + 1
	for ctx.Err() == nil {
		if k > rx.a.Fills {
			// Every fill is taken, as far as the till knows: it asks
			// for the last one anyway, which must be refused.
			k = rx.a.Fills
		}
		proof, err := notary.DispenseProof(rx.salt, rx.c, rx.a, k)
		if err != nil {
			panic(err) // k is within 1..Fills
		}
		if wrongProof {
			rand.Read(proof[:])
		}
		e := notaryapi.Entry{Kind: notary.KindDispense, Commitment: d, Link: rx.c, Fill: k, Proof: &proof}
		op := l.submit(ctx, histOp{client: client, kind: opDispense, commitments: []notary.Commitment{d}, life: lifecycleOp{link: rx.c, claim: k, wrongProof: wrongProof}},
			func(ctx context.Context) (*notaryapi.NotarizeResponse, error) { return till.Notarize(ctx, e) }, rx)
		switch {
		case op.ok:
			taken[rx.c] = max(taken[rx.c], op.life.fill)
			return
		case op.life.refused != notaryapi.ErrFillTaken.Name:
			return
		}
		// Fill k was taken: the status says which is next.
		sctx, cancel := context.WithTimeout(ctx, l.cfg.reqTimeout)
		st, err := till.PrescriptionStatus(sctx, rx.c, true)
		cancel()
		taken[rx.c] = max(taken[rx.c], k)
		if err == nil {
			_, _, used := st.State()
			taken[rx.c] = max(taken[rx.c], used)
		}
		if k == rx.a.Fills {
			if taken[rx.c] >= rx.a.Fills {
				l.retire(rx)
			}
			return
		}
		k = taken[rx.c] + 1
	}
}

// submit sends a dispense or a revocation with send until it is answered
// (an acknowledgement or a 409), recording every try; it returns the
// last. A refusal that no other fill can change, or the last fill won,
// retires rx.
func (l *lifecycle) submit(ctx context.Context, op histOp, send func(context.Context) (*notaryapi.NotarizeResponse, error), rx *rxIssued) histOp {
	var failed []int
	for {
		op := op
		rctx, cancel := context.WithTimeout(ctx, l.cfg.reqTimeout)
		op.call = l.h.now()
		resp, err := send(rctx)
		op.ret = l.h.now()
		cancel()
		var p *httpapi.Problem
		switch {
		case err == nil && resp.Receipt != nil:
			op.ok, op.existing, op.existingKnown = true, resp.Existing, true
			op.indexes = []uint64{resp.Receipt.Index}
			op.life.fill = resp.Fill
			l.h.sawReceipt(resp.Receipt)
			if op.kind == opDispense && resp.Fill > 0 && resp.Fill >= resp.Fills {
				l.retire(rx)
			}
		case errors.As(err, &p) && p.Status == http.StatusConflict:
			op.life.refused = p.Code
			switch p.Code {
			case notaryapi.ErrFullyDispensed.Name, notaryapi.ErrRevoked.Name, notaryapi.ErrUnknownPrescription.Name:
				l.retire(rx)
			}
		default:
			op.ret = noReturn // it may yet be logged
		}
		pos := l.h.add(op)
		if op.ret != noReturn {
			// The earlier tries took effect by now, or never will.
			l.h.mu.Lock()
			for _, f := range failed {
				l.h.ops[f].ret = op.ret
			}
			l.h.mu.Unlock()
			return op
		}
		failed = append(failed, pos)
		if ctx.Err() != nil {
			return op
		}
	}
}

// retire moves rx from the active prescriptions to the done ones.
func (l *lifecycle) retire(rx *rxIssued) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i := slices.Index(l.active, rx); i >= 0 {
		l.active = slices.Delete(l.active, i, i+1)
		if len(l.done) >= 64 {
			l.done = slices.Delete(l.done, 0, 1)
		}
		l.done = append(l.done, rx)
	}
}
