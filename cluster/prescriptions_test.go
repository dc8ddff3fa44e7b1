package cluster_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// issued is a prescription issued with an allowance, as its holder keeps
// it.
type issued struct {
	bundle    *notary.Bundle
	allowance notary.Allowance
}

func (p issued) commitment() notary.Commitment { return p.bundle.Receipt.Leaf.Commitment }

// issue notarizes an HL7 example MedicationRequest (testdata of package
// notary) with an allowance of fills.
func issue(ctx context.Context, t testing.TB, c *notaryapi.Client, example string, fills int) issued {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "notary", "fhirdata", example))
	if err != nil {
		t.Fatal(err)
	}
	canon, err := notary.CanonicalJSON(doc)
	if err != nil {
		t.Fatal(err)
	}
	salt := notary.NewSalt()
	com := notary.Commit(salt, canon)
	a, err := notary.NewAllowance(salt, com, fills)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Notarize(ctx, notaryapi.Entry{Kind: notary.KindPrescription, Commitment: com, Allowance: &a})
	if err != nil {
		t.Fatal(err)
	}
	return issued{bundle: &notary.Bundle{Document: doc, Salt: salt, Receipt: *resp.Receipt}, allowance: a}
}

// dispenseEntry is a pharmacy's dispense of fill k of p, committing to
// the dispense record named tag.
func dispenseEntry(t testing.TB, p issued, k int, tag string) notaryapi.Entry {
	t.Helper()
	proof, err := notary.DispenseProof(p.bundle.Salt, p.commitment(), p.allowance, k)
	if err != nil {
		t.Fatal(err)
	}
	return notaryapi.Entry{Kind: notary.KindDispense, Commitment: notary.Commitment(sha256.Sum256([]byte(tag))), Link: p.commitment(), Fill: k, Proof: &proof}
}

// revocationEntry revokes p, as its issuer does.
func revocationEntry(p issued) notaryapi.Entry {
	seed := notary.DispenseSeed(p.bundle.Salt, p.commitment())
	return notaryapi.Entry{Kind: notary.KindRevocation, Commitment: notary.RevocationCommitment(p.commitment()), Link: p.commitment(), Proof: &seed}
}

func pharmacyClient(nodes ...*testNode) *notaryapi.Client {
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.url)
	}
	return notaryapi.NewClient(notaryapi.ClientConfig{Nodes: urls, Token: pharmacyToken})
}

// checkStatus reads p's status from node n (a consistent read), verifies
// it with p's bundle and checks the state and fills it proves.
func checkStatus(ctx context.Context, t testing.TB, v *notary.Verifier, n *testNode, p issued, state string, used int) *notary.StatusResult {
	t.Helper()
	s, err := clientFor(n).PrescriptionStatus(ctx, p.commitment(), true)
	if err != nil {
		t.Fatalf("status from %s: %v", n.cfg.ID, err)
	}
	res, err := v.VerifyStatus(s, p.bundle)
	if err != nil {
		t.Fatalf("status from %s does not verify: %v", n.cfg.ID, err)
	}
	if res.State != state || res.FillsUsed != used || res.FillsAllowed != p.allowance.Fills {
		t.Fatalf("status from %s: %s, %d of %d fills; want %s, %d of %d", n.cfg.ID, res.State, res.FillsUsed, res.FillsAllowed, state, used, p.allowance.Fills)
	}
	return res
}

