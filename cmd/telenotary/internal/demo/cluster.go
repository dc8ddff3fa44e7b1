package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/cmd/telenotary/internal/poll"
	"github.com/telenotary/telenotary/notary"
	"golang.org/x/mod/sumdb/note"
)

// clusterSize is how many nodes the demo runs.
const clusterSize = 3

// pharmacyTokenFile, in the run's directory, holds a token of the
// cluster's pharmacy role.
const pharmacyTokenFile = "pharmacy.tok"

// startCluster starts the nodes on loopback, the first bootstrapping the
// cluster and the others joining it, writes their verifier keys to
// keys.pub and waits until all of them are voters.
func (d *run) startCluster(ctx context.Context) error {
	d.operator = randomHex("operator")
	join := randomHex("join") // what a joining node keeps: it can only ask to join
	pharmacy := randomHex("pharmacy")
	tokens, err := auth.ParseTokens([]byte("submitter " + randomHex("submitter") + "\njoin " + join + "\noperator " + d.operator + "\npharmacy " + pharmacy + "\n"))
	if err != nil {
		return err
	}
	// A pharmacy's token, for trying telenotary dispense on the demo's
	// prescriptions (see the how-to).
	if err := os.WriteFile(filepath.Join(d.dir, pharmacyTokenFile), []byte(pharmacy+"\n"), 0o600); err != nil {
		return err
	}
	var keys strings.Builder
	fmt.Fprintf(&keys, "# verifier keys of the demo cluster's nodes (%s)\n", Origin)
	for i := 1; i <= clusterSize; i++ {
		vkey, err := d.startNode(ctx, i, tokens, join)
		if err != nil {
			return err
		}
		keys.WriteString(vkey + "\n")
	}
	d.keys = []byte(keys.String())
	if err := os.WriteFile(filepath.Join(d.dir, "keys.pub"), d.keys, 0o644); err != nil {
		return err
	}
	verifiers, err := notary.ParseVerifierKeys(d.keys)
	if err != nil {
		return err
	}
	d.policy = notary.Policy{Verifiers: verifiers, MinSignatures: 1, Origin: Origin}
	return d.waitVoters(ctx)
}

// startNode starts node i with a fresh key and returns its verifier key.
// Node 1 bootstraps the cluster and is waited for until it leads; the
// others join it.
func (d *run) startNode(ctx context.Context, i int, tokens *auth.Tokens, joinToken string) (verifierKey string, err error) {
	id := fmt.Sprintf("demo-node-%d", i)
	skey, vkey, err := note.GenerateKey(rand.Reader, id)
	if err != nil {
		return "", err
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return "", err
	}
	cfg := cluster.DefaultConfig()
	cfg.ID, cfg.DataDir = id, filepath.Join(d.dir, id)
	cfg.RaftAddr, cfg.HTTPAddr, cfg.InsecureRaft = "127.0.0.1:0", "127.0.0.1:0", true // a demo on one machine: loopback only
	cfg.Signer, cfg.VerifierKey, cfg.Tokens = signer, vkey, tokens
	cfg.Logger = d.logger(id)
	if i == 1 {
		cfg.Bootstrap, cfg.Origin = true, Origin
	} else {
		cfg.Join, cfg.JoinToken = d.urls[:1], joinToken
	}
	n, err := cluster.New(ctx, cfg)
	if err != nil {
		return "", fmt.Errorf("start %s: %w", id, err)
	}
	d.nodes = append(d.nodes, n)
	d.urls = append(d.urls, "http://"+n.HTTPAddr())
	if i == 1 {
		if err := poll.Until(ctx, 30*time.Second, n.Ready); err != nil {
			return "", fmt.Errorf("%s did not become leader: %w", id, err)
		}
	}
	return vkey, nil
}

// waitVoters waits until every node is a voter that answers (the peers
// are an operator's to see).
func (d *run) waitVoters(ctx context.Context) error {
	client := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: d.urls, Token: d.operator})
	return poll.Until(ctx, 60*time.Second, func() bool {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		st, err := client.Status(sctx)
		if err != nil {
			return false
		}
		voters := 0
		for _, p := range st.Peers {
			if p.Suffrage == "Voter" {
				voters++
			}
		}
		return voters == clusterSize
	})
}

// stopCluster stops the nodes started so far, the last started first.
func (d *run) stopCluster() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := len(d.nodes) - 1; i >= 0; i-- {
		d.nodes[i].Close(ctx)
	}
}

// randomHex returns prefix, a dash and 32 random hex digits: a token.
func randomHex(prefix string) string {
	var b [16]byte
	rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}
