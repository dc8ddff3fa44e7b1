package cluster

import (
	"errors"
	"net/http"

	"github.com/telenotary/telenotary/cluster/httpapi"
)

// Errors of a node itself; the errors of its API are notaryapi's.
var (
	// ErrCorruptState: the node's data directory is damaged or belongs to
	// another node or cluster. The node refuses to start and changes
	// nothing; restore the directory or start with an empty one.
	ErrCorruptState = errors.New("data directory unusable")
	// ErrRaftTLSRequired: the configuration has no mutual TLS for raft.
	// Give the node its raft certificate, key and CA; InsecureRaft allows
	// plain raft on loopback only.
	ErrRaftTLSRequired = errors.New("raft needs mutual TLS")
	// ErrInsecureRaftOffLoopback: InsecureRaft with a raft address that is
	// not on loopback. Configure raft TLS.
	ErrInsecureRaftOffLoopback = errors.New("insecure raft is for loopback addresses only")
	// ErrJoinRefused: the cluster refused to add this node (a wrong token,
	// a bad request). The node stops; fix the configuration and start it
	// again.
	ErrJoinRefused = errors.New("the cluster refused to add this node")
	// ErrClosed: the node is shutting down or has failed. Its API answers
	// it as unavailable, so clients try another node.
	ErrClosed = &httpapi.Code{Name: "unavailable", Status: http.StatusServiceUnavailable, Title: "node closed"}
)
