// Package tui is the operator console of a notary cluster: a full-screen
// Bubble Tea program with a tab for each thing an operator watches: the
// cluster's nodes (role, term, indexes, lag, last contact, health), the
// throughput and latency, the live feed of notarizations, the live
// consultations of the signalling server, the alerts, and the verification
// of a receipt bundle. The operator can remove a node or move leadership,
// behind a confirmation and the cluster's operator token.
//
// [Run] starts it. All data reaches the model as typed messages: node
// statuses and sessions from commands that poll on a tick (each request
// with its own timeout, at most one in flight per source, so a dead or slow
// node never holds up the screen), and the cluster's event stream through
// [tea.Program.Send] from one goroutine that Run owns, stops and waits for.
// Views read only the model.
package tui
