// Package peer is the Go SDK of the signalling server: a [Peer] joins a
// room as patient or physician with the token the app's backend got from
// POST /v1/rooms, negotiates a real WebRTC peer connection (pion) with the
// other participant over the WebSocket protocol, reports the DTLS
// certificate it sees (so the session record binds the media channel to
// the participants), sends and revokes prescriptions (physician) and
// collects and verifies every receipt bundle and revocation offline
// against the cluster's keys.
//
// The physician offers; candidates that arrive before the remote
// description are buffered; a dropped WebSocket is rejoined within
// Config.ReconnectWindow with the resume ticket the server handed the peer
// (a token joins once) and the physician then restarts ICE. [Pair] runs
// both sides of a consultation on one machine, for demos, load generators
// and tests.
//
// It speaks the contract of session/signalapi and links no server code.
package peer
