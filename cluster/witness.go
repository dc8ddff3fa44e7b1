package cluster

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/witness"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The leader submits each new checkpoint to the cluster's witnesses
// (c2sp.org/tlog-witness) and every node serves the cosignatures it holds
// on its checkpoints: see "Witnesses" in cluster/DESIGN.md.

// Witness is a witness the cluster's leader submits checkpoints to.
type Witness struct {
	// URL is the witness's submission prefix: requests go to
	// URL + "/add-checkpoint".
	URL string
	// Verifier verifies the witness's cosignature/v1 lines (see
	// witness.NewVerifier).
	Verifier note.Verifier
}

// ParseWitness parses "URL=VKEY": a witness's submission prefix (http or
// https, without query) and its cosignature/v1 verifier key.
func ParseWitness(spec string) (Witness, error) {
	u, vkey, ok := strings.Cut(spec, "=")
	if !ok || u == "" || vkey == "" {
		return Witness{}, errors.New(`want URL=VKEY: the witness's submission URL and its cosignature/v1 verifier key`)
	}
	if err := checkWitnessURL(u); err != nil {
		return Witness{}, err
	}
	v, err := witness.NewVerifier(vkey)
	if err != nil {
		return Witness{}, fmt.Errorf("verifier key %q: %w", vkey, err)
	}
	return Witness{URL: strings.TrimSuffix(u, "/"), Verifier: v}, nil
}

func checkWitnessURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("URL %q: %w", s, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("URL %q: give an http:// or https:// URL", s)
	case u.Host == "":
		return fmt.Errorf("URL %q has no host", s)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Errorf("URL %q: give the submission prefix, without query, fragment or user", s)
	}
	return nil
}

// validateWitnesses checks the witnesses of a configuration.
func validateWitnesses(ws []Witness, signer note.Signer) error {
	seen := map[string]bool{}
	for i, w := range ws {
		switch {
		case w.Verifier == nil:
			return fmt.Errorf("Witnesses[%d]: no Verifier", i)
		case seen[w.Verifier.Name()]:
			return fmt.Errorf("Witnesses[%d]: two witnesses named %q", i, w.Verifier.Name())
		case signer != nil && w.Verifier.Name() == signer.Name():
			return fmt.Errorf("Witnesses[%d]: named %q like this node's key", i, w.Verifier.Name())
		}
		if err := checkWitnessURL(w.URL); err != nil {
			return fmt.Errorf("Witnesses[%d]: %w", i, err)
		}
		seen[w.Verifier.Name()] = true
	}
	return nil
}

// witnessKeep bounds the cosigned checkpoints kept per witness.
const witnessKeep = 64

// cosigned is a witness's verified cosignature of a checkpoint body.
type cosigned struct {
	size uint64
	body string // the checkpoint's note text
	line []byte // the cosignature line
}

// witnessed holds the cosignatures of the cluster's witnesses that this
// node verified, the last witnessKeep of each witness, and serves them on
// its checkpoints. It is safe for concurrent use.
type witnessed struct {
	witnesses []Witness
	metrics   *witnessMetrics

	mu   sync.Mutex
	held [][]cosigned // per witness, by increasing size
}

func newWitnessed(ws []Witness, m *witnessMetrics) *witnessed {
	return &witnessed{witnesses: ws, metrics: m, held: make([][]cosigned, len(ws))}
}

// Count is the number of witnesses configured.
func (s *witnessed) Count() int { return len(s.witnesses) }

// keep records witness i's cosignature line of cp, which the caller
// verified; it reports whether it was new.
func (s *witnessed) keep(i int, cp notary.SignedCheckpoint, line []byte) bool {
	body, err := cp.Body()
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.held[i]
	at, found := slices.BinarySearchFunc(h, cp.Size, func(c cosigned, size uint64) int { return cmp.Compare(c.size, size) })
	if found {
		return false
	}
	h = slices.Insert(h, at, cosigned{size: cp.Size, body: string(body), line: slices.Clone(line)})
	if len(h) > witnessKeep {
		h = slices.Delete(h, 0, len(h)-witnessKeep)
	}
	s.held[i] = h
	s.metrics.size.WithLabelValues(s.witnesses[i].Verifier.Name()).Set(float64(h[len(h)-1].size))
	return true
}

// has reports whether witness i's cosignature of size is held.
func (s *witnessed) has(i int, size uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, found := slices.BinarySearchFunc(s.held[i], size, func(c cosigned, size uint64) int { return cmp.Compare(c.size, size) })
	return found
}

