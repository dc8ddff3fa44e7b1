package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

const verifySynopsis = `verify BUNDLE --keys FILE [--min-signatures K] [--origin ORIGIN]
       telenotary verify BUNDLE --policy FILE
       telenotary verify BUNDLE ... --checkpoint FILE --consistency FILE
       telenotary verify --receipt FILE --document FILE [--raw] --salt FILE --keys FILE
       telenotary verify --receipt FILE --commitment HEX --keys FILE
       telenotary verify BUNDLE ... --nodes URL[,URL...] [--save-status FILE]
       telenotary verify BUNDLE ... --status FILE
       telenotary verify --status FILE --keys FILE

--policy FILE is a trust policy (docs/FORMATS.md §9: origin, node keys, how
many must sign, witnesses and their quorum), pinned out of band, instead of
--keys, --min-signatures and --origin; its fingerprint is printed.

--checkpoint and --consistency also check, online, that the log has not
rewritten the history the receipt is in: a newer signed checkpoint (as GET
/v1/checkpoint serves it) and the consistency proof from the receipt's
checkpoint to it (the JSON answer of GET
/v1/proofs/consistency?from=<receipt's size>&to=<newer size>, or a JSON
array of its hashes), docs/FORMATS.md §8 step 8.

For a prescription's bundle, --nodes also asks the cluster for the
prescription's status (GET /v1/prescriptions/{commitment}/status, a
linearizable read: active, fills used of those allowed, or revoked; when
the policy asks for more than one signature, with its checkpoint signed by
that many nodes, ?signatures=K) and verifies it as it verifies a receipt:
every receipt in it under the same trust, proven into one checkpoint, its
allowance made with the bundle's salt. --save-status FILE keeps the answer,
and --status FILE verifies a kept answer offline later (with its bundle, or
alone). Without either, the status is not checked, and verify says so. A
status holds as of its checkpoint.

Prints VALID and what the receipt proves, or INVALID and why, with the
outcomes of docs/FORMATS.md §8. Exit status: 0 VALID; 1 INVALID, including
"malformed input" for a bundle, receipt, document or salt file that was read
but is not one; 2 a usage error or a file that cannot be read (missing, not
permitted), or a keys file that is not one: nothing was verified.`

// maxInputFile bounds every file verify reads.
const maxInputFile = notary.MaxBundleSize

