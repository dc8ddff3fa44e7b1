package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/fhirdata"
	"github.com/telenotary/telenotary/session/signalapi/prescription"
)

// Exit codes of telenotary dispense (cmd/telenotary/dispense.go).
const (
	dispenseFullyDispensed = 3
	dispenseRevoked        = 4
	dispenseUntracked      = 5
	dispenseBadProof       = 6
)

// rxCluster is a 3-node cluster of processes with a pharmacy token, and
// the files a pharmacy's command line needs.
type rxCluster struct {
	*procCluster
	pharmacy     string // the pharmacy token
	pharmacyFile string // holding it
	keysFile     string // the nodes' verifier keys, from /v1/keys
}

// startRxCluster starts three nodes whose tokens file also lists a
// pharmacy token.
func startRxCluster(t *testing.T) *rxCluster {
	t.Helper()
	c := &rxCluster{procCluster: newProcCluster(t, testOrigin), pharmacy: randomToken("pharmacy")}
	tokens, err := os.ReadFile(c.tokensFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, c.tokensFile, string(tokens)+"pharmacy "+c.pharmacy+"\n", 0o600)
	c.pharmacyFile = filepath.Join(c.dir, "pharmacy.tok")
	writeFile(t, c.pharmacyFile, c.pharmacy+"\n", 0o600)
	n1 := c.bootstrap("node-1")
	waitReady(t, n1)
	c.join("node-2", n1)
	c.join("node-3", n1)
	c.waitVoters(3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keys, err := c.client().KeysText(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.keysFile = filepath.Join(c.dir, "keys.pub")
	writeFile(t, c.keysFile, string(keys), 0o644)
	return c
}

// pharmacyClient returns a Go client of the cluster with the pharmacy
// token.
func (c *rxCluster) pharmacyClient() *notaryapi.Client {
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, n.url)
	}
	return notaryapi.NewClient(notaryapi.ClientConfig{Nodes: urls, Token: c.pharmacy, MaxBackoff: 200 * time.Millisecond})
}

// issuedRx is a prescription notarized as the signalling server does: its
// bundle, in a file, and what the test needs to act on it.
type issuedRx struct {
	name   string
	path   string // the bundle's file
	bundle *notary.Bundle
	fills  int // 0: notarized without an allowance
}

// repeatsAllowed reads dispenseRequest.numberOfRepeatsAllowed (0 when
// absent).
func repeatsAllowed(t *testing.T, doc []byte) int {
	t.Helper()
	var mr struct {
		DispenseRequest struct {
			NumberOfRepeatsAllowed int `json:"numberOfRepeatsAllowed"`
		} `json:"dispenseRequest"`
	}
	if err := json.Unmarshal(doc, &mr); err != nil {
		t.Fatal(err)
	}
	return mr.DispenseRequest.NumberOfRepeatsAllowed
}

// hl7Prescription returns the HL7 R4 example MedicationRequest of that
// name.
func hl7Prescription(t *testing.T, name string) []byte {
	t.Helper()
	names, docs := fhirdata.MedicationRequests()
	for i, n := range names {
		if n == name {
			return docs[i]
		}
	}
	t.Fatalf("no HL7 example %s", name)
	return nil
}

// How issueRx notarizes a prescription's allowance.
type allowanceMode int

const (
	// withAllowance: the allowance its numberOfRepeatsAllowed gives.
	withAllowance allowanceMode = iota
	// noAllowance: none; the cluster does not track its dispenses.
	noAllowance
	// foreignLock: an allowance made with another salt than the bundle's,
	// so no proof the bundle makes opens it.
	foreignLock
)

