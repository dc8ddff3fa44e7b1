package cluster_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/telenotary/telenotary/cluster"
)

// TestRaftNeedsTLS: a node refuses to start with plain raft unless it is
// told to (InsecureRaft) and its raft addresses are on loopback, before it
// writes anything.
func TestRaftNeedsTLS(t *testing.T) {
	c := newTestCluster(t)
	for i, tc := range []struct {
		name     string
		mutate   func(*cluster.Config)
		want     error
		starting bool
	}{
		{"no TLS, not asked for", func(cfg *cluster.Config) { cfg.InsecureRaft = false }, cluster.ErrRaftTLSRequired, false},
		{"insecure on all interfaces", func(cfg *cluster.Config) { cfg.RaftAddr = "0.0.0.0:0" }, cluster.ErrInsecureRaftOffLoopback, false},
		{"insecure advertising a LAN address", func(cfg *cluster.Config) { cfg.RaftAdvertise = "10.0.0.1:7000" }, cluster.ErrInsecureRaftOffLoopback, false},
		{"insecure on localhost", func(cfg *cluster.Config) { cfg.RaftAddr = "localhost:0" }, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := c.config(fmt.Sprintf("node-%d", i+1))
			cfg.Bootstrap, cfg.Origin = true, testOrigin
			tc.mutate(&cfg)
			n, err := cluster.New(context.Background(), cfg)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if n != nil {
				ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
				defer cancel()
				n.Close(ctx)
				return
			}
			if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a refused node left its data directory: %v", err)
			}
		})
	}
}

// stream is a raft.StreamLayer that dials with dial, for a client that
// speaks raft to a node.
type stream struct {
	net.Listener
	dial func(addr string, timeout time.Duration) (net.Conn, error)
}

func (s stream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return s.dial(string(addr), timeout)
}

// TestRaftRefusesStrangers: over mutual TLS, raw raft RPCs (AppendEntries
// with a leaf, RequestVote, InstallSnapshot) from a client without a valid
// certificate are refused and change nothing, while the same RPCs with a
// certificate of the cluster's CA reach raft (so the test can tell); a
// connection that stalls before its handshake is dropped at the deadline.
func TestRaftRefusesStrangers(t *testing.T) {
	raftCA := newTestCA(t, "raft-ca")
	c := newTestCluster(t)
	cfg := c.config("node-1")
	cfg.Bootstrap, cfg.Origin = true, testOrigin
	cfg.InsecureRaft = false
	cfg.RaftTLS = cluster.MutualTLS(raftCA.issue(t, "node-1"), raftCA.pool)
	cfg.RaftHandshakeTimeout = time.Second
	n := c.start(cfg)
	c.waitFor("node ready", n.Ready)
	before := c.waitConverged()

	listener, err := net.Listen("tcp", "127.0.0.1:0") // the client's own side, unused
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	dialTLS := func(certs []tls.Certificate) func(string, time.Duration) (net.Conn, error) {
		return func(addr string, timeout time.Duration) (net.Conn, error) {
			return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", addr, &tls.Config{RootCAs: raftCA.pool, Certificates: certs, MinVersion: tls.VersionTLS13})
		}
	}
	plain := func(addr string, timeout time.Duration) (net.Conn, error) {
		return net.DialTimeout("tcp", addr, timeout)
	}
	leaf := []byte{1} // a notarize command's first byte; the rest does not matter: it must never be read
	rpcs := func(trans *raft.NetworkTransport) []error {
		target := raft.ServerAddress(n.RaftAddr())
		var errs []error
		var ae raft.AppendEntriesResponse
		errs = append(errs, trans.AppendEntries("node-1", target, &raft.AppendEntriesRequest{
			RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("evil"), Addr: []byte("evil")}, Term: 1000, PrevLogEntry: 0,
			Entries: []*raft.Log{{Index: 1, Term: 1000, Type: raft.LogCommand, Data: leaf}}, LeaderCommitIndex: 1,
		}, &ae))
		var rv raft.RequestVoteResponse
		errs = append(errs, trans.RequestVote("node-1", target, &raft.RequestVoteRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("evil"), Addr: []byte("evil")}, Term: 1000, LastLogIndex: 1 << 40, LastLogTerm: 1000}, &rv))
		var is raft.InstallSnapshotResponse
		errs = append(errs, trans.InstallSnapshot("node-1", target, &raft.InstallSnapshotRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("evil"), Addr: []byte("evil")},
			SnapshotVersion: 1, Term: 1000, LastLogIndex: 1 << 40, LastLogTerm: 1000, Size: 4}, &is, strings.NewReader("snap")))
		return errs
	}
	for name, dial := range map[string]func(string, time.Duration) (net.Conn, error){
		"plain TCP":         plain,
		"no client cert":    dialTLS(nil),
		"another CA's cert": dialTLS([]tls.Certificate{newTestCA(t, "rogue").issue(t, "rogue")}),
	} {
		trans := raft.NewNetworkTransport(stream{Listener: listener, dial: dial}, 1, 5*time.Second, io.Discard)
		for i, err := range rpcs(trans) {
			if err == nil {
				t.Errorf("%s: raft RPC %d was answered", name, i)
			}
		}
		trans.Close()
	}
	if after := c.waitConverged(); after != before {
		t.Fatalf("refused RPCs changed the log: %+v -> %+v", before, after)
	}
	if st := n.Status(); st.State != "Leader" || st.Term > 100 {
		t.Fatalf("refused RPCs changed raft: %s in term %d", st.State, st.Term)
	}

	// The control: with the cluster's certificate the same RequestVote
	// reaches raft and is answered (refused on its merits).
	trusted := raft.NewNetworkTransport(stream{Listener: listener, dial: dialTLS([]tls.Certificate{raftCA.issue(t, "node-9")})}, 1, 5*time.Second, io.Discard)
	defer trusted.Close()
	var rv raft.RequestVoteResponse
	if err := trusted.RequestVote("node-1", raft.ServerAddress(n.RaftAddr()), &raft.RequestVoteRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("node-9"), Addr: []byte("node-9")}, Term: 1, LastLogIndex: 0, LastLogTerm: 0}, &rv); err != nil {
		t.Fatalf("a member's certificate: %v (the refusals above prove nothing)", err)
	}

	// A connection that says nothing is dropped at the handshake deadline.
	conn, err := net.Dial("tcp", n.RaftAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a stalled connection: %v, want the node to close it", err)
	}
}