func runVerify(ctx context.Context, env *environment, args []string) int {
	fs := newFlagSet(env, "verify", verifySynopsis)
	trust := defineTrustFlags(fs)
	receiptFile := fs.String("receipt", "", "a receipt file, when document, salt and receipt come separately")
	docFile := fs.String("document", "", "the document the receipt is for (with --receipt)")
	saltFile := fs.String("salt", "", "file holding the document's salt, 64 hex digits (with --document)")
	commitment := fs.String("commitment", "", "the commitment, 64 hex digits, when the document is not at hand (with --receipt)")
	raw := fs.Bool("raw", false, "the --document is committed byte for byte, not as canonical JSON")
	newerFile := fs.String("checkpoint", "", "a newer signed checkpoint of the log, to check with --consistency that the receipt's history was kept")
	proofFile := fs.String("consistency", "", "the consistency proof from the receipt's checkpoint to --checkpoint (the API's JSON answer, or a JSON array of hashes)")
	var so statusOptions
	fs.StringVar(&so.nodes, "nodes", "", "comma-separated API URLs of the cluster's nodes: for a prescription's bundle, fetch and verify its status (online)")
	fs.StringVar(&so.caFile, "tls-ca", "", "CA certificates (PEM) of the nodes' API certificates (with --nodes)")
	fs.StringVar(&so.save, "save-status", "", "with --nodes: write the status answer to this file, to verify offline later with --status")
	fs.StringVar(&so.file, "status", "", "a prescription's status answer, kept from GET /v1/prescriptions/{commitment}/status (or --save-status), to verify offline")
	fs.DurationVar(&so.timeout, "timeout", 10*time.Second, "with --nodes: how long to try the cluster")
	pos, err := parseFlags(fs, env, args)
	if err != nil {
		return usageError(env.stderr, "verify", err)
	}
	fail := func(err error) int { return usageError(env.stderr, "verify", err) }

	policy, fingerprint, v, err := trust.load(fs)
	if err != nil {
		return fail(err)
	}

	// A file that cannot be read is a usage error; one that was read but is
	// not what it should be is the outcome "malformed input", INVALID.
	check := func(err error) int {
		if errors.Is(err, notary.ErrMalformed) {
			return invalid(env.stdout, err)
		}
		return fail(err)
	}
	if (*newerFile == "") != (*proofFile == "") {
		return fail(errors.New("--checkpoint and --consistency go together: the newer checkpoint and the proof that leads to it"))
	}
	var newer []byte
	var proof []notary.Hash
	if *newerFile != "" {
		if newer, err = readInput(*newerFile, "newer checkpoint"); err != nil {
			return check(err)
		}
		p, err := readInput(*proofFile, "consistency proof")
		if err != nil {
			return check(err)
		}
		if proof, err = parseConsistencyProof(p); err != nil {
			return invalid(env.stdout, fmt.Errorf("consistency proof %s: %w", *proofFile, err))
		}
	}
	switch {
	case so.nodes != "" && so.file != "":
		return fail(errors.New("--nodes and --status exclude each other: check the status online, or a kept answer offline"))
	case so.save != "" && so.nodes == "":
		return fail(errors.New("--save-status needs --nodes: it keeps the answer the cluster gives"))
	case (so.nodes != "" || so.file != "") && *receiptFile != "":
		return fail(errors.New("a prescription's status is checked with its bundle (or, with --status, alone), not with --receipt"))
	case so.nodes != "" && len(pos) == 0:
		return fail(errors.New("--nodes checks the status of a bundle's prescription: give the bundle"))
	case so.timeout <= 0:
		return fail(errors.New("--timeout must be positive"))
	}
	if len(pos) == 0 && so.file != "" && *receiptFile == "" && *docFile == "" && *saltFile == "" && *commitment == "" && newer == nil {
		return checkStatus(ctx, env, v, policy.MinSignatures, nil, so)
	}
	var res *notary.Result
	var bundle *notary.Bundle
	switch {
	case len(pos) == 1 && *receiptFile == "" && *docFile == "" && *saltFile == "" && *commitment == "":
		b, err := readInput(pos[0], "bundle")
		if err != nil {
			return check(err)
		}
		if bundle, err = notary.ParseBundle(b); err != nil {
			return invalid(env.stdout, fmt.Errorf("bundle %s: %w", pos[0], err))
		}
		doc, err := bundle.Canonical()
		if err != nil {
			return invalid(env.stdout, &notary.VerifyError{Err: notary.ErrMalformed, Detail: err.Error()})
		}
		res, err = v.Verify(notary.Claim{Receipt: &bundle.Receipt, Document: doc, Salt: bundle.Salt, Newer: newer, Consistency: proof})
		if err != nil {
			return invalid(env.stdout, err)
		}
	case len(pos) == 0 && *receiptFile != "":
		claim, err := separateClaim(*receiptFile, *docFile, *saltFile, *commitment, *raw)
		if err != nil {
			return check(err)
		}
		claim.Newer, claim.Consistency = newer, proof
		if res, err = v.Verify(claim); err != nil {
			if *commitment != "" && errors.Is(err, notary.ErrCommitmentMismatch) {
				// Only the commitment is at hand: say nothing of a
				// document or a salt.
				fmt.Fprintln(env.stdout, "INVALID: the commitment given does not match this receipt: the receipt was issued for another commitment, or altered")
				fmt.Fprintf(env.stdout, "  detail: commitment mismatch: --commitment is %s, the receipt says %s\n", claim.Commitment, claim.Receipt.Leaf.Commitment)
				return exitInvalid
			}
			return invalid(env.stdout, err)
		}
	default:
		return fail(errors.New("give one bundle file, or --receipt with --document and --salt, or --receipt with --commitment"))
	}
	printValid(env.stdout, res, policy.MinSignatures)
	if newer != nil {
		fmt.Fprintln(env.stdout, "  history:    a newer checkpoint, signed as the policy requires, extends the receipt's (consistency proof checked)")
	}
	if fingerprint != "" {
		if len(res.Cosigners) > 0 {
			fmt.Fprintf(env.stdout, "  witnesses:  %s\n", strings.Join(res.Cosigners, ", "))
		}
		fmt.Fprintf(env.stdout, "  trust:      pinned policy %s\n", fingerprint)
	}
	if res.Leaf.Kind == notary.KindPrescription && bundle != nil {
		return checkStatus(ctx, env, v, policy.MinSignatures, bundle, so)
	}
	if so.nodes != "" || so.file != "" {
		fmt.Fprintf(env.stdout, "  status:     none: the receipt is of a %s, and only a prescription has a status\n", res.Leaf.Kind)
	}
	return exitOK
}

