package cluster

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// The raft log entries of a cluster start with a command byte.
const (
	cmdNotarize byte = 1 // a batch of entries with the leader's timestamp
	cmdGenesis  byte = 2 // the cluster's identity, first entry of every cluster
	cmdMember   byte = 3 // add or update a member's addresses and key
	cmdForget   byte = 4 // remove a member
)

// entryBytes bounds the encoding of one entry in a notarize command
// without lifecycle members.
const entryBytes = 2 + 2*notary.HashSize

// Flags of an entry in a notarize command.
const (
	flagLink      byte = 1 << 0 // a link follows the commitment
	flagAllowance byte = 1 << 1 // fills (2) and lock follow
	flagProof     byte = 1 << 2 // fill (2) and proof follow
	flagsKnown         = flagLink | flagAllowance | flagProof
)

// encodeNotarize encodes a batch: command, timestamp (ms, 8 bytes), count
// (uvarint), then each entry as kind (1), flags (1), commitment (32), and
// as flagged: link (32), allowance (fills (2), lock (30)), proof (fill
// (2), chain value (30)).
func encodeNotarize(ts int64, entries []notaryapi.Entry) []byte {
	b := make([]byte, 0, 1+8+binary.MaxVarintLen64+len(entries)*entryBytes)
	b = append(b, cmdNotarize)
	b = binary.BigEndian.AppendUint64(b, uint64(ts))
	b = binary.AppendUvarint(b, uint64(len(entries)))
	for _, e := range entries {
		flags := byte(0)
		if !e.Link.IsZero() {
			flags |= flagLink
		}
		if e.Allowance != nil {
			flags |= flagAllowance
		}
		if e.Proof != nil {
			flags |= flagProof
		}
		b = append(b, byte(e.Kind), flags)
		b = append(b, e.Commitment[:]...)
		if flags&flagLink != 0 {
			b = append(b, e.Link[:]...)
		}
		if flags&flagAllowance != 0 {
			b = binary.BigEndian.AppendUint16(b, uint16(e.Allowance.Fills))
			b = append(b, e.Allowance.Lock[:]...)
		}
		if flags&flagProof != 0 {
			b = binary.BigEndian.AppendUint16(b, uint16(e.Fill))
			b = append(b, e.Proof[:]...)
		}
	}
	return b
}

var errBadCommand = errors.New("malformed raft command")

// lifecycle is what an entry of a notarize command holds beyond its leaf:
// a prescription's allowance, or a dispense's or revocation's proof.
type lifecycle struct {
	entry     int // the entry's position in the command
	allowance *notary.Allowance
	fill      int
	proof     *notary.ChainValue
}

// decodeNotarize decodes a notarize command into leaves stamped with ts,
// and the lifecycle members of its entries (nil when none has any).
func decodeNotarize(b []byte) (ts int64, leaves []notary.Leaf, extra []lifecycle, err error) {
	if len(b) < 9 || b[0] != cmdNotarize {
		return 0, nil, nil, errBadCommand
	}
	ts = int64(binary.BigEndian.Uint64(b[1:]))
	n, k := binary.Uvarint(b[9:])
	if ts < 0 {
		return 0, nil, nil, errBadCommand
	}
	if k <= 0 || n > uint64(len(b)) {
		return 0, nil, nil, errBadCommand
	}
	b = b[9+k:]
	leaves = make([]notary.Leaf, n)
	for i := range leaves {
		if len(b) < 2+notary.HashSize {
			return 0, nil, nil, errBadCommand
		}
		l := &leaves[i]
		l.Kind, l.Timestamp = notary.Kind(b[0]), ts
		flags := b[1]
		if !l.Kind.Valid() || flags&^flagsKnown != 0 {
			return 0, nil, nil, errBadCommand
		}
		copy(l.Commitment[:], b[2:])
		b = b[2+notary.HashSize:]
		if flags&flagLink != 0 {
			if len(b) < notary.HashSize {
				return 0, nil, nil, errBadCommand
			}
			copy(l.Link[:], b)
			b = b[notary.HashSize:]
		}
		if flags&(flagAllowance|flagProof) == 0 {
			if l.Kind == notary.KindDispense || l.Kind == notary.KindRevocation {
				return 0, nil, nil, errBadCommand // without its proof
			}
			continue
		}
		x := lifecycle{entry: i}
		if flags&flagAllowance != 0 {
			if len(b) < 2+notary.ChainSize {
				return 0, nil, nil, errBadCommand
			}
			a := notary.Allowance{Fills: int(binary.BigEndian.Uint16(b))}
			copy(a.Lock[:], b[2:])
			x.allowance = &a
			b = b[2+notary.ChainSize:]
		}
		if flags&flagProof != 0 {
			if len(b) < 2+notary.ChainSize {
				return 0, nil, nil, errBadCommand
			}
			x.fill = int(binary.BigEndian.Uint16(b))
			var v notary.ChainValue
			copy(v[:], b[2:])
			x.proof = &v
			b = b[2+notary.ChainSize:]
		}
		extra = append(extra, x)
	}
	if len(b) != 0 {
		return 0, nil, nil, errBadCommand
	}
	return ts, leaves, extra, nil
}

func encodeJSONCommand(cmd byte, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("cluster: encode command: %v", err)) // only our own types
	}
	return append([]byte{cmd}, b...)
}
