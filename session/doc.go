// Package session is the WebRTC signalling server: it relays a
// consultation between a patient's and a physician's app, and notarizes
// its session records and prescriptions through the notary cluster.
//
// # Rooms
//
// A room is one consultation: two seats, one patient and one physician,
// each taken by the holder of a room token (a JWT naming the room, the
// role and a pseudonymous subject; see [TokenKey]). An app backend gets
// the tokens from POST /v1/rooms, or signs its own with the shared key; a
// room then exists from its first join. Each participant opens the
// WebSocket /v1/signal and joins; the server relays offers, answers and
// candidates between them and checks every SDP ([CheckSDP]), keeping each
// side's DTLS certificate fingerprint. A participant whose connection
// drops has a grace window to come back; after it, or on leave, on the
// room's maximum length or on shutdown, the session ends. A room holds
// one session; its id is remembered until its tokens expire, so a token
// cannot open it again.
//
// # Tokens join once
//
// A token seats its participant once: the server remembers it (the hash
// of its signed part, in memory) until it expires and refuses it after
// (token_used), without touching the room, so a leaked join link cannot
// push the participant out. Each joined message hands the client a new
// resume ticket, bound to its seat, with which it comes back within the
// grace window (ticket.go). Nothing of this is written to disk; instead
// the server refuses every token issued before it started, so that after
// a restart a room that ended stays ended and a used token stays used
// (docs/PROTOCOL.md, "Restarts").
//
// # Notarizations, in order
//
// Each room has one worker that notarizes its entries one after another,
// in this order:
//
//  1. session-start: when both participants have joined and both SDP
//     fingerprints are known, the server builds the session record
//     (signalapi.Record, phase start), canonicalizes it (RFC 8785),
//     commits it under a fresh salt and notarizes the commitment. Both
//     participants receive the bundle (record, salt, receipt).
//  2. prescription, for each one the physician sends, in the order sent:
//     the FHIR MedicationRequest is checked ([CheckMedicationRequest]),
//     canonicalized and committed once, notarized with a link to the
//     session-start commitment and its allowance (the dispenses it allows
//     and the lock only its salt opens); the physician receives the
//     receipt bundle, the patient the prescription bundle. A revocation
//     the physician asks for (revoke) takes its turn among them, proven
//     with the salt the server keeps for the room's life (revoke.go).
//  3. session-end: once the end is decided, the end record (which lists
//     every prescription notarized before it, consents, reconnections and
//     whether a reported DTLS certificate did not match) is committed and
//     notarized with a link to the session-start commitment, and sent to
//     both with session-end; then the connections close.
//
// A document is read once: the bytes committed are the bytes carried to
// the receipt check, the bundle, the messages and the webhook (job.go).
// A notarization that fails is told to the participants concerned
// (notary_unavailable) and nothing of it is recorded.
//
// # Nothing at rest
//
// Records and documents live only in the server's memory, for the life of
// the room. They leave it in the bundles sent to the apps over the
// WebSocket and, when a webhook is configured, to the app's backend
// (signed, retried, never holding up signalling; over https, or plain
// http to loopback only; never following a redirect). The notary log
// holds only salted commitments; logs hold room and session ids, never
// subjects, documents or salts.
//
// # Serving
//
// [Server.Handler] is the whole HTTP surface; [Server.Serve] serves it on
// a listener with the limits of [Config].HTTP (connection caps in all and
// per address, read-header, read, write and idle timeouts with the
// WebSocket exempt, HSTS over TLS), and [Server.Close] stops it last.
//
// # Contract and clients
//
// The wire messages, roles, error codes, HTTP types and a Go client of the
// HTTP API (with the revocation of a prescription by the app's backend and
// its status, relayed from the cluster) are in session/signalapi; session/peer is the Go SDK of the
// protocol; session/web holds the browser pages the server serves.
// docs/PROTOCOL.md and docs/openapi-signal.json describe the protocol and
// the API for other languages.
package session