// statusOptions are verify's flags for a prescription's status.
type statusOptions struct {
	nodes, caFile string // fetch it online
	save          string // and keep the answer
	file          string // or verify a kept answer
	timeout       time.Duration
}

// checkStatus verifies a prescription's status answer, fetched from the
// nodes or read from a file, with bundle (nil for an answer verified
// alone), and prints it; without nodes or file, it says the status was not
// checked. A status that does not verify is INVALID; a cluster that cannot
// be reached a failure.
func checkStatus(ctx context.Context, env *environment, v *notary.Verifier, minSigs int, bundle *notary.Bundle, so statusOptions) int {
	var data []byte
	switch {
	case so.file != "":
		b, err := readInput(so.file, "status answer")
		if errors.Is(err, notary.ErrMalformed) {
			return statusInvalid(env.stdout, fmt.Errorf("status answer %s: %w", so.file, err))
		}
		if err != nil {
			return usageError(env.stderr, "verify", err)
		}
		data = b
	case so.nodes != "":
		tlsConfig, err := clientTLS(so.caFile, "--tls-ca")
		if err != nil {
			return usageError(env.stderr, "verify", err)
		}
		client := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: strings.Split(so.nodes, ","),
			HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig}}})
		ctx, cancel := context.WithTimeout(ctx, so.timeout)
		defer cancel()
		// As many signatures as the policy needs: the answering node has
		// the others sign the answer's checkpoint (a node that cannot
		// gather them does not answer).
		st, err := client.PrescriptionStatusSigned(ctx, bundle.Receipt.Leaf.Commitment, true, max(minSigs, 1))
		switch {
		case errors.Is(err, notaryapi.ErrNotFound):
			fmt.Fprintln(env.stdout, "  status:     unknown: the cluster has not logged this prescription (INVALID for a log that issued its receipt)")
			return exitInvalid
		case errors.Is(err, notary.ErrMalformed):
			return statusInvalid(env.stdout, fmt.Errorf("the cluster's status answer: %w", err))
		case err != nil:
			fmt.Fprintf(env.stdout, "  status:     not checked: the cluster did not answer: %v\n", err)
			return exitFailure
		}
		if data, err = json.Marshal(st); err != nil {
			return failure(env.stderr, "verify", err)
		}
	default:
		fmt.Fprintln(env.stdout, "  status:     not checked (offline; --nodes asks the cluster, --status verifies a kept answer)")
		return exitOK
	}
	st, err := notary.ParsePrescriptionStatus(data)
	if err != nil {
		return statusInvalid(env.stdout, fmt.Errorf("status answer: %w", err))
	}
	res, err := v.VerifyStatus(st, bundle)
	if err != nil {
		return statusInvalid(env.stdout, err)
	}
	if bundle == nil {
		fmt.Fprintf(env.stdout, "VALID: status of the prescription %s\n", st.Commitment)
	}
	fmt.Fprintf(env.stdout, "  status:     %s\n", statusLine(res))
	fmt.Fprintf(env.stdout, "  as of:      a checkpoint of %d entries signed %s\n", res.Checkpoint.Size, res.Checkpoint.Time().Format(timeFormat))
	if so.save != "" {
		if err := os.WriteFile(so.save, append(data, '\n'), 0o644); err != nil {
			return failure(env.stderr, "verify", fmt.Errorf("--save-status: %w", err))
		}
		fmt.Fprintf(env.stdout, "  saved:      %s (telenotary verify --status %s checks it offline)\n", so.save, so.save)
	}
	return exitOK
}

