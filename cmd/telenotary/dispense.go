package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/signalapi/prescription"
)

const dispenseSynopsis = `dispense BUNDLE --pharmacy-token-file FILE --nodes URL[,URL...] --keys FILE [--min-signatures K] [--origin ORIGIN] [flags]
       telenotary dispense BUNDLE --pharmacy-token-file FILE --nodes URL[,URL...] --policy FILE [flags]

For a pharmacy: dispenses the prescription of BUNDLE (a prescription's
receipt bundle, as the patient holds it) once, through the cluster, which
counts the fills the prescription allows and refuses one too many or one
after a revocation, the same on every node.

It checks that the bundle verifies (as telenotary verify does, under --keys
or --policy), reads the prescription's status from the cluster (a
linearizable read, verified), claims the next fill with the proof only a
holder of the bundle can make, and notarizes the pharmacy's own record of
the dispense with it: the FHIR R4 MedicationDispense of
--medication-dispense, validated, salted and committed (only its commitment
leaves this machine). Without --medication-dispense it makes the minimal
one from the prescription: status completed, the prescription's medication
and subject, authorizingPrescription the prescription, whenHandedOver now.
When another pharmacy takes that fill first, it reads the status again and
claims the next one. The dispense's receipt is checked under the trust
policy's node keys and signatures (a policy's witnesses cosign later
checkpoints); the status, which only names the fill to claim, under one
node's signature.

It prints "dispensed: fill K of N" and writes the pharmacy's bundle (the
MedicationDispense, its salt and the dispense's receipt, which telenotary
verify checks offline) to --out (-o), by default BUNDLE's name with -fill-K.

Exit status: 0 dispensed; 1 failed (the cluster was not reached in time, the
bundle or an answer does not verify); 2 a usage error, or a file that cannot
be read or is not what its flag says (nothing was dispensed); 3 refused: the
prescription is fully dispensed; 4 refused: it was revoked; 5 refused: the
cluster does not track its dispenses (not logged, or logged without an
allowance); 6 refused: the bundle's salt does not open the prescription's
dispense lock (bad proof).`

// Exit codes of telenotary dispense beyond exitOK, exitFailure and
// exitUsage: the cluster refused the dispense, and why.
const (
	exitFullyDispensed = 3
	exitRevoked        = 4
	exitUntracked      = 5
	exitBadProof       = 6
)

