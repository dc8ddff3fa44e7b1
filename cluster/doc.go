// Package cluster is a notary node: it replicates the notary log across a
// few nodes with Raft (hashicorp/raft over raft-boltdb/v2), applies
// committed batches of commitments to a durable notary log (the FSM),
// groups concurrent submissions into one raft entry per round (the
// batcher), signs and cosigns checkpoints, snapshots and restores the log,
// handles membership, and serves the HTTP API of package httpd.
//
// [New] starts a node from a [Config] (start from [DefaultConfig]);
// [Node.Close] stops it. Clients do not import this package: the API's
// wire types, errors and Go client are in cluster/notaryapi.
//
// cluster/DESIGN.md draws the write path, says who owns which goroutine,
// what is durable when, how cosigning, forwarding and snapshots work, and
// why the node changes two behaviours of hashicorp/raft
// (cluster/internal/raftfix).
package cluster
