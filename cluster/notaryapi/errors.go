package notaryapi

import (
	"net/http"

	"github.com/telenotary/telenotary/cluster/httpapi"
)

// Errors of the notary API. A node answers each with its status and code;
// the client returns an *httpapi.Problem that errors.Is matches against
// the same value.
var (
	// ErrBadRequest: the request is malformed; the problem names the field.
	// Do not retry it unchanged.
	ErrBadRequest = httpapi.ErrBadRequest
	// ErrUnauthorized: no valid bearer token was given.
	ErrUnauthorized = httpapi.ErrUnauthorized
	// ErrForbidden: the token's role may not do this.
	ErrForbidden = httpapi.ErrForbidden
	// ErrNotFound: no such commitment, index, member or endpoint.
	ErrNotFound = httpapi.ErrNotFound
	// ErrTooLarge: the request body is over its limit; split it.
	ErrTooLarge = httpapi.ErrTooLarge
	// ErrNotLeader: this node is not the leader; send the request to the
	// leader (the client does) or let the node forward it.
	ErrNotLeader = &httpapi.Code{Name: "not_leader", Status: http.StatusServiceUnavailable, Title: "not the leader"}
	// ErrNoLeader: the cluster cannot serve this now (an election is under
	// way, a majority is down, or the node is shutting down). Retry after
	// a moment, on any node.
	ErrNoLeader = &httpapi.Code{Name: "unavailable", Status: http.StatusServiceUnavailable, Title: "no leader"}
	// ErrOverloaded: the node has more work queued than it takes. Back off
	// and retry.
	ErrOverloaded = &httpapi.Code{Name: "overloaded", Status: http.StatusServiceUnavailable, Title: "overloaded"}
	// ErrClockSkew: the leader's clock does not agree with a majority of
	// the cluster's, so it stamps nothing; it hands leadership to a node
	// whose clock agrees. Retry after a moment.
	ErrClockSkew = &httpapi.Code{Name: "clock_skew", Status: http.StatusServiceUnavailable, Title: "the leader's clock disagrees with the cluster's"}
	// ErrLogTimeAhead: the log's newest leaf is stamped ahead of the
	// cluster's clock (an earlier fault); no leader stamps until that time
	// has passed. An operator must act: see docs/OPERATIONS.md.
	ErrLogTimeAhead = &httpapi.Code{Name: "log_time_ahead", Status: http.StatusServiceUnavailable, Title: "the log's time is ahead of the cluster's clock"}
	// ErrDamaged: the node found its own data damaged (a proof it was about
	// to serve did not lead to its signed root) and serves nothing from its
	// log until an operator repairs it. Ask another node.
	ErrDamaged = &httpapi.Code{Name: "damaged", Status: http.StatusServiceUnavailable, Title: "this node's data is damaged"}
	// ErrDiskLow: the node's disk is nearly full; a leader refuses writes
	// before one fails halfway. Retry (a leader with room may take over);
	// an operator must free space.
	ErrDiskLow = &httpapi.Code{Name: "disk_low", Status: http.StatusServiceUnavailable, Title: "the node's disk is nearly full"}
	// ErrNoQuorum: the leader could not commit the request in time (its
	// followers do not take writes: disks full, cut off). The request may
	// still be logged; retry it (it is idempotent).
	ErrNoQuorum = &httpapi.Code{Name: "no_quorum", Status: http.StatusServiceUnavailable, Title: "no quorum for writes"}
	// ErrWrongCluster: a node of one cluster asked to join another. Give
	// it an empty data directory, or point it at its own cluster.
	ErrWrongCluster = &httpapi.Code{Name: "wrong_cluster", Status: http.StatusConflict, Title: "node of another cluster"}
	// ErrUnknownPrescription: a dispense or revocation names a prescription
	// the log holds no allowance for (never logged, or logged without one).
	ErrUnknownPrescription = &httpapi.Code{Name: "unknown_prescription", Status: http.StatusConflict, Title: "no such prescription to dispense or revoke"}
	// ErrFillTaken: the fill a dispense claims was dispensed already, by
	// this pharmacy or another; ask the status and claim the next fill.
	ErrFillTaken = &httpapi.Code{Name: "fill_taken", Status: http.StatusConflict, Title: "this fill was dispensed already"}
	// ErrFullyDispensed: every fill the prescription allows was dispensed.
	ErrFullyDispensed = &httpapi.Code{Name: "fully_dispensed", Status: http.StatusConflict, Title: "the prescription is fully dispensed"}
	// ErrRevoked: the prescription was revoked; it is not dispensed.
	ErrRevoked = &httpapi.Code{Name: "revoked", Status: http.StatusConflict, Title: "the prescription was revoked"}
	// ErrBadProof: the dispense's or revocation's proof does not open the
	// prescription's lock: the submitter does not hold its bundle.
	ErrBadProof = &httpapi.Code{Name: "bad_proof", Status: http.StatusConflict, Title: "the proof does not open the prescription's lock"}
)
