// Package httpd is the HTTP API of a notary node (docs/API.md). Its
// handlers depend only on the small interfaces this package declares,
// [Cluster] and [Ledger], which a node implements over raft and its log
// and a test implements over an in-memory log, so the API is tested
// without raft. Wire types and errors are those of package notaryapi;
// error answers are httpapi problems.
package httpd

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// Cluster is the replicated side of a node that the API needs.
type Cluster interface {
	// Leader reports whether this node leads and the leader's API base
	// URL ("" when no leader is known).
	Leader() (isLeader bool, leaderURL string)
	// Submit logs entries through the leader's group commit (this node
	// must lead) and returns their receipts in order, proven into the
	// checkpoint signed after they were applied, which carries the
	// signatures of that many members (1 or less: this node's); receipts
	// with an index below firstNew are of commitments logged before.
	Submit(ctx context.Context, entries []notaryapi.Entry, signatures int) (receipts []*notary.Receipt, firstNew uint64, err error)
	// Members returns the cluster's identity and members, sorted by ID.
	Members() (clusterID, origin string, members []notaryapi.MemberInfo)
	// Majority is more than half of the cluster's members: what
	// ?signatures=majority asks for.
	Majority() int
	// Status is the node's view of itself and the cluster; NotReady why
	// it cannot do its job now (nil when it can).
	Status() notaryapi.Status
	NotReady() error
	// RetiredKeys are the keys members no longer sign with, each with the
	// checkpoint sizes it signed.
	RetiredKeys() []notaryapi.RetiredKey
	// Join, Rekey, Remove and Transfer change the cluster (leader only).
	Join(ctx context.Context, req notaryapi.JoinRequest) (*notaryapi.JoinResponse, error)
	Rekey(ctx context.Context, req notaryapi.JoinRequest) error
	Remove(ctx context.Context, id string) error
	Transfer(ctx context.Context, id string) error
	// Time is the node's clock.
	Time() time.Time
	// ReadBarrier returns once this node, confirmed as the leader, has
	// applied everything committed when it was called (a ReadIndex
	// barrier, no log write); notaryapi.ErrNotLeader on a follower.
	ReadBarrier(ctx context.Context) error
	// Subscribe follows the node's events until cancel is called; the
	// channel closes when the node stops.
	Subscribe() (events <-chan notaryapi.Event, cancel func(), err error)
}

// Ledger is the node's copy of the log that the API reads. Everything it
// returns has been checked against the node's signed checkpoint or the
// hashes the log recorded: a node never serves data it has not checked.
type Ledger interface {
	// Checkpoint is the node's latest signed checkpoint; nil before the
	// cluster's genesis.
	Checkpoint() *notary.SignedCheckpoint
	// Receipt returns the receipt of a commitment the node has applied,
	// proven into its latest checkpoint and checked before it is served;
	// nil when the node has none.
	Receipt(c notary.Commitment) (*notary.Receipt, error)
	// ReceiptIn is Receipt proven into cp, a checkpoint of this node's
	// (see CheckpointAt); nil when the commitment is not among its leaves.
	ReceiptIn(c notary.Commitment, cp *notary.SignedCheckpoint) (*notary.Receipt, error)
	// CheckpointAt signs the checkpoint of the first size leaves.
	CheckpointAt(size uint64) (notary.SignedCheckpoint, error)
	// WaitSize waits until the log holds size leaves or ctx ends.
	WaitSize(ctx context.Context, size uint64)
	// Cosign gathers the signatures of other members over cp until want
	// signatures are on it (this node's included) and returns the note.
	Cosign(ctx context.Context, cp notary.SignedCheckpoint, want int) ([]byte, error)
	// Size is the number of leaves in the node's log.
	Size() uint64
	// Leaves reads count leaves from index start, each checked against
	// what the log recorded of it.
	Leaves(start, count uint64) ([]notary.Leaf, error)
	// InclusionProof proves leaf index into the tree of size leaves, and
	// ConsistencyProof the tree of from leaves a prefix of the tree of to,
	// each checked against the roots before it is served.
	InclusionProof(index, size uint64) (leafHash notary.Hash, proof []notary.Hash, err error)
	ConsistencyProof(from, to uint64) ([]notary.Hash, error)
	// Fill says which fill of prescription c the dispense leaf at index
	// is, and of how many; ok is false when it is none of c's dispenses.
	Fill(c notary.Commitment, index uint64) (fill, fills int, ok bool)
	// PrescriptionStatus returns a prescription's status among the first
	// cp.Size leaves, its receipts proven into cp and checked; nil when
	// it is not a prescription among them.
	PrescriptionStatus(c notary.Commitment, cp *notary.SignedCheckpoint) (*notary.PrescriptionStatus, error)
}

// Witnesses are the witness cosignatures a node holds, each verified with
// its witness's key before it was kept.
type Witnesses interface {
	// Count is the number of witnesses the cluster submits to.
	Count() int
	// Append appends to note, a signed note of cp, the cosignature lines
	// held for cp's checkpoint body.
	Append(cp notary.SignedCheckpoint, note []byte) []byte
	// Newest returns the size of the newest checkpoint at least k
	// witnesses cosigned; ok is false when there is none.
	Newest(k int) (size uint64, ok bool)
	// Export returns the cosignatures held, for followers.
	Export() notaryapi.CosignaturesResponse
}

