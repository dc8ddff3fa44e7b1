// Package raftfix holds telenotary's changes to hashicorp/raft's behaviour,
// made from outside through its public interfaces, each found by the fault
// campaign (docs/RELIABILITY.md) and tested here:
//
//   - [Transport] clamps the commit index a follower learns to the last
//     entry of the AppendEntries request that carries it (rule 5 of the
//     receiver's steps in the Raft paper's figure 2; hashicorp/raft takes
//     its own last index, so a deposed leader could apply an entry of its
//     old term that the new leader replaced), and hands heartbeats to
//     raft's main loop instead of the transport's fast path, where a
//     heartbeat from a new leader could raise the term under a leader
//     writing a batch (https://github.com/hashicorp/raft/issues/695 and
//     https://github.com/hashicorp/raft/pull/701). Both happened as forks:
//     two nodes applying different entries at one index. Its pipelines
//     always take the answers of the network transport's, so a follower
//     that refused an append (a full disk) is sent entries again once it
//     takes them, where hashicorp/raft's pipelined replication can block
//     for good and leave it behind forever, heartbeats and all
//     (https://github.com/hashicorp/raft/issues/612). And it can push the
//     commit index to the followers at once ([Transport.PushCommit]):
//     hashicorp/raft tells a follower that an entry is committed only with
//     the next entry or a CommitTimeout later, and has no hook to do it
//     sooner; a leader that wants its followers' signatures over what it
//     just committed would wait that long (50–100 ms) on a quiet cluster.
//     And it can send a leader's new entries to the followers while the
//     leader writes them to its own log ([Transport.SendAhead]), where
//     hashicorp/raft replicates only once that write returns, so that a
//     lone write waits for one fsync of a majority, not two in a row.
//   - [LeaderWatch] makes a follower notice a silent leader a randomized
//     timeout after its last message, as the Raft paper has it, where
//     hashicorp/raft's re-armed timer notices it anywhere from one to
//     almost three heartbeat timeouts later; and lets a follower whose
//     leader is silent grant a pre-vote to an up-to-date candidate.
//
// A node uses both unless its configuration turns them off
// (cluster.Config.UpstreamRaft), for comparing with raft as released or
// once upstream fixes the holes. cluster/DESIGN.md explains the why.
package raftfix
