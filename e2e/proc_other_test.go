//go:build !linux

package e2e

import "os/exec"

// killWithParent does nothing where the kernel cannot kill a child with
// its parent; the tests' cleanups kill the nodes.
func killWithParent(cmd *exec.Cmd) {}
