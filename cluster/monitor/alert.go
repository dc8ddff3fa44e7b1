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
	"strings"
	"time"

	"github.com/telenotary/telenotary/cluster/monitor/monitorapi"
)

// The monitor's alerts and state, as package monitorapi declares them.
type (
	// Kind tells the faults the monitor alerts on apart.
	Kind = monitorapi.Kind
	// Evidence is a signed checkpoint an alert rests on.
	Evidence = monitorapi.Evidence
	// Alert is a fault the monitor found.
	Alert = monitorapi.Alert
	// NodeState is what the monitor knows of one node.
	NodeState = monitorapi.NodeState
	// AlertsResponse is the body of GET /v1/alerts.
	AlertsResponse = monitorapi.AlertsResponse
)

// Kinds of alerts (see package monitorapi).
const (
	KindSplitView     = monitorapi.KindSplitView
	KindRootMismatch  = monitorapi.KindRootMismatch
	KindTimeBackwards = monitorapi.KindTimeBackwards
	KindMalformedLeaf = monitorapi.KindMalformedLeaf
	KindBadSignature  = monitorapi.KindBadSignature
	KindBadCheckpoint = monitorapi.KindBadCheckpoint
)

// Kinds lists every kind.
var Kinds = monitorapi.Kinds

// alertKey identifies an alert across polls: its kind and its nodes, in
// either order.
func alertKey(a *Alert) string {
	var b strings.Builder
	b.WriteString(string(a.Kind))
	for _, n := range slices.Sorted(slices.Values(a.Nodes)) {
		b.WriteString(" " + n)
	}
	return b.String()
}

// saveEvidence writes the alert into a new directory under dir: alert.json
// and each signed checkpoint as checkpoint-N.txt, byte for byte as served,
// so that anyone can verify it with the keys. The directory appears whole
// or not at all (it is renamed into place).
func saveEvidence(dir string, a *Alert) error {
	// Named by its time and a hash of what it concerns: two alerts raised
	// in one millisecond differ in their kind or nodes.
	sum := sha256.New()
	for _, n := range a.Nodes {
		io.WriteString(sum, n+"\n")
	}
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
