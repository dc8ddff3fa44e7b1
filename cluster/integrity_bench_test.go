package cluster

import (
	"encoding/binary"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// BenchmarkCheckServed measures the check a node makes of every receipt
// before it serves it, in a log of 2^20 leaves (20 proof hashes).
func BenchmarkCheckServed(b *testing.B) {
	dir := b.TempDir()
	f := testFSM(b, dir)
	f.ApplyBatch([]*raft.Log{{Index: 1, Type: raft.LogCommand, Data: encodeJSONCommand(cmdGenesis, genesis{ClusterID: "0123456789abcdef0123456789abcdef", Origin: "bench.test/log"})}})
	const size, batch = 1 << 20, 1 << 14
	entries := make([]notaryapi.Entry, batch)
	for start := 0; start < size; start += batch {
		for i := range entries {
			binary.BigEndian.PutUint64(entries[i].Commitment[:], uint64(start+i))
			entries[i].Kind = notary.KindDocument
		}
		f.ApplyBatch([]*raft.Log{{Index: uint64(2 + start/batch), Type: raft.LogCommand, Data: encodeNotarize(1795262400000, entries)}})
	}
	cp := f.Checkpoint()
	if cp == nil || cp.Size != size {
		b.Fatalf("checkpoint %+v", cp)
	}
	var r *notary.Receipt
	f.ReadLog(func(l *notary.Log) error {
		var err error
		r, err = l.Receipt(size/3, *cp)
		return err
	})
	b.ResetTimer()
	for b.Loop() {
		if err := f.checkServed(r, *cp); err != nil {
			b.Fatal(err)
		}
	}
}