// latest returns the size of the newest checkpoint witness i cosigned, as
// far as this node knows.
func (s *witnessed) latest(i int) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.held[i]; len(h) > 0 {
		return h[len(h)-1].size, true
	}
	return 0, false
}

// Append appends to note, a signed note of cp, the cosignature lines held
// for cp's body, in the order the witnesses are configured.
func (s *witnessed) Append(cp notary.SignedCheckpoint, n []byte) []byte {
	body, err := cp.Body()
	if err != nil {
		return n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := n
	for _, h := range s.held {
		at, found := slices.BinarySearchFunc(h, cp.Size, func(c cosigned, size uint64) int { return cmp.Compare(c.size, size) })
		if found && h[at].body == string(body) && !bytes.Contains(n, h[at].line) {
			if len(out) == len(n) {
				out = slices.Clip(n) // append to a copy
			}
			out = append(out, h[at].line...)
		}
	}
	return out
}

// Newest returns the size of the newest checkpoint that at least k
// witnesses cosigned.
func (s *witnessed) Newest(k int) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	count := map[uint64]int{}
	var best uint64
	ok := false
	for _, h := range s.held {
		for _, c := range h {
			count[c.size]++
			if count[c.size] >= k && (!ok || c.size > best) {
				best, ok = c.size, true
			}
		}
	}
	return best, ok
}

// Export returns the cosignatures held, one note per checkpoint body with
// the witnesses' lines only, newest first: what followers fetch.
func (s *witnessed) Export() notaryapi.CosignaturesResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	bySize := map[uint64]*bytes.Buffer{}
	var sizes []uint64
	for _, h := range s.held {
		for _, c := range h {
			b := bySize[c.size]
			if b == nil {
				b = bytes.NewBufferString(c.body + "\n")
				bySize[c.size] = b
				sizes = append(sizes, c.size)
			}
			b.Write(c.line)
		}
	}
	slices.Sort(sizes)
	slices.Reverse(sizes)
	out := notaryapi.CosignaturesResponse{Checkpoints: make([]string, len(sizes))}
	for i, size := range sizes {
		out.Checkpoints[i] = bySize[size].String()
	}
	return out
}

// witnessMetrics are the metrics of submissions to witnesses.
type witnessMetrics struct {
	submissions *prometheus.CounterVec
	size        *prometheus.GaugeVec
	latency     *prometheus.HistogramVec
	refused     *prometheus.CounterVec
}

func newWitnessMetrics(reg *prometheus.Registry) *witnessMetrics {
	m := &witnessMetrics{
		submissions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telenotary_witness_submissions_total",
			Help: "add-checkpoint requests this node sent as leader, by witness and outcome (cosigned, conflict, unknown_log, untrusted, inconsistent, bad_request, bad_cosignature, ahead, error)."},
			[]string{"witness", "outcome"}),
		size: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "telenotary_witness_cosigned_size",
			Help: "Size of the newest checkpoint this node holds a verified cosignature of, by witness."}, []string{"witness"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "telenotary_witness_submit_seconds",
			Help: "Time of an add-checkpoint request, by witness.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"witness"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telenotary_witness_cosignatures_refused_total",
			Help: "Cosignatures that did not verify and were dropped, by witness and source (witness: its answer; leader: fetched by a follower)."},
			[]string{"witness", "source"}),
	}
	reg.MustRegister(m.submissions, m.size, m.latency, m.refused)
	return m
}

// Outcomes of an add-checkpoint request, as the metrics label them.
const (
	outcomeCosigned       = "cosigned"
	outcomeConflict       = "conflict"
	outcomeUnknownLog     = "unknown_log"
	outcomeUntrusted      = "untrusted"
	outcomeInconsistent   = "inconsistent"
	outcomeBadRequest     = "bad_request"
	outcomeBadCosignature = "bad_cosignature"
	outcomeAhead          = "ahead"
	outcomeError          = "error"
)

// witnessPollTick is how often an idle submitter looks at leadership; new
// checkpoints wake it at once.
const witnessPollTick = 100 * time.Millisecond

// submitter submits the leader's latest checkpoint to one witness: one
// request at a time, at most one per WitnessInterval (a 409's resend
// aside), always of the newest checkpoint when it starts, so a slow
// witness is sent fewer checkpoints, never a queue of stale ones.
// Nothing on the write path waits for it.
type submitter struct {
	n      *Node
	i      int
	w      Witness
	name   string
	client *http.Client
	logger *slog.Logger

	// known is the size of the checkpoint the witness last cosigned, as
	// far as this leader knows (set on taking leadership from what the
	// node holds, then by the witness's answers).
	known uint64
	// leading is whether the node led at the last look.
	leading bool
}