// statusInvalid prints that a status answer is INVALID, why and the
// detail, and returns exitInvalid.
func statusInvalid(w io.Writer, err error) int {
	reason := notary.Reason(err)
	switch {
	case errors.Is(err, notary.ErrMalformed):
		reason = "the answer is not a readable status answer"
	case errors.Is(err, notary.ErrCommitmentMismatch):
		reason = "the answer is not about this prescription, or its allowance was not made with the bundle's salt"
	}
	fmt.Fprintf(w, "INVALID: the prescription's status: %s\n", reason)
	fmt.Fprintf(w, "  detail: %s\n", detail(err))
	return exitInvalid
}

// statusLine says a verified status in one line: "active, 2 of 4 fills
// used (dates)", "fully dispensed, …", "revoked at …", "untracked …".
func statusLine(res *notary.StatusResult) string {
	fills := fmt.Sprintf("%d of %d fills used", res.FillsUsed, res.FillsAllowed)
	if len(res.Dispensed) > 0 {
		dates := make([]string, len(res.Dispensed))
		for i, t := range res.Dispensed {
			dates[i] = t.Format(timeFormat)
		}
		fills += " (" + strings.Join(dates, ", ") + ")"
	}
	switch res.State {
	case notary.StateRevoked:
		return fmt.Sprintf("revoked at %s; %s before", res.RevokedAt.Format(timeFormat), fills)
	case notary.StateDispensed:
		return "fully dispensed, " + fills
	case notary.StateUntracked:
		return "untracked: logged without an allowance, so the log does not count its dispenses"
	}
	return "active, " + fills
}

// trustFlags are the flags that say whose receipts a command trusts: a
// keys file with the signatures required and the origin, or a pinned
// trust policy file.
type trustFlags struct {
	keys, policy, origin *string
	minSigs              *int
}

// defineTrustFlags declares --keys, --policy, --min-signatures and
// --origin on fs.
func defineTrustFlags(fs *flag.FlagSet) *trustFlags {
	return &trustFlags{
		keys:    fs.String("keys", "", "file of trusted verifier keys (the nodes' .pub keys), one per line; required unless --policy"),
		policy:  fs.String("policy", "", "trust policy file (docs/FORMATS.md §9), instead of --keys, --min-signatures and --origin"),
		minSigs: fs.Int("min-signatures", 1, "how many distinct trusted keys must have signed the receipt's checkpoint"),
		origin:  fs.String("origin", "", "accept only receipts of the log with this origin"),
	}
}

// load reads the keys or the policy file once fs is parsed, and returns
// the policy, the policy file's fingerprint ("" for keys) and its
// verifier. An error is a usage error.
func (t *trustFlags) load(fs *flag.FlagSet) (policy notary.Policy, fingerprint string, v *notary.Verifier, err error) {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	switch {
	case *t.policy != "":
		for _, name := range []string{"keys", "min-signatures", "origin"} {
			if given[name] {
				return policy, "", nil, fmt.Errorf("--policy and --%s exclude each other: the policy file states the keys, the signatures required and the origin", name)
			}
		}
		text, err := readInput(*t.policy, "policy file")
		if err != nil {
			return policy, "", nil, err
		}
		pf, err := notary.ParsePolicy(text)
		if err != nil {
			return policy, "", nil, fmt.Errorf("policy file %s: %w", *t.policy, err)
		}
		policy, fingerprint = pf.Policy, pf.Fingerprint()
	case *t.keys == "":
		return policy, "", nil, errors.New("--keys is required: the file of verifier keys you trust (or --policy, a trust policy file)")
	default:
		keyText, err := readInput(*t.keys, "keys file")
		if err != nil {
			return policy, "", nil, err
		}
		verifiers, err := notary.ParseVerifierKeys(keyText)
		if err != nil {
			return policy, "", nil, fmt.Errorf("keys file %s: %w", *t.keys, err)
		}
		policy = notary.Policy{Verifiers: verifiers, MinSignatures: *t.minSigs, Origin: *t.origin}
	}
	if v, err = notary.NewVerifier(policy); err != nil {
		return policy, "", nil, fmt.Errorf("%w (check --min-signatures, --origin and the keys file)", err)
	}
	return policy, fingerprint, v, nil
}

// parseConsistencyProof reads a consistency proof: the JSON answer of GET
// /v1/proofs/consistency, or a JSON array of its hashes (hex).
func parseConsistencyProof(b []byte) ([]notary.Hash, error) {
	var hashes []notary.Hash
	if err := json.Unmarshal(b, &hashes); err == nil {
		return hashes, nil
	}
	var answer notaryapi.ProofResponse
	if err := httpapi.DecodeJSON(b, &answer); err != nil {
		return nil, fmt.Errorf("%w: neither a JSON array of hashes nor the answer of GET /v1/proofs/consistency: %v", notary.ErrMalformed, err)
	}
	return answer.Proof, nil
}

