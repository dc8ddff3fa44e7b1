package monitor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
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

// key identifies an alert across polls, so that one fault is raised once.
func (a *Alert) key() string {
	var b strings.Builder
	b.WriteString(string(a.Kind))
	for _, n := range slices.Sorted(slices.Values(a.Nodes)) {
		b.WriteString(" " + n)
	}
	if a.Index != nil {
		b.WriteString(" #" + strconv.FormatUint(*a.Index, 10))
	}
	return b.String()
}

// saveEvidence writes the alert into a new directory under dir: alert.json
// and each signed checkpoint as checkpoint-N.txt, byte for byte as served,
// so that anyone can verify it with the keys. The directory appears whole
// or not at all (it is renamed into place).
func saveEvidence(dir string, a *Alert) error {
	sum := sha256.New()
	for _, e := range a.Checkpoints {
		io.WriteString(sum, e.Checkpoint)
	}
	name := fmt.Sprintf("%s-%s-%s", a.Time.UTC().Format("20060102T150405.000Z"), a.Kind, hex.EncodeToString(sum.Sum(nil))[:8])
	tmp, err := os.MkdirTemp(dir, ".tmp-"+name+"-")
	if err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	defer os.RemoveAll(tmp) // left only when something failed
	a.Dir = name
	for i := range a.Checkpoints {
		a.Checkpoints[i].File = filepath.Join(name, fmt.Sprintf("checkpoint-%d.txt", i+1))
		if err := writeSynced(filepath.Join(tmp, filepath.Base(a.Checkpoints[i].File)), []byte(a.Checkpoints[i].Checkpoint)); err != nil {
			return err
		}
	}
	js, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	if err := writeSynced(filepath.Join(tmp, "alert.json"), append(js, '\n')); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	return nil
}

// writeSynced writes a file and flushes it to disk.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("evidence: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("evidence: %w", err)
	}
	return f.Close()
}

// webhookAttempts bounds the tries of one webhook delivery.
const webhookAttempts = 5

// postWebhook POSTs the alert as JSON to url, retrying a failed try
// (no answer, or a status other than 2xx) with a growing wait, until it
// is taken, the tries run out or ctx ends.
func postWebhook(ctx context.Context, client *http.Client, url string, a *Alert, timeout time.Duration) error {
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	wait := 250 * time.Millisecond
	var last error
	for try := 1; try <= webhookAttempts; try++ {
		if last = postOnce(ctx, client, url, body, timeout); last == nil {
			return nil
		}
		if try == webhookAttempts {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("webhook: %w (last try: %w)", ctx.Err(), last)
		case <-t.C:
		}
		wait *= 2
	}
	return fmt.Errorf("webhook: %d tries failed, the last: %w", webhookAttempts, last)
}

func postOnce(ctx context.Context, client *http.Client, url string, body []byte, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the receiver answered %s", resp.Status)
	}
	return nil
}
