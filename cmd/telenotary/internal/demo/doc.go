// Package demo runs the whole of telenotary on one machine for telenotary
// demo: a 3-node notary cluster on loopback, the signalling server,
// simulated consultations (pion patient and physician pairs that issue the
// HL7 FHIR example prescriptions) and the operator console. Everything a
// run writes (data, logs, keys, receipt bundles) stays in a directory of
// its own. Run is the entry point; nothing here is promised to other
// packages.
package demo
