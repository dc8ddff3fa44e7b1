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

// entryBytes bounds the encoding of one entry in a notarize command.
const entryBytes = 2 + 2*notary.HashSize

// encodeNotarize encodes a batch: command, timestamp (ms, 8 bytes), count
// (uvarint), then each entry as kind (1), flags (1; bit 0: has link),
// commitment (32) and link (32, only when flagged).
func encodeNotarize(ts int64, entries []notaryapi.Entry) []byte {
	b := make([]byte, 0, 1+8+binary.MaxVarintLen64+len(entries)*entryBytes)
	b = append(b, cmdNotarize)
	b = binary.BigEndian.AppendUint64(b, uint64(ts))
	b = binary.AppendUvarint(b, uint64(len(entries)))
	for _, e := range entries {
		flags := byte(0)
		if !e.Link.IsZero() {
			flags = 1
		}
		b = append(b, byte(e.Kind), flags)
		b = append(b, e.Commitment[:]...)
		if flags == 1 {
			b = append(b, e.Link[:]...)
		}
	}
	return b
}

var errBadCommand = errors.New("malformed raft command")

// decodeNotarize decodes a notarize command into leaves stamped with ts.
func decodeNotarize(b []byte) (ts int64, leaves []notary.Leaf, err error) {
	if len(b) < 9 || b[0] != cmdNotarize {
		return 0, nil, errBadCommand
	}
	ts = int64(binary.BigEndian.Uint64(b[1:]))
	n, k := binary.Uvarint(b[9:])
	if ts < 0 {
		return 0, nil, errBadCommand
	}
	if k <= 0 || n > uint64(len(b)) {
		return 0, nil, errBadCommand
	}
	b = b[9+k:]
	leaves = make([]notary.Leaf, n)
	for i := range leaves {
		if len(b) < 2+notary.HashSize {
			return 0, nil, errBadCommand
		}
		l := &leaves[i]
		l.Kind, l.Timestamp = notary.Kind(b[0]), ts
		if !l.Kind.Valid() || b[1] > 1 {
			return 0, nil, errBadCommand
		}
		copy(l.Commitment[:], b[2:])
		hasLink := b[1] == 1
		b = b[2+notary.HashSize:]
		if hasLink {
			if len(b) < notary.HashSize {
				return 0, nil, errBadCommand
			}
			copy(l.Link[:], b)
			b = b[notary.HashSize:]
		}
	}
	if len(b) != 0 {
		return 0, nil, errBadCommand
	}
	return ts, leaves, nil
}

func encodeJSONCommand(cmd byte, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("cluster: encode command: %v", err)) // only our own types
	}
	return append([]byte{cmd}, b...)
}
