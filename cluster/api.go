package cluster

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/telenotary/telenotary/notary"
)

// Limits of the API.
const (
	MaxBatchRequest = 10000 // entries in one batch request
	MaxLeavesPage   = 1000  // leaves in one range request
	maxEntryBody    = 4 << 10
	maxBatchBody    = 4 << 20
	maxSmallBody    = 16 << 10
)

// Headers of the API.
const (
	// HeaderLeader, on every response, is the leader's API base URL when
	// the node knows it.
	HeaderLeader = "Telenotary-Leader"
	// headerForwarded marks a request a follower forwarded: it is not
	// forwarded again.
	headerForwarded = "Telenotary-Forwarded"
)

// apiError is the JSON body of every error response.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	} `json:"error"`
}

// fieldErr is a bad request that names the field.
type fieldErr struct {
	field, msg string
}

func (e *fieldErr) Error() string { return fmt.Sprintf("%s: %s", e.field, e.msg) }
func (e *fieldErr) Unwrap() error { return ErrBadRequest }

func fieldError(field, format string, args ...any) error {
	return &fieldErr{field: field, msg: fmt.Sprintf(format, args...)}
}

// NotarizeResponse answers a single notarization.
type NotarizeResponse struct {
	Receipt *notary.Receipt `json:"receipt"`
	// Existing says the commitment was logged before: this is its receipt.
	Existing bool `json:"existing"`
}

// BatchResponse answers a batch notarization, one receipt per entry in
// order.
type BatchResponse struct {
	Receipts []*notary.Receipt `json:"receipts"`
}

// ProofResponse carries an inclusion or consistency proof.
type ProofResponse struct {
	Index    uint64        `json:"index,omitempty"`
	LeafHash *notary.Hash  `json:"leaf_hash,omitempty"`
	From     uint64        `json:"from,omitempty"`
	Size     uint64        `json:"size"`
	Proof    []notary.Hash `json:"proof"`
}

// LeafInfo is one leaf in a range response.
type LeafInfo struct {
	Index      uint64            `json:"index"`
	Kind       notary.Kind       `json:"kind"`
	Commitment notary.Commitment `json:"commitment"`
	Link       notary.Commitment `json:"link,omitzero"`
	Timestamp  int64             `json:"timestamp"`
}

// LeavesResponse is a range of leaves, for auditors.
type LeavesResponse struct {
	Leaves []LeafInfo `json:"leaves"`
}

func (n *Node) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/notarize", n.handleNotarize)
	mux.HandleFunc("POST /v1/notarize/batch", n.handleNotarizeBatch)
	mux.HandleFunc("GET /v1/receipts/{commitment}", n.handleReceipt)
	mux.HandleFunc("GET /v1/checkpoint", n.handleCheckpoint)
	mux.HandleFunc("GET /v1/proofs/inclusion", n.handleInclusion)
	mux.HandleFunc("GET /v1/proofs/consistency", n.handleConsistency)
	mux.HandleFunc("GET /v1/leaves", n.handleLeaves)
	mux.HandleFunc("GET /v1/keys", n.handleKeys)
	mux.HandleFunc("GET /v1/status", n.handleStatus)
	mux.HandleFunc("GET /v1/events", n.handleEvents)
	mux.HandleFunc("POST /v1/cluster/join", n.handleJoin)
	mux.HandleFunc("POST /v1/cluster/remove", n.handleRemove)
	mux.HandleFunc("POST /v1/cluster/transfer", n.handleTransfer)
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", n.handleReady)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		n.writeError(w, r, fmt.Errorf("%w: no such endpoint %s %s", ErrNotFound, r.Method, r.URL.Path))
	})
	return n.withLeaderHeader(mux)
}

// withLeaderHeader tells every client where the leader is.
func (n *Node) withLeaderHeader(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if url := n.leaderURL(); url != "" {
			w.Header().Set(HeaderLeader, url)
		}
		h.ServeHTTP(w, r)
	})
}

// leaderURL returns the leader's API base URL, or "" when unknown.
func (n *Node) leaderURL() string {
	_, id := n.raft.LeaderWithID()
	if id == "" {
		return ""
	}
	if id == raft.ServerID(n.cfg.ID) {
		return n.cfg.HTTPAdvertise
	}
	_, members := n.fsm.clusterInfo()
	for _, m := range members {
		if m.ID == string(id) {
			return m.HTTPAddr
		}
	}
	return ""
}

