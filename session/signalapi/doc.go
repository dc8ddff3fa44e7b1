// Package signalapi is the contract of the signalling server (package
// session): what an app, the Go peer SDK (session/peer) and the operator's
// console need to talk to it, and nothing of the server itself.
//
//   - The WebSocket protocol of /v1/signal: [Message] and its [Type]s, the
//     [Code]s of error messages, the [Role]s of the two participants, the
//     limits on what a client sends, and [DecodeClientMessage], the one
//     decoder of client messages with those bounds (the server uses it,
//     and a client may check what it is about to send).
//   - The DTLS certificate [Fingerprint] that binds a peer connection to
//     the session record ([Record]), which apps receive notarized.
//   - The HTTP API: rooms ([CreateRoomRequest]), live sessions
//     ([SessionsResponse]), the cluster's keys, a prescription's
//     revocation by the app's backend ([RevokeRequest]) and its status
//     (relayed from the cluster), its errors (RFC 9457
//     problems, see cluster/httpapi), the webhook's event ([WebhookEvent])
//     and signature ([SignWebhook], [VerifyWebhook]), and a Go [Client] for it.
//
// docs/PROTOCOL.md describes the same for other languages, and
// docs/openapi-signal.json the HTTP API. The package imports nothing of the
// project but notary and the httpapi conventions, so an app that links it
// (or session/peer) links no server, raft, storage or metrics code.
package signalapi
