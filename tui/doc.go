// Package tui is the operator console (Bubble Tea): the cluster, throughput,
// live notarizations and consultations, alerts and operator actions. It is
// not built yet.
package tui
