// Package tui is the operator console of a notary cluster: a full-screen
// Bubble Tea program with a tab for each thing an operator watches: the
// cluster's nodes (role, term, indexes, lag, last contact, health), the
// throughput and latency, the live feed of notarizations, the live
// consultations of the signalling server, the alerts, the verification
// of a receipt bundle, and, when the caller gives one (the demo does), a
// text to try by hand (Config.TryIt). The operator can remove a node or move leadership,
// behind a confirmation and the cluster's operator token.
//
// [Run] starts it. All data reaches the model as typed messages, declared
// beside the commands that make them: node statuses and sessions from
// commands that poll on a tick (each request with its own timeout, at most
// one in flight per source, so a dead or slow node never holds up the
// screen), and the cluster's event stream through [tea.Program.Send] from
// one goroutine that Run owns, stops and waits for. The stream moves to
// another node when it breaks or stays silent for 30 s; a node sends a
// keep-alive every 15 s while it has no event, and each one counts, so an
// idle cluster's stream is not broken off. Views read only the model.
//
// # What the screens say
//
// The console shows what the cluster says rather than what it happened to
// notice. The nodes it watches are the configured ones and the members
// the leader lists (to an operator token): a node that joins is added and
// polled, one that leaves is taken off, and "N/M nodes up" counts the
// members. The leader is the node that leads in the highest term any node
// answered with; one that still says it leads an older term (a leader
// that was paused) is marked STALE; when no node that answers leads but
// one names the leader, the title names it. An outage lasts from when the
// node was last heard from (its last answer, or the last heartbeat the
// leader reports of it), and every unreachable node says why (a timeout
// after the request timeout, a refused connection, ...). Receipts per
// second are the growth of the leader's log between its statuses, whichever
// node's stream is followed, and are unknown ("-") while the leader does
// not answer. The Feed shows the leaves the events list, and says so when
// they are a sample of those the events count. Leadership is not offered
// to the node that has it, and removing the leader takes a second
// confirmation. [Config.Validate] returns a [*ConfigError] that a command
// can name with its flag.
//
// A prescription's life shows in the Feed: each dispense with the
// prescription it fills, shortened, and "fill k/n" once the
// prescription's status (a consistent read, a few at a time) lists it;
// each allowance with its fills; each revocation. The Alerts tab raises
// "possible fraud" when the dispenses and revocations the cluster refuses
// for a sign of fraud (every reason but fill_taken, which is a race
// between pharmacies) reach [Config.FraudThreshold] within a minute
// (lifecycle.go, docs/OPERATIONS.md).
//
// # Layout
//
// As in soft-serve's UI, the root model (model.go, view.go) composes one
// component per tab: cluster.go, throughput.go, feed.go, sessions.go,
// alerts.go, verify.go and tryit.go (the last tab, only with TryIt). Each is a tea.Model with its own help.KeyMap
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
