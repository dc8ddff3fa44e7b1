package notaryapi

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/notary"
	"golang.org/x/mod/sumdb/note"
)

// Limits of the API.
const (
	// MaxBatchRequest bounds the entries of one batch request.
	MaxBatchRequest = 10000
	// MaxLeavesPage bounds the leaves of one range request.
	MaxLeavesPage = 1000
	// MaxEntryBody, MaxBatchBody and MaxSmallBody bound request bodies: a
	// single entry, a batch, and the operator requests.
	MaxEntryBody = 4 << 10
	MaxBatchBody = 4 << 20
	MaxSmallBody = 16 << 10
	// MaxSignatures bounds ?signatures=K.
	MaxSignatures = 100
	// Majority, given as a count of signatures, asks for those of more
	// than half of the cluster's members (?signatures=majority).
	Majority = -1
	// SignaturesMajority is Majority in a query.
	SignaturesMajority = "majority"
)

// Headers of the API.
const (
	// HeaderLeader, on every answer, is the leader's API base URL when the
	// answering node knows it.
	HeaderLeader = "Telenotary-Leader"
	// HeaderForwarded marks a request a follower forwarded to the leader;
	// it is not forwarded again.
	HeaderForwarded = "Telenotary-Forwarded"
)

// Entry is one submission to the log: what to notarize.
type Entry struct {
	Kind       notary.Kind       `json:"kind"`
	Commitment notary.Commitment `json:"commitment"`
	// Link is the commitment of a related earlier record; zero for none.
	Link notary.Commitment `json:"link,omitzero"`
	// Allowance, on a prescription, asks the log to record how many times
	// it may be dispensed and its dispense lock, in an allowance leaf
	// linked to it (once per prescription).
	Allowance *notary.Allowance `json:"allowance,omitempty"`
	// Fill, on a dispense, is the fill of the linked prescription it
	// claims, from 1.
	Fill int `json:"fill,omitempty"`
	// Proof, on a dispense, is the chain value that opens the fill; on a
	// revocation, the chain's seed (see docs/FORMATS.md).
	Proof *notary.ChainValue `json:"proof,omitempty"`
}

// Lifecycle reports whether the entry is a dispense or a revocation: the
// log's rules may refuse it, so it is submitted alone.
func (e Entry) Lifecycle() bool {
	return e.Kind == notary.KindDispense || e.Kind == notary.KindRevocation
}

// NotarizeResponse answers a single notarization and a receipt lookup.
type NotarizeResponse struct {
	Receipt *notary.Receipt `json:"receipt"`
	// Existing says the commitment was logged before: this is its receipt.
	Existing bool `json:"existing"`
	// Fill and Fills, on a dispense's answer, say which fill of how many
	// the receipt is for.
	Fill  int `json:"fill,omitempty"`
	Fills int `json:"fills,omitempty"`
}

// BatchRequest is the body of a batch notarization.
type BatchRequest struct {
	Entries []Entry `json:"entries"`
}

// BatchResponse answers a batch notarization, one receipt per entry in
// order.
type BatchResponse struct {
	Receipts []*notary.Receipt `json:"receipts"`
	// FirstNew is the log's size before the batch: a receipt with a
	// smaller index is of a commitment logged before (NotarizeResponse's
	// Existing).
	FirstNew uint64 `json:"first_new"`
}

// CosignaturesResponse is what GET /v1/checkpoint/cosignatures answers:
// the witness cosignatures a node holds, newest first, as notes of a
// checkpoint body and the witnesses' cosignature lines only (followers
// fetch them from the leader and verify each before they keep it).
type CosignaturesResponse struct {
	Checkpoints []string `json:"checkpoints"`
}

// ProofResponse carries an inclusion or consistency proof.
type ProofResponse struct {
	Index    uint64        `json:"index,omitempty"`
	LeafHash *notary.Hash  `json:"leaf_hash,omitempty"`
	From     uint64        `json:"from,omitempty"`
	Size     uint64        `json:"size"`
	Proof    []notary.Hash `json:"proof"`
}

