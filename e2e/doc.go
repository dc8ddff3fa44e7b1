// Package e2e holds end-to-end tests that build the telenotary binary and run
// real processes: cluster faults, browser sessions, the console. They come
// with the cluster and the signalling server.
package e2e
