//go:build unix

package cluster

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time, user and system, the process has used: on
// a shared machine it says what the work cost better than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
