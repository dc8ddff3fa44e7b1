package notaryapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/notary"
	"golang.org/x/mod/sumdb/note"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// Nodes are API base URLs of the cluster's nodes, such as
	// https://notary-1.example.org:8443. The client learns the leader from
	// their answers.
	Nodes []string
	// Token is the bearer token for submissions and operator actions.
	Token string
	// HTTPClient sends the requests (TLS settings, timeouts); nil means a
	// client with keep-alive connections and no overall timeout.
	HTTPClient *http.Client
	// MaxBackoff caps the wait between retries (default 1s). A call retries
	// until its context ends.
	MaxBackoff time.Duration
	// AttemptTimeout bounds one try on one node (default 2s): a node that
	// does not answer in time (paused, cut off) is forgotten as leader and
	// the others are tried, while the call goes on until its context ends.
	AttemptTimeout time.Duration
}

// Client talks to a notary cluster: it tries the nodes it knows, sends
// submissions to the leader, and retries them (they are idempotent: a
// commitment is logged once) through elections and failures until its
// context ends. Errors a node answers with are *httpapi.Problem values
// that errors.Is matches against this package's errors. It is safe for
// concurrent use.
type Client struct {
	cfg  ClientConfig
	http *http.Client

	leader atomic.Pointer[string] // the leader's URL; nil when unknown
	next   atomic.Uint64          // the node to try when the leader is unknown
}

// NewClient returns a client for the nodes.
func NewClient(cfg ClientConfig) *Client {
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = time.Second
	}
	if cfg.AttemptTimeout == 0 {
		cfg.AttemptTimeout = 2 * time.Second
	}
	c := &Client{cfg: cfg, http: cfg.HTTPClient}
	if c.http == nil {
		c.http = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512, IdleConnTimeout: 90 * time.Second}}
	}
	c.cfg.Nodes = make([]string, len(cfg.Nodes))
	for i, n := range cfg.Nodes {
		c.cfg.Nodes[i] = strings.TrimRight(n, "/")
	}
	return c
}

// Retryable reports whether another node or a later try may succeed after
// err: a node that is unavailable or unreachable, not a request or a
// certificate that is wrong, and not a context that ended.
func Retryable(err error) bool {
	var p *httpapi.Problem
	if errors.As(err, &p) {
		return p.Status == http.StatusServiceUnavailable || p.Status == http.StatusGatewayTimeout
	}
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &hostErr):
		return false
	}
	return true
}

// Notarize submits one entry and returns its receipt, once the cluster
// has committed and applied it.
func (c *Client) Notarize(ctx context.Context, e Entry) (*NotarizeResponse, error) {
	if !e.Kind.Valid() {
		return nil, httpapi.Field("kind", "is not a defined kind")
	}
	var out NotarizeResponse
	err := c.call(ctx, true, http.MethodPost, "/v1/notarize", e.AppendJSON(nil), &out)
	return &out, err
}

// NotarizeSigned is Notarize with the receipt's checkpoint signed by k
// nodes (or by a majority of them: k = Majority), for verifiers whose
// policy needs k signatures. It fails if fewer than k nodes sign within a
// few seconds; a retry is safe.
func (c *Client) NotarizeSigned(ctx context.Context, e Entry, k int) (*NotarizeResponse, error) {
	if !e.Kind.Valid() {
		return nil, httpapi.Field("kind", "is not a defined kind")
	}
	var out NotarizeResponse
	err := c.call(ctx, true, http.MethodPost, "/v1/notarize?signatures="+signaturesQuery(k), e.AppendJSON(nil), &out)
	return &out, err
}

// signaturesQuery is k as ?signatures= takes it.
func signaturesQuery(k int) string {
	if k == Majority {
		return SignaturesMajority
	}
	return strconv.Itoa(k)
}

// NotarizeBatch submits up to MaxBatchRequest entries and returns their
// receipts in order.
func (c *Client) NotarizeBatch(ctx context.Context, entries []Entry) (*BatchResponse, error) {
	body, err := AppendBatchJSON(nil, entries)
	if err != nil {
		return nil, err
	}
	var out BatchResponse
	err = c.call(ctx, true, http.MethodPost, "/v1/notarize/batch", body, &out)
	return &out, err
}

