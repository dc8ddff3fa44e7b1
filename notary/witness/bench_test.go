package witness_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/telenotary/telenotary/notary/witness"
	"golang.org/x/mod/sumdb/note"
)

// BenchmarkAddCheckpoint measures add-checkpoint requests a second, each a
// new checkpoint one leaf larger than the last with its consistency proof,
// so each is verified, recorded durably (write, fsync, rename, fsync of the
// directory) and cosigned. With logs=N, N logs submit at once, one request
// in flight each, as the protocol's clients do.
func BenchmarkAddCheckpoint(b *testing.B) {
	for _, nlogs := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("logs=%d", nlogs), func(b *testing.B) {
			logs := make([]*testLog, nlogs)
			cfg := make([]witness.Log, nlogs)
			for i := range logs {
				logs[i] = newTestLog(b, fmt.Sprintf("log%d.test/log", i), "node-1")
				cfg[i] = witness.Log{Origin: logs[i].origin, Verifiers: []note.Verifier{logs[i].verifier()}}
			}
			s, err := witness.NewSigner(mustKey(b))
			if err != nil {
				b.Fatal(err)
			}
			w, err := witness.New(witness.Config{Dir: b.TempDir(), Signer: s, Logs: cfg})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			per := (b.N + nlogs - 1) / nlogs
			bodies := make([][][]byte, nlogs)
			for i, l := range logs {
				for j := range per {
					l.grow(1)
					bodies[i] = append(bodies[i], l.request(uint64(j)))
				}
			}
			b.ResetTimer()
			var wg sync.WaitGroup
			for i := range logs {
				wg.Go(func() {
					for _, body := range bodies[i] {
						if _, err := w.AddCheckpoint(body); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(per*nlogs)/b.Elapsed().Seconds(), "req/s")
		})
	}
}
