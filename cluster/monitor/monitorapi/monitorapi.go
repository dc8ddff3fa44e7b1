// Package monitorapi is the contract of a log monitor (package
// cluster/monitor, telenotary monitor): the alerts it raises, as its
// webhook receives them and GET /v1/alerts serves them, and a client of
// that endpoint. It imports nothing of the server side, so that a console
// can show a monitor's alerts.
package monitorapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/telenotary/telenotary/notary"
)

// Kind tells the faults the monitor alerts on apart.
type Kind string

// Kinds of alerts.
const (
	// KindSplitView: two checkpoints, each signed under the policy, that
	// cannot both be true: the same size with different roots, or a
	// smaller tree that no node can prove a prefix of the larger one.
	KindSplitView Kind = "split-view"
	// KindRootMismatch: a node's leaves do not hash to the root it signed
	// at that size.
	KindRootMismatch Kind = "root-mismatch"
	// KindTimeBackwards: a leaf stamped before the leaf before it, a
	// checkpoint dated before a leaf it holds, or a larger checkpoint
	// dated before a smaller one.
	KindTimeBackwards Kind = "timestamp-backwards"
	// KindMalformedLeaf: a node served a leaf that is not a well-formed
	// leaf at its index; the monitor stops deriving that node's tree.
	KindMalformedLeaf Kind = "malformed-leaf"
	// KindBadSignature: a node served a checkpoint whose signature by a
	// trusted key does not verify.
	KindBadSignature Kind = "bad-signature"
	// KindBadCheckpoint: a node served a checkpoint the policy refuses
	// otherwise: malformed, too few trusted signatures, another log.
	KindBadCheckpoint Kind = "bad-checkpoint"
)

// Kinds lists every kind, for metrics and documentation.
var Kinds = []Kind{KindSplitView, KindRootMismatch, KindTimeBackwards, KindMalformedLeaf, KindBadSignature, KindBadCheckpoint}

// Evidence is a signed checkpoint an alert rests on and where it came from.
type Evidence struct {
	// Node is the base URL of the node that served it.
	Node string `json:"node"`
	// Checkpoint is the signed note as served.
	Checkpoint string `json:"checkpoint"`
	// File is where the monitor saved it, relative to the evidence
	// directory; empty when it saves none.
	File string `json:"file,omitempty"`
}

// Alert is a fault the monitor found. It is what the webhook receives as
// JSON, and what the evidence directory's alert.json holds.
type Alert struct {
	Kind Kind      `json:"kind"`
	Time time.Time `json:"time"`
	// Nodes are the base URLs of the nodes concerned.
	Nodes   []string `json:"nodes"`
	Message string   `json:"message"`
	// Checkpoints are the signed checkpoints concerned: for a split view
	// the two that conflict, for a leaf fault the checkpoint the leaves
	// were checked against (when known).
	Checkpoints []Evidence `json:"checkpoints,omitempty"`
	// Index is the leaf concerned, for leaf faults.
	Index *uint64 `json:"index,omitempty"`
	// Dir is the alert's directory under the evidence directory; empty
	// when none is configured.
	Dir string `json:"dir,omitempty"`
}

// NodeState is what the monitor knows of one node.
type NodeState struct {
	Node string `json:"node"`
	// Size, Root and Timestamp are of the node's latest checkpoint that
	// opened under the policy (zero before one did).
	Size      uint64      `json:"size"`
	Root      notary.Hash `json:"root"`
	Timestamp int64       `json:"timestamp"`
	// Derived is how many of the node's leaves the monitor has read and
	// hashed; Verified the largest size at which they gave the root the
	// node signed, and VerifiedRoot that root.
	Derived      uint64      `json:"derived"`
	Verified     uint64      `json:"verified"`
	VerifiedRoot notary.Hash `json:"verified_root"`
	// Stuck says why the monitor stopped reading the node's leaves.
	Stuck string `json:"stuck,omitempty"`
	// Error is the last failure to reach or read the node ("" after a
	// poll that checked it).
	Error string `json:"error,omitempty"`
}

// AlertsResponse is the body of the monitor's GET /v1/alerts.
type AlertsResponse struct {
	// Alerts are the alerts raised since the monitor started, oldest
	// first (the last 1000).
	Alerts []Alert `json:"alerts"`
	// Nodes are what the monitor knows of each node.
	Nodes []NodeState `json:"nodes"`
}

// MaxAlertsBody bounds the body of GET /v1/alerts?brief=1 that
// [FetchAlerts] reads: the kept alerts without their checkpoints, whose
// messages are at most 1 KiB each.
const MaxAlertsBody = 8 << 20

// FetchAlerts asks the monitor serving GET /v1/alerts at base for its
// alerts in brief (without the checkpoints), reading at most
// MaxAlertsBody bytes: for a console that shows them.
func FetchAlerts(ctx context.Context, client *http.Client, base string) (*AlertsResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/v1/alerts?brief=1", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("monitor %s answered %s", base, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxAlertsBody+1))
	if err != nil {
		return nil, fmt.Errorf("monitor %s: %w", base, err)
	}
	if len(body) > MaxAlertsBody {
		return nil, fmt.Errorf("monitor %s: its alerts are more than %d bytes", base, MaxAlertsBody)
	}
	var out AlertsResponse
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("monitor %s: not an answer of GET /v1/alerts: %w", base, err)
	}
	return &out, nil
}
