package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/mod/sumdb/note"

	"github.com/telenotary/telenotary/cluster"
	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/filestore"
	"github.com/telenotary/telenotary/session/internal/browser"
	"github.com/telenotary/telenotary/session/internal/sessiontest"
)

var updateStatusVectors = flag.Bool("update-status-vectors", false, "rewrite the prescription status vectors in "+statusVectorsDir)

// statusVectorsDir holds the prescription status vectors: status answers
// (GET /v1/prescriptions/{commitment}/status), valid and tampered, with the
// prescriptions' bundles and the outcome each must give, for verify.js and
// any other implementation of notary's VerifyStatus.
const statusVectorsDir = "testdata/status"

// statusCase is one entry of testdata/status/manifest.json. For a valid
// answer it gives what the verification establishes; for another, the
// failed check and Go's words for it.
type statusCase struct {
	Status        string   `json:"status"`
	Bundle        string   `json:"bundle,omitempty"`
	MinSignatures int      `json:"min_signatures"`
	Expect        string   `json:"expect"`
	Detail        string   `json:"detail,omitempty"`
	State         string   `json:"state,omitempty"`
	FillsAllowed  int      `json:"fills_allowed,omitempty"`
	FillsUsed     int      `json:"fills_used,omitempty"`
	Dispensed     []string `json:"dispensed,omitempty"`
	RevokedAt     string   `json:"revoked_at,omitempty"`
	Why           string   `json:"why"`
}

type statusManifest struct {
	About string       `json:"about"`
	Keys  string       `json:"keys"`
	Cases []statusCase `json:"cases"`
}

// jsTime is how verify.js writes a time (Date.toISOString).
const jsTime = "2006-01-02T15:04:05.000Z"

// goStatus verifies a status answer as a Go client does: the keys file
// and policy make a verifier, the answer and the bundle (nil for none) are
// parsed, and VerifyStatus judges them.
func goStatus(keys []byte, minSigs int, status, bundle []byte) (verdict, *notary.StatusResult) {
	v, usage := goVerifier(keys, minSigs, "")
	if v == nil {
		return usage, nil
	}
	s, err := notary.ParsePrescriptionStatus(status)
	if err != nil {
		return statusVerdict(err), nil
	}
	var b *notary.Bundle
	if bundle != nil {
		if b, err = notary.ParseBundle(bundle); err != nil {
			return statusVerdict(err), nil
		}
	}
	res, err := v.VerifyStatus(s, b)
	return statusVerdict(err), res
}

// statusVerdict is verdictOf with the detail alone, as verify.js gives it:
// a VerifyError's Detail, or the message after the sentinel's name.
func statusVerdict(err error) verdict {
	v := verdictOf(err)
	var ve *notary.VerifyError
	if errors.As(err, &ve) {
		v.Detail = ve.Detail
	} else {
		v.Detail = strings.TrimPrefix(v.Detail, v.Outcome+": ")
	}
	return v
}

// prescribed is a prescription of the status vectors' log.
type prescribed struct {
	name   string
	doc    []byte
	salt   notary.Salt
	c      notary.Commitment
	fills  int // 0: logged without an allowance
	leaf   notary.Leaf
	pIdx   uint64
	aIdx   uint64
	ds     []uint64 // its dispenses, in log order
	rev    uint64   // its revocation; 0 when none
	bundle string   // the bundle's file name
}