// issueRx notarizes doc as a prescription of a fresh consultation (a
// session-start leaf it links to), with an allowance as mode says, and
// writes its bundle.
func (c *rxCluster) issueRx(t *testing.T, name string, doc []byte, mode allowanceMode) *issuedRx {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	canonical, err := prescription.Check(doc)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var session notary.Commitment
	rand.Read(session[:])
	client := c.client()
	if _, err := client.Notarize(ctx, notaryapi.Entry{Kind: notary.KindSessionStart, Commitment: session}); err != nil {
		t.Fatalf("session-start: %v", err)
	}
	salt := notary.NewSalt()
	cm := notary.Commit(salt, canonical)
	e := notaryapi.Entry{Kind: notary.KindPrescription, Commitment: cm, Link: session}
	rx := &issuedRx{name: name}
	if mode != noAllowance {
		rx.fills = repeatsAllowed(t, doc) + 1
		lockSalt := salt
		if mode == foreignLock {
			lockSalt = notary.NewSalt()
		}
		a, err := notary.NewAllowance(lockSalt, cm, rx.fills)
		if err != nil {
			t.Fatal(err)
		}
		e.Allowance = &a
	}
	resp, err := client.NotarizeSigned(ctx, e, notaryapi.Majority) // as the signalling server does
	if err != nil {
		t.Fatalf("notarize %s: %v", name, err)
	}
	rx.bundle = &notary.Bundle{Document: doc, Salt: salt, Receipt: *resp.Receipt}
	data, err := rx.bundle.Encode()
	if err != nil {
		t.Fatal(err)
	}
	rx.path = filepath.Join(c.dir, name+".bundle.json")
	writeFile(t, rx.path, string(data), 0o600)
	return rx
}

// revoke revokes the prescription as its physician's server does.
func (c *rxCluster) revoke(t *testing.T, rx *issuedRx) *notary.Receipt {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cm := rx.bundle.Receipt.Leaf.Commitment
	seed := notary.DispenseSeed(rx.bundle.Salt, cm)
	resp, err := c.client().Notarize(ctx, notaryapi.Entry{Kind: notary.KindRevocation, Commitment: notary.RevocationCommitment(cm), Link: cm, Proof: &seed})
	if err != nil {
		t.Fatalf("revoke %s: %v", rx.name, err)
	}
	return resp.Receipt
}

// cli runs the telenotary binary and returns its exit code and output
// (-1 when it could not be run).
func cli(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, telenotaryBin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil: // not started: Errorf, as races call it from goroutines
		t.Errorf("telenotary %s: %v", strings.Join(args, " "), err)
		return -1, "", ""
	}
	return code, out.String(), errOut.String()
}

// dispenseVia runs telenotary dispense for the bundle with the node's URL
// only, writing the pharmacy's bundle to out.
func (c *rxCluster) dispenseVia(t *testing.T, n *nodeProc, rx *issuedRx, out string, extra ...string) (code int, stdout, stderr string) {
	t.Helper()
	args := []string{"dispense", rx.path, "--pharmacy-token-file", c.pharmacyFile, "--nodes", n.url, "--keys", c.keysFile, "-o", out}
	return cli(t, append(args, extra...)...)
}