// Config configures the API.
type Config struct {
	Cluster Cluster
	Ledger  Ledger
	// Witnesses, when the cluster has witnesses, adds their cosignatures
	// to the checkpoints served; nil serves none.
	Witnesses Witnesses
	// Tokens authorizes submissions and operator actions; nil refuses
	// them all.
	Tokens *auth.Tokens
	// Forward sends a follower's operator requests on to the leader.
	Forward *http.Client
	// ForwardTLS checks the leader's certificate on the connections a
	// follower forwards submissions on, when the leader's URL is https
	// (nil: the system's roots).
	ForwardTLS *tls.Config
	// Forwarded, when set, is told of each batch of single submissions a
	// follower forwarded, with its size (metrics).
	Forwarded func(entries int)
	// Metrics serves GET /metrics; nil serves none.
	Metrics http.Handler
	// Stage, when set, is told how long each stage of the write path the
	// API owns took for a submission this node took as leader (read,
	// write, total: see notaryapi.WriteStages).
	Stage func(stage string, took time.Duration)
	// Stopping, closed when the node stops, ends the checkpoint streams
	// (a server's Shutdown waits for its handlers); nil: they end with
	// their requests.
	Stopping <-chan struct{}
	// Limits bounds each client's requests and event streams (see
	// DefaultLimits).
	Limits Limits
	// Logger receives server faults.
	Logger *slog.Logger
}

// api is the node's HTTP API.
type api struct {
	Config
	coalesce  coalescer
	mux       httpapi.Mux
	anonRate  *httpapi.RateLimiter[string]
	tokenRate *httpapi.RateLimiter[[sha256.Size]byte]
	streams   streamSlots
}

// New returns the API's handler. A zero Limits means DefaultLimits.
func New(cfg Config) http.Handler { return newAPI(cfg).handler() }

// newAPI makes the API of cfg; handler serves it.
func newAPI(cfg Config) *api {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits()
	}
	a := &api{Config: cfg,
		anonRate:  httpapi.NewRateLimiter[string](cfg.Limits.AnonymousRate, cfg.Limits.AnonymousBurst),
		tokenRate: httpapi.NewRateLimiter[[sha256.Size]byte](cfg.Limits.TokenRate, cfg.Limits.TokenBurst),
		streams:   streamSlots{limits: cfg.Limits, byIP: map[string]int{}},
	}
	a.coalesce.a = a
	a.mux.Log = cfg.Logger
	for _, rt := range a.routes() {
		a.mux.HandleFunc(rt.pattern, rt.handle)
	}
	if cfg.Metrics != nil {
		a.mux.Handle("GET /metrics", cfg.Metrics)
	}
	return a
}

// handler serves the API: every answer names the leader, and requests are
// rate-limited.
func (a *api) handler() http.Handler { return a.withLeaderHeader(a.rateLimit(&a.mux)) }

// route is one endpoint of the API.
type route struct {
	pattern string // method and path, as http.ServeMux takes them
	handle  http.HandlerFunc
}

// routes lists the endpoints (GET /metrics besides, when configured).
func (a *api) routes() []route {
	return []route{
		{"POST /v1/notarize", a.notarize},
		{"POST /v1/notarize/batch", a.notarizeBatch},
		{"GET /v1/receipts/{commitment}", a.consistent(a.receipt)},
		{"GET /v1/prescriptions/{commitment}/status", a.consistent(a.prescriptionStatus)},
		{"GET /v1/checkpoint", a.consistent(a.checkpoint)},
		{"GET /v1/checkpoint/cosignatures", a.cosignatures},
		{"GET /v1/checkpoint/stream", a.checkpointStream},
		{"GET /v1/proofs/inclusion", a.consistent(a.inclusion)},
		{"GET /v1/proofs/consistency", a.consistent(a.consistency)},
		{"GET /v1/leaves", a.consistent(a.leaves)},
		{"GET /v1/keys", a.keys},
		{"GET /v1/status", a.status},
		{"GET /v1/time", a.time},
		{"GET /v1/events", a.events},
		{"POST /v1/cluster/join", a.join},
		{"POST /v1/cluster/rekey", a.rekey},
		{"POST /v1/cluster/remove", a.remove},
		{"POST /v1/cluster/transfer", a.transfer},
		{"GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") }},
		{"GET /readyz", a.ready},
	}
}

// consistent serves a read with ?consistent=1 linearizably: a follower
// hands it to the leader; the leader serves it after a read barrier
// (Cluster.ReadBarrier), so that it reflects every write acknowledged
// before the request. Without the parameter a node answers from its own
// state, which on a follower may be a moment behind.
func (a *api) consistent(read http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch v := r.URL.Query().Get("consistent"); v {
		case "", "0", "false":
			read(w, r)
			return
		case "1", "true":
		default:
			a.fail(w, r, httpapi.Field("consistent", "must be 1 or true (or absent), not %.20q", v))
			return
		}
		if leader, _ := a.Cluster.Leader(); !leader {
			a.forward(w, r, nil)
			return
		}
		if err := a.Cluster.ReadBarrier(r.Context()); err != nil {
			a.fail(w, r, err)
			return
		}
		read(w, r)
	}
}

// withLeaderHeader tells every client where the leader is.
func (a *api) withLeaderHeader(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, url := a.Cluster.Leader(); url != "" {
			w.Header().Set(notaryapi.HeaderLeader, url)
		}
		h.ServeHTTP(w, r)
	})
}

func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) { a.mux.Error(w, r, err) }