// separateClaim reads a claim whose parts come in separate files.
func separateClaim(receiptFile, docFile, saltFile, commitment string, raw bool) (notary.Claim, error) {
	b, err := readInput(receiptFile, "receipt")
	if err != nil {
		return notary.Claim{}, err
	}
	r, err := notary.ParseReceipt(b)
	if err != nil {
		return notary.Claim{}, fmt.Errorf("receipt %s: %w", receiptFile, err)
	}
	claim := notary.Claim{Receipt: r}
	switch {
	case commitment != "" && docFile == "" && saltFile == "":
		if claim.Commitment, err = notary.ParseCommitment(strings.ToLower(strings.TrimSpace(commitment))); err != nil {
			return notary.Claim{}, fmt.Errorf("--commitment: %w", err)
		}
	case commitment == "" && docFile != "" && saltFile != "":
		doc, err := readInput(docFile, "document")
		if err != nil {
			return notary.Claim{}, err
		}
		if claim.Document = doc; !raw {
			if claim.Document, err = notary.CanonicalJSON(doc); err != nil {
				return notary.Claim{}, fmt.Errorf("%w: document %s is not JSON: %w (use --raw for a document that is not JSON)", notary.ErrMalformed, docFile, err)
			}
		}
		s, err := readInput(saltFile, "salt")
		if err != nil {
			return notary.Claim{}, err
		}
		if claim.Salt, err = notary.ParseSalt(strings.ToLower(strings.TrimSpace(string(s)))); err != nil {
			return notary.Claim{}, fmt.Errorf("%w: salt file %s: %w", notary.ErrMalformed, saltFile, err)
		}
	default:
		return notary.Claim{}, errors.New("with --receipt, give --document and --salt, or --commitment")
	}
	return claim, nil
}

// readInput reads a file of at most maxInputFile bytes ("-" is stdin). A
// larger one is not a bundle, receipt or document: malformed input.
func readInput(path, what string) ([]byte, error) {
	var r io.Reader
	if path == "-" {
		r = os.Stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", what, err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxInputFile+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s %s: %w", what, path, err)
	}
	if len(b) > maxInputFile {
		return nil, fmt.Errorf("%w: %s %s is larger than %d bytes", notary.ErrMalformed, what, path, maxInputFile)
	}
	return b, nil
}

// invalid prints INVALID, the reason for a pharmacist and the detail, and
// returns exitInvalid.
func invalid(w io.Writer, err error) int {
	fmt.Fprintf(w, "INVALID: %s\n", notary.Reason(err))
	fmt.Fprintf(w, "  detail: %s\n", detail(err))
	return exitInvalid
}

// detail is err's text without a part said twice in a row: a wrapped error
// may repeat its cause's outcome ("malformed input: malformed input: ...").
func detail(err error) string {
	parts := strings.Split(err.Error(), ": ")
	out := parts[:1]
	for _, p := range parts[1:] {
		if p != out[len(out)-1] {
			out = append(out, p)
		}
	}
	return strings.Join(out, ": ")
}

const timeFormat = "2006-01-02 15:04:05.000 UTC"

func printValid(w io.Writer, res *notary.Result, minSigs int) {
	fmt.Fprintf(w, "VALID: %s notarized %s\n", res.Leaf.Kind, res.Leaf.Time().Format(timeFormat))
	fmt.Fprintf(w, "  log:        %s\n", res.Origin)
	fmt.Fprintf(w, "  index:      %d, in a checkpoint of %d entries signed %s\n", res.Index, res.Checkpoint.Size, res.Checkpoint.Time().Format(timeFormat))
	fmt.Fprintf(w, "  signed by:  %s (%d required)\n", strings.Join(res.Signers, ", "), max(minSigs, 1))
	fmt.Fprintf(w, "  commitment: %s\n", res.Leaf.Commitment)
	if !res.Leaf.Link.IsZero() {
		fmt.Fprintf(w, "  linked to:  %s\n", res.Leaf.Link)
	}
}
