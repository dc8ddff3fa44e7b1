// Package session is the WebRTC signalling server that relays consultations
// between a patient's and a physician's app and notarizes their session
// records and prescriptions through the cluster. It is not built yet.
package session
