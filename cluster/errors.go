package cluster

import "errors"

// Errors of a node and its API. The HTTP layer maps each to one status
// code (see api.go); the client maps them back.
var (
	// ErrNotLeader: this node is not the leader; send the request to the
	// leader (the client does) or let the node forward it.
	ErrNotLeader = errors.New("not the leader")
	// ErrNoLeader: the cluster has no leader right now (an election is
	// under way or a majority is down). Retry after a moment.
	ErrNoLeader = errors.New("no leader")
	// ErrBadRequest: the request is malformed; the error names the field.
	// Do not retry it unchanged.
	ErrBadRequest = errors.New("bad request")
	// ErrUnauthorized: no valid bearer token was given.
	ErrUnauthorized = errors.New("missing or invalid token")
	// ErrForbidden: the token's role may not do this.
	ErrForbidden = errors.New("forbidden for this token's role")
	// ErrNotFound: no such commitment, index or member.
	ErrNotFound = errors.New("not found")
	// ErrCorruptState: the node's data directory is damaged or belongs to
	// another node or cluster. The node refuses to start and changes
	// nothing; restore the directory or start with an empty one.
	ErrCorruptState = errors.New("data directory unusable")
	// ErrClosed: the node is shutting down or has failed.
	ErrClosed = errors.New("node closed")
	// ErrOverloaded: the node has more work queued than it takes. Back off
	// and retry.
	ErrOverloaded = errors.New("overloaded")
	// ErrTooLarge: the request body is over its limit; split it.
	ErrTooLarge = errors.New("request too large")
	// ErrWrongCluster: a node of one cluster asked to join another. Give
	// it an empty data directory, or point it at its own cluster.
	ErrWrongCluster = errors.New("node of another cluster")
)
