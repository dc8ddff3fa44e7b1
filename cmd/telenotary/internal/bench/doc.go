// Package bench holds the load generators of telenotary bench: Notarize
// drives a notary cluster with fresh commitments and verifies the receipts
// it gets, Signal runs whole consultations through a signalling server.
// Both print their progress and report to the writer they are given and
// leave flags, tokens and TLS to the command that calls them
// (cmd/telenotary). Nothing here is promised to other packages.
package bench
