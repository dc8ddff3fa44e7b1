// Package notaryapi is the contract of a notary node's HTTP API: its wire
// types, its errors and a Go client that finds the leader, retries
// idempotent submissions through elections and failures, and decodes
// receipts without reflection. docs/API.md and docs/openapi.json describe
// the same API for other languages.
//
// It imports nothing of the project but the notary package (and the
// httpapi conventions), so an app or a console that talks to a cluster
// links no raft, storage or metrics code.
package notaryapi