// LeafInfo is one leaf of the log as the API shows it.
type LeafInfo struct {
	Index      uint64            `json:"index"`
	Kind       notary.Kind       `json:"kind"`
	Commitment notary.Commitment `json:"commitment"`
	Link       notary.Commitment `json:"link,omitzero"`
	Timestamp  int64             `json:"timestamp"`
}

// LeafInfoOf describes leaf l at index.
func LeafInfoOf(index uint64, l notary.Leaf) LeafInfo {
	return LeafInfo{Index: index, Kind: l.Kind, Commitment: l.Commitment, Link: l.Link, Timestamp: l.Timestamp}
}

// LeavesResponse is a range of leaves, for auditors.
type LeavesResponse struct {
	Leaves []LeafInfo `json:"leaves"`
}

// Status is a node's view of itself and the cluster (GET /v1/status).
type Status struct {
	ID        string `json:"id"`
	ClusterID string `json:"cluster_id,omitempty"`
	Origin    string `json:"origin,omitempty"`
	// State is Leader, Follower, Candidate or Shutdown.
	State string `json:"state"`
	Ready bool   `json:"ready"`
	// NotReady says why the node is not ready ("" when it is).
	NotReady string `json:"not_ready,omitempty"`
	Term     uint64 `json:"term"`
	Leader   struct {
		ID       string `json:"id,omitempty"`
		HTTPAddr string `json:"http_addr,omitempty"`
	} `json:"leader"`
	// Raft log indexes; AppliedIndex is what the notary log has applied.
	LastIndex    uint64 `json:"last_index"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	// LastContact is when a follower last heard from the leader (zero on
	// the leader).
	LastContact time.Time `json:"last_contact,omitzero"`
	// LogSize and CheckpointTime describe the node's latest checkpoint.
	LogSize        uint64       `json:"log_size"`
	CheckpointTime int64        `json:"checkpoint_time"`
	Peers          []PeerStatus `json:"peers"`
	Batches        BatchStats   `json:"batches"`
	// Scrub is the progress of the background check of the node's data.
	Scrub ScrubStatus `json:"scrub"`
	// Alerts are what an operator must act on now, as this node sees it
	// (operator token only).
	Alerts []Alert `json:"alerts"`
}

// ScrubStatus is the progress of a node's background scrub, which reads
// its whole log again and again and checks every leaf, stored hash and
// index entry, then its raft snapshots.
type ScrubStatus struct {
	// Rate is the leaves a second it reads; 0 when it is off.
	Rate int `json:"rate"`
	// Checked is how many leaves, from the first, the current pass has
	// checked.
	Checked uint64 `json:"checked"`
	// Passes is how many passes over the whole log have completed since
	// the node started; LastPass is when the last one did.
	Passes   uint64    `json:"passes"`
	LastPass time.Time `json:"last_pass,omitzero"`
	// Heals is how many times since the node started it rebuilt a
	// damaged log from its peers.
	Heals uint64 `json:"heals"`
}

// AlertKind tells alerts apart.
type AlertKind string

// Kinds of alerts.
const (
	// AlertClockSkew: a node's clock disagrees with the cluster's; as
	// leader it stamps nothing.
	AlertClockSkew AlertKind = "clock-skew"
	// AlertLogTimeAhead: the log's newest leaf is stamped in the future.
	AlertLogTimeAhead AlertKind = "log-time-ahead"
	// AlertRefusedCommands: the state machine refused raft commands.
	AlertRefusedCommands AlertKind = "refused-commands"
	// AlertDamaged: the node found its data damaged and serves nothing
	// from its log.
	AlertDamaged AlertKind = "damaged"
	// AlertSnapshot: the node's last snapshot failed, or one it keeps is
	// damaged: it is not ready until it has a sound one.
	AlertSnapshot AlertKind = "snapshot"
	// AlertNoQuorum: the leader has writes waiting to commit for longer
	// than it answers in: no majority takes writes.
	AlertNoQuorum AlertKind = "no-quorum"
)

// Alert is a condition an operator must act on.
type Alert struct {
	Kind AlertKind `json:"kind"`
	// Node is the node concerned.
	Node    string `json:"node"`
	Message string `json:"message"`
}

// TimeResponse answers GET /v1/time: the node's clock, for the other
// nodes to compare theirs with.
type TimeResponse struct {
	UnixMillis int64 `json:"unix_ms"`
}

// StateLeader is the State of a leader in a Status.
const StateLeader = "Leader"

// PeerStatus is a voter as a node sees it.
type PeerStatus struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr,omitempty"`
	Suffrage string `json:"suffrage"`
	// Reachable and LastContact are the leader's view of its followers'
	// heartbeats; a follower reports them unknown (Reachable true).
	Reachable   bool      `json:"reachable"`
	LastContact time.Time `json:"last_contact,omitzero"`
}