func runDispense(ctx context.Context, env *environment, args []string) int {
	fs := newFlagSet(env, "dispense", dispenseSynopsis)
	trust := defineTrustFlags(fs)
	nodes := fs.String("nodes", "", "comma-separated API URLs of the cluster's nodes (required)")
	tokenFile := fs.String("pharmacy-token-file", "", `file (mode 0600) holding a "pharmacy" token of the cluster (required)`)
	dispenseFile := fs.String("medication-dispense", "", "the pharmacy's FHIR R4 MedicationDispense (JSON) to notarize with the fill; without it, the minimal one made from the prescription")
	var out string
	fs.StringVar(&out, "o", "", "the same as --out")
	fs.StringVar(&out, "out", "", "write the pharmacy's bundle to this file (- for standard output); default: BUNDLE's name with -fill-K")
	signatures := fs.String("signatures", "", "nodes that sign the dispense receipt's checkpoint: a number, or majority (default: the signatures the trust policy requires)")
	caFile := fs.String("tls-ca", "", "CA certificates (PEM) of the nodes' API certificates")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to try")
	pos, err := parseFlags(fs, env, args)
	fail := func(err error) int { return usageError(env.stderr, "dispense", err) }
	switch {
	case err != nil:
		return fail(err)
	case len(pos) != 1:
		return fail(errors.New("give one prescription bundle file"))
	case *nodes == "":
		return fail(errors.New("--nodes is required (see telenotary dispense --help)"))
	case *tokenFile == "":
		return fail(errors.New("--pharmacy-token-file is required: a token of the pharmacy role (see telenotary dispense --help)"))
	case *timeout <= 0:
		return fail(errors.New("--timeout must be positive"))
	}
	policy, _, v, err := trust.load(fs)
	if err != nil {
		return fail(err)
	}
	sigs := max(policy.MinSignatures, 1)
	if *signatures != "" {
		if sigs, err = parseSignatures(*signatures, "--signatures"); err != nil {
			return fail(err)
		}
	}

	// The prescription's bundle, verified as telenotary verify does.
	b, err := readInput(pos[0], "bundle")
	if err != nil {
		return fail(err)
	}
	bundle, err := notary.ParseBundle(b)
	if err != nil {
		return fail(fmt.Errorf("bundle %s: %w", pos[0], err))
	}
	if k := bundle.Receipt.Leaf.Kind; k != notary.KindPrescription {
		return fail(fmt.Errorf("bundle %s is the receipt of a %s, not of a prescription", pos[0], k))
	}
	doc, err := bundle.Canonical()
	if err != nil {
		return fail(fmt.Errorf("bundle %s: %w", pos[0], err))
	}
	if _, err := v.Verify(notary.Claim{Receipt: &bundle.Receipt, Document: doc, Salt: bundle.Salt}); err != nil {
		return failure(env.stderr, "dispense", fmt.Errorf("the prescription bundle %s does not verify: %s: %s", pos[0], notary.Reason(err), detail(err)))
	}

	// The pharmacy's MedicationDispense.
	var md []byte
	if *dispenseFile != "" {
		if md, err = readInput(*dispenseFile, "MedicationDispense"); err != nil {
			return fail(err)
		}
		if _, err := prescription.CheckDispense(md); err != nil {
			return fail(fmt.Errorf("--medication-dispense %s: %w", *dispenseFile, err))
		}
	} else if md, err = prescription.NewDispense(bundle.Document, time.Now()); err != nil {
		return fail(fmt.Errorf("cannot make a MedicationDispense from the prescription (give one with --medication-dispense): %w", err))
	}

	token, err := readSecret(*tokenFile, "--pharmacy-token-file", 1)
	if err != nil {
		return fail(err)
	}
	tlsConfig, err := clientTLS(*caFile, "--tls-ca")
	if err != nil {
		return fail(err)
	}
	urls := strings.Split(*nodes, ",")
	warnClearText(func(line string) { fmt.Fprintf(env.stderr, "telenotary dispense: warning: %s\n", line) }, "--nodes", "pharmacy token", urls)
	w, err := openBundleOut(out, pos[0], env.stdout)
	if err != nil {
		return fail(err)
	}
	defer w.discard()

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	client := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: urls, Token: string(token),
		HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig}}})
	// The cluster's answers carry the nodes' signatures, not yet a
	// witness's: they are checked under the policy's node keys, origin
	// and signatures. A status answer carries the answering node's
	// signature alone, and only says which fill to claim (the cluster's
	// state machine decides): it is checked with one.
	nodeTrust := policy
	nodeTrust.Witnesses, nodeTrust.Groups, nodeTrust.Quorum, nodeTrust.MinCosignatures = nil, nil, "", 0
	rv, err := notary.NewVerifier(nodeTrust)
	if err != nil {
		return fail(err)
	}
	nodeTrust.MinSignatures = 1
	sv, err := notary.NewVerifier(nodeTrust)
	if err != nil {
		return fail(err)
	}
	d, err := dispense(ctx, client, rv, sv, bundle, md, sigs)
	if err != nil {
		var r *refusal
		if errors.As(err, &r) {
			fmt.Fprintf(env.stderr, "telenotary dispense: refused: %s\n", r.msg)
			return r.code
		}
		return failure(env.stderr, "dispense", err)
	}
	path, err := w.write(d.bundle, d.fill)
	if err != nil {
		// The fill is spent: say where its receipt is, so it is not lost.
		return failure(env.stderr, "dispense", fmt.Errorf("fill %d of %d was dispensed (receipt at index %d of the log, commitment %s), but its bundle could not be written: %w; the pharmacy's bundle follows on standard error:\n%s",
			d.fill, d.fills, d.bundle.Receipt.Index, d.bundle.Receipt.Leaf.Commitment, err, encoded(d.bundle)))
	}
	if path == "-" { // standard output holds the bundle
		fmt.Fprintf(env.stderr, "dispensed: fill %d of %d\n", d.fill, d.fills)
	} else {
		fmt.Fprintf(env.stdout, "dispensed: fill %d of %d\n", d.fill, d.fills)
		fmt.Fprintf(env.stdout, "  prescription: %s\n", bundle.Receipt.Leaf.Commitment)
		fmt.Fprintf(env.stdout, "  dispense:     %s, notarized %s at index %d\n", d.bundle.Receipt.Leaf.Commitment, d.bundle.Receipt.Leaf.Time().Format(timeFormat), d.bundle.Receipt.Index)
		if d.existing {
			fmt.Fprintln(env.stdout, "                (logged by an earlier try whose answer was lost: the same receipt)")
		}
		fmt.Fprintf(env.stdout, "  bundle:       %s (the MedicationDispense, its salt and its receipt: keep it)\n", path)
		if len(policy.Witnesses) > 0 {
			fmt.Fprintln(env.stdout, "  witnesses:    none on this receipt yet: the policy's witnesses cosign later checkpoints")
		}
	}
	return exitOK
}