// NotarizeBatchSigned is NotarizeBatch with the receipts' checkpoint
// signed by k nodes (or by a majority: k = Majority).
func (c *Client) NotarizeBatchSigned(ctx context.Context, entries []Entry, k int) (*BatchResponse, error) {
	body, err := AppendBatchJSON(nil, entries)
	if err != nil {
		return nil, err
	}
	var out BatchResponse
	err = c.call(ctx, true, http.MethodPost, "/v1/notarize/batch?signatures="+signaturesQuery(k), body, &out)
	return &out, err
}

// Receipt returns the receipt of a logged commitment, with a fresh proof
// into the answering node's latest checkpoint.
func (c *Client) Receipt(ctx context.Context, commitment notary.Commitment) (*notary.Receipt, error) {
	var out NotarizeResponse
	err := c.call(ctx, false, http.MethodGet, "/v1/receipts/"+commitment.String(), nil, &out)
	return out.Receipt, err
}

// ReceiptConsistent is Receipt as a linearizable read (?consistent=1):
// the leader answers after a read barrier, so a commitment whose
// notarization was acknowledged before the call is never reported not
// found, whichever node the client asks.
func (c *Client) ReceiptConsistent(ctx context.Context, commitment notary.Commitment) (*notary.Receipt, error) {
	var out NotarizeResponse
	err := c.call(ctx, false, http.MethodGet, "/v1/receipts/"+commitment.String()+"?consistent=1", nil, &out)
	return out.Receipt, err
}

// ReceiptSigned is Receipt with a checkpoint signed by k nodes (or by a
// majority of them: k = Majority), for verifiers whose policy needs k
// signatures. It fails if fewer than k nodes sign within a few seconds.
func (c *Client) ReceiptSigned(ctx context.Context, commitment notary.Commitment, k int) (*notary.Receipt, error) {
	var out NotarizeResponse
	err := c.call(ctx, false, http.MethodGet, fmt.Sprintf("/v1/receipts/%s?signatures=%s", commitment, signaturesQuery(k)), nil, &out)
	return out.Receipt, err
}

// ReceiptWitnessed returns the receipt of a logged commitment proven into
// the newest checkpoint w of the cluster's witnesses cosigned, carrying
// their cosignatures and the signatures of k nodes; an ErrNotFound problem
// while that checkpoint does not cover the commitment.
func (c *Client) ReceiptWitnessed(ctx context.Context, commitment notary.Commitment, k, w int) (*notary.Receipt, error) {
	var out NotarizeResponse
	err := c.call(ctx, false, http.MethodGet, fmt.Sprintf("/v1/receipts/%s?signatures=%s&witnessed=%d", commitment, signaturesQuery(k), w), nil, &out)
	return out.Receipt, err
}

// PrescriptionStatus returns a prescription's status, with the receipts
// that decide it (GET /v1/prescriptions/{commitment}/status); consistent
// asks for a linearizable read, so a dispense acknowledged before the
// call is counted. Verify the answer with notary's Verifier.VerifyStatus.
func (c *Client) PrescriptionStatus(ctx context.Context, commitment notary.Commitment, consistent bool) (*notary.PrescriptionStatus, error) {
	return c.PrescriptionStatusSigned(ctx, commitment, consistent, 1)
}