// BatchStats sums up recent group commits on a node (when leader).
type BatchStats struct {
	Receipts         uint64  `json:"receipts"`
	MeanBatchEntries float64 `json:"mean_batch_entries"`
	P50Millis        float64 `json:"p50_ms"`
	P99Millis        float64 `json:"p99_ms"`
}

// EventType tells the events of the stream apart.
type EventType string

// Event types.
const (
	EventNotarized EventType = "notarized"
	EventCluster   EventType = "cluster"
)

// Change is what happened to the cluster in a cluster event.
type Change string

// Changes of the cluster.
const (
	ChangeLeader          Change = "leader"
	ChangeJoined          Change = "joined"
	ChangeRemoved         Change = "removed"
	ChangePeerAdded       Change = "peer-added"
	ChangePeerRemoved     Change = "peer-removed"
	ChangePeerUnreachable Change = "peer-unreachable"
	ChangePeerReachable   Change = "peer-reachable"
)

// Event is one message of the event stream (GET /v1/events, server-sent
// events). Notarizations are aggregated per flush interval, so a busy
// cluster sends a few events a second however many receipts it issues.
type Event struct {
	Type EventType `json:"type"`
	Time time.Time `json:"time"`
	// Notarized, for EventNotarized.
	Notarized *NotarizedEvent `json:"notarized,omitempty"`
	// Change and Node, for EventCluster.
	Change Change `json:"change,omitempty"`
	Node   string `json:"node,omitempty"`
}

// NotarizedEvent sums up the leaves appended since the previous event.
type NotarizedEvent struct {
	First  uint64         `json:"first"` // index of the first new leaf
	Size   uint64         `json:"size"`  // log size after them
	Count  uint64         `json:"count"`
	ByKind map[string]int `json:"by_kind"`
	// Recent are the last few leaves, newest last.
	Recent []LeafInfo `json:"recent"`
	// Refused counts the dispenses and revocations the log's rules refused
	// since the previous event, by problem code (fill_taken,
	// fully_dispensed, revoked, bad_proof, unknown_prescription).
	Refused map[string]int `json:"refused,omitempty"`
}

// Member is a node of the cluster as the cluster records it.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	// HTTPAddr is the base URL of its API, such as https://10.0.0.1:8443.
	HTTPAddr string `json:"http_addr"`
	// VerifierKey is the note verifier key of the node's checkpoint signer.
	VerifierKey string `json:"verifier_key"`
}

// Bounds of a member's fields.
const (
	MaxMemberID   = 128
	maxMemberAddr = 512
)

// ValidMemberID reports whether id can name a member: 1 to MaxMemberID
// printable ASCII characters without spaces, slashes or '+'.
func ValidMemberID(id string) bool {
	if id == "" || len(id) > MaxMemberID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' || c == '/' || c == '\\' || c == '+' {
			return false
		}
	}
	return true
}