// runWitnesses starts one submitter per witness, and on a follower the
// fetch of the leader's cosignatures.
func (n *Node) runWitnesses(ctx context.Context) {
	if len(n.cfg.Witnesses) == 0 {
		return
	}
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	for i, w := range n.cfg.Witnesses {
		s := &submitter{n: n, i: i, w: w, name: w.Verifier.Name(), client: client,
			logger: n.logger.With("witness", w.Verifier.Name(), "url", w.URL)}
		n.goFunc(func() { s.run(ctx) })
	}
	n.goFunc(func() { n.fetchCosignatures(ctx) })
}

func (s *submitter) run(ctx context.Context) {
	wait := &backoff.ExponentialBackOff{InitialInterval: 50 * time.Millisecond, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: s.n.cfg.WitnessMaxBackoff}
	wait.Reset()
	var last time.Time // start of the last request, but a 409's resend
	again := false
	for {
		cp := s.next(ctx)
		if cp == nil {
			return
		}
		if pause := s.n.cfg.WitnessInterval - time.Since(last); !again && pause > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(pause):
			}
			if cp = s.next(ctx); cp == nil { // the newest after the pause
				return
			}
		}
		if !again {
			last = time.Now()
		}
		var err error
		again, err = s.submit(ctx, *cp)
		if err == nil {
			wait.Reset()
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if again {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait.NextBackOff()):
		}
	}
}