// encoded is a bundle's file form, or why it has none.
func encoded(b *notary.Bundle) string {
	out, err := b.Encode()
	if err != nil {
		return err.Error()
	}
	return string(out)
}

// refusal is a dispense the cluster refused, with the exit code that says
// why.
type refusal struct {
	code int
	msg  string
	err  error
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.err }

// dispensed is a fill the cluster granted.
type dispensed struct {
	fill, fills int
	existing    bool
	bundle      *notary.Bundle // the pharmacy's
}

// dispense claims the next fill of the bundle's prescription and
// notarizes the MedicationDispense md with it, through the client's
// Dispense, its receipt's checkpoint signed by sigs nodes
// (notaryapi.Majority: a majority) and verified with v. Each status answer
// Dispense reads to learn the fill to claim is verified with sv, and a
// state that refuses every fill ends the dispense with that refusal. The
// error is a *refusal when the cluster refuses the dispense for a reason
// a retry does not change.
func dispense(ctx context.Context, client *notaryapi.Client, v, sv *notary.Verifier, bundle *notary.Bundle, md []byte, sigs int) (*dispensed, error) {
	c := bundle.Receipt.Leaf.Commitment
	canonical, err := prescription.CheckDispense(md)
	if err != nil {
		return nil, fmt.Errorf("the MedicationDispense: %w", err)
	}
	// One salt, one commitment for every try: a retry of a dispense that
	// was logged (its answer lost) gets the same receipt, not a second fill.
	salt := notary.NewSalt()
	d := notary.Commit(salt, canonical)
	var last *notary.StatusResult // of the status the claim was made on
	check := func(st *notary.PrescriptionStatus) error {
		// Verified alone here, not against the bundle, so that a lock the
		// bundle's salt does not give is told apart (Dispense checks it):
		// the cluster would refuse every proof this bundle makes.
		if st.Commitment != c {
			return fmt.Errorf("the cluster answered the status of %s, not of %s", st.Commitment, c)
		}
		res, err := sv.VerifyStatus(st, nil)
		if err != nil {
			return fmt.Errorf("the prescription's status does not verify: %s: %s", notary.Reason(err), detail(err))
		}
		if r := stateRefusal(res); r != nil {
			return r
		}
		last = res
		return nil
	}
	resp, err := client.Dispense(ctx, bundle, d, notaryapi.DispenseSignatures(sigs), notaryapi.DispenseCheckStatus(check))
	var problem *httpapi.Problem
	var refused *refusal
	switch {
	case err == nil:
	case errors.As(err, &refused): // the check's, from a verified status
		return nil, err
	case errors.Is(err, notaryapi.ErrNotFound):
		return nil, &refusal{exitUntracked, fmt.Sprintf("unknown prescription: the cluster has not logged %s", c), err}
	case errors.Is(err, notaryapi.ErrBadProof) && !errors.As(err, &problem):
		// Dispense's own check of the lock, before any claim.
		return nil, &refusal{exitBadProof, "bad proof: the prescription's dispense lock is not the one the bundle's salt gives, so the cluster would refuse every fill this bundle claims (the prescription was notarized with another allowance)", err}
	case errors.Is(err, notaryapi.ErrBadProof):
		return nil, &refusal{exitBadProof, "bad proof: the bundle's salt does not open the prescription's dispense lock (is this the bundle the prescription was issued with?)", err}
	case errors.Is(err, notaryapi.ErrUnknownPrescription):
		return nil, &refusal{exitUntracked, "unknown prescription: the cluster holds no allowance for it", err}
	default:
		return nil, err
	}
	if _, err := v.Verify(notary.Claim{Receipt: resp.Receipt, Document: canonical, Salt: salt}); err != nil {
		return nil, fmt.Errorf("the dispense's receipt does not verify: %s: %s", notary.Reason(err), detail(err))
	}
	out := &dispensed{fill: resp.Fill, fills: resp.Fills, existing: resp.Existing,
		bundle: &notary.Bundle{Document: md, Salt: salt, Receipt: *resp.Receipt}}
	if out.fill == 0 {
		out.fill = last.FillsUsed + 1
	}
	if out.fills == 0 {
		out.fills = last.FillsAllowed
	}
	return out, nil
}