// writeError maps an error to its status code, in this one place.
func (n *Node) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := http.StatusInternalServerError, "internal"
	var fe *fieldErr
	var body apiError
	switch {
	case errors.Is(err, ErrTooLarge):
		status, code = http.StatusRequestEntityTooLarge, "too_large"
	case errors.As(err, &fe):
		status, code = http.StatusBadRequest, "bad_request"
		body.Error.Field = fe.field
	case errors.Is(err, ErrBadRequest):
		status, code = http.StatusBadRequest, "bad_request"
	case errors.Is(err, ErrUnauthorized):
		status, code = http.StatusUnauthorized, "unauthorized"
		w.Header().Set("WWW-Authenticate", `Bearer realm="telenotary"`)
	case errors.Is(err, ErrForbidden):
		status, code = http.StatusForbidden, "forbidden"
	case errors.Is(err, ErrNotFound):
		status, code = http.StatusNotFound, "not_found"
	case errors.Is(err, ErrNotLeader):
		status, code = http.StatusServiceUnavailable, "not_leader"
		w.Header().Set("Retry-After", "1")
	case errors.Is(err, ErrOverloaded):
		status, code = http.StatusServiceUnavailable, "overloaded"
		w.Header().Set("Retry-After", "1")
	case errors.Is(err, ErrNoLeader), errors.Is(err, ErrClosed):
		status, code = http.StatusServiceUnavailable, "unavailable"
		w.Header().Set("Retry-After", "1")
	case errors.Is(err, ErrWrongCluster):
		status, code = http.StatusConflict, "wrong_cluster"
	case errors.Is(err, context.DeadlineExceeded):
		status, code = http.StatusGatewayTimeout, "timeout"
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer.
		status, code = http.StatusServiceUnavailable, "canceled"
	}
	if status == http.StatusInternalServerError {
		n.logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	body.Error.Code, body.Error.Message = code, err.Error()
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// readBody reads a request body of at most limit bytes.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read body: %v", ErrBadRequest, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: the body is larger than %d bytes", ErrTooLarge, limit)
	}
	return b, nil
}

// decodeStrict decodes a JSON body into v, refusing unknown fields and
// trailing data, and names the field of a type error.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			return fieldError(te.Field, "must be a JSON %s, not %s", te.Type.Kind(), te.Value)
		case errors.As(err, &se):
			return fieldError("body", "is not valid JSON: %v (at byte %d)", err, se.Offset)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return fieldError(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), "is not a field of this request")
		case errors.Is(err, io.EOF):
			return fieldError("body", "is empty; a JSON object is required")
		}
		return fieldError("body", "%v", err)
	}
	if dec.More() {
		return fieldError("body", "has data after the JSON object")
	}
	return nil
}

// wireEntry is an entry as a request spells it; every field is checked by
// hand so errors can name it.
type wireEntry struct {
	Kind       *string `json:"kind"`
	Commitment *string `json:"commitment"`
	Link       *string `json:"link"`
}

func (w wireEntry) parse(prefix string) (Entry, error) {
	var e Entry
	if w.Kind == nil {
		return e, fieldError(prefix+"kind", "is required")
	}
	k, err := notary.ParseKind(*w.Kind)
	if err != nil {
		return e, fieldError(prefix+"kind", "%v", err)
	}
	e.Kind = k
	if w.Commitment == nil {
		return e, fieldError(prefix+"commitment", "is required")
	}
	if e.Commitment, err = parseCommitment(*w.Commitment); err != nil {
		return e, fieldError(prefix+"commitment", "%v", err)
	}
	if w.Link != nil {
		if e.Link, err = parseCommitment(*w.Link); err != nil {
			return e, fieldError(prefix+"link", "%v", err)
		}
	}
	return e, nil
}

// parseCommitment accepts 64 hex digits (either case) or standard base64.
func parseCommitment(s string) (notary.Commitment, error) {
	var c notary.Commitment
	switch len(s) {
	case 2 * notary.HashSize:
		if _, err := hex.Decode(c[:], []byte(s)); err != nil {
			return c, errors.New("is not hex")
		}
		return c, nil
	case base64.StdEncoding.EncodedLen(notary.HashSize):
		b, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil || len(b) != notary.HashSize {
			return c, errors.New("is not base64")
		}
		copy(c[:], b)
		return c, nil
	}
	return c, fmt.Errorf("must be 32 bytes as 64 hex digits or 44 base64 characters, not %d characters", len(s))
}

