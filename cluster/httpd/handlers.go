package httpd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// responseBuffers recycles the buffers receipts are encoded into: at
// thousands of receipts a second they are most of the node's garbage.
var responseBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// writeReceipts answers with a response that carries receipts.
func writeReceipts(w http.ResponseWriter, resp interface{ AppendJSON([]byte) ([]byte, error) }) error {
	buf := responseBuffers.Get().(*[]byte)
	b, err := resp.AppendJSON((*buf)[:0])
	if err != nil {
		responseBuffers.Put(buf)
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	if cap(b) <= 1<<20 { // a huge batch response is not worth keeping
		*buf = b
		responseBuffers.Put(buf)
	}
	return err
}

func (a *api) notarize(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	// A pharmacy dispenses, others notarize: the body says which, so it
	// is read only for a token of either role.
	role := a.Tokens.Role(r)
	need := auth.RoleSubmitter
	if role == auth.RolePharmacy {
		need = auth.RolePharmacy
	}
	if err := a.Tokens.Authorize(r, need); err != nil {
		a.fail(w, r, err)
		return
	}
	body, err := httpapi.ReadBody(r, notaryapi.MaxEntryBody)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	e, err := notaryapi.DecodeEntry(body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	decoded := time.Now()
	switch {
	case e.Kind == notary.KindDispense && !role.Allows(auth.RolePharmacy):
		a.fail(w, r, fmt.Errorf("%w: a dispense needs a pharmacy token, this one is %s", httpapi.ErrForbidden, role))
		return
	case e.Kind != notary.KindDispense && role == auth.RolePharmacy:
		a.fail(w, r, fmt.Errorf("%w: a pharmacy token only dispenses; a %s needs a submitter token", httpapi.ErrForbidden, e.Kind))
		return
	}
	want, err := a.signatures(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if leader, _ := a.Cluster.Leader(); !leader && e.Lifecycle() {
		// The leader's log rules may refuse it: its answer is relayed
		// as it is, not through a coalesced batch.
		a.forward(w, r, body)
		return
	}
	if leader, _ := a.Cluster.Leader(); !leader {
		// A commitment this follower has applied is committed: answer it
		// here rather than forward. (The leader's log dedups anyway.)
		if receipt, err := a.Ledger.Receipt(e.Commitment); err == nil && receipt != nil {
			if err := a.cosign(r.Context(), want, receipt); err != nil {
				a.fail(w, r, err)
				return
			}
			writeReceipts(w, notaryapi.NotarizeResponse{Receipt: receipt, Existing: true})
			return
		}
		if r.Header.Get(notaryapi.HeaderForwarded) != "" {
			a.fail(w, r, fmt.Errorf("%w: a forwarded request reached a follower", notaryapi.ErrNotLeader))
			return
		}
		res, err := a.coalesce.submit(r.Context(), r, e)
		var refused *leaderAnswer
		switch {
		case errors.As(err, &refused):
			httpapi.WriteProblem(w, refused.problem)
			return
		case err != nil:
			a.fail(w, r, err)
			return
		}
		writeReceipts(w, res)
		return
	}
	receipts, firstNew, err := a.Cluster.Submit(r.Context(), []notaryapi.Entry{e}, want)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	resp := notaryapi.NotarizeResponse{Receipt: receipts[0], Existing: receipts[0].Index < firstNew}
	if e.Kind == notary.KindDispense {
		// From the log, not the request: a resent dispense that was
		// accepted before answers the fill it got then.
		if k, n, ok := a.Ledger.Fill(e.Link, receipts[0].Index); ok {
			resp.Fill, resp.Fills = k, n
		}
	}
	a.timeWrite(w, resp, arrived, decoded)
}

// timeWrite writes the receipts of a submission this node took as leader,
// and times the write path's stages the API owns: read (from arrived to
// decoded), write and total.
func (a *api) timeWrite(w http.ResponseWriter, resp interface{ AppendJSON([]byte) ([]byte, error) }, arrived, decoded time.Time) {
	writing := time.Now()
	writeReceipts(w, resp)
	if a.Stage != nil {
		done := time.Now()
		a.Stage("read", decoded.Sub(arrived))
		a.Stage("write", done.Sub(writing))
		a.Stage("total", done.Sub(arrived))
	}
}

// prescriptionStatus answers a prescription's status with the receipts
// of the leaves that decide it, all proven into this node's latest
// checkpoint (a follower that has not applied the prescription relays
// the leader's answer); with ?signatures=K, the checkpoint carries the
// signatures of K nodes.
func (a *api) prescriptionStatus(w http.ResponseWriter, r *http.Request) {
	c, err := notaryapi.ParseCommitment(r.PathValue("commitment"))
	if err != nil {
		a.fail(w, r, httpapi.Field("commitment", "%v", err))
		return
	}
	want, err := a.signatures(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var s *notary.PrescriptionStatus
	if cp := a.Ledger.Checkpoint(); cp != nil {
		if s, err = a.Ledger.PrescriptionStatus(c, cp); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	if s == nil {
		if !a.relayMiss(w, r) {
			a.fail(w, r, fmt.Errorf("%w: no prescription %s in the log", notaryapi.ErrNotFound, c))
		}
		return
	}
	// Every receipt is in one checkpoint: the peers sign it once.
	receipts := append([]*notary.Receipt{s.Prescription, s.Allowance, s.Revocation}, s.Dispenses...)
	receipts = slices.DeleteFunc(receipts, func(r *notary.Receipt) bool { return r == nil })
	if err := a.cosign(r.Context(), want, receipts...); err != nil {
		a.fail(w, r, err)
		return
	}
	b, err := json.Marshal(s)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}

func (a *api) notarizeBatch(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	if err := a.Tokens.Authorize(r, auth.RoleSubmitter); err != nil {
		a.fail(w, r, err)
		return
	}
	body, err := httpapi.ReadBody(r, notaryapi.MaxBatchBody)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	entries, err := notaryapi.DecodeBatch(body)
	if err != nil {
		a.fail(w, r, err) // nothing of the batch was submitted
		return
	}
	decoded := time.Now()
	want, err := a.signatures(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if leader, _ := a.Cluster.Leader(); !leader {
		a.forward(w, r, body)
		return
	}
	receipts, firstNew, err := a.Cluster.Submit(r.Context(), entries, want)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.timeWrite(w, notaryapi.BatchResponse{Receipts: receipts, FirstNew: firstNew}, arrived, decoded)
}

// forward sends a follower's request on to the leader and relays its
// answer, or answers why it cannot. A request that was forwarded already
// is not forwarded again.
func (a *api) forward(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Header.Get(notaryapi.HeaderForwarded) != "" {
		a.fail(w, r, fmt.Errorf("%w: a forwarded request reached a follower", notaryapi.ErrNotLeader))
		return
	}
	if err := a.relayToLeader(w, r, body); err != nil {
		a.fail(w, r, err)
	}
}

// relayToLeader sends r (with body) to the leader, marked as forwarded,
// and relays the leader's status and body. An error means nothing was
// written: there was no leader, or it did not answer.
func (a *api) relayToLeader(w http.ResponseWriter, r *http.Request, body []byte) error {
	_, leader := a.Cluster.Leader()
	if leader == "" {
		return fmt.Errorf("%w: this node knows no leader", notaryapi.ErrNoLeader)
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, leader+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if h := r.Header.Get("Authorization"); h != "" {
		req.Header.Set("Authorization", h)
	}
	req.Header.Set(notaryapi.HeaderForwarded, "1")
	resp, err := a.Forward.Do(req)
	if err != nil {
		return fmt.Errorf("%w: forwarding to the leader: %v", notaryapi.ErrNoLeader, err)
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Retry-After", "WWW-Authenticate", "Cache-Control"} {
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

// relayMiss answers a lookup this follower missed with the leader's
// answer, since it may not have applied what is asked yet; it reports
// false, having written nothing, when this node leads, the request was
// forwarded already, or no leader answers within lookupRelayTimeout (this
// node's answer stands then).
func (a *api) relayMiss(w http.ResponseWriter, r *http.Request) bool {
	if leader, _ := a.Cluster.Leader(); leader || r.Header.Get(notaryapi.HeaderForwarded) != "" {
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), lookupRelayTimeout)
	defer cancel()
	return a.relayToLeader(w, r.WithContext(ctx), nil) == nil
}

// receipt answers a logged commitment's receipt, proven into this node's
// latest checkpoint (a follower that has not applied it relays the
// leader's answer); with ?signatures=K, the checkpoint carries the
// signatures of K nodes (this one and K-1 peers).
func (a *api) receipt(w http.ResponseWriter, r *http.Request) {
	c, err := notaryapi.ParseCommitment(r.PathValue("commitment"))
	if err != nil {
		a.fail(w, r, httpapi.Field("commitment", "%v", err))
		return
	}
	want, err := a.signatures(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	witnessed, err := a.witnessed(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if witnessed > 0 {
		a.witnessedReceipt(w, r, c, want, witnessed)
		return
	}
	receipt, err := a.Ledger.Receipt(c)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if receipt == nil {
		if !a.relayMiss(w, r) {
			a.fail(w, r, fmt.Errorf("%w: commitment %s is not in this node's log", notaryapi.ErrNotFound, c))
		}
		return
	}
	if err := a.cosign(r.Context(), want, receipt); err != nil {
		a.fail(w, r, err)
		return
	}
	writeReceipts(w, notaryapi.NotarizeResponse{Receipt: receipt, Existing: true})
}

// witnessedReceipt answers a commitment's receipt proven into the newest
// checkpoint that k witnesses cosigned, with their cosignatures (and want
// node signatures); 404 while that checkpoint does not cover it.
func (a *api) witnessedReceipt(w http.ResponseWriter, r *http.Request, c notary.Commitment, want, k int) {
	size, ok := a.Witnesses.Newest(k)
	if !ok {
		a.fail(w, r, fmt.Errorf("%w: no checkpoint is cosigned by %d witnesses yet", notaryapi.ErrNotFound, k))
		return
	}
	cp, err := a.Ledger.CheckpointAt(size)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	receipt, err := a.Ledger.ReceiptIn(c, &cp)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if receipt == nil {
		a.fail(w, r, fmt.Errorf("%w: commitment %s is not in the newest checkpoint %d witnesses cosigned (%d leaves) on this node, or not yet", notaryapi.ErrNotFound, c, k, size))
		return
	}
	if err := a.cosign(r.Context(), want, receipt); err != nil {
		a.fail(w, r, err)
		return
	}
	receipt.Checkpoint = a.Witnesses.Append(cp, receipt.Checkpoint)
	writeReceipts(w, notaryapi.NotarizeResponse{Receipt: receipt, Existing: true})
}

// checkpointWait bounds how long ?wait=1 waits for a size to be applied.
const checkpointWait = time.Second

// checkpoint serves this node's latest signed checkpoint, or with ?size=N
// its checkpoint of the first N leaves (with &wait=1, once it has applied
// them, waiting up to checkpointWait); ?signatures=K adds the signatures
// of K-1 peers over the same checkpoint.
func (a *api) checkpoint(w http.ResponseWriter, r *http.Request) {
	want, err := a.signatures(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	latest := a.Ledger.Checkpoint()
	if latest == nil {
		a.fail(w, r, fmt.Errorf("%w: the cluster has no genesis yet", notaryapi.ErrNoLeader))
		return
	}
	cp := *latest
	witnessed, err := a.witnessed(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if witnessed > 0 {
		size, ok := a.Witnesses.Newest(witnessed)
		if !ok {
			a.fail(w, r, fmt.Errorf("%w: no checkpoint is cosigned by %d witnesses yet", notaryapi.ErrNotFound, witnessed))
			return
		}
		if cp, err = a.Ledger.CheckpointAt(size); err != nil {
			a.fail(w, r, err)
			return
		}
	} else if r.URL.Query().Has("size") {
		size, err := uintParam(r, "size", 0)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		switch wait := r.URL.Query().Get("wait"); wait {
		case "":
		case "1":
			// A peer gathering signatures asks a node that may not have
			// applied this size yet, but soon will.
			ctx, cancel := context.WithTimeout(r.Context(), checkpointWait)
			a.Ledger.WaitSize(ctx, size)
			cancel()
		default:
			a.fail(w, r, httpapi.Field("wait", "must be 1 (or absent)"))
			return
		}
		if cp, err = a.Ledger.CheckpointAt(size); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	note := cp.Note
	if want > 1 {
		if note, err = a.Ledger.Cosign(r.Context(), cp, want); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	if a.Witnesses != nil {
		note = a.Witnesses.Append(cp, note)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(note)
}

// witnessed reads ?witnessed=K: the checkpoint served must carry the
// cosignatures of K witnesses ("all": every one); 0 when absent.
func (a *api) witnessed(r *http.Request) (int, error) {
	q := r.URL.Query()
	if !q.Has("witnessed") {
		return 0, nil
	}
	count := 0
	if a.Witnesses != nil {
		count = a.Witnesses.Count()
	}
	switch s := q.Get("witnessed"); {
	case count == 0:
		return 0, httpapi.Field("witnessed", "this cluster submits its checkpoints to no witness")
	case q.Has("size"):
		return 0, httpapi.Field("witnessed", "and size exclude each other")
	case s == "all":
		return count, nil
	default:
		k, err := strconv.Atoi(s)
		if err != nil || k < 1 || k > count {
			return 0, httpapi.Field("witnessed", "must be a whole number from 1 to %d (the cluster's witnesses), or \"all\"", count)
		}
		return k, nil
	}
}

// cosignatures serves the witness cosignatures this node holds, for
// followers to fetch from the leader.
func (a *api) cosignatures(w http.ResponseWriter, r *http.Request) {
	out := notaryapi.CosignaturesResponse{Checkpoints: []string{}}
	if a.Witnesses != nil {
		out = a.Witnesses.Export()
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

// signatures reads ?signatures=K (default 1), or "majority": more than
// half of the cluster's members.
func (a *api) signatures(r *http.Request) (int, error) {
	s := r.URL.Query().Get("signatures")
	switch s {
	case "":
		return 1, nil
	case notaryapi.SignaturesMajority:
		return a.Cluster.Majority(), nil
	}
	k, err := strconv.Atoi(s)
	if err != nil || k < 1 || k > notaryapi.MaxSignatures {
		return 0, httpapi.Field("signatures", "must be a whole number from 1 to %d, or %q", notaryapi.MaxSignatures, notaryapi.SignaturesMajority)
	}
	return k, nil
}

// cosign has the checkpoint of each receipt carry want signatures; the
// receipts of one batch share a checkpoint, which is cosigned once.
func (a *api) cosign(ctx context.Context, want int, receipts ...*notary.Receipt) error {
	if want <= 1 {
		return nil
	}
	done := map[string][]byte{}
	for _, receipt := range receipts {
		if note, ok := done[string(receipt.Checkpoint)]; ok {
			receipt.Checkpoint = note
			continue
		}
		cp, err := notary.ParseSignedCheckpoint(receipt.Checkpoint)
		if err != nil {
			return err
		}
		note, err := a.Ledger.Cosign(ctx, cp, want)
		if err != nil {
			return err
		}
		done[string(receipt.Checkpoint)] = note
		receipt.Checkpoint = note
	}
	return nil
}

// uintParam reads an optional non-negative integer query parameter.
func uintParam(r *http.Request, name string, def uint64) (uint64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, httpapi.Field(name, "must be a whole number from 0")
	}
	return v, nil
}

func (a *api) inclusion(w http.ResponseWriter, r *http.Request) {
	if !r.URL.Query().Has("index") {
		a.fail(w, r, httpapi.Field("index", "is required"))
		return
	}
	head := a.Ledger.Size()
	index, err := uintParam(r, "index", 0)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	size, err := uintParam(r, "size", head)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if index >= size || size > head {
		a.fail(w, r, httpapi.Field("index", "must be below size %d, which must not exceed the log's %d", size, head))
		return
	}
	leafHash, p, err := a.Ledger.InclusionProof(index, size)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, notaryapi.ProofResponse{Index: index, LeafHash: &leafHash, Size: size, Proof: p})
}

func (a *api) consistency(w http.ResponseWriter, r *http.Request) {
	head := a.Ledger.Size()
	from, err := uintParam(r, "from", 0)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	to, err := uintParam(r, "to", head)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	switch {
	case to > head:
		a.fail(w, r, httpapi.Field("to", "must not exceed the log's size %d", head))
		return
	case from > to:
		a.fail(w, r, httpapi.Field("from", "must be at most to (%d)", to))
		return
	}
	p, err := a.Ledger.ConsistencyProof(from, to)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, notaryapi.ProofResponse{From: from, Size: to, Proof: p})
}

func (a *api) leaves(w http.ResponseWriter, r *http.Request) {
	start, err := uintParam(r, "start", 0)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	count, err := uintParam(r, "count", 100)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if count == 0 || count > notaryapi.MaxLeavesPage {
		a.fail(w, r, httpapi.Field("count", "must be 1 to %d", notaryapi.MaxLeavesPage))
		return
	}
	size := a.Ledger.Size()
	if start > size {
		a.fail(w, r, httpapi.Field("start", "is beyond the log's size %d", size))
		return
	}
	leaves, err := a.Ledger.Leaves(start, min(count, size-start))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := notaryapi.LeavesResponse{Leaves: make([]notaryapi.LeafInfo, len(leaves))}
	for i, lf := range leaves {
		out.Leaves[i] = notaryapi.LeafInfoOf(start+uint64(i), lf)
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

// keys serves every member's verifier key, one per line: the keys file a
// verifier trusts, with a comment line before each key naming its node and
// the log size from which it signs.
func (a *api) keys(w http.ResponseWriter, r *http.Request) {
	clusterID, origin, members := a.Cluster.Members()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if clusterID != "" {
		fmt.Fprintf(w, "# verifier keys of the nodes of %s (cluster %s)\n", origin, clusterID)
	}
	for _, m := range members {
		fmt.Fprintf(w, "# node %s, signing from log size %d\n%s\n", m.ID, m.KeySince, m.VerifierKey)
	}
	// Retired keys as comments: a keys file trusts no retired key (it
	// has no ranges), and telenotary policy reads them into a policy that
	// bounds each to the sizes it signed.
	for _, k := range a.Cluster.RetiredKeys() {
		fmt.Fprintf(w, "# retired key of node %s, signed log sizes %d to %d: %s\n", k.ID, k.Since, k.Until, k.VerifierKey)
	}
}

// time serves the node's clock: the other nodes compare theirs with it.
func (a *api) time(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	httpapi.WriteJSON(w, http.StatusOK, notaryapi.TimeResponse{UnixMillis: a.Cluster.Time().UnixMilli()})
}

// status serves the node's status: its health to anyone, the peers and
// their addresses (the cluster's topology) with an operator token only.
func (a *api) status(w http.ResponseWriter, r *http.Request) {
	st := a.Cluster.Status()
	if !a.Tokens.Role(r).Allows(auth.RoleOperator) {
		st.Peers, st.Alerts = nil, nil
	}
	httpapi.WriteJSON(w, http.StatusOK, st)
}

func (a *api) ready(w http.ResponseWriter, r *http.Request) {
	if err := a.Cluster.NotReady(); err != nil {
		a.fail(w, r, fmt.Errorf("not ready: %w", err))
		return
	}
	io.WriteString(w, "ready\n")
}

func (a *api) join(w http.ResponseWriter, r *http.Request) {
	a.clusterAction(w, r, auth.RoleJoiner, func(body []byte) (any, error) {
		var req notaryapi.JoinRequest
		if err := httpapi.DecodeJSON(body, &req); err != nil {
			return nil, err
		}
		if err := req.Member.Validate(); err != nil {
			return nil, err
		}
		// A join token seats a node; it never changes a member's key.
		_, _, members := a.Cluster.Members()
		for _, m := range members {
			if m.ID == req.ID && m.VerifierKey != req.VerifierKey && !a.Tokens.Role(r).Allows(auth.RoleOperator) {
				return nil, fmt.Errorf("%w: %s is a member with another key; a key changes only by an operator (POST /v1/cluster/rekey, telenotary rekey)", notaryapi.ErrForbidden, req.ID)
			}
		}
		return a.Cluster.Join(r.Context(), req)
	})
}

// rekey replaces a member's key (operator).
func (a *api) rekey(w http.ResponseWriter, r *http.Request) {
	a.clusterAction(w, r, auth.RoleOperator, func(body []byte) (any, error) {
		var req notaryapi.JoinRequest
		if err := httpapi.DecodeJSON(body, &req); err != nil {
			return nil, err
		}
		if err := req.Member.Validate(); err != nil {
			return nil, err
		}
		return map[string]string{"rekeyed": req.ID}, a.Cluster.Rekey(r.Context(), req)
	})
}

func (a *api) remove(w http.ResponseWriter, r *http.Request) {
	a.clusterAction(w, r, auth.RoleOperator, func(body []byte) (any, error) {
		var req notaryapi.MemberRequest
		if err := httpapi.DecodeJSON(body, &req); err != nil {
			return nil, err
		}
		if req.ID == "" {
			return nil, httpapi.Field("id", "is required")
		}
		return map[string]string{"removed": req.ID}, a.Cluster.Remove(r.Context(), req.ID)
	})
}

func (a *api) transfer(w http.ResponseWriter, r *http.Request) {
	a.clusterAction(w, r, auth.RoleOperator, func(body []byte) (any, error) {
		var req notaryapi.MemberRequest
		if len(bytes.TrimSpace(body)) > 0 {
			if err := httpapi.DecodeJSON(body, &req); err != nil {
				return nil, err
			}
		}
		if err := a.Cluster.Transfer(r.Context(), req.ID); err != nil {
			return nil, err
		}
		_, leader := a.Cluster.Leader()
		return map[string]string{"leader": leader}, nil
	})
}

// clusterAction authorizes a change of the cluster for role, forwards it
// to the leader from a follower, and runs it on the leader.
func (a *api) clusterAction(w http.ResponseWriter, r *http.Request, role auth.Role, act func(body []byte) (any, error)) {
	if err := a.Tokens.Authorize(r, role); err != nil {
		a.fail(w, r, err)
		return
	}
	body, err := httpapi.ReadBody(r, notaryapi.MaxSmallBody)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if leader, _ := a.Cluster.Leader(); !leader {
		a.forward(w, r, body)
		return
	}
	out, err := act(body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

// openStream takes a stream slot for r's caller and lifts the server's
// write timeout, which a stream outlives; when it cannot, it answers why
// and reports false. release gives the slot back.
func (a *api) openStream(w http.ResponseWriter, r *http.Request) (ctl *http.ResponseController, release func(), ok bool) {
	release, err := a.streams.take(a.Tokens.Role(r), httpapi.ClientIP(r))
	if err != nil {
		a.fail(w, r, err)
		return nil, nil, false
	}
	ctl = http.NewResponseController(w)
	if err := ctl.SetWriteDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		release()
		a.fail(w, r, err)
		return nil, nil, false
	}
	return ctl, release, true
}

// events streams the node's events as server-sent events until the client
// goes away or the node stops.
func (a *api) events(w http.ResponseWriter, r *http.Request) {
	ctl, release, ok := a.openStream(w, r)
	if !ok {
		return
	}
	defer release()
	events, cancel, err := a.Cluster.Subscribe()
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": telenotary events\n\n")
	ctl.Flush()
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepAlive.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			ctl.Flush()
		case e, ok := <-events:
			if !ok {
				return
			}
			b, _ := json.Marshal(e)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Type, b)
			if err := ctl.Flush(); err != nil {
				return
			}
		}
	}
}

// checkpointStream streams this node's signed checkpoints as it applies
// batches: each a line with the note's length in bytes, then the note.
// Several batches applied before the stream catches up send only the
// newest. A leader gathering its followers' signatures reads them here
// rather than asking for each batch's checkpoint.
func (a *api) checkpointStream(w http.ResponseWriter, r *http.Request) {
	ctl, release, ok := a.openStream(w, r)
	if !ok {
		return
	}
	defer release()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if a.Stopping != nil {
		go func() {
			select {
			case <-a.Stopping:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	w.Header().Set("Content-Type", "application/x.telenotary.checkpoint-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	ctl.Flush()
	var sent uint64
	for {
		cp := a.Ledger.Checkpoint()
		if cp != nil && cp.Size > sent {
			fmt.Fprintf(w, "%d\n", len(cp.Note))
			w.Write(cp.Note)
			if err := ctl.Flush(); err != nil {
				return
			}
			sent = cp.Size
		}
		wait, cancelWait := context.WithTimeout(ctx, 15*time.Second)
		a.Ledger.WaitSize(wait, sent+1)
		idle := wait.Err() != nil
		cancelWait()
		if ctx.Err() != nil {
			return
		}
		if idle { // a keep-alive: an empty note
			fmt.Fprint(w, "0\n")
			if err := ctl.Flush(); err != nil {
				return
			}
		}
	}
}