// TestDispenseRules: an HL7 prescription with numberOfRepeatsAllowed 3
// allows 4 fills: four pharmacies dispense it through different nodes,
// the fifth is refused, and no refusal is a leaf; a retried dispense
// answers its receipt; stale fills, wrong proofs, unknown prescriptions
// and the wrong tokens are refused; a revoked prescription is not
// dispensed; every node, restarted too, proves the same status, which
// verifies offline with the bundle.
func TestDispenseRules(t *testing.T) {
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	n2 := c.join("node-2", n1)
	n3 := c.join("node-3", n1)
	c.waitVoters(3)
	nodes := []*testNode{n1, n2, n3}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	submitter := clientFor(nodes...)

	p := issue(ctx, t, submitter, "MedicationRequest-medrx0324.json", 4) // numberOfRepeatsAllowed 3
	v, err := notary.NewVerifier(c.policy())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyBundle(p.bundle); err != nil {
		t.Fatal(err)
	}
	checkStatus(ctx, t, v, n2, p, notary.StateActive, 0)

	var receipts []*notary.Receipt
	for k := 1; k <= 4; k++ {
		n := nodes[k%3] // through followers and the leader alike
		resp, err := pharmacyClient(n).Notarize(ctx, dispenseEntry(t, p, k, fmt.Sprintf("dispense %d", k)))
		if err != nil {
			t.Fatalf("fill %d through %s: %v", k, n.cfg.ID, err)
		}
		if resp.Fill != k || resp.Fills != 4 || resp.Existing || resp.Receipt.Leaf.Kind != notary.KindDispense || resp.Receipt.Leaf.Link != p.commitment() {
			t.Fatalf("fill %d: answer fill %d of %d, existing %v, leaf %+v", k, resp.Fill, resp.Fills, resp.Existing, resp.Receipt.Leaf)
		}
		if _, err := v.Verify(notary.Claim{Receipt: resp.Receipt, Commitment: resp.Receipt.Leaf.Commitment}); err != nil {
			t.Fatalf("fill %d's receipt: %v", k, err)
		}
		receipts = append(receipts, resp.Receipt)
		checkStatus(ctx, t, v, nodes[(k+1)%3], p, map[bool]string{true: notary.StateDispensed, false: notary.StateActive}[k == 4], k)
	}

	size := c.waitConverged().Size
	refusals := []struct {
		name  string
		entry notaryapi.Entry
		want  error
	}{
		{"a fifth fill", dispenseEntry(t, p, 4, "dispense 5"), notaryapi.ErrFullyDispensed},
		{"fill 5 of 4", func() notaryapi.Entry { e := dispenseEntry(t, p, 4, "dispense 5b"); e.Fill = 5; return e }(), notaryapi.ErrFullyDispensed},
	}
	q := issue(ctx, t, submitter, "MedicationRequest-medrx0326.json", 4)
	if _, err := pharmacyClient(n1).Notarize(ctx, dispenseEntry(t, q, 1, "q 1")); err != nil {
		t.Fatal(err)
	}
	wrong := dispenseEntry(t, q, 2, "q wrong")
	bad := *wrong.Proof
	bad[0] ^= 1
	wrong.Proof = &bad
	other := issue(ctx, t, submitter, "MedicationRequest-medrx0304.json", 4)
	size = c.waitConverged().Size
	refusals = append(refusals,
		struct {
			name  string
			entry notaryapi.Entry
			want  error
		}{"fill 1 again", dispenseEntry(t, q, 1, "q 1 again"), notaryapi.ErrFillTaken},
		struct {
			name  string
			entry notaryapi.Entry
			want  error
		}{"a wrong proof", wrong, notaryapi.ErrBadProof},
		struct {
			name  string
			entry notaryapi.Entry
			want  error
		}{"another prescription's proof", func() notaryapi.Entry { e := dispenseEntry(t, other, 2, "q other"); e.Link = q.commitment(); return e }(), notaryapi.ErrBadProof},
		struct {
			name  string
			entry notaryapi.Entry
			want  error
		}{"fill 3 before fill 2", dispenseEntry(t, q, 3, "q 3"), notaryapi.ErrBadProof},
		struct {
			name  string
			entry notaryapi.Entry
			want  error
		}{"an unknown prescription", func() notaryapi.Entry {
			e := dispenseEntry(t, q, 2, "q unknown")
			e.Link = notary.Commitment(sha256.Sum256([]byte("never logged")))
			return e
		}(), notaryapi.ErrUnknownPrescription},
	)
	for _, r := range refusals {
		for _, n := range nodes {
			_, err := pharmacyClient(n).Notarize(ctx, r.entry)
			if !errors.Is(err, r.want) {
				t.Fatalf("%s through %s: %v, want %v", r.name, n.cfg.ID, err, r.want)
			}
		}
	}
	if got := c.waitConverged().Size; got != size {
		t.Fatalf("refusals grew the log from %d to %d leaves", size, got)
	}

	// A retry of an accepted dispense answers its receipt and the fill it
	// got, whatever fill the retry claims (a client that read the status
	// in between claims the next).
	for _, claim := range []int{2, 3} {
		again, err := pharmacyClient(n3).Notarize(ctx, dispenseEntry(t, p, claim, "dispense 2"))
		if err != nil || !again.Existing || again.Receipt.Index != receipts[1].Index || again.Fill != 2 || again.Fills != 4 {
			t.Fatalf("fill 2 resent as fill %d: %v, %+v (first at %d)", claim, err, again, receipts[1].Index)
		}
	}

	// Tokens: only a pharmacy dispenses, and a pharmacy only dispenses.
	if _, err := submitter.Notarize(ctx, dispenseEntry(t, q, 2, "q by submitter")); !errors.Is(err, notaryapi.ErrForbidden) {
		t.Fatalf("a submitter's dispense: %v", err)
	}
	if _, err := pharmacyClient(n1).Notarize(ctx, entryOf("pharmacy notarizes", 1)); !errors.Is(err, notaryapi.ErrForbidden) {
		t.Fatalf("a pharmacy's notarization: %v", err)
	}
	if _, err := pharmacyClient(n1).Notarize(ctx, revocationEntry(q)); !errors.Is(err, notaryapi.ErrForbidden) {
		t.Fatalf("a pharmacy's revocation: %v", err)
	}

	// Revocation: with the wrong seed refused; then later dispenses are.
	forged := revocationEntry(q)
	fake := notary.DispenseSeed(notary.NewSalt(), q.commitment())
	forged.Proof = &fake
	if _, err := clientFor(n2).Notarize(ctx, forged); !errors.Is(err, notaryapi.ErrBadProof) {
		t.Fatalf("a revocation with a forged seed: %v", err)
	}
	rev, err := clientFor(n2).Notarize(ctx, revocationEntry(q))
	if err != nil || rev.Receipt.Leaf.Kind != notary.KindRevocation {
		t.Fatalf("revocation: %v", err)
	}
	if again, err := clientFor(n3).Notarize(ctx, revocationEntry(q)); err != nil || !again.Existing || again.Receipt.Index != rev.Receipt.Index {
		t.Fatalf("revoked twice: %v, %+v", err, again)
	}
	if _, err := pharmacyClient(n3).Notarize(ctx, dispenseEntry(t, q, 2, "q after revocation")); !errors.Is(err, notaryapi.ErrRevoked) {
		t.Fatalf("a dispense after the revocation: %v", err)
	}
	if _, err := submitter.NotarizeBatch(ctx, []notaryapi.Entry{dispenseEntry(t, other, 1, "in a batch")}); !errors.Is(err, notaryapi.ErrBadRequest) {
		t.Fatalf("a dispense in a batch: %v", err)
	}

	// A node rebuilds the state from its log when it restarts.
	c.waitConverged()
	c.stop(n3)
	restarted := c.restart(n3)
	c.waitConverged()
	for _, n := range []*testNode{n1, n2, restarted} {
		checkStatus(ctx, t, v, n, p, notary.StateDispensed, 4)
		res := checkStatus(ctx, t, v, n, q, notary.StateRevoked, 1)
		if res.RevokedAt.IsZero() {
			t.Fatal("no revocation time")
		}
	}
	if _, err := pharmacyClient(restarted).Notarize(ctx, dispenseEntry(t, p, 4, "after restart")); !errors.Is(err, notaryapi.ErrFullyDispensed) {
		t.Fatalf("a fifth fill after a restart: %v", err)
	}
	// A status signed by all three nodes, for a policy that needs them.
	signed, err := clientFor(n2).PrescriptionStatusSigned(ctx, q.commitment(), true, 3)
	if err != nil {
		t.Fatal(err)
	}
	all := c.policy()
	all.MinSignatures = 3
	v3, err := notary.NewVerifier(all)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := v3.VerifyStatus(signed, q.bundle); err != nil || res.State != notary.StateRevoked {
		t.Fatalf("status signed by 3 nodes: %v, %+v", err, res)
	}
	if unsigned, err := clientFor(n2).PrescriptionStatus(ctx, q.commitment(), true); err != nil {
		t.Fatal(err)
	} else if _, err := v3.VerifyStatus(unsigned, q.bundle); !errors.Is(err, notary.ErrTooFewSignatures) {
		t.Fatalf("a status signed by one node under a 3-signature policy: %v", err)
	}
	if _, err := clientFor(n1).PrescriptionStatus(ctx, notary.Commitment(sha256.Sum256([]byte("nothing"))), false); !errors.Is(err, notaryapi.ErrNotFound) {
		t.Fatalf("status of an unknown prescription: %v", err)
	}
}

