package e2e

import (
	"os/exec"
	"syscall"
)

// killWithParent has the kernel kill a node when the test process dies
// (a panic or a test timeout), so no node outlives its test.
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