func (n *Node) handleNotarize(w http.ResponseWriter, r *http.Request) {
	if err := n.cfg.Tokens.require(r, RoleSubmitter); err != nil {
		n.writeError(w, r, err)
		return
	}
	body, err := readBody(r, maxEntryBody)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	we, ok := parseEntryFast(body)
	if !ok {
		if err := decodeStrict(body, &we); err != nil {
			n.writeError(w, r, err)
			return
		}
	}
	e, err := we.parse("")
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	start := time.Now()
	if n.raft.State() != raft.Leader {
		// A commitment this follower has applied is committed: answer it
		// here rather than forward. (The leader's log dedups anyway.)
		if r, err := n.existingReceipt(e.Commitment); err == nil && r != nil {
			writeReceipts(w, NotarizeResponse{Receipt: r, Existing: true})
			return
		}
		if n.forwardIfFollower(w, r, body) {
			return
		}
	}
	res, err := n.batcher.submit(r.Context(), []Entry{e})
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	receipts, err := n.receipts(res.indexes)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	existing := res.indexes[0] < res.firstNew
	n.metrics.notarized(res.fresh(), time.Since(start))
	writeReceipts(w, NotarizeResponse{Receipt: receipts[0], Existing: existing})
}

func (n *Node) handleNotarizeBatch(w http.ResponseWriter, r *http.Request) {
	if err := n.cfg.Tokens.require(r, RoleSubmitter); err != nil {
		n.writeError(w, r, err)
		return
	}
	body, err := readBody(r, maxBatchBody)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	var req struct {
		Entries []wireEntry `json:"entries"`
	}
	if err := decodeStrict(body, &req); err != nil {
		n.writeError(w, r, err)
		return
	}
	if len(req.Entries) == 0 || len(req.Entries) > MaxBatchRequest {
		n.writeError(w, r, fieldError("entries", "must hold 1 to %d entries, not %d", MaxBatchRequest, len(req.Entries)))
		return
	}
	entries := make([]Entry, len(req.Entries))
	for i, we := range req.Entries {
		if entries[i], err = we.parse(fmt.Sprintf("entries[%d].", i)); err != nil {
			n.writeError(w, r, err) // nothing of the batch was submitted
			return
		}
	}
	start := time.Now()
	if fwd := n.forwardIfFollower(w, r, body); fwd {
		return
	}
	res, err := n.batcher.submit(r.Context(), entries)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	receipts, err := n.receipts(res.indexes)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	n.metrics.notarized(res.fresh(), time.Since(start))
	writeReceipts(w, BatchResponse{Receipts: receipts})
}

// existingReceipt returns the receipt of a commitment this node has
// applied, proven into its latest checkpoint, or nil.
func (n *Node) existingReceipt(c notary.Commitment) (*notary.Receipt, error) {
	cp := n.fsm.checkpoint.Load()
	if cp == nil {
		return nil, nil
	}
	l, done := n.fsm.readLog()
	defer done()
	i, found, err := l.Find(c)
	if err != nil || !found || i >= cp.Size {
		return nil, err
	}
	return l.Receipt(i, *cp)
}