// PrescriptionStatusSigned is PrescriptionStatus with the receipts'
// checkpoint signed by k nodes (or a majority: k = Majority), for
// verifiers whose policy needs k signatures.
func (c *Client) PrescriptionStatusSigned(ctx context.Context, commitment notary.Commitment, consistent bool, k int) (*notary.PrescriptionStatus, error) {
	path := "/v1/prescriptions/" + commitment.String() + "/status?signatures=" + signaturesQuery(k)
	if consistent {
		path += "&consistent=1"
	}
	var out bytes.Buffer
	if err := c.call(ctx, false, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	return notary.ParsePrescriptionStatus(out.Bytes())
}

// DispenseOption changes how Dispense claims a fill.
type DispenseOption func(*dispenseOptions)

type dispenseOptions struct {
	signatures  int
	checkStatus func(*notary.PrescriptionStatus) error
}

// DispenseSignatures has Dispense ask for the dispense's receipt with its
// checkpoint signed by k nodes (or by a majority of them: k = Majority),
// as NotarizeSigned does, for verifiers whose policy needs k signatures.
// Without it, or with k = 0 or 1, the receipt carries the answering
// node's signature, as Notarize gives it.
func DispenseSignatures(k int) DispenseOption {
	return func(o *dispenseOptions) { o.signatures = k }
}

// DispenseCheckStatus has Dispense pass each status answer it reads to
// check before it acts on it, as a caller that verifies the cluster's
// answers (Verifier.VerifyStatus) and refuses early needs: an error from
// check ends the dispense and is returned as it is, nothing claimed on
// that answer. With a check, a claim the node refuses as
// ErrFullyDispensed or ErrRevoked (another dispense or a revocation came
// first) is followed by another status read, so that the check sees the
// state that refuses and reports it, instead of Dispense returning the
// node's refusal.
func DispenseCheckStatus(check func(*notary.PrescriptionStatus) error) DispenseOption {
	return func(o *dispenseOptions) { o.checkStatus = check }
}

// maxDispenseTries bounds the status reads and claims of one Dispense: a
// claim is refused as taken only when another dispense took that fill,
// which a prescription's fills allow at most notary.MaxFills times.
const maxDispenseTries = notary.MaxFills + 3

// Dispense dispenses the next fill of the prescription in bundle b as a
// pharmacy (the client's token must be a pharmacy's), logging commitment d
// of the pharmacy's own record (its MedicationDispense) linked to it: it
// reads the status (a linearizable read), checks that the allowance the
// log holds is the one the bundle's salt gives, proves the next fill with
// that salt and, when another pharmacy took that fill first
// (ErrFillTaken), reads the status again and tries the fill after. Every
// try logs the same d, so the caller makes d once for the dispense: a try
// whose answer was lost and that was logged is answered with the same
// receipt on the next, never given a second fill. The answer carries the
// fill and the fills allowed; one whose receipt is not of a dispense of
// b's prescription (d was logged before as something else) is an error.
// opts add a check of each status answer and the receipt's signatures
// (DispenseCheckStatus, DispenseSignatures).
//
// Errors: a check's own error; ErrFullyDispensed, ErrRevoked,
// ErrUnknownPrescription, ErrBadProof problems from the node
// (*httpapi.Problem values); an ErrNotFound problem when the cluster has
// not logged the prescription; errors that match ErrUnknownPrescription
// (a prescription logged without an allowance) or ErrBadProof (a lock the
// bundle's salt does not give) but are not problems, when the status
// shows that no claim can succeed and none is made; or an error saying
// why no fill was claimed, such as giving up after more claims were
// taken by other dispenses than a prescription has fills. A failed status read is wrapped as "the
// prescription's status: …" and a failed claim as "the dispense: …".
func (c *Client) Dispense(ctx context.Context, b *notary.Bundle, d notary.Commitment, opts ...DispenseOption) (*NotarizeResponse, error) {
	var o dispenseOptions
	for _, opt := range opts {
		opt(&o)
	}
	rx := b.Receipt.Leaf.Commitment
	for try := 0; ; try++ {
		if try == maxDispenseTries {
			return nil, errors.New("gave up: every fill claimed was taken by another dispense before this one")
		}
		s, err := c.PrescriptionStatus(ctx, rx, true)
		if err != nil {
			return nil, fmt.Errorf("the prescription's status: %w", err)
		}
		if o.checkStatus != nil {
			if err := o.checkStatus(s); err != nil {
				return nil, err
			}
		}
		if s.Allowance == nil {
			return nil, fmt.Errorf("%w: prescription %s was logged without an allowance: the log does not track its dispenses", ErrUnknownPrescription, rx)
		}
		a, err := notary.ParseAllowance(s.Allowance.Leaf.Commitment)
		if err != nil {
			return nil, err
		}
		if mine, err := notary.NewAllowance(b.Salt, rx, a.Fills); err != nil || mine.Lock != a.Lock {
			return nil, fmt.Errorf("%w: the allowance the log holds for prescription %s is not the one this bundle's salt gives", ErrBadProof, rx)
		}
		// The node refuses a revoked or used-up prescription with the
		// times; claiming fill n+1 would only be refused as a bad proof.
		k := min(len(s.Dispenses)+1, a.Fills)
		proof, err := notary.DispenseProof(b.Salt, rx, a, k)
		if err != nil {
			return nil, err
		}
		e := Entry{Kind: notary.KindDispense, Commitment: d, Link: rx, Fill: k, Proof: &proof}
		var resp *NotarizeResponse
		switch o.signatures {
		case 0, 1:
			resp, err = c.Notarize(ctx, e)
		default:
			resp, err = c.NotarizeSigned(ctx, e, o.signatures)
		}
		switch {
		case errors.Is(err, ErrFillTaken):
			continue // another pharmacy was first: the next fill
		case o.checkStatus != nil && (errors.Is(err, ErrFullyDispensed) || errors.Is(err, ErrRevoked)):
			continue // the status says what refused, for the check to tell
		case err != nil:
			return nil, fmt.Errorf("the dispense: %w", err)
		case resp.Receipt == nil:
			return nil, errors.New("the dispense: the cluster answered without a receipt")
		case resp.Receipt.Leaf.Kind != notary.KindDispense || resp.Receipt.Leaf.Link != rx:
			// d was logged before, as something else.
			return nil, fmt.Errorf("commitment %s is logged already as a %s, not as a dispense of prescription %s", d, resp.Receipt.Leaf.Kind, rx)
		}
		return resp, nil
	}
}

// Revoke revokes the prescription in bundle b (the client's token must be
// a submitter's, the platform acting for the physician), proving with its
// salt that it holds the bundle. Revoking twice answers the same receipt.
func (c *Client) Revoke(ctx context.Context, b *notary.Bundle) (*NotarizeResponse, error) {
	rx := b.Receipt.Leaf.Commitment
	seed := notary.DispenseSeed(b.Salt, rx)
	return c.Notarize(ctx, Entry{Kind: notary.KindRevocation, Commitment: notary.RevocationCommitment(rx), Link: rx, Proof: &seed})
}

// CheckpointOf asks one node, without retries, for its signed checkpoint
// of the first size leaves of the log: for gathering the signatures of
// several nodes over one size.
func (c *Client) CheckpointOf(ctx context.Context, node string, size uint64) ([]byte, error) {
	var out bytes.Buffer
	err := c.do(ctx, strings.TrimRight(node, "/"), http.MethodGet, fmt.Sprintf("/v1/checkpoint?size=%d&wait=1", size), nil, &out)
	return out.Bytes(), err
}

// Checkpoint returns a node's latest signed checkpoint note.
func (c *Client) Checkpoint(ctx context.Context) ([]byte, error) {
	var out bytes.Buffer
	err := c.call(ctx, false, http.MethodGet, "/v1/checkpoint", nil, &out)
	return out.Bytes(), err
}

// CheckpointWitnessed returns the newest checkpoint note that k of the
// cluster's witnesses cosigned (GET /v1/checkpoint?witnessed=k), with
// their cosignature lines after the answering node's signature; an
// ErrNotFound problem while none is. Check the cosignatures with the
// witnesses' keys.
func (c *Client) CheckpointWitnessed(ctx context.Context, k int) ([]byte, error) {
	var out bytes.Buffer
	err := c.call(ctx, false, http.MethodGet, fmt.Sprintf("/v1/checkpoint?witnessed=%d", k), nil, &out)
	return out.Bytes(), err
}

// Keys returns the verifier keys of the cluster's nodes.
func (c *Client) Keys(ctx context.Context) ([]note.Verifier, error) {
	text, err := c.KeysText(ctx)
	if err != nil {
		return nil, err
	}
	return notary.ParseVerifierKeys(text)
}

// KeysText returns the verifier keys of the cluster's nodes as the keys
// file that `telenotary verify --keys` reads: one key per line.
func (c *Client) KeysText(ctx context.Context) ([]byte, error) {
	var out bytes.Buffer
	if err := c.call(ctx, false, http.MethodGet, "/v1/keys", nil, &out); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// Status returns the status of the first node that answers.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var out Status
	err := c.call(ctx, false, http.MethodGet, "/v1/status", nil, &out)
	return &out, err
}

// StatusOf returns the status of one node, without retries: for watching
// each node of a cluster.
func (c *Client) StatusOf(ctx context.Context, node string) (*Status, error) {
	var out Status
	err := c.do(ctx, strings.TrimRight(node, "/"), http.MethodGet, "/v1/status", nil, &out)
	return &out, err
}

// InclusionProof returns the proof of leaf index in the tree of size leaves.
func (c *Client) InclusionProof(ctx context.Context, index, size uint64) (*ProofResponse, error) {
	var out ProofResponse
	err := c.call(ctx, false, http.MethodGet, fmt.Sprintf("/v1/proofs/inclusion?index=%d&size=%d", index, size), nil, &out)
	return &out, err
}

// ConsistencyProof returns the proof that the tree of from leaves is a
// prefix of the tree of to leaves.
func (c *Client) ConsistencyProof(ctx context.Context, from, to uint64) (*ProofResponse, error) {
	var out ProofResponse
	err := c.call(ctx, false, http.MethodGet, fmt.Sprintf("/v1/proofs/consistency?from=%d&to=%d", from, to), nil, &out)
	return &out, err
}

// Leaves returns up to count leaves from index start.
func (c *Client) Leaves(ctx context.Context, start, count uint64) ([]LeafInfo, error) {
	var out LeavesResponse
	err := c.call(ctx, false, http.MethodGet, fmt.Sprintf("/v1/leaves?start=%d&count=%d", start, count), nil, &out)
	return out.Leaves, err
}

// Join asks the cluster to add a node (operator token).
func (c *Client) Join(ctx context.Context, req JoinRequest) (*JoinResponse, error) {
	var out JoinResponse
	err := c.call(ctx, true, http.MethodPost, "/v1/cluster/join", req, &out)
	return &out, err
}

// Rekey replaces a member's signing key (operator token): req is the
// member's record with the new verifier key, and the new key's proof.
func (c *Client) Rekey(ctx context.Context, req JoinRequest) error {
	return c.call(ctx, true, http.MethodPost, "/v1/cluster/rekey", req, nil)
}

// Remove takes a node out of the cluster (operator token).
func (c *Client) Remove(ctx context.Context, id string) error {
	return c.call(ctx, true, http.MethodPost, "/v1/cluster/remove", MemberRequest{ID: id}, nil)
}

// Transfer moves leadership to the node id, or to any other voter when id
// is empty (operator token).
func (c *Client) Transfer(ctx context.Context, id string) error {
	return c.call(ctx, true, http.MethodPost, "/v1/cluster/transfer", MemberRequest{ID: id}, nil)
}

// maxEventLine bounds one line of the event stream.
const maxEventLine = 4 << 20

// EventsOption changes how Events follows a stream.
type EventsOption func(*eventsOptions)

type eventsOptions struct {
	keepAlive func()
}

// OnKeepAlive has Events call fn for each comment line of the stream. A
// node sends one when the stream opens and ": keep-alive" every 15 s
// while it has no event to send: a follower that hears neither events nor
// keep-alives for longer can tell a dead stream from an idle cluster.
func OnKeepAlive(fn func()) EventsOption {
	return func(o *eventsOptions) { o.keepAlive = fn }
}

// Events follows the event stream of one node, calling fn for each event,
// until ctx ends or the stream breaks.
func (c *Client) Events(ctx context.Context, node string, fn func(Event), opts ...EventsOption) error {
	var o eventsOptions
	for _, opt := range opts {
		opt(&o)
	}
	resp, err := c.send(ctx, http.MethodGet, strings.TrimRight(node, "/")+"/v1/events", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return httpapi.ReadProblem(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxEventLine)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, ":") {
			if o.keepAlive != nil {
				o.keepAlive()
			}
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		var e Event
		if err := json.Unmarshal([]byte(data), &e); err == nil {
			fn(e)
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return err
	}
	return ctx.Err()
}

// call sends a request to the leader (toLeader) or any node, and while the
// error is retryable and ctx lasts, tries the other nodes at once and then
// again after a jittered, growing wait.
func (c *Client) call(ctx context.Context, toLeader bool, method, path string, in, out any) error {
	if len(c.cfg.Nodes) == 0 {
		return errors.New("notaryapi: no nodes configured")
	}
	var body []byte
	switch in := in.(type) {
	case nil:
	case []byte: // already encoded
		body = in
	default:
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	var last error
	round := func() (struct{}, error) {
		for range c.cfg.Nodes {
			node := c.pick(toLeader)
			err := c.attempt(ctx, node, method, path, body, out)
			if err == nil {
				return struct{}{}, nil
			}
			if !Retryable(err) && !(ctx.Err() == nil && timedOut(err)) {
				return struct{}{}, backoff.Permanent(err)
			}
			last = err
			c.forget(node)
			if ctx.Err() != nil {
				break
			}
		}
		return struct{}{}, last
	}
	wait := &backoff.ExponentialBackOff{InitialInterval: 25 * time.Millisecond, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: c.cfg.MaxBackoff}
	_, err := backoff.Retry(ctx, round, backoff.WithBackOff(wait), backoff.WithMaxElapsedTime(0))
	if err != nil && ctx.Err() != nil && last != nil && !errors.Is(err, last) {
		return fmt.Errorf("%w (last error: %w)", ctx.Err(), last)
	}
	return err
}

// attempt is one try on one node, bounded by AttemptTimeout.
func (c *Client) attempt(ctx context.Context, node, method, path string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
	defer cancel()
	return c.do(ctx, node, method, path, body, out)
}

// timedOut reports whether err is a try that ran out of time: the try's
// own deadline, or the http.Client's timeout.
func timedOut(err error) bool {
	var te interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &te) && te.Timeout()
}

// pick returns the node to send to.
func (c *Client) pick(toLeader bool) string {
	if l := c.leader.Load(); toLeader && l != nil {
		return *l
	}
	return c.cfg.Nodes[(c.next.Add(1)-1)%uint64(len(c.cfg.Nodes))]
}

// forget drops a failed leader.
func (c *Client) forget(node string) {
	if l := c.leader.Load(); l != nil && *l == node {
		c.leader.CompareAndSwap(l, nil)
	}
}

// send sends one request with the client's token, and a JSON body when
// body is not nil.
func (c *Client) send(ctx context.Context, method, url string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	return c.http.Do(req)
}

// do sends one request to one node and decodes the answer into out: JSON
// (through the type's own UnmarshalJSON when it has one, which for
// receipts is the fast path), or raw bytes into a *bytes.Buffer.
func (c *Client) do(ctx context.Context, node, method, path string, body []byte, out any) error {
	resp, err := c.send(ctx, method, node+path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if l := resp.Header.Get(HeaderLeader); l != "" {
		if cur := c.leader.Load(); cur == nil || *cur != l {
			if _, err := url.Parse(l); err == nil {
				c.leader.Store(&l)
			}
		}
	}
	if resp.StatusCode != http.StatusOK {
		return httpapi.ReadProblem(resp)
	}
	switch o := out.(type) {
	case nil:
		_, err = io.Copy(io.Discard, resp.Body)
	case *bytes.Buffer:
		_, err = io.Copy(o, resp.Body)
	case json.Unmarshaler:
		var buf bytes.Buffer
		if resp.ContentLength > 0 && resp.ContentLength < 64<<20 {
			buf.Grow(int(resp.ContentLength))
		}
		if _, err = buf.ReadFrom(resp.Body); err == nil {
			err = o.UnmarshalJSON(buf.Bytes())
		}
	default:
		err = json.NewDecoder(resp.Body).Decode(out)
	}
	return err
}
