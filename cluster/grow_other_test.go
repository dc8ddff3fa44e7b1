//go:build !unix

package cluster

import "time"

// cpuTime cannot tell here.
func cpuTime() time.Duration { return 0 }
