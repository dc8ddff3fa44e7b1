package raftfix

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// flakyLogStore refuses writes while failing is set, as a full disk would.
type flakyLogStore struct {
	raft.LogStore
	failing atomic.Bool
}

func (s *flakyLogStore) StoreLogs(logs []*raft.Log) error {
	if s.failing.Load() {
		return errors.New("no space left on device (test)")
	}
	return s.LogStore.StoreLogs(logs)
}

func (s *flakyLogStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

type nopFSM struct{}

func (nopFSM) Apply(*raft.Log) any                 { return nil }
func (nopFSM) Snapshot() (raft.FSMSnapshot, error) { return nil, errors.New("no snapshots here") }
func (nopFSM) Restore(io.ReadCloser) error         { return nil }

// startRafts starts three raft nodes over loopback TCP, with in-memory
// stores, the transports wrapped by wrap; node 2's log store is flaky.
func startRafts(t *testing.T, wrap func(raft.Transport) raft.Transport, tune ...func(*raft.Config)) ([]*raft.Raft, *flakyLogStore) {
	t.Helper()
	return startRaftsWith(t, wrap, raft.NewInmemStore(), tune...)
}

// startRaftsWith is startRafts with node 0 (the leader) on log store
// leaderLogs.
func startRaftsWith(t *testing.T, wrap func(raft.Transport) raft.Transport, leaderLogs raft.LogStore, tune ...func(*raft.Config)) ([]*raft.Raft, *flakyLogStore) {
	t.Helper()
	var (
		trans []raft.Transport
		conf  raft.Configuration
	)
	for i := range 3 {
		tr, err := raft.NewTCPTransport("127.0.0.1:0", nil, 3, 2*time.Second, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		trans = append(trans, wrap(tr))
		conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(fmt.Sprint("n", i)), Address: tr.LocalAddr()})
	}
	flaky := &flakyLogStore{LogStore: raft.NewInmemStore()}
	var rafts []*raft.Raft
	for i := range 3 {
		cfg := raft.DefaultConfig()
		cfg.LocalID = conf.Servers[i].ID
		cfg.LogOutput = io.Discard
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 200*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
		if i > 0 {
			cfg.HeartbeatTimeout, cfg.ElectionTimeout = 5*time.Second, 5*time.Second // node 0 leads
		}
		for _, f := range tune {
			f(cfg)
		}
		var logs raft.LogStore = raft.NewInmemStore()
		switch i {
		case 0:
			logs = leaderLogs
		case 2:
			logs = flaky
		}
		r, err := raft.NewRaft(cfg, nopFSM{}, logs, raft.NewInmemStore(), raft.NewInmemSnapshotStore(), trans[i])
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if err := r.BootstrapCluster(conf).Error(); err != nil {
				t.Fatal(err)
			}
		}
		rafts = append(rafts, r)
		t.Cleanup(func() {
			r.Shutdown()
			if c, ok := trans[i].(raft.WithClose); ok {
				c.Close()
			}
		})
	}
	return rafts, flaky
}

// TestFollowerCatchesUpAfterRefusedAppends: a follower whose log store
// refuses appends for a moment, under a steady stream of writes, catches up
// once it takes them again, every time. hashicorp/raft's pipelined
// replication can stop sending to such a follower for good (its heartbeats
// go on, so nothing notices: https://github.com/hashicorp/raft/issues/612);
// the fault campaign found a node left "cannot append" after a full disk
// had healed. With Transport, the pipeline's answers are always taken, so
// the replication loop notices the refusal and goes back to sending.
func TestFollowerCatchesUpAfterRefusedAppends(t *testing.T) {
	rafts, flaky := startRafts(t, func(tr raft.Transport) raft.Transport { return NewTransport(tr) })
	checkCatchesUp(t, rafts, flaky)
}

func checkCatchesUp(t *testing.T, rafts []*raft.Raft, flaky *flakyLogStore) {
	t.Helper()
	leader := rafts[0]
	deadline := time.Now().Add(10 * time.Second)
	for leader.State() != raft.Leader {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop := make(chan struct{})
	writing := make(chan struct{})
	go func() { // a steady stream of writes, several in flight
		defer close(writing)
		for {
			select {
			case <-stop:
				return
			default:
			}
			leader.Apply([]byte("x"), time.Second)
			time.Sleep(200 * time.Microsecond)
		}
	}()
	defer func() { close(stop); <-writing }()
	for round := range 30 {
		flaky.failing.Store(true)
		failedAt := rafts[2].LastIndex()
		for rafts[0].LastIndex() < failedAt+50 {
			time.Sleep(time.Millisecond)
		}
		flaky.failing.Store(false)
		want := leader.LastIndex()
		deadline := time.Now().Add(5 * time.Second)
		for rafts[2].LastIndex() < want {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the follower is stuck at index %d, the leader at %d: replication to it stopped", round, rafts[2].LastIndex(), leader.LastIndex())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
