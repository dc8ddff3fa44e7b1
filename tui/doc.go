// Package tui is the operator console of a notary cluster: a full-screen
// Bubble Tea program with a tab for each thing an operator watches: the
// cluster's nodes (role, term, indexes, lag, last contact, health), the
// throughput and latency, the live feed of notarizations, the live
// consultations of the signalling server, the alerts, and the verification
// of a receipt bundle. The operator can remove a node or move leadership,
// behind a confirmation and the cluster's operator token.
//
// [Run] starts it. All data reaches the model as typed messages, declared
// beside the commands that make them: node statuses and sessions from
// commands that poll on a tick (each request with its own timeout, at most
// one in flight per source, so a dead or slow node never holds up the
// screen), and the cluster's event stream through [tea.Program.Send] from
// one goroutine that Run owns, stops and waits for. Views read only the
// model.
//
// # Layout
//
// As in soft-serve's UI, the root model (model.go, view.go) composes one
// component per tab: cluster.go, throughput.go, feed.go, sessions.go,
// alerts.go and verify.go. Each is a tea.Model with its own help.KeyMap
// and a SetSize, and holds a copy of one common context (common.go): the
// configuration, the clock, the styles of styles.go (one theme), the keys
// of keys.go, and the alert log that every component adds to. The root's
// Update gives the size and keys to the root (the global keys) and the
// current tab (the others), and every other message to all tabs, which
// take what concerns them; it draws the title, the tabs, the status line
// and the help around the current tab's body.
//
// # Operator token
//
// With the operator token (Config.Token) the console polls each node's
// status as an operator: a node shows its peers (the cluster's topology)
// and its alerts (a clock that disagrees with the cluster's, a log stamped
// in the future, refused raft commands) only to an operator. The Cluster
// tab marks a node whose clock is off; the Alerts tab shows each such
// condition once, when first seen, and again when it clears. Without the
// token, both tabs say that peers and alerts need it.
package tui