// Validate checks a member's fields; the error names the field.
func (m Member) Validate() error {
	if !ValidMemberID(m.ID) {
		return httpapi.Field("id", "must be 1 to %d printable characters without spaces, slashes or '+'", MaxMemberID)
	}
	if len(m.RaftAddr) > maxMemberAddr || len(m.HTTPAddr) > maxMemberAddr || len(m.VerifierKey) > maxMemberAddr {
		return httpapi.Field("id", "addresses and key must be at most %d characters each", maxMemberAddr)
	}
	if _, _, err := net.SplitHostPort(m.RaftAddr); err != nil {
		return httpapi.Field("raft_addr", "must be host:port: %v", err)
	}
	if u, err := url.Parse(m.HTTPAddr); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return httpapi.Field("http_addr", "must be an http or https base URL")
	}
	if _, err := note.NewVerifier(m.VerifierKey); err != nil {
		return httpapi.Field("verifier_key", "is not a note verifier key: %v", err)
	}
	return nil
}

// MemberInfo is a member as the cluster's log records it: its addresses,
// its verifier key, and the log size from which that key signs.
type MemberInfo struct {
	Member
	// KeySince is the size of the log when the cluster took the member's
	// key: checkpoints of smaller sizes cannot carry its signature.
	KeySince uint64 `json:"key_since"`
}

// RetiredKey is a key a member no longer signs with (its key was replaced,
// or the member removed), kept with the log sizes it signed, so that the
// receipts it vouched for still verify and its new signatures do not.
type RetiredKey struct {
	ID          string `json:"id"`
	VerifierKey string `json:"verifier_key"`
	// Since and Until bound the checkpoint sizes it signed, both
	// included.
	Since uint64 `json:"since"`
	Until uint64 `json:"until"`
}

// MaxRetiredKeys bounds the retired keys a cluster keeps; a key change or
// removal beyond it is refused.
const MaxRetiredKeys = 4096

// JoinRequest asks the cluster to add a node (operator, or a token of the
// join role).
type JoinRequest struct {
	Member
	// ClusterID is the cluster the node joins (or, for a node with state,
	// the one it belongs to): a cluster refuses a node of another one.
	ClusterID string `json:"cluster_id"`
	// KeyProof is the node's signature, with the key of VerifierKey, over
	// MemberStatement(ClusterID, Member): the cluster takes a key only from
	// the holder of its private half.
	KeyProof []byte `json:"key_proof"`
}

// JoinResponse is what a node learns when it joins.
type JoinResponse struct {
	ClusterID string       `json:"cluster_id"`
	Origin    string       `json:"origin"`
	Members   []MemberInfo `json:"members"`
}

// MemberStatement is what a node signs to prove that it holds the key it
// asks cluster clusterID to record for it: a line of context, then the
// cluster and the member's fields, one per line.
func MemberStatement(clusterID string, m Member) []byte {
	return fmt.Appendf(nil, "telenotary member key/v1\n%s\n%s\n%s\n%s\n%s\n", clusterID, m.ID, m.RaftAddr, m.HTTPAddr, m.VerifierKey)
}

// MemberRequest names a member: the body of remove and transfer (where an
// empty ID means any other voter).
type MemberRequest struct {
	ID string `json:"id"`
}

// ParseCommitment reads a commitment as the API takes it: 64 hex digits
// (either case) or 44 characters of standard base64.
func ParseCommitment(s string) (notary.Commitment, error) {
	var c notary.Commitment
	switch len(s) {
	case 2 * notary.HashSize:
		if _, err := hex.Decode(c[:], []byte(s)); err != nil {
			return c, errors.New("is not hex")
		}
		return c, nil
	case 44:
		b, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil || len(b) != notary.HashSize {
			return c, errors.New("is not base64")
		}
		copy(c[:], b)
		return c, nil
	}
	return c, fmt.Errorf("must be 32 bytes as 64 hex digits or 44 base64 characters, not %d characters", len(s))
}
