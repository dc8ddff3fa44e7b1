// Package httpapi holds the conventions that both HTTP APIs of telenotary
// (a notary node's and the signalling server's) and their Go clients
// follow, so that one error type and one set of rules serve all of them:
//
//   - every error answer is an RFC 9457 problem document
//     (application/problem+json) with a stable "code" and, for a bad
//     request, the "field" at fault: [WriteError] on the server, [Problem]
//     on the client, matched with errors.Is against a [Code];
//   - request bodies are bounded ([ReadBody]) and decoded by one strict
//     decoder ([DecodeJSON]) that refuses unknown and repeated members and
//     names the field of any mistake;
//   - a path that exists answers 405 with Allow for a wrong method, and a
//     path that does not answers 404, both as problems ([Mux]).
//
// It lives under cluster only because imports run session → cluster; it
// imports nothing of the project, and neither server owns it.
package httpapi
