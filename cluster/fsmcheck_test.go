package cluster_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"golang.org/x/mod/sumdb/note"
)

// TestFSMRefusesBadCommands: hand-made raft commands applied through the
// leader of a real cluster, as someone with raft access could, that are
// malformed, add a member with a forged key or another member's key, or
// break the genesis, are refused by every node alike: counted, the log
// and the keys unchanged, the same root everywhere. A valid member
// command, the control, is taken.
func TestFSMRefusesBadCommands(t *testing.T) {
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	c.join("node-2", n1)
	c.join("node-3", n1)
	c.waitVoters(3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := clientFor(n1).Notarize(ctx, entryOf("before", 0)); err != nil {
		t.Fatal(err)
	}
	before := c.waitConverged()
	keysBefore, err := httpGet(n1.url + "/v1/keys")
	if err != nil {
		t.Fatal(err)
	}
	clusterID := n1.Status().ClusterID

	// A stranger's key, and what it signs.
	skey, vkey, err := note.GenerateKey(nil, "stranger")
	if err != nil {
		t.Fatal(err)
	}
	stranger, _ := note.NewSigner(skey)
	member := func(id, key string, signer note.Signer) []byte {
		m := notaryapi.Member{ID: id, RaftAddr: "127.0.0.1:9", HTTPAddr: "http://127.0.0.1:9", VerifierKey: key}
		proof, err := signer.Sign(notaryapi.MemberStatement(clusterID, m))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(struct {
			notaryapi.Member
			KeyProof []byte `json:"key_proof"`
		}{m, proof})
		return append([]byte{cluster.CmdMember}, b...)
	}
	jsonCmd := func(cmd byte, v any) []byte {
		b, _ := json.Marshal(v)
		return append([]byte{cmd}, b...)
	}
	notarize := func(kind byte) []byte {
		b := []byte{cluster.CmdNotarize}
		b = binary.BigEndian.AppendUint64(b, uint64(time.Now().UnixMilli()))
		b = append(b, 1, kind, 0)
		return append(b, make([]byte, 32)...)
	}
	n1key := n1.cfg.VerifierKey
	bad := []struct {
		name string
		cmd  []byte
	}{
		{"member id with a space", member("node 9", vkey, stranger)},
		{"forged key: node-1's key without node-1's proof", member("node-9", n1key, stranger)},
		{"proof by another key", member("node-9", vkey, n1.cfg.Signer)},
		{"node-1's key under another id", member("node-9", n1key, n1.cfg.Signer)},
		{"not a verifier key", member("node-9", "not-a-key", stranger)},
		{"member with an unknown field", append(member("node-9", vkey, stranger)[:len(member("node-9", vkey, stranger))-1], []byte(`,"admin":true}`)...)},
		{"member that is not JSON", []byte{cluster.CmdMember, '{'}},
		{"a second genesis", jsonCmd(cluster.CmdGenesis, map[string]string{"cluster_id": "0123456789abcdef0123456789abcdef", "origin": "evil.example/log"})},
		{"forget a member that is not", jsonCmd(cluster.CmdForget, "node-9")},
		{"unknown command", []byte{9, '{', '}'}},
		{"notarize an unknown kind", notarize(200)},
		{"notarize cut short", notarize(byte(notary.KindDocument))[:20]},
	}
	for _, tc := range bad {
		// A leader lost on a starved machine is asked again: only the
		// FSM's answer counts.
		err := cluster.Propose(c.waitLeader().Node, tc.cmd)
		for tries := 0; tries < 10 && isLeadershipError(err); tries++ {
			err = cluster.Propose(c.waitLeader().Node, tc.cmd)
		}
		if !errors.Is(err, cluster.ErrRefused) {
			t.Errorf("%s: %v, want a refusal", tc.name, err)
		}
	}
	c.waitFor("every node to refuse every command", func() bool {
		for _, n := range c.list() {
			if cluster.RefusedCommands(n.Node) != uint64(len(bad)) {
				return false
			}
		}
		return true
	})
	if after := c.waitConverged(); after != before {
		t.Fatalf("refused commands changed the log: %+v -> %+v", before, after)
	}
	for _, n := range c.list() {
		if keys, err := httpGet(n.url + "/v1/keys"); err != nil || keys != keysBefore {
			t.Fatalf("%s serves keys %q (%v), want %q", n.cfg.ID, keys, err, keysBefore)
		}
	}

	// The control: a stranger that proves its key is taken as a member, on
	// every node, from the log size it joined at.
	if err := cluster.Propose(c.waitLeader().Node, member("node-9", vkey, stranger)); err != nil {
		t.Fatalf("a valid member command: %v", err)
	}
	c.waitFor("every node to list the new key", func() bool {
		for _, n := range c.list() {
			if keys, err := httpGet(n.url + "/v1/keys"); err != nil || !containsLine(keys, "# node node-9, signing from log size 1") || !containsLine(keys, vkey) {
				return false
			}
		}
		return true
	})
}

// isLeadershipError reports whether a proposal failed for want of a leader,
// not for its content.
func isLeadershipError(err error) bool {
	return errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress)
}
