package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

const policySynopsis = `policy --nodes URL[,URL...] [--min-signatures K] [flags]

Prints the cluster's current trust policy (docs/FORMATS.md §9) on stdout:
the log's origin, the node keys the nodes serve at /v1/keys (each from the
log size it signs from) and how many must sign (a majority of the nodes
unless --min-signatures), with its fingerprint in a comment. Every node
listed is asked, and they must agree. An operator checks it, adds the
witnesses and their quorum if any, and publishes it with its fingerprint;
verifiers pin it (telenotary verify --policy, or the /verify/ page).`

// policyKeySince is the comment /v1/keys writes before each key, and
// policyRetired the comment it writes for each retired key.
var (
	policyKeySince = regexp.MustCompile(`^# node \S+, signing from log size (0|[1-9][0-9]{0,19})$`)
	policyRetired  = regexp.MustCompile(`^# retired key of node \S+, signed log sizes (0|[1-9][0-9]{0,19}) to (0|[1-9][0-9]{0,19}): (\S+)$`)
)

func runPolicy(ctx context.Context, env *environment, args []string) int {
	fs := newFlagSet(env, "policy", policySynopsis)
	nodes := fs.String("nodes", "", "comma-separated API URLs of the cluster's nodes (required)")
	minSigs := fs.Int("min-signatures", 0, "node signatures the policy requires (default: a majority of the nodes)")
	caFile := fs.String("tls-ca", "", "CA certificates (PEM) of the nodes' API certificates")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for each node's answers")
	if err := parseFlagsOnly(fs, env, args, "nodes"); err != nil {
		return usageError(env.stderr, "policy", err)
	}
	urls := strings.Split(*nodes, ",")
	for _, u := range urls {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return usageError(env.stderr, "policy", fmt.Errorf("--nodes: %q is not an http:// or https:// URL", u))
		}
	}
	if *minSigs < 0 {
		return usageError(env.stderr, "policy", fmt.Errorf("--min-signatures: %d is below 1", *minSigs))
	}
	if *timeout <= 0 {
		return usageError(env.stderr, "policy", errors.New("--timeout must be positive"))
	}
	tlsConfig, err := clientTLS(*caFile, "--tls-ca")
	if err != nil {
		return usageError(env.stderr, "policy", err)
	}
	httpClient := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig, ResponseHeaderTimeout: *timeout}}

	var origin string
	var keys []policyKey
	for i, u := range urls {
		o, k, err := nodePolicy(ctx, httpClient, u, *timeout)
		if err != nil {
			return failure(env.stderr, "policy", fmt.Errorf("%s: %w", u, err))
		}
		if i > 0 && (o != origin || !slices.Equal(k, keys)) {
			return failure(env.stderr, "policy", fmt.Errorf("%s and %s disagree on the log's origin or keys; ask again when the cluster has settled", urls[0], u))
		}
		origin, keys = o, k
	}
	names := map[string]bool{} // of the keys in use: the signatures a majority needs
	for _, k := range keys {
		if !k.retired {
			names[strings.SplitN(k.vkey, "+", 2)[0]] = true
		}
	}
	k := *minSigs
	if k == 0 {
		k = len(names)/2 + 1
	}
	var text strings.Builder
	fmt.Fprintf(&text, "origin %s\n", origin)
	for _, key := range keys {
		fmt.Fprintf(&text, "node %s", key.vkey)
		if key.from > 0 || key.retired {
			fmt.Fprintf(&text, " from %d", key.from)
		}
		if key.retired {
			fmt.Fprintf(&text, " until %d", key.until)
		}
		text.WriteString("\n")
	}
	fmt.Fprintf(&text, "node-signatures %d\n", k)
	pf, err := notary.ParsePolicy([]byte(text.String()))
	if err != nil {
		if *minSigs > 0 {
			return usageError(env.stderr, "policy", fmt.Errorf("--min-signatures %d: %w", *minSigs, err))
		}
		return failure(env.stderr, "policy", fmt.Errorf("the cluster's keys make no policy: %w", err))
	}
	fmt.Fprintf(env.stdout, "# trust policy of %s, as its %d node(s) served it on %s\n", origin, len(urls), time.Now().UTC().Format(time.DateOnly))
	fmt.Fprintf(env.stdout, "# fingerprint %s\n", pf.Fingerprint())
	env.stdout.Write(pf.Canonical)
	return exitOK
}

// policyKey is a node key as /v1/keys serves it.
type policyKey struct {
	vkey    string
	from    uint64
	retired bool   // no longer in use: it signed the sizes from to until
	until   uint64 // a retired key's last size
}

// nodePolicy asks one node for the log's origin (from its checkpoint, which
// must be signed by one of the keys it serves) and its keys.
func nodePolicy(ctx context.Context, hc *http.Client, url string, timeout time.Duration) (string, []policyKey, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: []string{url}, HTTPClient: hc})
	text, err := c.KeysText(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("GET /v1/keys: %w", err)
	}
	keys, err := parseServedKeys(text)
	if err != nil {
		return "", nil, fmt.Errorf("GET /v1/keys: %w", err)
	}
	verifiers, err := notary.ParseVerifierKeys(text)
	if err != nil {
		return "", nil, fmt.Errorf("GET /v1/keys: %w", err)
	}
	msg, err := c.Checkpoint(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("GET /v1/checkpoint: %w", err)
	}
	cp, err := notary.OpenCheckpoint(msg, notary.Policy{Verifiers: verifiers, MinSignatures: 1})
	if err != nil {
		return "", nil, fmt.Errorf("its checkpoint is not signed by a key it serves: %w", err)
	}
	slices.SortFunc(keys, func(a, b policyKey) int { return strings.Compare(a.vkey, b.vkey) })
	return cp.Origin, keys, nil
}

// parseServedKeys reads /v1/keys: each key with the log size from which it
// signs, from the comment before it.
func parseServedKeys(text []byte) ([]policyKey, error) {
	var keys []policyKey
	var since *uint64
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := policyKeySince.FindStringSubmatch(line); m != nil {
			n, err := strconv.ParseUint(m[1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", line, err)
			}
			since = &n
			continue
		}
		if m := policyRetired.FindStringSubmatch(line); m != nil {
			from, err1 := strconv.ParseUint(m[1], 10, 64)
			until, err2 := strconv.ParseUint(m[2], 10, 64)
			if err := errors.Join(err1, err2); err != nil {
				return nil, fmt.Errorf("%q: %w", line, err)
			}
			keys = append(keys, policyKey{vkey: m[3], from: from, retired: true, until: until})
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k := policyKey{vkey: line}
		if since != nil {
			k.from = *since
		}
		keys = append(keys, k)
		since = nil
	}
	return keys, sc.Err()
}
