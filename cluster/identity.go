package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/telenotary/telenotary/notary/filestore"
)

// identity is what a data directory records about its owner.
type identity struct {
	NodeID    string `json:"node_id"`
	ClusterID string `json:"cluster_id,omitempty"`
	// fresh: the directory was empty, and this start wrote node.json.
	fresh bool
}

const identityName = "node.json"

// checkIdentity reads dir's node.json, or creates it in an empty dir, and
// refuses a directory of another node. For a node with state that joins,
// joinTargets names the cluster of the nodes it joins ("" when unknown),
// which must be its own.
func checkIdentity(ctx context.Context, dir, nodeID string, joinTargets func(context.Context) string) (identity, error) {
	path := filepath.Join(dir, identityName)
	var id identity
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		entries, _ := os.ReadDir(dir)
		if len(entries) > 0 {
			return id, fmt.Errorf("%w: %s is not empty and has no %s; give an empty directory or the node's own", ErrCorruptState, dir, identityName)
		}
		id = identity{NodeID: nodeID, fresh: true}
		b, _ := json.Marshal(id)
		if err := filestore.WriteFileDurably(path, b); err != nil {
			return id, fmt.Errorf("cluster: %w", err)
		}
		return id, nil
	case err != nil:
		return id, fmt.Errorf("cluster: %w", err)
	}
	if err := json.Unmarshal(b, &id); err != nil {
		return id, fmt.Errorf("%w: %s: %v", ErrCorruptState, path, err)
	}
	if id.NodeID != nodeID {
		return id, fmt.Errorf("%w: %s belongs to node %q, not %q", ErrCorruptState, dir, id.NodeID, nodeID)
	}
	if id.ClusterID != "" {
		if theirs := joinTargets(ctx); theirs != "" && theirs != id.ClusterID {
			return id, fmt.Errorf("%w: %s belongs to cluster %s, but the nodes to join are cluster %s", ErrCorruptState, dir, id.ClusterID, theirs)
		}
	}
	return id, nil
}

// recordClusterID writes the cluster's id into dir's node.json once known.
func recordClusterID(dir, nodeID, clusterID string) error {
	path := filepath.Join(dir, identityName)
	b, _ := json.Marshal(identity{NodeID: nodeID, ClusterID: clusterID})
	if old, err := os.ReadFile(path); err == nil && string(old) == string(b) {
		return nil
	}
	return filestore.WriteFileDurably(path, b)
}
