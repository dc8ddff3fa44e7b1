// Package kvcompare measures the notary's append workload on the project's
// own filestore and on two off-the-shelf key-value stores, cockroachdb/pebble
// and bbolt, for the comparison cited in docs/BENCHMARKS.md. It holds only a
// benchmark (kvcompare_test.go) and is a module of its own so that pebble and
// bbolt stay out of the main module's dependencies; see README.md.
package kvcompare