// stateRefusal is the refusal a verified status answer foretells: nil
// while the prescription has fills left.
func stateRefusal(res *notary.StatusResult) *refusal {
	switch res.State {
	case notary.StateRevoked:
		return &refusal{exitRevoked, fmt.Sprintf("revoked: the prescription was revoked at %s", res.RevokedAt.Format(timeFormat)), notaryapi.ErrRevoked}
	case notary.StateDispensed:
		last := "never"
		if n := len(res.Dispensed); n > 0 {
			last = res.Dispensed[n-1].Format(timeFormat)
		}
		msg := fmt.Sprintf("fully dispensed: all %d fills of the prescription were dispensed, the last at %s", res.FillsAllowed, last)
		if res.FillsAllowed == 1 {
			msg = "fully dispensed: the prescription's one fill was dispensed at " + last
		}
		return &refusal{exitFullyDispensed, msg, notaryapi.ErrFullyDispensed}
	case notary.StateUntracked:
		return &refusal{exitUntracked, "untracked: the prescription was logged without an allowance, so the cluster does not count its dispenses", notaryapi.ErrUnknownPrescription}
	}
	return nil
}

// bundleOut is where the pharmacy's bundle goes: a file made before the
// dispense, so that a fill is never spent for a bundle that cannot be
// written, and named when the fill is known.
type bundleOut struct {
	stdout io.Writer
	path   string // as given with -o; "" for the default name
	base   string // the default name without -fill-K.json
	tmp    *os.File
}

// openBundleOut prepares the output: standard output for "-", else a
// temporary file beside where the bundle goes.
func openBundleOut(out, bundlePath string, stdout io.Writer) (*bundleOut, error) {
	w := &bundleOut{stdout: stdout, path: out}
	if out == "-" {
		return w, nil
	}
	dir := filepath.Dir(out)
	if out == "" {
		w.base = strings.TrimSuffix(bundlePath, filepath.Ext(bundlePath))
		if bundlePath == "-" {
			w.base = "prescription"
		}
		dir = filepath.Dir(w.base)
	}
	f, err := os.CreateTemp(dir, ".telenotary-dispense-*")
	if err != nil {
		return nil, fmt.Errorf("cannot write the pharmacy's bundle: %w", err)
	}
	w.tmp = f
	return w, nil
}

// write writes the bundle and returns where it went.
func (w *bundleOut) write(b *notary.Bundle, fill int) (string, error) {
	data, err := b.Encode()
	if err != nil {
		return "", err
	}
	if w.path == "-" {
		_, err := w.stdout.Write(data)
		return "-", err
	}
	if _, err := w.tmp.Write(data); err != nil {
		return "", err
	}
	if err := w.tmp.Sync(); err != nil {
		return "", err
	}
	if err := w.tmp.Close(); err != nil {
		return "", err
	}
	path := w.path
	if path == "" {
		path = fmt.Sprintf("%s-fill-%d.json", w.base, fill)
		if _, err := os.Lstat(path); err == nil { // never replace another bundle
			path = fmt.Sprintf("%s-fill-%d-%.8s.json", w.base, fill, b.Receipt.Leaf.Commitment)
		}
	}
	if err := os.Rename(w.tmp.Name(), path); err != nil {
		return "", err
	}
	w.tmp = nil
	return path, nil
}

// discard removes the temporary file unless the bundle was written.
func (w *bundleOut) discard() {
	if w.tmp != nil {
		w.tmp.Close()
		os.Remove(w.tmp.Name())
	}
}