// TestDispense follows HL7's example prescriptions that allow three
// repeats (four fills) through a 3-node cluster of processes: four
// dispenses through different nodes are granted, fill 1 to 4 of 4, the
// fifth is refused as fully dispensed, with when; a revoked prescription
// is refused with when it was revoked; a proof that does not open the
// lock is refused and not counted; a prescription logged without an
// allowance is not dispensed. Every pharmacy's bundle verifies offline
// with telenotary verify, and so do the prescriptions' status answers,
// online and kept in a file.
func TestDispense(t *testing.T) {
	c := startRxCluster(t)
	dir := c.dir
	doc := hl7Prescription(t, "MedicationRequest-medrx0321.json")
	if n := repeatsAllowed(t, doc); n != 3 {
		t.Fatalf("medrx0321 allows %d repeats, want 3", n)
	}
	rx := c.issueRx(t, "medrx0321", doc, withAllowance)
	cm := rx.bundle.Receipt.Leaf.Commitment

	// Four fills, each through another node; the second with HL7's own
	// MedicationDispense of this prescription (meddisp0302, in progress).
	hl7Dispense, err := os.ReadFile(filepath.Join("..", "notary", "fhirdata", "MedicationDispense-meddisp0302.json"))
	if err != nil {
		t.Fatal(err)
	}
	mdFile := filepath.Join(dir, "meddisp0302.json")
	writeFile(t, mdFile, string(hl7Dispense), 0o600)
	var fillBundles []string
	for k := 1; k <= 4; k++ {
		n := c.nodes[(k-1)%len(c.nodes)]
		out := filepath.Join(dir, fmt.Sprintf("pharmacy-fill-%d.json", k))
		var extra []string
		if k == 2 {
			extra = []string{"--medication-dispense", mdFile}
		}
		code, stdout, stderr := c.dispenseVia(t, n, rx, out, extra...)
		if want := fmt.Sprintf("dispensed: fill %d of 4\n", k); code != 0 || !strings.HasPrefix(stdout, want) {
			t.Fatalf("dispense %d via %s: exit %d, want 0 and %q\n%s%s", k, n.id, code, want, stdout, stderr)
		}
		t.Logf("via %s: %s", n.id, strings.SplitN(stdout, "\n", 2)[0])
		fillBundles = append(fillBundles, out)
	}

	// The fifth is refused, through any node, and says when the last was.
	code, stdout, stderr := c.dispenseVia(t, c.nodes[1], rx, filepath.Join(dir, "pharmacy-fill-5.json"))
	if code != dispenseFullyDispensed || !strings.Contains(stderr, "fully dispensed") || !strings.Contains(stderr, "the last at ") {
		t.Fatalf("fifth dispense: exit %d, want %d and fully dispensed with when\n%s%s", code, dispenseFullyDispensed, stdout, stderr)
	}
	t.Logf("fifth: exit %d: %s", code, stderr)
	if _, err := os.Stat(filepath.Join(dir, "pharmacy-fill-5.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused dispense left a bundle (%v)", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".telenotary-dispense-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}

	// Every pharmacy's bundle verifies offline, as a dispense linked to the
	// prescription; the second holds HL7's dispense.
	for k, path := range fillBundles {
		code, stdout, stderr := cli(t, "verify", path, "--keys", c.keysFile)
		if code != 0 || !strings.HasPrefix(stdout, "VALID: dispense notarized") || !strings.Contains(stdout, "linked to:  "+cm.String()) {
			t.Errorf("verify %s: exit %d\n%s%s", path, code, stdout, stderr)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		pb, err := notary.ParseBundle(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := prescription.CheckDispense(pb.Document); err != nil {
			t.Errorf("fill %d: the bundle's MedicationDispense: %v", k+1, err)
		}
		got, _ := notary.CanonicalJSON(pb.Document)
		want, _ := notary.CanonicalJSON(hl7Dispense)
		if k == 1 && !bytes.Equal(got, want) {
			t.Errorf("fill 2: the bundle does not hold the MedicationDispense given")
		}
	}

	// The status: online, kept, and verified offline from the file.
	statusFile := filepath.Join(dir, "status.json")
	code, stdout, stderr = cli(t, "verify", rx.path, "--keys", c.keysFile, "--nodes", c.nodes[2].url, "--save-status", statusFile)
	if code != 0 || !strings.Contains(stdout, "status:     fully dispensed, 4 of 4 fills used (") {
		t.Fatalf("verify --nodes: exit %d\n%s%s", code, stdout, stderr)
	}
	t.Logf("verify --nodes:\n%s", stdout)
	for _, args := range [][]string{
		{"verify", rx.path, "--keys", c.keysFile, "--status", statusFile},
		{"verify", "--status", statusFile, "--keys", c.keysFile},
	} {
		if code, stdout, stderr := cli(t, args...); code != 0 || !strings.Contains(stdout, "status:     fully dispensed, 4 of 4 fills used (") {
			t.Errorf("telenotary %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
		}
	}
	if code, stdout, _ := cli(t, "verify", rx.path, "--keys", c.keysFile); code != 0 || !strings.Contains(stdout, "status:     not checked (offline") {
		t.Errorf("verify offline: exit %d\n%s", code, stdout)
	}
	// The status answer of another prescription does not pass for this one.
	other := c.issueRx(t, "medrx0312", hl7Prescription(t, "MedicationRequest-medrx0312.json"), withAllowance)
	if code, stdout, _ := cli(t, "verify", other.path, "--keys", c.keysFile, "--status", statusFile); code != 1 || !strings.HasPrefix(stdout, "VALID") || !strings.Contains(stdout, "INVALID: the prescription's status") {
		t.Errorf("another prescription's status: exit %d\n%s", code, stdout)
	}

	// Revoked: one fill, the revocation, then a refusal with its time.
	if code, stdout, stderr := c.dispenseVia(t, c.nodes[0], other, filepath.Join(dir, "other-fill-1.json")); code != 0 || !strings.HasPrefix(stdout, "dispensed: fill 1 of 4\n") {
		t.Fatalf("dispense before the revocation: exit %d\n%s%s", code, stdout, stderr)
	}
	revocation := c.revoke(t, other)
	revokedAt := revocation.Leaf.Time().Format("2006-01-02 15:04:05.000 UTC")
	code, stdout, stderr = c.dispenseVia(t, c.nodes[2], other, filepath.Join(dir, "other-fill-2.json"))
	if code != dispenseRevoked || !strings.Contains(stderr, "revoked at "+revokedAt) {
		t.Fatalf("dispense after the revocation: exit %d, want %d and revoked at %s\n%s%s", code, dispenseRevoked, revokedAt, stdout, stderr)
	}
	t.Logf("after the revocation: exit %d: %s", code, stderr)
	if code, stdout, stderr := cli(t, "verify", other.path, "--keys", c.keysFile, "--nodes", c.nodes[1].url); code != 0 || !strings.Contains(stdout, "status:     revoked at "+revokedAt+"; 1 of 4 fills used") {
		t.Errorf("verify a revoked prescription: exit %d\n%s%s", code, stdout, stderr)
	}

	// A wrong proof is refused by the cluster and not counted: a fill's
	// proof claimed for another fill, and random bytes.
	third := c.issueRx(t, "medrx0324", hl7Prescription(t, "MedicationRequest-medrx0324.json"), withAllowance)
	tc := third.bundle.Receipt.Leaf.Commitment
	a, err := notary.NewAllowance(third.bundle.Salt, tc, third.fills)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := notary.DispenseProof(third.bundle.Salt, tc, a, 2)
	var random notary.ChainValue
	rand.Read(random[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for name, proof := range map[string]notary.ChainValue{"fill 2's proof for fill 1": second, "random bytes": random} {
		var d notary.Commitment
		rand.Read(d[:])
		_, err := c.pharmacyClient().Notarize(ctx, notaryapi.Entry{Kind: notary.KindDispense, Commitment: d, Link: tc, Fill: 1, Proof: &proof})
		if !errors.Is(err, notaryapi.ErrBadProof) {
			t.Errorf("%s: %v, want bad_proof", name, err)
		}
	}
	// A submitter may not dispense: the role is the pharmacy's.
	first, _ := notary.DispenseProof(third.bundle.Salt, tc, a, 1)
	var d notary.Commitment
	rand.Read(d[:])
	if _, err := c.client().Notarize(ctx, notaryapi.Entry{Kind: notary.KindDispense, Commitment: d, Link: tc, Fill: 1, Proof: &first}); !errors.Is(err, notaryapi.ErrForbidden) {
		t.Errorf("a dispense with a submitter token: %v, want forbidden", err)
	}
	// ... and the right one is granted as fill 1, under a policy of two
	// signatures: the receipt carries them, and the status is cosigned.
	thirdOut := filepath.Join(dir, "third-fill-1.json")
	if code, stdout, stderr := c.dispenseVia(t, c.nodes[1], third, thirdOut, "--min-signatures", "2"); code != 0 || !strings.HasPrefix(stdout, "dispensed: fill 1 of 4\n") {
		t.Errorf("dispense after the refused proofs: exit %d, want fill 1 of 4\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := cli(t, "verify", thirdOut, "--keys", c.keysFile, "--min-signatures", "2"); code != 0 || !strings.HasPrefix(stdout, "VALID: dispense notarized") {
		t.Errorf("verify the dispense under two signatures: exit %d\n%s%s", code, stdout, stderr)
	}
	all := c.nodes[0].url + "," + c.nodes[1].url + "," + c.nodes[2].url
	if code, stdout, stderr := cli(t, "verify", third.path, "--keys", c.keysFile, "--min-signatures", "2", "--nodes", all); code != 0 || !strings.Contains(stdout, "status:     active, 1 of 4 fills used (") {
		t.Errorf("verify the status under two signatures: exit %d\n%s%s", code, stdout, stderr)
	}

	// A bundle whose salt does not give the logged lock (the prescription
	// was notarized with an allowance made from another salt) is refused
	// as a bad proof before it claims a fill; a prescription logged
	// without an allowance is not tracked, so not dispensed.
	foreign := c.issueRx(t, "medrx0325", hl7Prescription(t, "MedicationRequest-medrx0325.json"), foreignLock)
	code, stdout, stderr = c.dispenseVia(t, c.nodes[0], foreign, filepath.Join(dir, "foreign-fill-1.json"))
	if code != dispenseBadProof || !strings.Contains(stderr, "bad proof") {
		t.Errorf("dispense with a lock the bundle does not open: exit %d, want %d\n%s%s", code, dispenseBadProof, stdout, stderr)
	}
	t.Logf("a foreign lock: exit %d: %s", code, stderr)
	untracked := c.issueRx(t, "medrx0326", hl7Prescription(t, "MedicationRequest-medrx0326.json"), noAllowance)
	code, stdout, stderr = c.dispenseVia(t, c.nodes[2], untracked, filepath.Join(dir, "untracked-fill-1.json"))
	if code != dispenseUntracked || !strings.Contains(stderr, "untracked") {
		t.Errorf("dispense of a prescription logged without an allowance: exit %d, want %d\n%s%s", code, dispenseUntracked, stdout, stderr)
	}
	t.Logf("untracked: exit %d: %s", code, stderr)
	if code, stdout, _ := cli(t, "verify", untracked.path, "--keys", c.keysFile, "--nodes", c.nodes[0].url); code != 0 || !strings.Contains(stdout, "status:     untracked") {
		t.Errorf("verify an untracked prescription: exit %d\n%s", code, stdout)
	}

	// Pharmacies racing for the one fill of a prescription, each through
	// another node: exactly one gets it, the others are told it is fully
	// dispensed.
	once := hl7Prescription(t, "MedicationRequest-medrx0301.json")
	if n := repeatsAllowed(t, once); n != 0 {
		t.Fatalf("medrx0301 allows %d repeats, want 0", n)
	}
	for round := range 3 {
		race := c.issueRx(t, fmt.Sprintf("medrx0301-%d", round), once, withAllowance)
		codes := make(chan int, len(c.nodes))
		for i, n := range c.nodes {
			go func() {
				code, _, _ := c.dispenseVia(t, n, race, filepath.Join(dir, fmt.Sprintf("race-%d-%d.json", round, i)))
				codes <- code
			}()
		}
		won, refused := 0, 0
		for range c.nodes {
			switch <-codes {
			case 0:
				won++
			case dispenseFullyDispensed:
				refused++
			}
		}
		if won != 1 || refused != len(c.nodes)-1 {
			t.Errorf("round %d: %d won and %d were refused as fully dispensed; want 1 and %d", round, won, refused, len(c.nodes)-1)
		}
	}
}

// TestBenchDispense runs `telenotary bench dispense` briefly against a
// 3-node cluster of processes, with each way of sending requests: every
// receipt is verified (a dispense of the fill asked, linked to its
// prescription), nothing is refused or fails, and the run stops when
// every fill is spent.
func TestBenchDispense(t *testing.T) {
	c := startRxCluster(t)
	submitterFile := filepath.Join(c.dir, "submitter-token")
	writeFile(t, submitterFile, c.submitter+"\n", 0o600)
	nodes := strings.Join([]string{c.nodes[1].url, c.nodes[2].url, c.nodes[0].url}, ",")
	for _, mode := range []string{"direct", "client"} {
		t.Run(mode, func(t *testing.T) {
			code, stdout, stderr := cli(t, "bench", "dispense", "--nodes", nodes, "--token-file", submitterFile, "--pharmacy-token-file", c.pharmacyFile,
				"--clients", "4", "--prescriptions", "8", "--fills", "5", "--duration", "20s", "--verify", "1", "--http", mode, "--trace")
			if code != 0 {
				t.Fatalf("bench dispense: exit %d\n%s%s", code, stdout, stderr)
			}
			// --trace: the leader's stages during the 40 dispenses.
			for _, w := range []string{"prepared 8 prescriptions of 5 fills each", "HTTP " + mode, "dispenses:  40 (", "every fill was spent", "errors:     0\n", "verified:   40 receipts, 0 failed\n",
				"stages:     mean time of each stage of the write path on the leader", "  total   request ", "  commit  batch "} {
				if !strings.Contains(stdout, w) {
					t.Errorf("bench output lacks %q:\n%s", w, stdout)
				}
			}
			if strings.Contains(stdout, "refused:") {
				t.Errorf("refusals:\n%s", stdout)
			}
		})
	}
}
