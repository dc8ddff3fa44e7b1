package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/notary"
)

// BenchmarkWitnessedLatency measures how long after a write is answered
// (its checkpoint signed) a checkpoint that covers it carries the
// cosignatures of two witnesses: a 3-node cluster in one process with two
// witnesses on loopback, writes at about 100 a second for 10 s, and the
// leader's /v1/checkpoint?witnessed=2 read every 2 ms; with every
// checkpoint offered to the witnesses (interval 0) and with the default
// interval of a second.
//
//	cd cluster && go test -run '^$' -bench WitnessedLatency -benchtime 1x
func BenchmarkWitnessedLatency(b *testing.B) {
	for _, interval := range []time.Duration{0, cluster.DefaultConfig().WitnessInterval} {
		b.Run(fmt.Sprintf("interval=%v", interval), func(b *testing.B) {
			witnessInterval = interval
			defer func() { witnessInterval = 0 }()
			witnessedLatency(b)
		})
	}
}

func witnessedLatency(b *testing.B) {
	var ws [2]*testWitness
	c, nodes := witnessCluster(b, 3, func(keys []string) []cluster.Witness {
		var specs []cluster.Witness
		for i := range ws {
			ws[i] = newTestWitness(b, fmt.Sprintf("witness-%d.test", i), keys...)
			ws[i].start()
			specs = append(specs, ws[i].spec())
		}
		return specs
	})
	leader := c.leader()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for b.Loop() {
		var mu sync.Mutex
		var seen []struct {
			size uint64
			at   time.Time
		}
		stop := make(chan struct{})
		polled := make(chan struct{})
		go func() {
			defer close(polled)
			for {
				select {
				case <-stop:
					return
				case <-time.After(2 * time.Millisecond):
				}
				msg, err := getCheckpoint(leader, "?witnessed=2")
				if err != nil {
					continue
				}
				cp, err := notary.ParseSignedCheckpoint([]byte(msg))
				if err != nil {
					continue
				}
				now := time.Now()
				mu.Lock()
				if len(seen) == 0 || cp.Size > seen[len(seen)-1].size {
					seen = append(seen, struct {
						size uint64
						at   time.Time
					}{cp.Size, now})
				}
				mu.Unlock()
			}
		}()
		type write struct {
			index uint64
			at    time.Time
		}
		var writes []write
		client := clientFor(nodes...)
		tick := time.NewTicker(10 * time.Millisecond)
		end := time.Now().Add(10 * time.Second)
		for i := 0; time.Now().Before(end); i++ {
			<-tick.C
			resp, err := client.Notarize(ctx, entryOf(fmt.Sprintf("latency-%d", b.N), i))
			if err != nil {
				b.Fatal(err)
			}
			writes = append(writes, write{resp.Receipt.Index, time.Now()})
		}
		tick.Stop()
		last := writes[len(writes)-1].index
		waitFor(b, "the last write witnessed", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(seen) > 0 && seen[len(seen)-1].size > last
		})
		close(stop)
		<-polled
		var lat []time.Duration
		for _, w := range writes {
			i, _ := slices.BinarySearchFunc(seen, w.index+1, func(s struct {
				size uint64
				at   time.Time
			}, size uint64) int {
				return int(s.size) - int(size)
			})
			if i < len(seen) {
				lat = append(lat, max(0, seen[i].at.Sub(w.at)))
			}
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-ms")
		b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "max-ms")
		b.ReportMetric(float64(len(lat)), "writes")
	}
}
