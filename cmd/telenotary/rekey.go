package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

const rekeySynopsis = `rekey --nodes URL[,URL...] --token-file FILE --id ID --signer-key FILE [flags]

Replaces the signing key of node ID with the key of --signer-key (make it
with telenotary keygen, on that node), as an operator: the cluster records
the new key, proven by a signature of it, and retires the old one at the
log's size. Receipts the old key signed keep verifying under the policy
(telenotary policy lists the retired key with the sizes it signed); its
signatures on larger checkpoints no longer count. Then restart node ID with
--signer-key set to the new key.`

func runRekey(ctx context.Context, env *environment, args []string) int {
	fs := newFlagSet(env, "rekey", rekeySynopsis)
	nodes := fs.String("nodes", "", "comma-separated API URLs of the cluster's nodes (required)")
	tokenFile := fs.String("token-file", "", "file (mode 0600) holding an operator token (required)")
	id := fs.String("id", "", "the member whose key to replace (required)")
	signerKey := fs.String("signer-key", "", "the member's new signer key file (mode 0600), from telenotary keygen (required)")
	caFile := fs.String("tls-ca", "", "CA certificates (PEM) of the nodes' API certificates")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to try")
	if err := parseFlagsOnly(fs, env, args, "nodes", "token-file", "id", "signer-key"); err != nil {
		return usageError(env.stderr, "rekey", err)
	}
	fail := func(err error) int { return usageError(env.stderr, "rekey", err) }
	token, err := readSecret(*tokenFile, "--token-file", 1)
	if err != nil {
		return fail(err)
	}
	skey, err := readSecret(*signerKey, "--signer-key", 1)
	if err != nil {
		return fail(err)
	}
	signer, vkey, err := notary.NewSigner(string(skey))
	if err != nil {
		return fail(fmt.Errorf("--signer-key %s: %w (make one with telenotary keygen)", *signerKey, err))
	}
	tlsConfig, err := clientTLS(*caFile, "--tls-ca")
	if err != nil {
		return fail(err)
	}
	if *timeout <= 0 {
		return fail(errors.New("--timeout must be positive"))
	}
	c := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: strings.Split(*nodes, ","), Token: string(token),
		HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig}}})
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	failed := func(err error) int { return failure(env.stderr, "rekey", err) }
	st, err := c.Status(ctx)
	if err != nil {
		return failed(fmt.Errorf("the cluster's status (an operator token shows its members): %w", err))
	}
	var m *notaryapi.Member
	for _, p := range st.Peers {
		if p.ID == *id {
			m = &notaryapi.Member{ID: p.ID, RaftAddr: p.RaftAddr, HTTPAddr: p.HTTPAddr, VerifierKey: vkey}
		}
	}
	if m == nil {
		return failed(fmt.Errorf("--id: %q is not a member of the cluster", *id))
	}
	proof, err := signer.Sign(notaryapi.MemberStatement(st.ClusterID, *m))
	if err != nil {
		return failed(err)
	}
	if err := c.Rekey(ctx, notaryapi.JoinRequest{Member: *m, ClusterID: st.ClusterID, KeyProof: proof}); err != nil {
		return failed(err)
	}
	fmt.Fprintf(env.stdout, "%s signs with %s from now on; its old key is retired (GET /v1/keys lists it with the sizes it signed).\nRestart %s with --signer-key %s, and publish the policy again (telenotary policy).\n", *id, vkey, *id, *signerKey)
	return exitOK
}
