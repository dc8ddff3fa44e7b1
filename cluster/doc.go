// Package cluster replicates the notary log across nodes with Raft
// (hashicorp/raft): the state machine, group commit, snapshots, membership,
// a node's HTTP API and the Go client for it. It is not built yet; the
// notary package it builds on is.
package cluster
