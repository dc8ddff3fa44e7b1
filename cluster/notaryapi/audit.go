package notaryapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/notary"
)

// Bounds of the answers an auditor reads from one node. A node that sends
// more is refused, not read to the end.
const (
	// MaxLeavesPageBody bounds one page of GET /v1/leaves: MaxLeavesPage
	// leaves of at most 512 bytes of JSON each, and the envelope.
	MaxLeavesPageBody = MaxLeavesPage*512 + 1024
	// MaxProofBody bounds one answer of GET /v1/proofs/consistency.
	MaxProofBody = 16 << 10
)

// LatestCheckpointOf asks one node, without retries, for its latest
// signed checkpoint, signed by k nodes (k > 1 has the node gather its
// peers' signatures; Majority asks for a majority's). It reads at most
// notary.MaxCheckpointSize bytes: for auditors that watch each node.
func (c *Client) LatestCheckpointOf(ctx context.Context, node string, k int) ([]byte, error) {
	path := "/v1/checkpoint"
	if k != 1 && k != 0 {
		path += "?signatures=" + signaturesQuery(k)
	}
	return c.getBounded(ctx, node, path, notary.MaxCheckpointSize)
}

// ConsistencyProofOf asks one node, without retries, for the proof that
// the tree of from leaves is a prefix of the tree of to leaves.
func (c *Client) ConsistencyProofOf(ctx context.Context, node string, from, to uint64) (*ProofResponse, error) {
	body, err := c.getBounded(ctx, node, fmt.Sprintf("/v1/proofs/consistency?from=%d&to=%d", from, to), MaxProofBody)
	if err != nil {
		return nil, err
	}
	var out ProofResponse
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("consistency proof from %s: %w", node, err)
	}
	if len(out.Proof) > notary.MaxProofHashes {
		return nil, fmt.Errorf("consistency proof from %s: %d hashes, more than %d", node, len(out.Proof), notary.MaxProofHashes)
	}
	return &out, nil
}

// LeavesPageOf asks one node, without retries, for up to count leaves from
// index start, and returns its answer undecoded (a LeavesResponse, at most
// MaxLeavesPageBody bytes): for auditors that check each leaf themselves
// and must tell a malformed leaf from a malformed page.
func (c *Client) LeavesPageOf(ctx context.Context, node string, start, count uint64) ([]byte, error) {
	return c.getBounded(ctx, node, fmt.Sprintf("/v1/leaves?start=%d&count=%d", start, count), MaxLeavesPageBody)
}

// getBounded sends one GET to one node and returns the body of a 200
// answer, refusing one of more than limit bytes; any other status is the
// node's problem.
func (c *Client) getBounded(ctx context.Context, node, path string, limit int64) ([]byte, error) {
	resp, err := c.send(ctx, http.MethodGet, strings.TrimRight(node, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, httpapi.ReadProblem(resp)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1)); err != nil {
		return nil, fmt.Errorf("GET %s from %s: %w", path, node, err)
	}
	if int64(buf.Len()) > limit {
		return nil, fmt.Errorf("GET %s from %s: the answer is more than %d bytes", path, node, limit)
	}
	return buf.Bytes(), nil
}
