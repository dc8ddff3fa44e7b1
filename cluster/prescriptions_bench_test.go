package cluster

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// BenchmarkApplyDispenses measures the state machine's cost of a dispense
// (decision, leaf, commit) apart from raft and HTTP: raft entries of 128
// dispenses each, as the leader's group commit makes them at 128
// clients, spread over prescriptions of the given fills.
func BenchmarkApplyDispenses(b *testing.B) {
	for _, fills := range []int{4, 100} {
		b.Run(fmt.Sprintf("fills=%d", fills), func(b *testing.B) {
			f := testFSM(b, b.TempDir())
			f.ApplyBatch([]*raft.Log{{Index: 1, Type: raft.LogCommand, Data: encodeJSONCommand(cmdGenesis, genesis{ClusterID: "c", Origin: "o.test/log"})}})
			const perEntry = 128
			prescriptions := (b.N+fills-1)/fills + perEntry
			salt := notary.NewSalt()
			type rx struct {
				c     notary.Commitment
				a     notary.Allowance
				chain []notary.ChainValue
				next  int
			}
			all := make([]*rx, prescriptions)
			var issue []notaryapi.Entry
			index := uint64(2)
			for i := range all {
				var n [8]byte
				binary.BigEndian.PutUint64(n[:], uint64(i))
				p := &rx{c: notary.Commitment(sha256.Sum256(n[:]))}
				p.a, _ = notary.NewAllowance(salt, p.c, fills)
				p.chain = []notary.ChainValue{notary.DispenseSeed(salt, p.c)}
				for range fills {
					p.chain = append(p.chain, notary.ChainStep(p.chain[len(p.chain)-1]))
				}
				all[i] = p
				issue = append(issue, notaryapi.Entry{Kind: notary.KindPrescription, Commitment: p.c, Allowance: &p.a})
				if len(issue) == 1000 || i == len(all)-1 {
					f.ApplyBatch([]*raft.Log{{Index: index, Type: raft.LogCommand, Data: encodeNotarize(1, issue)}})
					index++
					issue = issue[:0]
				}
			}
			// Each entry dispenses the next fill of 128 prescriptions.
			var cmds [][]byte
			var d uint64
			for done, p := 0, 0; done < b.N; p = (p + perEntry) % (len(all) - perEntry) {
				entries := make([]notaryapi.Entry, 0, perEntry)
				for _, r := range all[p : p+perEntry] {
					if r.next == fills || done == b.N {
						continue
					}
					r.next++
					d++
					var dc notary.Commitment
					binary.BigEndian.PutUint64(dc[:], d)
					dc[31] = 0xd
					proof := r.chain[fills-r.next]
					entries = append(entries, notaryapi.Entry{Kind: notary.KindDispense, Commitment: dc, Link: r.c, Fill: r.next, Proof: &proof})
					done++
				}
				cmds = append(cmds, encodeNotarize(2, entries))
			}
			b.ResetTimer()
			for _, cmd := range cmds {
				for _, r := range f.ApplyBatch([]*raft.Log{{Index: index, Type: raft.LogCommand, Data: cmd}}) {
					if res := r.(*applyResult); res.err != nil || res.refused != nil {
						b.Fatalf("%v %v", res.err, res.refused)
					}
				}
				index++
			}
		})
	}
}