// TestDispenseRace: 2 to 8 pharmacies race for the last fill of a
// prescription, each through a node of its own turn, 1,000 rounds:
// exactly one wins each round, and the log holds exactly one dispense of
// each prescription.
func TestDispenseRace(t *testing.T) {
	rounds := 1000
	if testing.Short() {
		rounds = 100
	}
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	n2 := c.join("node-2", n1)
	n3 := c.join("node-3", n1)
	c.waitVoters(3)
	nodes := []*testNode{n1, n2, n3}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// One prescription per round, each allowing one fill: its only fill is
	// its last. They are issued in batches.
	salt := notary.NewSalt()
	prescriptions := make([]issued, rounds)
	var entries []notaryapi.Entry
	for i := range prescriptions {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(i))
		com := notary.Commitment(sha256.Sum256(append([]byte("race"), b[:]...)))
		a, err := notary.NewAllowance(salt, com, 1)
		if err != nil {
			t.Fatal(err)
		}
		prescriptions[i] = issued{bundle: &notary.Bundle{Raw: []byte{}, Salt: salt, Receipt: notary.Receipt{Leaf: notary.Leaf{Commitment: com}}}, allowance: a}
		entries = append(entries, notaryapi.Entry{Kind: notary.KindPrescription, Commitment: com, Allowance: &a})
	}
	for start := 0; start < len(entries); start += 500 {
		if _, err := clientFor(nodes...).NotarizeBatch(ctx, entries[start:min(start+500, len(entries))]); err != nil {
			t.Fatal(err)
		}
	}
	clients := []*notaryapi.Client{pharmacyClient(n1), pharmacyClient(n2), pharmacyClient(n3)}

	const parallel = 8 // rounds at once
	sem := make(chan struct{}, parallel)
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for round := range rounds {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			racers := 2 + round%7
			start := make(chan struct{})
			wins := make(chan int, racers)
			errs := make(chan error, racers)
			var race sync.WaitGroup
			for r := range racers {
				race.Add(1)
				go func() {
					defer race.Done()
					e := dispenseEntry(t, prescriptions[round], 1, fmt.Sprintf("round %d racer %d", round, r))
					<-start
					resp, err := clients[(round+r)%3].Notarize(ctx, e)
					switch {
					case err == nil && resp.Fill == 1 && resp.Receipt.Leaf.Commitment == e.Commitment:
						// Its own dispense logged as the fill: a win, even
						// when the client's retry of a slow answer found it
						// logged already (existing).
						wins <- r
					case errors.Is(err, notaryapi.ErrFullyDispensed) || errors.Is(err, notaryapi.ErrFillTaken):
					default:
						errs <- fmt.Errorf("racer %d: %v (%+v)", r, err, resp)
					}
				}()
			}
			close(start)
			race.Wait()
			close(wins)
			close(errs)
			won := 0
			for range wins {
				won++
			}
			mu.Lock()
			defer mu.Unlock()
			for err := range errs {
				failures = append(failures, fmt.Sprintf("round %d: %v", round, err))
			}
			if won != 1 {
				failures = append(failures, fmt.Sprintf("round %d: %d of %d racers won the last fill", round, won, racers))
			}
		}()
	}
	wg.Wait()
	for _, f := range failures[:min(len(failures), 10)] {
		t.Error(f)
	}
	if len(failures) > 0 {
		t.Fatalf("%d failures", len(failures))
	}

	// The log agrees: one dispense leaf per prescription, on every node.
	size := c.waitConverged().Size
	for _, n := range nodes {
		perPrescription := map[notary.Commitment]int{}
		for start := uint64(0); start < size; start += 1000 {
			leaves, err := clientFor(n).Leaves(ctx, start, min(1000, size-start))
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range leaves {
				if l.Kind == notary.KindDispense {
					perPrescription[l.Link]++
				}
			}
		}
		if len(perPrescription) != rounds {
			t.Fatalf("%s: dispenses of %d prescriptions, want %d", n.cfg.ID, len(perPrescription), rounds)
		}
		for com, k := range perPrescription {
			if k != 1 {
				t.Fatalf("%s: prescription %s dispensed %d times", n.cfg.ID, com, k)
			}
		}
	}
}