// next waits until the node leads and has a checkpoint the witness has not
// cosigned, and returns it (the newest); nil when ctx ends.
func (s *submitter) next(ctx context.Context) *notary.SignedCheckpoint {
	tick := time.NewTicker(witnessPollTick)
	defer tick.Stop()
	for {
		grown := s.n.fsm.grown.Load()
		leading := s.n.raft.State() == raft.Leader && s.n.ready.Load()
		if leading && !s.leading {
			// Taking over: start from what this node holds of the
			// witness (a 409 corrects it).
			s.known, _ = s.n.witnessed.latest(s.i)
		}
		s.leading = leading
		if leading {
			if cp := s.n.fsm.checkpoint.Load(); cp != nil && !s.n.witnessed.has(s.i, cp.Size) {
				return cp
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-*grown:
		case <-tick.C:
		}
	}
}

// submit sends cp to the witness once. again means the witness told the
// size it knows (409) and a new request can go at once.
func (s *submitter) submit(ctx context.Context, cp notary.SignedCheckpoint) (again bool, err error) {
	count := func(outcome string) { s.n.metrics.witness.submissions.WithLabelValues(s.name, outcome).Inc() }
	if s.known > cp.Size {
		count(outcomeAhead)
		s.logger.Warn("the witness has cosigned a larger checkpoint of this log than the leader's: waiting for the log to reach it (if it does not, the log was forked)",
			"witness_size", s.known, "log_size", cp.Size)
		return false, errors.New("witness ahead")
	}
	req := witness.Request{OldSize: s.known, Checkpoint: cp.Note}
	if s.known > 0 && s.known < cp.Size {
		p, err := s.n.ledger.ConsistencyProof(s.known, cp.Size)
		if err != nil {
			count(outcomeError)
			s.logger.Warn("cannot prove consistency for the witness", "from", s.known, "to", cp.Size, "error", err)
			return false, err
		}
		req.Proof = make([]tlog.Hash, len(p))
		for i, h := range p {
			req.Proof[i] = tlog.Hash(h)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, s.n.cfg.WitnessTimeout)
	start := time.Now()
	sigs, err := witness.AddCheckpoint(rctx, s.client, s.w.URL, req)
	cancel()
	s.n.metrics.witness.latency.WithLabelValues(s.name).Observe(time.Since(start).Seconds())
	var refused *witness.RefusedError
	switch {
	case err == nil:
	case errors.As(err, &refused) && refused.Status == http.StatusConflict:
		count(outcomeConflict)
		s.logger.Info("the witness knows another size: proving from it", "sent_old", s.known, "witness_size", refused.Known)
		progress := refused.Known != s.known
		s.known = refused.Known
		return progress, err
	case errors.As(err, &refused):
		outcome := map[int]string{http.StatusNotFound: outcomeUnknownLog, http.StatusForbidden: outcomeUntrusted,
			http.StatusUnprocessableEntity: outcomeInconsistent, http.StatusBadRequest: outcomeBadRequest}[refused.Status]
		if outcome == "" {
			count(outcomeError)
			s.logger.Warn("add-checkpoint failed", "size", cp.Size, "error", err)
			return false, err
		}
		count(outcome)
		s.logger.Error("the witness refused the checkpoint: "+map[string]string{
			outcomeUnknownLog:   "it does not witness this log's origin (configure the log on the witness)",
			outcomeUntrusted:    "it does not trust the node's key (configure the log's keys on the witness)",
			outcomeInconsistent: "the consistency proof does not verify (the witness holds another history of this log)",
			outcomeBadRequest:   "it found the request malformed",
		}[outcome], "size", cp.Size, "old", s.known, "error", err)
		return false, err
	default:
		count(outcomeError)
		s.logger.Warn("add-checkpoint failed", "size", cp.Size, "error", err)
		return false, err
	}
	line, err := witness.VerifyCosignature(cp.Note, sigs, s.w.Verifier)
	if err != nil {
		count(outcomeBadCosignature)
		s.n.metrics.witness.refused.WithLabelValues(s.name, "witness").Inc()
		s.logger.Error("the witness answered a cosignature that does not verify: dropped", "size", cp.Size, "error", err)
		return false, err
	}
	count(outcomeCosigned)
	s.known = cp.Size
	s.n.witnessed.keep(s.i, cp, line)
	return false, nil
}

// maxCosignaturesBody bounds the leader's answer a follower reads.
const maxCosignaturesBody = 1 << 20

// fetchCosignatures, on a follower, fetches every WitnessPoll the
// cosignatures the leader holds and keeps those that verify over this
// node's own checkpoint of the same size.
func (n *Node) fetchCosignatures(ctx context.Context) {
	tick := time.NewTicker(n.cfg.WitnessPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if n.raft.State() == raft.Leader {
			continue
		}
		_, leaderURL := n.Leader()
		if leaderURL == "" {
			continue
		}
		if err := n.fetchCosignaturesFrom(ctx, leaderURL); err != nil && ctx.Err() == nil {
			n.logger.Debug("cannot fetch the leader's witness cosignatures", "leader", leaderURL, "error", err)
		}
	}
}

func (n *Node) fetchCosignaturesFrom(ctx context.Context, leaderURL string) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.WitnessTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(leaderURL, "/")+"/v1/checkpoint/cosignatures", nil)
	if err != nil {
		return err
	}
	resp, err := n.forward.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxCosignaturesBody+1))
	if err != nil {
		return err
	}
	if len(b) > maxCosignaturesBody {
		return fmt.Errorf("answer is more than %d bytes", maxCosignaturesBody)
	}
	var got notaryapi.CosignaturesResponse
	if err := json.Unmarshal(b, &got); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	n.keepFetched(got)
	return nil
}

// keepFetched keeps the cosignatures a leader sent that this node does
// not hold, each once it verifies over this node's own checkpoint of that
// size: nothing a follower serves rests on the leader's word.
func (n *Node) keepFetched(got notaryapi.CosignaturesResponse) {
	size := n.fsm.size()
	for _, msg := range got.Checkpoints {
		i := strings.Index(msg, "\n\n")
		if i < 0 {
			continue
		}
		theirs, err := notary.ParseCheckpointBody([]byte(msg[:i+1]))
		if err != nil || theirs.Size > size {
			continue // not applied here yet: a later fetch brings it again
		}
		var mine *notary.SignedCheckpoint
		for j, w := range n.cfg.Witnesses {
			if n.witnessed.has(j, theirs.Size) || !strings.Contains(msg, "— "+w.Verifier.Name()+" ") {
				continue
			}
			if mine == nil {
				cp, err := n.fsm.CheckpointAt(theirs.Size)
				if err != nil {
					break
				}
				mine = &cp
			}
			line, err := witness.VerifyCosignature(mine.Note, []byte(msg[i+2:]), w.Verifier)
			if err != nil {
				n.metrics.witness.refused.WithLabelValues(w.Verifier.Name(), "leader").Inc()
				n.logger.Warn("a cosignature from the leader does not verify over this node's checkpoint: dropped", "witness", w.Verifier.Name(), "size", theirs.Size, "error", err)
				continue
			}
			n.witnessed.keep(j, *mine, line)
		}
	}
}