// receipts proves each index into the latest checkpoint, which the FSM
// signed after applying them.
func (n *Node) receipts(indexes []uint64) ([]*notary.Receipt, error) {
	cp := n.fsm.checkpoint.Load()
	if cp == nil {
		return nil, fmt.Errorf("%w: no checkpoint yet", ErrNoLeader)
	}
	l, done := n.fsm.readLog()
	defer done()
	out := make([]*notary.Receipt, len(indexes))
	for i, idx := range indexes {
		r, err := l.Receipt(idx, *cp)
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}

// forwardIfFollower sends a submission on to the leader and relays its
// answer; it reports whether it did (or answered with an error).
func (n *Node) forwardIfFollower(w http.ResponseWriter, r *http.Request, body []byte) bool {
	if n.raft.State() == raft.Leader {
		return false
	}
	if r.Header.Get(headerForwarded) != "" {
		n.writeError(w, r, ErrNotLeader)
		return true
	}
	if err := n.relayToLeader(w, r, body); err != nil {
		n.writeError(w, r, err)
	}
	return true
}

// relayToLeader sends r (with body) to the leader, marked as forwarded,
// and relays the leader's status and body. An error means nothing was
// written: there was no leader, or it did not answer.
func (n *Node) relayToLeader(w http.ResponseWriter, r *http.Request, body []byte) error {
	leader := n.leaderURL()
	if leader == "" {
		return ErrNoLeader
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, leader+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a := r.Header.Get("Authorization"); a != "" {
		req.Header.Set("Authorization", a)
	}
	req.Header.Set(headerForwarded, n.cfg.ID)
	resp, err := n.forward.Do(req)
	if err != nil {
		return fmt.Errorf("%w: forwarding to the leader: %v", ErrNoLeader, err)
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Retry-After", "WWW-Authenticate"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
	return nil
}

// lookupRelayTimeout bounds a follower's wait for the leader's answer to a
// receipt lookup it missed: a leader that is gone or cut off must not hold
// up a read this node can answer.
const lookupRelayTimeout = 2 * time.Second

// handleReceipt answers a logged commitment's receipt, proven into this
// node's latest checkpoint (a follower that has not applied it relays the
// leader's answer); with ?signatures=K, the checkpoint carries the
// signatures of K nodes (this one and K-1 peers).
func (n *Node) handleReceipt(w http.ResponseWriter, r *http.Request) {
	c, err := parseCommitment(r.PathValue("commitment"))
	if err != nil {
		n.writeError(w, r, fieldError("commitment", "%v", err))
		return
	}
	want, err := signaturesParam(r)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	rc, err := n.existingReceipt(c)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	if rc == nil {
		// A follower may not have applied it yet: ask the leader, once.
		// If there is no leader that answers soon, this node's answer stands.
		if n.raft.State() != raft.Leader && r.Header.Get(headerForwarded) == "" {
			ctx, cancel := context.WithTimeout(r.Context(), lookupRelayTimeout)
			err := n.relayToLeader(w, r.WithContext(ctx), nil)
			cancel()
			if err == nil {
				return
			}
		}
		n.writeError(w, r, fmt.Errorf("%w: commitment %s is not in this node's log", ErrNotFound, c))
		return
	}
	if want > 1 {
		cp, err := notary.ParseSignedCheckpoint(rc.Checkpoint)
		if err != nil {
			n.writeError(w, r, err)
			return
		}
		if rc.Checkpoint, _, err = n.cosign(r.Context(), cp, want); err != nil {
			n.writeError(w, r, err)
			return
		}
	}
	writeReceipts(w, NotarizeResponse{Receipt: rc, Existing: true})
}

// handleCheckpoint serves this node's latest signed checkpoint, or with
// ?size=N its checkpoint of the first N leaves; ?signatures=K adds the
// signatures of K-1 peers over the same checkpoint.
func (n *Node) handleCheckpoint(w http.ResponseWriter, r *http.Request) {
	want, err := signaturesParam(r)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	latest := n.fsm.checkpoint.Load()
	if latest == nil {
		n.writeError(w, r, fmt.Errorf("%w: the cluster has no genesis yet", ErrNoLeader))
		return
	}
	cp := *latest
	if r.URL.Query().Has("size") {
		size, err := uintParam(r, "size", 0)
		if err != nil {
			n.writeError(w, r, err)
			return
		}
		if cp, err = n.fsm.signAt(size); err != nil {
			n.writeError(w, r, err)
			return
		}
	}
	note, _, err := n.cosign(r.Context(), cp, want)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(note)
}

// uintParam reads an optional non-negative integer query parameter.
func uintParam(r *http.Request, name string, def uint64) (uint64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fieldError(name, "must be a whole number from 0")
	}
	return v, nil
}

func (n *Node) handleInclusion(w http.ResponseWriter, r *http.Request) {
	l, done := n.fsm.readLog()
	defer done()
	size := l.Head().Size
	index, err := uintParam(r, "index", 0)
	if err == nil {
		size, err = uintParam(r, "size", size)
	}
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	if !r.URL.Query().Has("index") {
		n.writeError(w, r, fieldError("index", "is required"))
		return
	}
	if index >= size || size > l.Head().Size {
		n.writeError(w, r, fieldError("index", "must be below size %d, which must not exceed the log's %d", size, l.Head().Size))
		return
	}
	p, err := l.InclusionProof(index, size)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	leaf, err := l.Leaf(index)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	lh := leaf.Hash()
	writeJSON(w, http.StatusOK, ProofResponse{Index: index, LeafHash: &lh, Size: size, Proof: p})
}

func (n *Node) handleConsistency(w http.ResponseWriter, r *http.Request) {
	l, done := n.fsm.readLog()
	defer done()
	head := l.Head().Size
	from, err := uintParam(r, "from", 0)
	to := head
	if err == nil {
		to, err = uintParam(r, "to", head)
	}
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	if to > head {
		n.writeError(w, r, fieldError("to", "must not exceed the log's size %d", head))
		return
	}
	if from > to {
		n.writeError(w, r, fieldError("from", "must be at most to (%d)", to))
		return
	}
	p, err := l.ConsistencyProof(from, to)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ProofResponse{From: from, Size: to, Proof: p})
}

func (n *Node) handleLeaves(w http.ResponseWriter, r *http.Request) {
	l, done := n.fsm.readLog()
	defer done()
	start, err := uintParam(r, "start", 0)
	var count uint64
	if err == nil {
		count, err = uintParam(r, "count", 100)
	}
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	if count == 0 || count > MaxLeavesPage {
		n.writeError(w, r, fieldError("count", "must be 1 to %d", MaxLeavesPage))
		return
	}
	size := l.Head().Size
	if start > size {
		n.writeError(w, r, fieldError("start", "is beyond the log's size %d", size))
		return
	}
	count = min(count, size-start)
	leaves := make([]notary.Leaf, count)
	if err := l.Leaves(start, leaves); err != nil {
		n.writeError(w, r, err)
		return
	}
	out := LeavesResponse{Leaves: make([]LeafInfo, len(leaves))}
	for i, lf := range leaves {
		out.Leaves[i] = LeafInfo{Index: start + uint64(i), Kind: lf.Kind, Commitment: lf.Commitment, Link: lf.Link, Timestamp: lf.Timestamp}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleKeys serves every member's verifier key, one per line: the keys
// file a verifier trusts.
func (n *Node) handleKeys(w http.ResponseWriter, r *http.Request) {
	g, members := n.fsm.clusterInfo()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if g != nil {
		fmt.Fprintf(w, "# verifier keys of the nodes of %s (cluster %s)\n", g.Origin, g.ClusterID)
	}
	for _, m := range members {
		fmt.Fprintln(w, m.VerifierKey)
	}
}

func (n *Node) handleReady(w http.ResponseWriter, r *http.Request) {
	if !n.Ready() {
		n.writeError(w, r, fmt.Errorf("%w: not ready (no leader, or not yet caught up)", ErrNoLeader))
		return
	}
	io.WriteString(w, "ready\n")
}

func (n *Node) handleJoin(w http.ResponseWriter, r *http.Request) {
	n.operatorAction(w, r, func(body []byte) (any, error) {
		var req JoinRequest
		if err := decodeStrict(body, &req); err != nil {
			return nil, err
		}
		return n.join(req)
	})
}

func (n *Node) handleRemove(w http.ResponseWriter, r *http.Request) {
	n.operatorAction(w, r, func(body []byte) (any, error) {
		var req struct {
			ID string `json:"id"`
		}
		if err := decodeStrict(body, &req); err != nil {
			return nil, err
		}
		if req.ID == "" {
			return nil, fieldError("id", "is required")
		}
		return map[string]string{"removed": req.ID}, n.remove(req.ID)
	})
}

func (n *Node) handleTransfer(w http.ResponseWriter, r *http.Request) {
	n.operatorAction(w, r, func(body []byte) (any, error) {
		var req struct {
			ID string `json:"id"`
		}
		if len(bytes.TrimSpace(body)) > 0 {
			if err := decodeStrict(body, &req); err != nil {
				return nil, err
			}
		}
		if err := n.transfer(req.ID); err != nil {
			return nil, err
		}
		return map[string]string{"leader": n.leaderURL()}, nil
	})
}

// operatorAction authorizes an operator request, forwards it to the leader
// from a follower, and runs it on the leader.
func (n *Node) operatorAction(w http.ResponseWriter, r *http.Request, act func(body []byte) (any, error)) {
	if err := n.cfg.Tokens.require(r, RoleOperator); err != nil {
		n.writeError(w, r, err)
		return
	}
	body, err := readBody(r, maxSmallBody)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	if n.forwardIfFollower(w, r, body) {
		return
	}
	out, err := act(body)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