// TestDamagedDispenseHeals: a stopped follower has the leaf of a dispense
// damaged on disk. Started again, it cannot derive the prescriptions'
// state from its log: it serves nothing, applies no dispense while the
// cluster goes on dispensing, heals its log from its peers, and then
// proves the same status as the others; nodes never disagree on a root.
func TestDamagedDispenseHeals(t *testing.T) {
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	c.join("node-2", n1)
	c.join("node-3", n1)
	c.waitVoters(3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	leader := c.leader()
	p := issue(ctx, t, clientFor(leader), "MedicationRequest-medrx0325.json", 4)
	first, err := pharmacyClient(leader).Notarize(ctx, dispenseEntry(t, p, 1, "heal 1"))
	if err != nil {
		t.Fatal(err)
	}
	// Leaves after it, so that the store's own check of its newest pages
	// on open does not find the damage first.
	entries := make([]notaryapi.Entry, 2500)
	for i := range entries {
		entries[i] = entryOf("after the dispense", i)
	}
	if _, err := clientFor(leader).NotarizeBatch(ctx, entries); err != nil {
		t.Fatal(err)
	}
	c.waitConverged()
	var victim *testNode
	for _, n := range c.list() {
		if n != leader {
			victim = n
		}
	}
	c.stop(victim)
	// The dispense leaf's kind becomes document's: read back as it is, the
	// prescription would have one fill used fewer, and no rule of the
	// state would notice.
	leaves, err := os.OpenFile(filepath.Join(victim.cfg.DataDir, "log-1", "leaves"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaves.WriteAt([]byte{byte(notary.KindDocument)}, int64(first.Receipt.Index)*notary.LeafSize+1); err != nil {
		t.Fatal(err)
	}
	leaves.Close()
	victim = c.restart(victim)

	// The cluster dispenses on while the victim heals.
	for k := 2; k <= 3; k++ {
		if _, err := pharmacyClient(leader).Notarize(ctx, dispenseEntry(t, p, k, fmt.Sprintf("heal %d", k))); err != nil {
			t.Fatal(err)
		}
	}
	v, err := notary.NewVerifier(c.policy())
	if err != nil {
		t.Fatal(err)
	}
	c.waitFor("the damaged node to heal and catch up", func() bool {
		s, err := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: []string{victim.url}, MaxBackoff: 10 * time.Millisecond}).PrescriptionStatus(ctx, p.commitment(), false)
		if err != nil {
			return false
		}
		res, err := v.VerifyStatus(s, p.bundle)
		if err != nil {
			t.Fatalf("the healing node served a status that does not verify: %v", err)
		}
		return res.FillsUsed == 3
	})
	c.waitConverged()
	for _, n := range c.list() {
		checkStatus(ctx, t, v, n, p, notary.StateActive, 3)
	}
}

// TestDispenseClient: the Go client's Dispense claims the next fill
// itself: pharmacies dispensing at once through different nodes get
// distinct fills until none is left; Revoke stops the rest.
func TestDispenseClient(t *testing.T) {
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	n2 := c.join("node-2", n1)
	n3 := c.join("node-3", n1)
	c.waitVoters(3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := issue(ctx, t, clientFor(n1), "MedicationRequest-medrx0312.json", 4)
	var wg sync.WaitGroup
	fills := make(chan int, 6)
	var refused sync.Map
	for i, n := range []*testNode{n1, n2, n3, n1, n2, n3} {
		wg.Go(func() {
			resp, err := pharmacyClient(n).Dispense(ctx, p.bundle, notary.Commitment(sha256.Sum256(fmt.Appendf(nil, "pharmacy %d", i))))
			if err != nil {
				refused.Store(i, err)
				return
			}
			fills <- resp.Fill
		})
	}
	wg.Wait()
	close(fills)
	seen := map[int]bool{}
	for k := range fills {
		if seen[k] {
			t.Fatalf("fill %d given twice", k)
		}
		seen[k] = true
	}
	if len(seen) != 4 {
		t.Fatalf("%d fills given, want 4", len(seen))
	}
	refused.Range(func(_, err any) bool {
		if !errors.Is(err.(error), notaryapi.ErrFullyDispensed) {
			t.Errorf("a pharmacy was refused with %v", err)
		}
		return true
	})

	q := issue(ctx, t, clientFor(n1), "MedicationRequest-medrx0321.json", 4)
	if _, err := clientFor(n2).Revoke(ctx, q.bundle); err != nil {
		t.Fatal(err)
	}
	if _, err := pharmacyClient(n3).Dispense(ctx, q.bundle, notary.Commitment{42}); !errors.Is(err, notaryapi.ErrRevoked) {
		t.Fatalf("dispense of a revoked prescription: %v", err)
	}
	stranger := *q.bundle
	stranger.Salt = notary.NewSalt()
	if _, err := pharmacyClient(n3).Dispense(ctx, &stranger, notary.Commitment{43}); !errors.Is(err, notaryapi.ErrBadProof) {
		t.Fatalf("dispense with another salt: %v", err)
	}
}

// TestDispenseClientOptions: Dispense's options. DispenseSignatures has
// the receipt's checkpoint signed by as many nodes; DispenseCheckStatus
// sees every status answer Dispense acts on, and its error ends the
// dispense as it is. With a check, a claim refused because another
// dispense or a revocation came first is followed by a status read the
// check sees, so that the caller's check, not the node's refusal, tells
// why.
func TestDispenseClientOptions(t *testing.T) {
	c := newTestCluster(t)
	n1 := c.bootstrap("node-1")
	n2 := c.join("node-2", n1)
	n3 := c.join("node-3", n1)
	c.waitVoters(3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	policy := c.policy()
	v, err := notary.NewVerifier(policy)
	if err != nil {
		t.Fatal(err)
	}
	policy.MinSignatures = 2
	v2, err := notary.NewVerifier(policy)
	if err != nil {
		t.Fatal(err)
	}
	errStop := errors.New("the check stops here")

	// Two signatures on the receipt; the check sees the status the fill
	// was claimed on, and another pharmacy taking that fill meanwhile
	// sends Dispense back to read (and check) the next status.
	p := issue(ctx, t, clientFor(n1), "MedicationRequest-medrx0312.json", 3)
	var seen []int // fills used, per status the check saw
	check := func(s *notary.PrescriptionStatus) error {
		res, err := v.VerifyStatus(s, p.bundle)
		if err != nil {
			return err
		}
		seen = append(seen, res.FillsUsed)
		if len(seen) == 1 { // another pharmacy is first to fill 1
			if _, err := pharmacyClient(n2).Notarize(ctx, dispenseEntry(t, p, 1, "the other pharmacy")); err != nil {
				t.Fatal(err)
			}
		}
		return nil
	}
	resp, err := pharmacyClient(n3).Dispense(ctx, p.bundle, notary.Commitment{44}, notaryapi.DispenseSignatures(2), notaryapi.DispenseCheckStatus(check))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Fill != 2 || resp.Fills != 3 || fmt.Sprint(seen) != "[0 1]" {
		t.Fatalf("fill %d of %d after the statuses %v; want fill 2 of 3 after [0 1]", resp.Fill, resp.Fills, seen)
	}
	if _, err := v2.Verify(notary.Claim{Receipt: resp.Receipt, Commitment: notary.Commitment{44}}); err != nil {
		t.Fatalf("the receipt under two signatures: %v", err)
	}

	// The check's error is returned as it is, and nothing is claimed.
	stop := func(*notary.PrescriptionStatus) error { return errStop }
	if _, err := pharmacyClient(n1).Dispense(ctx, p.bundle, notary.Commitment{45}, notaryapi.DispenseCheckStatus(stop)); err != errStop {
		t.Fatalf("a check that refuses: %v", err)
	}
	checkStatus(ctx, t, v, n1, p, notary.StateActive, 2)

	// A revocation between the status and the claim: the node refuses
	// the claim as revoked, and the check sees the revoked status.
	revoked := false
	check = func(s *notary.PrescriptionStatus) error {
		if s.Revocation != nil {
			revoked = true
			return errStop
		}
		if _, err := clientFor(n2).Revoke(ctx, p.bundle); err != nil {
			t.Fatal(err)
		}
		return nil
	}
	if _, err := pharmacyClient(n1).Dispense(ctx, p.bundle, notary.Commitment{46}, notaryapi.DispenseCheckStatus(check)); err != errStop || !revoked {
		t.Fatalf("revoked between the status and the claim: %v (the check saw the revocation: %v)", err, revoked)
	}
}
