package bench

import (
	"fmt"
	"slices"
	"time"
)

// quantiles sorts lat and returns its p50, p90, p99 and maximum.
func quantiles(lat []time.Duration) (p50, p90, p99, max time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(int(p*float64(len(lat))), len(lat)-1)] }
	return q(0.50), q(0.90), q(0.99), lat[len(lat)-1]
}

// millis formats a duration in milliseconds.
func millis(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
