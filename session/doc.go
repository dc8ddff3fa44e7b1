// Package session is the WebRTC signalling server that relays consultations
// between a patient's and a physician's app and notarizes their session
// records and prescriptions through the cluster. See docs/PROTOCOL.md for
// the WebSocket protocol; session/peer is the Go SDK for it and session/web
// the browser pages the server serves.
package session