// buildStatusVectors makes every status vector file, from fixed seeds: the
// same bytes on every run. The log is a real notary.Log (on a
// notary/filestore in a temporary directory) holding prescriptions with
// their allowance leaves (as the cluster logs them, in one append),
// dispenses and revocations, and a few entries no cluster would log (more
// dispenses than fills, a dispense after a revocation, an allowance before
// its prescription, an allowance whose lock another salt gives) that only
// a verifier can catch.
func buildStatusVectors(t *testing.T) map[string][]byte {
	t.Helper()
	rng := rand.New(rand.NewChaCha8([32]byte{'s', 't', 'a', 't', 'u', 's'}))
	seed := rand.NewChaCha8([32]byte{'s', 't', 'a', 't', 'u', 's', ' ', 'k', 'e', 'y', 's'})
	type keypair struct {
		signer note.Signer
		vkey   string
	}
	key := func(name string) keypair {
		skey, vkey, err := note.GenerateKey(seed, name)
		if err != nil {
			t.Fatal(err)
		}
		s, err := note.NewSigner(skey)
		if err != nil {
			t.Fatal(err)
		}
		return keypair{s, vkey}
	}
	n1, n2, n3, outsider := key("notary-1.example.org"), key("notary-2.example.org"), key("notary-3.example.org"), key("notary-9.example.org")
	salt := func() notary.Salt {
		var s notary.Salt
		for i := range s {
			s[i] = byte(rng.Uint32())
		}
		return s
	}
	const origin = "notary.example.org/telehealth"
	base := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	at := func(days, minutes int) int64 {
		return base.Add(time.Duration(days)*24*time.Hour + time.Duration(minutes)*time.Minute).UnixMilli()
	}

	l, err := filestore.OpenLog(t.TempDir(), filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var ts int64
	appendLeaves := func(leaves ...notary.Leaf) []uint64 {
		t.Helper()
		idx, err := l.Append(leaves, nil)
		if err != nil {
			t.Fatal(err)
		}
		return idx
	}
	filler := func(n int) {
		for range n {
			appendLeaves(notary.Leaf{Kind: notary.KindConsent, Commitment: notary.Commit(salt(), []byte("filler")), Timestamp: ts})
		}
	}
	canonical := func(name string) []byte {
		b, err := notary.CanonicalJSON(readFile(t, filepath.Join("../../notary/fhirdata", name)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	ts = at(0, 0)
	filler(5)
	sessionC := notary.Commit(salt(), []byte(`{"room":"r-18","session":"s-18"}`))
	appendLeaves(notary.Leaf{Kind: notary.KindSessionStart, Commitment: sessionC, Timestamp: ts})

	// The prescriptions, a minute apart, each logged with its allowance.
	rx := map[string]*prescribed{}
	prescribe := func(name, file string, fills int, minute int, lockSalt *notary.Salt, allowanceFirst bool) *prescribed {
		p := &prescribed{name: name, doc: readFile(t, filepath.Join("../../notary/fhirdata", file)), salt: salt(), fills: fills, bundle: "bundle-" + name + ".json"}
		p.c = notary.Commit(p.salt, canonical(file))
		ts = at(0, minute)
		p.leaf = notary.Leaf{Kind: notary.KindPrescription, Commitment: p.c, Link: sessionC, Timestamp: ts}
		leaves := []notary.Leaf{p.leaf}
		if fills > 0 {
			ls := p.salt
			if lockSalt != nil {
				ls = *lockSalt
			}
			a, err := notary.NewAllowance(ls, p.c, fills)
			if err != nil {
				t.Fatal(err)
			}
			leaves = append(leaves, notary.Leaf{Kind: notary.KindAllowance, Commitment: a.Commitment(), Link: p.c, Timestamp: ts})
		}
		if allowanceFirst {
			slices.Reverse(leaves)
		}
		idx := appendLeaves(leaves...)
		p.pIdx = idx[0]
		if fills > 0 {
			p.aIdx = idx[1]
		}
		if allowanceFirst {
			p.pIdx, p.aIdx = idx[1], idx[0]
		}
		rx[name] = p
		return p
	}
	otherSalt := salt()
	active := prescribe("active", "MedicationRequest-medrx0304.json", 4, 1, nil, false)
	revoked := prescribe("revoked", "MedicationRequest-medrx0312.json", 4, 2, nil, false)
	dispensed := prescribe("dispensed", "MedicationRequest-medrx0301.json", 1, 3, nil, false)
	untracked := prescribe("untracked", "MedicationRequest-medrx002.json", 0, 4, nil, false)
	fresh := prescribe("fresh", "MedicationRequest-medrx0321.json", 4, 5, nil, false)
	over := prescribe("over-dispensed", "MedicationRequest-medrx0324.json", 2, 6, nil, false)
	late := prescribe("dispensed-after-revocation", "MedicationRequest-medrx0325.json", 3, 7, nil, false)
	wrongLock := prescribe("wrong-lock", "MedicationRequest-medrx0326.json", 4, 8, &otherSalt, false)
	first := prescribe("allowance-first", "MedicationRequest-medrx0320.json", 4, 9, nil, true)
	filler(3)

	// Dispenses and revocations, days later: each dispense commits to a
	// pharmacy's MedicationDispense under its own salt.
	dispenseDocs := []string{"MedicationDispense-meddisp0301.json", "MedicationDispense-meddisp0302.json", "MedicationDispense-meddisp0303.json",
		"MedicationDispense-meddisp0304.json", "MedicationDispense-meddisp0305.json"}
	nDispenses := 0
	type pharmacyBundle struct {
		doc  string
		salt notary.Salt
		idx  uint64
	}
	var firstFill *pharmacyBundle // the pharmacy's bundle of active's first fill
	dispense := func(p *prescribed, day, minute int) uint64 {
		ts = at(day, minute)
		nDispenses++
		doc, dsalt := dispenseDocs[nDispenses%len(dispenseDocs)], salt()
		d := notary.Commit(dsalt, canonical(doc))
		idx := appendLeaves(notary.Leaf{Kind: notary.KindDispense, Commitment: d, Link: p.c, Timestamp: ts})[0]
		if p == rx["active"] && firstFill == nil {
			firstFill = &pharmacyBundle{doc, dsalt, idx}
		}
		p.ds = append(p.ds, idx)
		return idx
	}
	revoke := func(p *prescribed, day, minute int) {
		ts = at(day, minute)
		p.rev = appendLeaves(notary.Leaf{Kind: notary.KindRevocation, Commitment: notary.RevocationCommitment(p.c), Link: p.c, Timestamp: ts})[0]
	}
	dispense(active, 1, 0)
	dispense(revoked, 2, 0)
	dispense(dispensed, 3, 0)
	dispense(over, 3, 10)
	dispense(late, 3, 20)
	filler(2)
	dispense(over, 4, 0)
	dispense(over, 4, 10)
	revoke(late, 4, 20)
	revoke(revoked, 5, 0)
	dispense(late, 5, 10)
	// Entries linked to prescriptions that are not what a status answer
	// may hold in their place.
	ts = at(6, 0)
	consentIdx := appendLeaves(notary.Leaf{Kind: notary.KindConsent, Commitment: notary.Commit(salt(), []byte("consent")), Link: active.c, Timestamp: ts})[0]
	untrackedDispense := dispense(untracked, 6, 10)
	untracked.ds = nil // not in its valid answer
	ts = at(6, 20)
	strayRevocation := appendLeaves(notary.Leaf{Kind: notary.KindRevocation, Commitment: notary.Commit(salt(), []byte("not a revocation")), Link: revoked.c, Timestamp: ts})[0]
	dispense(active, 8, 0)
	dispense(wrongLock, 8, 10)
	dispense(first, 8, 20)
	filler(4)

	head := l.Head()
	sign := func(c notary.Checkpoint, keys ...keypair) notary.SignedCheckpoint {
		var s []note.Signer
		for _, k := range keys {
			s = append(s, k.signer)
		}
		cp, err := c.Sign(s...)
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	cpBody := notary.Checkpoint{Origin: origin, Size: head.Size, Root: head.Root, Timestamp: ts + 250}
	cp := sign(cpBody, n1, n2)
	untrustedCP := sign(cpBody, n1, outsider)
	ts = at(9, 0)
	filler(2)
	head2 := l.Head()
	laterCP := sign(notary.Checkpoint{Origin: origin, Size: head2.Size, Root: head2.Root, Timestamp: ts + 250}, n1, n2)

	receipt := func(idx uint64, cp notary.SignedCheckpoint) *notary.Receipt {
		r, err := l.Receipt(idx, cp)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// statusOf is the answer a node gives about p, into cp.
	statusOf := func(p *prescribed, cp notary.SignedCheckpoint) *notary.PrescriptionStatus {
		s := &notary.PrescriptionStatus{Commitment: p.c, Prescription: receipt(p.pIdx, cp)}
		if p.fills > 0 {
			s.Allowance = receipt(p.aIdx, cp)
		}
		for _, d := range p.ds {
			s.Dispenses = append(s.Dispenses, receipt(d, cp))
		}
		if p.rev != 0 {
			s.Revocation = receipt(p.rev, cp)
		}
		return s
	}

	files := map[string][]byte{}
	put := func(name string, v any) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		files[name] = buf.Bytes()
	}
	files["keys.pub"] = []byte("# verifier keys of the status vectors' notary nodes (test keys, trusted by nothing else)\n" + n1.vkey + "\n" + n2.vkey + "\n" + n3.vkey + "\n")
	for _, p := range rx {
		put(p.bundle, notary.Bundle{Document: p.doc, Salt: p.salt, Receipt: *receipt(p.pIdx, cp)})
	}
	// The pharmacy's bundle of a fill: its MedicationDispense, in a leaf of
	// kind dispense linked to the prescription.
	put("bundle-dispense.json", notary.Bundle{Document: readFile(t, filepath.Join("../../notary/fhirdata", firstFill.doc)), Salt: firstFill.salt,
		Receipt: *receipt(firstFill.idx, cp)})
	keys := files["keys.pub"]

	var cases []statusCase
	// add records a case with Go's verdict, which must be want.
	add := func(file string, p *prescribed, minSigs int, want, why string) {
		t.Helper()
		c := statusCase{Status: file, MinSignatures: minSigs, Why: why}
		var bundle []byte
		if p != nil {
			c.Bundle = p.bundle
			bundle = files[p.bundle]
		}
		v, res := goStatus(keys, minSigs, files[file], bundle)
		if v.Outcome != want {
			t.Fatalf("status vector %s (bundle %q): Go says %s (%s), built to be %s", file, c.Bundle, v.Outcome, v.Detail, want)
		}
		c.Expect = v.Outcome
		if res == nil {
			c.Detail = v.Detail
		} else {
			c.State, c.FillsAllowed, c.FillsUsed = res.State, res.FillsAllowed, res.FillsUsed
			for _, d := range res.Dispensed {
				c.Dispensed = append(c.Dispensed, d.Format(jsTime))
			}
			if !res.RevokedAt.IsZero() {
				c.RevokedAt = res.RevokedAt.Format(jsTime)
			}
		}
		cases = append(cases, c)
	}
	// answer writes a status answer, as a node would or edited.
	answer := func(file string, s *notary.PrescriptionStatus, edit func(s *notary.PrescriptionStatus)) string {
		if edit != nil {
			edit(s)
		}
		put(file, s)
		return file
	}
	// rewrite writes a status answer with members of its JSON changed (a
	// nil value removes the member).
	rewrite := func(file string, s *notary.PrescriptionStatus, members map[string]any) string {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for k, v := range members {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		put(file, m)
		return file
	}

	// Valid answers.
	add(answer("status-active.json", statusOf(active, cp), nil), active, 2, "valid", "fill 2 of 4 used: the prescription, its allowance and two dispenses, a week apart")
	add(answer("status-revoked.json", statusOf(revoked, cp), nil), revoked, 2, "valid", "revoked three days after its first fill; 1 of 4 fills used")
	add(answer("status-dispensed.json", statusOf(dispensed, cp), nil), dispensed, 2, "valid", "fully dispensed: its one fill was used")
	add(answer("status-untracked.json", statusOf(untracked, cp), nil), untracked, 2, "valid", "notarized without an allowance: the log does not track its fills")
	add(answer("status-fresh.json", statusOf(fresh, cp), nil), fresh, 2, "valid", "active, none of its 4 fills used")
	add("status-active.json", nil, 2, "valid", "without the bundle the answer verifies too, its lock unchecked")
	add(answer("status-wrong-lock.json", statusOf(wrongLock, cp), nil), nil, 2, "valid",
		"without the bundle nothing shows that the allowance's lock comes from another salt")

	// Answers that must be refused.
	add("status-active.json", revoked, 2, "commitment mismatch", "the answer is about another prescription than the bundle's")
	add("status-wrong-lock.json", wrongLock, 2, "commitment mismatch", "the allowance's lock is not the one the bundle's salt gives: whoever logged it could not dispense")
	add(answer("status-dispense-linked-elsewhere.json", statusOf(active, cp), func(s *notary.PrescriptionStatus) {
		s.Dispenses = []*notary.Receipt{s.Dispenses[0], receipt(revoked.ds[0], cp), s.Dispenses[1]}
	}), active, 2, "malformed input", "a dispense of another prescription counted as one of this one's")
	add(answer("status-over-dispensed.json", statusOf(over, cp), nil), over, 2, "inconsistent history", "three dispenses of a prescription that allows two")
	add(answer("status-dispense-after-revocation.json", statusOf(late, cp), nil), late, 2, "inconsistent history", "a dispense logged after the revocation")
	add(answer("status-mixed-checkpoints.json", statusOf(active, cp), func(s *notary.PrescriptionStatus) {
		s.Dispenses[1] = receipt(active.ds[1], laterCP)
	}), active, 2, "malformed input", "one dispense proven into a later checkpoint than the others: the answer is not one state of the log")
	add(rewrite("status-state-lies.json", statusOf(active, cp), map[string]any{"state": "dispensed"}), active, 2, "malformed input",
		"the answer says fully dispensed; its receipts say 2 of 4")
	add(rewrite("status-count-lies.json", statusOf(active, cp), map[string]any{"fills_used": 1}), active, 2, "malformed input",
		"the answer says 1 fill used; its receipts hold 2 dispenses")
	add(answer("status-dispenses-reordered.json", statusOf(active, cp), func(s *notary.PrescriptionStatus) {
		s.Dispenses[0], s.Dispenses[1] = s.Dispenses[1], s.Dispenses[0]
	}), active, 2, "inconsistent history", "the dispenses are not in log order")
	add(answer("status-dispense-of-wrong-kind.json", statusOf(active, cp), func(s *notary.PrescriptionStatus) {
		s.Dispenses = append(s.Dispenses, receipt(consentIdx, cp))
	}), active, 2, "malformed input", "a consent record linked to the prescription counted as a dispense")
	add(answer("status-untracked-with-dispense.json", statusOf(untracked, cp), func(s *notary.PrescriptionStatus) {
		s.Dispenses = []*notary.Receipt{receipt(untrackedDispense, cp)}
	}), untracked, 2, "inconsistent history", "a dispense of a prescription logged without an allowance")
	add(answer("status-allowance-hidden.json", statusOf(active, cp), func(s *notary.PrescriptionStatus) { s.Allowance = nil }), active, 2,
		"inconsistent history", "the allowance left out, its dispenses kept")
	add(answer("status-revocation-wrong-commitment.json", statusOf(revoked, cp), func(s *notary.PrescriptionStatus) {
		s.Revocation = receipt(strayRevocation, cp)
	}), revoked, 2, "commitment mismatch", "a revocation leaf whose commitment is not the prescription's revocation commitment")
	add(answer("status-allowance-first.json", statusOf(first, cp), nil), first, 2, "inconsistent history", "the allowance was logged before its prescription")
	add(answer("status-dispense-edited.json", statusOf(active, cp), func(s *notary.PrescriptionStatus) {
		r := *s.Dispenses[0]
		r.Leaf.Timestamp += 86400000
		s.Dispenses[0] = &r
	}), active, 2, "leaf mismatch", "the first dispense's time moved a day later")
	add(answer("status-proof-edited.json", statusOf(active, cp), func(s *notary.PrescriptionStatus) {
		r := *s.Dispenses[1]
		r.InclusionProof = slices.Clone(r.InclusionProof)
		r.InclusionProof[0][3] ^= 1
		s.Dispenses[1] = &r
	}), active, 2, "root mismatch", "one byte of the second dispense's inclusion proof changed")
	add(answer("status-untrusted-checkpoint.json", statusOf(active, untrustedCP), nil), active, 2, "too few trusted signatures",
		"the checkpoint is signed by one trusted node and a key nobody trusts")
	add("status-active.json", active, 3, "too few trusted signatures", "three signatures required, two given")
	add(rewrite("status-version-2.json", statusOf(active, cp), map[string]any{"version": 2}), active, 2, "malformed input", "a version this verifier does not read")
	add(rewrite("status-unknown-member.json", statusOf(active, cp), map[string]any{"note": "trust me"}), active, 2, "malformed input", "a member the format does not have")
	add(rewrite("status-no-prescription.json", statusOf(active, cp), map[string]any{"prescription": nil}), active, 2, "malformed input", "the prescription's receipt is missing")
	add(rewrite("status-dispenses-null.json", statusOf(fresh, cp), map[string]any{"dispenses": json.RawMessage("null")}), fresh, 2, "malformed input",
		"dispenses null: an answer without dispenses lists none, [], in the one form the format has")
	add(rewrite("status-allowance-missing.json", statusOf(untracked, cp), map[string]any{"allowance": nil}), untracked, 2, "malformed input",
		"the allowance member left out: an answer without an allowance says null")
	add(rewrite("status-member-in-another-case.json", statusOf(active, cp), map[string]any{"state": nil, "State": "active"}), active, 2, "malformed input",
		"a member name in another case: names are matched exactly")

	put("manifest.json", statusManifest{
		About: "Prescription status answers (GET /v1/prescriptions/{commitment}/status) and the outcome of verifying each, " +
			"with the prescription's bundle when one is named; generated by buildStatusVectors in session/web/verify_status_test.go",
		Keys:  "keys.pub",
		Cases: cases,
	})
	return files
}

// TestStatusVectorsAreCurrent checks testdata/status against the files
// buildStatusVectors makes (go test -run TestStatusVectorsAreCurrent
// -update-status-vectors ./session/web/ rewrites them), and that Go's
// VerifyStatus gives each case of the manifest its outcome.
func TestStatusVectorsAreCurrent(t *testing.T) {
	files := buildStatusVectors(t)
	if *updateStatusVectors {
		if err := os.MkdirAll(statusVectorsDir, 0o755); err != nil {
			t.Fatal(err)
		}
		old, _ := filepath.Glob(filepath.Join(statusVectorsDir, "*.json"))
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(statusVectorsDir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, b := range files {
		disk, err := os.ReadFile(filepath.Join(statusVectorsDir, name))
		if err != nil || !bytes.Equal(disk, b) {
			t.Errorf("%s is not what buildStatusVectors makes (%v): run go test -run TestStatusVectorsAreCurrent -update-status-vectors ./session/web/", name, err)
		}
	}
	onDisk, _ := filepath.Glob(filepath.Join(statusVectorsDir, "*"))
	for _, f := range onDisk {
		if name := filepath.Base(f); files[name] == nil && name != "README.md" {
			t.Errorf("%s is not a status vector any more: remove it", f)
		}
	}
}

// jsStatus is what the harness returns for a status answer.
type jsStatus struct {
	Outcome      string   `json:"outcome"`
	Reason       string   `json:"reason"`
	Detail       string   `json:"detail"`
	State        string   `json:"state"`
	FillsAllowed int      `json:"fillsAllowed"`
	FillsUsed    int      `json:"fillsUsed"`
	Dispensed    []string `json:"dispensed"`
	RevokedAt    string   `json:"revokedAt"`
}

// statusVectorScript verifies every case of the status manifest with
// verify.js: with verifyStatus, and, for a case with a bundle, also as the
// page does, through verifyBundle's status option.
const statusVectorScript = `(async () => {
  const v = await import('/verify/verify.js');
  const get = async (name) => new Uint8Array(await (await fetch('/status-vectors/' + name)).arrayBuffer());
  const m = await (await fetch('/status-vectors/manifest.json')).json();
  const keys = await get(m.keys);
  const view = (r) => r.valid
    ? { outcome: r.outcome, state: r.state, fillsAllowed: r.fillsAllowed, fillsUsed: r.fillsUsed, dispensed: r.dispensed, revokedAt: r.revokedAt || '' }
    : { outcome: r.outcome, reason: r.reason, detail: r.detail };
  const out = [];
  for (const c of m.cases) {
    const opts = { minSignatures: c.min_signatures };
    const status = await get(c.status);
    if (c.bundle) opts.bundle = await get(c.bundle);
    const direct = view(await v.verifyStatus(status, keys, opts));
    let page = null;
    if (c.bundle) {
      const b = await v.verifyBundle(opts.bundle, keys, { minSignatures: c.min_signatures, status });
      page = b.valid ? view(b.status) : { outcome: 'bundle ' + b.outcome };
    }
    out.push([direct, page]);
  }
  return out;
})()`

// TestStatusVectorsInBrowser runs verify.js in Chromium on every status
// vector and requires Go's verdict: the same outcome, reason and detail
// for a refused answer, the same state, fills and times for a valid one,
// whether the answer is checked alone or with its bundle as the page does.
func TestStatusVectorsInBrowser(t *testing.T) {
	var manifest statusManifest
	if err := json.Unmarshal(readFile(t, filepath.Join(statusVectorsDir, "manifest.json")), &manifest); err != nil {
		t.Fatal(err)
	}
	keys := readFile(t, filepath.Join(statusVectorsDir, manifest.Keys))
	srv := newTestServer(t, nil)
	ctx := browser.New(t, nil)
	navigate(t, ctx, srv.URL+"/harness/")
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[][2]*jsStatus](statusVectorScript, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("running the status vectors in the browser: %v", err)
	}
	if len(got) != len(manifest.Cases) || len(got) == 0 {
		t.Fatalf("the browser verified %d cases, the manifest has %d", len(got), len(manifest.Cases))
	}
	seen := map[string]bool{}
	for i, c := range manifest.Cases {
		name := fmt.Sprintf("case %d (%s, bundle %q, min %d)", i, c.Status, c.Bundle, c.MinSignatures)
		var bundle []byte
		if c.Bundle != "" {
			bundle = readFile(t, filepath.Join(statusVectorsDir, c.Bundle))
		}
		goV, res := goStatus(keys, c.MinSignatures, readFile(t, filepath.Join(statusVectorsDir, c.Status)), bundle)
		want := jsStatus{Outcome: goV.Outcome}
		if res != nil {
			want = jsStatus{Outcome: "valid", State: res.State, FillsAllowed: res.FillsAllowed, FillsUsed: res.FillsUsed, RevokedAt: c.RevokedAt, Dispensed: c.Dispensed}
		} else {
			want.Reason, want.Detail = goV.Reason, goV.Detail
		}
		if goV.Outcome != c.Expect || (res == nil && goV.Detail != c.Detail) || (res != nil && (res.State != c.State || res.FillsUsed != c.FillsUsed)) {
			t.Errorf("%s: Go says %s (%s), the manifest %s (%s)", name, goV.Outcome, goV.Detail, c.Expect, c.Detail)
		}
		seen[c.Expect] = true
		for k, js := range got[i] {
			if js == nil {
				continue // no bundle: verifyStatus alone
			}
			how := []string{"verifyStatus", "verifyBundle with the answer"}[k]
			if k == 1 && strings.HasPrefix(js.Outcome, "bundle ") {
				if c.Expect != "too few trusted signatures" {
					t.Errorf("%s: %s: the bundle itself is refused: %s", name, how, js.Outcome)
				}
				continue
			}
			if fmt.Sprint(*js) != fmt.Sprint(want) {
				t.Errorf("%s: %s:\nverify.js: %+v\nGo:        %+v\n(%s)", name, how, *js, want, c.Why)
			}
		}
	}
	for _, o := range []string{"valid", "malformed input", "commitment mismatch", "leaf mismatch", "root mismatch", "too few trusted signatures", "inconsistent history"} {
		if !seen[o] {
			t.Errorf("no status vector gives %q", o)
		}
	}
}

// TestVerifyPageStatus drives /verify/ with bundles of the status vectors'
// log: for each valid prescription the page asks the server for its status
// by commitment, verifies the answer under the same trust as the bundle and
// shows it: "fill 2 of 4 used" with the date of each fill, "revoked on
// <time>", "fully dispensed", "not tracked"; "Status answer INVALID" for an
// answer whose allowance lock is not the bundle's; "Status not checked
// (offline)" when the connection drops. It asks for a consistent read, as
// telenotary verify does.
//
// The signalling server's relay of GET /v1/prescriptions/{commitment}/status
// is not on main yet, so the test server that serves the page answers the
// status itself, with the answers buildStatusVectors proves into its real
// notary.Log, byte for byte what a node gives.
func TestVerifyPageStatus(t *testing.T) {
	files := buildStatusVectors(t)
	commitment := func(bundle string) string {
		b, err := notary.ParseBundle(files[bundle])
		if err != nil {
			t.Fatal(err)
		}
		return b.Receipt.Leaf.Commitment.String()
	}
	srv := newTestServer(t, files["keys.pub"])
	srv.statuses = map[string][]byte{}
	for _, name := range []string{"active", "revoked", "dispensed", "untracked", "fresh", "wrong-lock"} {
		srv.statuses[commitment("bundle-"+name+".json")] = files["status-"+name+".json"]
	}
	srv.statuses[commitment("bundle-allowance-first.json")] = nil // the connection drops
	ctx := browser.New(t, &browser.Options{IgnoreConsole: func(m chromedp.ConsoleMessage) bool {
		return strings.Contains(m.URL, "/v1/prescriptions/"+commitment("bundle-allowance-first.json")) && strings.Contains(m.Text, "ERR_")
	}})
	navigate(t, ctx, srv.URL+"/verify/?min=2")
	waitKeys(t, ctx, "loaded")

	done := 0
	show := func(bundle string) pageView {
		t.Helper()
		drop(t, ctx, bundle, files[bundle])
		done++
		v := viewStatus(t, ctx, done)
		if v.Verdict != "VALID" || v.Fields["kind"] != "prescription" {
			t.Fatalf("%s: the page shows %q (%s) %s", bundle, v.Verdict, v.Summary, v.Technical)
		}
		return v
	}

	v := show("bundle-active.json")
	wantFills := []string{"Fill 1 dispensed on 2026-11-22T12:00:00.000Z", "Fill 2 dispensed on 2026-11-29T12:00:00.000Z"}
	if v.Status != "active" || v.StatusLine != "Status: fill 2 of 4 used (2 left)" || !slices.Equal(v.StatusFills, wantFills) ||
		!strings.Contains(v.StatusNote, "As of 2026-11-29T12:20:00.250Z") {
		t.Errorf("2 of 4 fills used: status %s %q %q, fills %q", v.Status, v.StatusLine, v.StatusNote, v.StatusFills)
	}
	v = show("bundle-revoked.json")
	if v.Status != "revoked" || v.StatusLine != "Status: revoked on 2026-11-26T12:00:00.000Z" ||
		!strings.Contains(v.StatusNote, "1 of its 4 fills was used before the revocation") ||
		!slices.Equal(v.StatusFills, []string{"Fill 1 dispensed on 2026-11-23T12:00:00.000Z"}) {
		t.Errorf("revoked: status %s %q %q, fills %q", v.Status, v.StatusLine, v.StatusNote, v.StatusFills)
	}
	v = show("bundle-dispensed.json")
	if v.Status != "dispensed" || v.StatusLine != "Status: fully dispensed (its one fill used)" || len(v.StatusFills) != 1 {
		t.Errorf("fully dispensed: status %s %q, fills %q", v.Status, v.StatusLine, v.StatusFills)
	}
	v = show("bundle-untracked.json")
	if v.Status != "untracked" || v.StatusLine != "Status: not tracked" || len(v.StatusFills) != 0 {
		t.Errorf("untracked: status %s %q, fills %q", v.Status, v.StatusLine, v.StatusFills)
	}
	v = show("bundle-fresh.json")
	if v.Status != "active" || v.StatusLine != "Status: active, none of its 4 fills used yet" || len(v.StatusFills) != 0 {
		t.Errorf("no fill used: status %s %q, fills %q", v.Status, v.StatusLine, v.StatusFills)
	}
	v = show("bundle-wrong-lock.json")
	if v.Status != "invalid" || v.StatusLine != "Status answer INVALID: the answer is not about this prescription, or its allowance was not made with the bundle's salt" ||
		!strings.Contains(v.StatusTechnical, "allowance: its lock is not the one the bundle's salt gives") {
		t.Errorf("an allowance locked with another salt: status %s %q %q", v.Status, v.StatusLine, v.StatusTechnical)
	}
	// A pharmacy's bundle of a fill is a record of its own, linked to the
	// prescription; it has no status.
	drop(t, ctx, "bundle-dispense.json", files["bundle-dispense.json"])
	done++
	v = viewStatus(t, ctx, done)
	if v.Verdict != "VALID" || v.Fields["kind"] != "dispense (a pharmacy's record of a fill)" || v.Fields["link"] != commitment("bundle-active.json") ||
		v.Document["resource"] == "" || v.Status != "none" {
		t.Errorf("a pharmacy's dispense bundle: %q (%s), fields %v, document %v, status %s", v.Verdict, v.Technical, v.Fields, v.Document, v.Status)
	}
	v = show("bundle-allowance-first.json")
	if v.Status != "offline" || v.StatusLine != "Status not checked (offline)" {
		t.Errorf("the connection dropped: status %s %q %q", v.Status, v.StatusLine, v.StatusNote)
	}

	// The same answers under a pinned policy that trusts the nodes.
	keyLines := strings.Split(strings.TrimSpace(string(files["keys.pub"])), "\n")[1:]
	policy := "origin notary.example.org/telehealth\n"
	for _, k := range keyLines {
		policy += "node " + k + "\n"
	}
	policy += "node-signatures 2\n"
	navigate(t, ctx, srv.URL+"/verify/#policy="+url.PathEscape(policy))
	waitKeys(t, ctx, "loaded")
	drop(t, ctx, "bundle-active.json", files["bundle-active.json"])
	if v = viewStatus(t, ctx, 1); v.TrustFrom != "pinned" || v.Status != "active" || v.StatusLine != "Status: fill 2 of 4 used (2 left)" {
		t.Errorf("under a pinned policy: trust %q, status %s %q", v.Trust, v.Status, v.StatusLine)
	}

	// The page asked for nothing but itself, the keys and the status of
	// each prescription, by its commitment.
	allowed := []string{"/verify/", "/verify/style.css", "/verify/page.js", "/verify/verify.js", "/v1/keys"}
	for c := range srv.statuses {
		allowed = append(allowed, "/v1/prescriptions/"+c+"/status")
	}
	for _, r := range srv.log() {
		status := strings.HasPrefix(r.Path, "/v1/prescriptions/")
		if r.Method != http.MethodGet || r.BodyBytes != 0 || !slices.Contains(allowed, r.Path) || status && r.Query != "consistent=1" {
			t.Errorf("unexpected request from the page: %s %s?%s (%d bytes)", r.Method, r.Path, r.Query, r.BodyBytes)
		}
	}
}

// statusEdit is one status answer for both verifiers: the base answer with
// Del bytes at At replaced by Ins.
type statusEdit struct {
	Name string `json:"name"`
	At   int    `json:"at"`
	Del  int    `json:"del"`
	Ins  []byte `json:"ins,omitempty"`
}

// statusEditScript verifies each edited answer of /harness/cases.json with
// verify.js, with the prescription's bundle.
const statusEditScript = `(async () => {
  const v = await import('/verify/verify.js');
  const data = await (await fetch('/harness/cases.json')).json();
  const bytes = (s) => Uint8Array.from(atob(s || ''), (c) => c.charCodeAt(0));
  const base = bytes(data.base);
  const bundle = bytes(data.bundle);
  const keys = await v.parseKeys(bytes(data.keys));
  const out = [];
  for (const c of data.edits) {
    const ins = bytes(c.ins);
    const s = new Uint8Array(base.length - c.del + ins.length);
    s.set(base.subarray(0, c.at));
    s.set(ins, c.at);
    s.set(base.subarray(c.at + c.del), c.at + ins.length);
    try {
      const r = await v.verifyStatus(s, keys, { minSignatures: 2, bundle });
      out.push(r.valid ? ['valid', '', r.state + ' ' + r.fillsUsed + '/' + r.fillsAllowed] : [r.outcome, r.reason, r.detail]);
    } catch (e) {
      out.push(['exception', '', String(e.stack || e)]);
    }
  }
  return out;
})()`

// TestStatusEditsAgree checks that verify.js and Go's ParsePrescriptionStatus
// and VerifyStatus give the same verdict and reason on thousands of status
// answers: every byte of a valid answer flipped, every third deleted, and
// edits that probe the strict reading of the answer (member names in
// another case or escaped, duplicate members, nulls, numbers not in their
// one spelling, values of another type, data after the object).
func TestStatusEditsAgree(t *testing.T) {
	base := readFile(t, filepath.Join(statusVectorsDir, "status-active.json"))
	bundle := readFile(t, filepath.Join(statusVectorsDir, "bundle-active.json"))
	keys := readFile(t, filepath.Join(statusVectorsDir, "keys.pub"))
	var edits []statusEdit
	masks := []byte{0x01, 0x20, 0x80, 0x02, 0x08, 0x40, 0x04, 0x10}
	for at := range base {
		m := masks[at%len(masks)]
		edits = append(edits, statusEdit{Name: fmt.Sprintf("byte %d ^ %#02x", at, m), At: at, Del: 1, Ins: []byte{base[at] ^ m}})
		if at%3 == 0 {
			edits = append(edits, statusEdit{Name: fmt.Sprintf("byte %d deleted", at), At: at, Del: 1})
		}
	}
	// Whole-member edits: replace the text old (its first occurrence) by new.
	replace := func(old, new string) {
		at := bytes.Index(base, []byte(old))
		if at < 0 {
			t.Fatalf("status-active.json has no %q", old)
		}
		edits = append(edits, statusEdit{Name: fmt.Sprintf("%q -> %q", old, new), At: at, Del: len(old), Ins: []byte(new)})
	}
	for _, e := range [][2]string{
		{`"version": 1`, `"Version": 1`},
		{`"version": 1`, `"VERSION": 1`},
		{`"version": 1`, "\"ver\u017fion\": 1"},
		{`"version": 1`, `"ver\u017fion": 1`},
		{`"version": 1`, `"version": 1.0`},
		{`"version": 1`, `"version": 1e0`},
		{`"version": 1`, `"version": "1"`},
		{`"version": 1`, `"version": null`},
		{`"version": 1`, `"version": 1, "version": null`},
		{`"version": 1`, `"version": 2, "version": 1`},
		{`"version": 1`, `"version": 1, "version": 2`},
		{`"version": 1`, `"version": -1`},
		{`"version": 1`, `"version": 99999999999999999999`},
		{`"version": 1`, `"version": true`},
		{`"version": 1`, `"vers\u0069on": 1`},
		{`"state": "active"`, `"State": "active"`},
		{`"state": "active"`, `"state": "\u0061ctive"`},
		{`"state": "active"`, `"state": "Active"`},
		{`"state": "active"`, `"state": null`},
		{`"state": "active"`, `"state": 1`},
		{`"state": "active"`, `"state": "dispensed", "state": "active"`},
		{`"fills_used": 2`, `"fills_used": 2.0`},
		{`"fills_used": 2`, `"fills_used": -0`},
		{`"fills_used": 2`, `"fills_used": null`},
		{`"fills_used": 2`, `"FILLS_USED": 2`},
		{`"fills_allowed": 4`, `"fills_allowed": 4, "fills_allowed": 5`},
		{`"commitment": "`, `"commitment": null, "commitment": "`},
		{`"commitment": "`, `"commitment": "`},
		{`"dispenses": [`, `"dispenses": null, "dispenses": [`},
		{`"dispenses": [`, `"dispenses": [null, `},
		{`"dispenses": [`, `"dispenses": {}, "x": [`},
		{`"revocation": null`, `"revocation": null, "revocation": null`},
		{`"revocation": null`, `"revocation": "none"`},
		{`"revocation": null`, `"revocation": {}`},
		{`"revocation": null`, `"revocation": []`},
		{`"revocation": null`, `"note": null`},
		{`"version": 1`, `"version": 01`},
		{`"version": 1`, `"version": 9223372036854775808`},
		{`"version": 1`, `"version": {"a": [null]}`},
		{`"version": 1`, `"version": [1]`},
		{`"state": "active"`, `"state": ["active"]`},
		{`"commitment": "`, `"commitment": 1, "x": "`},
		{`"dispenses": [`, `"dispenses": [{}, `},
		{`"dispenses": [`, `"dispenses": "[", "x": [`},
		{`"allowance": {`, `"allowance": null, "allowance": {`},
		{`"prescription": {`, `"prescription": null, "x": {`},
	} {
		replace(e[0], e[1])
	}
	commitment := bytes.Index(base, []byte(`"commitment": "`)) + len(`"commitment": "`)
	for _, e := range []statusEdit{
		{Name: "commitment in upper case", At: commitment, Del: 64, Ins: bytes.ToUpper(base[commitment : commitment+64])},
		{Name: "commitment's first digit escaped", At: commitment, Del: 1, Ins: []byte(`\u00` + fmt.Sprintf("%x", base[commitment]))},
		{Name: "a closing brace after the object", At: len(base), Ins: []byte("}")},
		{Name: "a closing bracket after the object", At: len(base), Ins: []byte("]")},
		{Name: "a second object", At: len(base), Ins: []byte("{}")},
		{Name: "a letter after the object", At: len(base), Ins: []byte("x")},
		{Name: "whitespace before and after", At: 0, Ins: []byte(" \t\r\n")},
		{Name: "null", At: 0, Del: len(base), Ins: []byte("null")},
		{Name: "an array", At: 0, Del: len(base), Ins: []byte("[]")},
		{Name: "empty", At: 0, Del: len(base)},
		{Name: "an empty object", At: 0, Del: len(base), Ins: []byte("{}")},
	} {
		edits = append(edits, e)
	}

	data, err := json.Marshal(map[string]any{"base": base, "bundle": bundle, "keys": keys, "edits": edits})
	if err != nil {
		t.Fatal(err)
	}
	srv := newTestServer(t, nil)
	srv.cases = data
	ctx := browser.New(t, &browser.Options{Timeout: 3 * time.Minute})
	navigate(t, ctx, srv.URL+"/harness/")
	started := time.Now()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[][3]string](statusEditScript, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("running the edits in the browser: %v", err)
	}
	t.Logf("verify.js judged %d status answers in %v", len(got), time.Since(started).Round(time.Millisecond))
	if len(got) != len(edits) {
		t.Fatalf("the browser judged %d answers, want %d", len(got), len(edits))
	}
	v, usage := goVerifier(keys, 2, "")
	if v == nil {
		t.Fatal(usage)
	}
	b, err := notary.ParseBundle(bundle)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	mismatches := 0
	for i, e := range edits {
		s := append(append(slices.Clone(base[:e.At]), e.Ins...), base[e.At+e.Del:]...)
		var goV verdict
		var res *notary.StatusResult
		st, err := notary.ParsePrescriptionStatus(s)
		if err == nil {
			res, err = v.VerifyStatus(st, b)
		}
		goV = statusVerdict(err)
		goText := goV.Detail
		if res != nil {
			goText = fmt.Sprintf("%s %d/%d", res.State, res.FillsUsed, res.FillsAllowed)
		}
		counts[goV.Outcome]++
		if got[i][0] != goV.Outcome || got[i][1] != goV.Reason || (goV.Outcome == "valid" && got[i][2] != goText) {
			if mismatches++; mismatches <= 40 {
				t.Errorf("%s:\n  Go:        %s (%s)\n  verify.js: %s (%s)", e.Name, goV.Outcome, goText, got[i][0], got[i][2])
			}
		}
	}
	if mismatches > 0 {
		t.Errorf("verify.js and Go disagree on %d of %d status answers", mismatches, len(edits))
	}
	t.Logf("outcomes (Go): %v", counts)
}

// TestVerifyPageLiveStatus runs a real one-node notary cluster, whose state
// machine enforces fills and revocations: a submitter notarizes two
// prescriptions of four fills each, a pharmacy dispenses two fills of the
// first (the hash chain's proofs from the bundle's salt) and one of the
// second, and the second is revoked. The /verify/ page, given each
// prescription's bundle, shows "fill 2 of 4 used" with the fills' dates
// and "revoked on <the revocation's time>", from the node's own answers.
//
// The signalling server's relay of GET /v1/prescriptions/{commitment}/status
// is not on main yet: the test server that serves the page relays the
// request to the node itself, status code and body as they are.
func TestVerifyPageLiveStatus(t *testing.T) {
	n := startLifecycleNotary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	submitter := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: []string{n.url}, Token: lifecycleSubmitter})
	pharmacy := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: []string{n.url}, Token: lifecyclePharmacy})

	type rx struct {
		bundle []byte
		salt   notary.Salt
		c      notary.Commitment
		a      notary.Allowance
	}
	prescribe := func(file string) rx {
		t.Helper()
		doc := readFile(t, filepath.Join("../../notary/fhirdata", file))
		canonical, err := notary.CanonicalJSON(doc)
		if err != nil {
			t.Fatal(err)
		}
		p := rx{salt: notary.NewSalt()}
		p.c = notary.Commit(p.salt, canonical)
		if p.a, err = notary.NewAllowance(p.salt, p.c, 4); err != nil {
			t.Fatal(err)
		}
		res, err := submitter.Notarize(ctx, notaryapi.Entry{Kind: notary.KindPrescription, Commitment: p.c, Allowance: &p.a})
		if err != nil {
			t.Fatalf("notarizing %s: %v", file, err)
		}
		if p.bundle, err = json.Marshal(notary.Bundle{Document: doc, Salt: p.salt, Receipt: *res.Receipt}); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var dispensed []time.Time
	dispense := func(p rx, k int) {
		t.Helper()
		proof, err := notary.DispenseProof(p.salt, p.c, p.a, k)
		if err != nil {
			t.Fatal(err)
		}
		d := notary.Commit(notary.NewSalt(), readFile(t, "../../notary/fhirdata/MedicationDispense-meddisp0301.json"))
		res, err := pharmacy.Notarize(ctx, notaryapi.Entry{Kind: notary.KindDispense, Commitment: d, Link: p.c, Fill: k, Proof: &proof})
		if err != nil || res.Fill != k || res.Fills != 4 {
			t.Fatalf("dispensing fill %d: %+v, %v", k, res, err)
		}
		dispensed = append(dispensed, res.Receipt.Leaf.Time())
	}
	active, revoked := prescribe("MedicationRequest-medrx0304.json"), prescribe("MedicationRequest-medrx0312.json")
	dispense(active, 1)
	dispense(revoked, 1)
	dispense(active, 2)
	seed := notary.DispenseSeed(revoked.salt, revoked.c)
	rev, err := submitter.Notarize(ctx, notaryapi.Entry{Kind: notary.KindRevocation, Commitment: notary.RevocationCommitment(revoked.c), Link: revoked.c, Proof: &seed})
	if err != nil {
		t.Fatalf("revoking: %v", err)
	}
	proof, err := notary.DispenseProof(revoked.salt, revoked.c, revoked.a, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pharmacy.Notarize(ctx, notaryapi.Entry{Kind: notary.KindDispense, Commitment: notary.Commit(notary.NewSalt(), []byte("late")),
		Link: revoked.c, Fill: 2, Proof: &proof}); !errors.Is(err, notaryapi.ErrRevoked) {
		t.Fatalf("a dispense after the revocation: %v, want it refused as revoked", err)
	}

	srv := newTestServer(t, n.keys)
	srv.statusRelay = n.url
	bctx := browser.New(t, nil)
	navigate(t, bctx, srv.URL+"/verify/")
	waitKeys(t, bctx, "loaded")
	drop(t, bctx, "active.json", active.bundle)
	v := viewStatus(t, bctx, 1)
	fills := []string{"Fill 1 dispensed on " + dispensed[0].Format(jsTime), "Fill 2 dispensed on " + dispensed[2].Format(jsTime)}
	if v.Verdict != "VALID" || v.Status != "active" || v.StatusLine != "Status: fill 2 of 4 used (2 left)" || !slices.Equal(v.StatusFills, fills) {
		t.Errorf("2 of 4 fills dispensed: %q, status %s %q %q, fills %q (want %q)", v.Verdict, v.Status, v.StatusLine, v.StatusTechnical, v.StatusFills, fills)
	}
	drop(t, bctx, "revoked.json", revoked.bundle)
	v = viewStatus(t, bctx, 2)
	if v.Verdict != "VALID" || v.Status != "revoked" || v.StatusLine != "Status: revoked on "+rev.Receipt.Leaf.Time().Format(jsTime) ||
		!strings.Contains(v.StatusNote, "1 of its 4 fills was used before the revocation") {
		t.Errorf("revoked: %q, status %s %q %q %q", v.Verdict, v.Status, v.StatusLine, v.StatusNote, v.StatusTechnical)
	}
	for _, r := range srv.log() {
		if strings.HasPrefix(r.Path, "/v1/prescriptions/") && r.Query != "consistent=1" {
			t.Errorf("the page asked for a status without a consistent read: %s?%s", r.Path, r.Query)
		}
	}
}

// Tokens of the lifecycle notary.
const (
	lifecycleSubmitter = "submitter-0123456789abcdef"
	lifecyclePharmacy  = "pharmacy-0123456789abcdef"
)

type lifecycleNotary struct {
	url  string
	keys []byte
}

// startLifecycleNotary starts a real one-node notary cluster, with a
// submitter's and a pharmacy's token, and waits until it leads.
func startLifecycleNotary(t *testing.T) lifecycleNotary {
	t.Helper()
	skey, vkey, err := notary.GenerateKey("notary-1.verify.test")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.ParseTokens([]byte("submitter " + lifecycleSubmitter + "\npharmacy " + lifecyclePharmacy + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := cluster.DefaultConfig()
	cfg.ID = "notary-1"
	cfg.DataDir = filepath.Join(t.TempDir(), "notary-1")
	cfg.RaftAddr, cfg.HTTPAddr, cfg.InsecureRaft = "127.0.0.1:0", "127.0.0.1:0", true
	cfg.Signer, cfg.VerifierKey = signer, vkey
	cfg.Tokens = tokens
	cfg.Bootstrap, cfg.Origin = true, "verify.test/log"
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
	cfg.Logger = sessiontest.Logger(t)
	node, err := cluster.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("starting the notary: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		node.Close(ctx)
	})
	sessiontest.WaitFor(t, "the notary to lead", node.Ready)
	return lifecycleNotary{url: "http://" + node.HTTPAddr(), keys: []byte(vkey + "\n")}
}
