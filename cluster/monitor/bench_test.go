package monitor_test

import (
	"context"
	"testing"

	"github.com/telenotary/telenotary/cluster/monitor"
	"github.com/telenotary/telenotary/cluster/monitor/monitortest"
	"github.com/telenotary/telenotary/notary"
)

// BenchmarkCatchUp: a new monitor reading and checking a node's log of
// 100 000 leaves over loopback HTTP (pages of 1000), reported per leaf.
func BenchmarkCatchUp(b *testing.B) {
	const size = 100_000
	keys := monitortest.NewKeys(b, 1)
	n := monitortest.NewNode(b, origin, keys, notary.NewMemoryStore())
	for i := 0; i < size; i += 10_000 {
		ls := make([]notary.Leaf, 10_000)
		for j := range ls {
			ls[j] = monitortest.Leaf("bench", i+j, t0+int64(i+j))
		}
		n.Append(b, ls...)
	}
	url := n.Serve(b, nil)
	policy := keys.Policy(b, 1, origin)
	b.ResetTimer()
	for range b.N {
		m, err := monitor.New(monitor.Config{Nodes: []string{url}, Policy: policy})
		if err != nil {
			b.Fatal(err)
		}
		if rep := m.PollOnce(context.Background()); len(rep.Alerts)+len(rep.Unchecked) != 0 || m.Nodes()[0].Verified != size {
			b.Fatalf("%+v %+v", rep, m.Nodes()[0])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/leaf")
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "leaves/s")
}
