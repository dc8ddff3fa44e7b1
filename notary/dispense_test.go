package notary_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"testing"

	"github.com/telenotary/telenotary/notary"
	"golang.org/x/mod/sumdb/note"
)

// TestDispenseChain: fill k's proof opens fill k and no other, only under
// its own salt and prescription; the seed proves a revocation; the
// allowance survives its leaf encoding; bounds are refused.
func TestDispenseChain(t *testing.T) {
	salt := notary.NewSalt()
	c := notary.Commitment(sha256.Sum256([]byte("prescription")))
	const n = 4
	a, err := notary.NewAllowance(salt, c, n)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := notary.NewAllowance(notary.NewSalt(), c, n)
	for k := 1; k <= n; k++ {
		proof, err := notary.DispenseProof(salt, c, a, k)
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j <= n+1; j++ {
			if got := a.CheckDispense(j, proof); got != (j == k) {
				t.Errorf("fill %d's proof opens fill %d: %v", k, j, got)
			}
		}
		if other.CheckDispense(k, proof) {
			t.Errorf("fill %d's proof opens another salt's allowance", k)
		}
		// Only the last fill's proof is the seed, which also revokes.
		if got := a.CheckRevocation(proof); got != (k == n) {
			t.Errorf("fill %d's proof revokes: %v", k, got)
		}
	}
	seed := notary.DispenseSeed(salt, c)
	if !a.CheckRevocation(seed) || other.CheckRevocation(seed) {
		t.Error("the seed does not revoke its own allowance only")
	}
	if notary.DispenseSeed(salt, notary.Commitment{1}) == seed {
		t.Error("the seed does not depend on the prescription")
	}
	back, err := notary.ParseAllowance(a.Commitment())
	if err != nil || back != a {
		t.Fatalf("ParseAllowance(Commitment()) = %+v, %v; want %+v", back, err, a)
	}
	for _, fills := range []int{0, -1, notary.MaxFills + 1} {
		if _, err := notary.NewAllowance(salt, c, fills); !errors.Is(err, notary.ErrMalformed) {
			t.Errorf("NewAllowance with %d fills: %v", fills, err)
		}
		var enc notary.Commitment
		enc[0], enc[1] = byte(uint16(fills)>>8), byte(fills)
		if _, err := notary.ParseAllowance(enc); !errors.Is(err, notary.ErrMalformed) {
			t.Errorf("ParseAllowance of %d fills: %v", fills, err)
		}
	}
	if _, err := notary.DispenseProof(salt, c, a, n+1); err == nil {
		t.Error("a proof for fill n+1")
	}
}

// TestDispenseChainKnownAnswer pins the derivation of docs/FORMATS.md §10
// to values computed independently (Python's hmac and hashlib, from the
// text of §10); other verifiers, such as the /verify/ page, compute them
// too.
func TestDispenseChainKnownAnswer(t *testing.T) {
	var salt notary.Salt
	for i := range salt {
		salt[i] = byte(i)
	}
	c := notary.Commitment(sha256.Sum256([]byte("telenotary known answer")))
	a, err := notary.NewAllowance(salt, c, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ what, got, want string }{
		{"seed", notary.DispenseSeed(salt, c).String(), "f1b33cb5cc8076e6335e0a148eb1ed4db67ea8551dbaf881facae4de728e"},
		{"allowance", a.Commitment().String(), "0003d7451118d1f91d8aacf8ed90a424ec2e3b0d42167dc967346c17addc0654"},
		{"revocation", notary.RevocationCommitment(c).String(), "7ab361615a7c63ae0c35e3d0325d5e6aefc4e70c4ad7dcea973a1dcd6a653538"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %s, want %s", tc.what, tc.got, tc.want)
		}
	}
}

// statusLog builds a log holding a prescription with an allowance of n
// fills, dispensed used times, revoked when revoked, with receipts into
// one checkpoint signed by signer.
func statusLog(t testing.TB, signer note.Signer, n, used int, revoked bool) (*notary.PrescriptionStatus, *notary.Bundle) {
	t.Helper()
	l, err := notary.Open(notary.NewMemoryStore())
	if err != nil {
		t.Fatal(err)
	}
	doc := []byte(`{"resourceType":"MedicationRequest","id":"x"}`)
	salt := notary.NewSalt()
	c := notary.Commit(salt, doc)
	a, err := notary.NewAllowance(salt, c, n)
	if err != nil {
		t.Fatal(err)
	}
	ts := int64(1795262400000)
	leaves := []notary.Leaf{
		{Kind: notary.KindDocument, Commitment: notary.Commitment{9}, Timestamp: ts},
		{Kind: notary.KindPrescription, Commitment: c, Timestamp: ts},
		{Kind: notary.KindAllowance, Commitment: a.Commitment(), Link: c, Timestamp: ts},
	}
	for k := range used {
		leaves = append(leaves, notary.Leaf{Kind: notary.KindDispense, Commitment: notary.Commitment{byte(k), 7}, Link: c, Timestamp: ts + int64(k)})
	}
	if revoked {
		leaves = append(leaves, notary.Leaf{Kind: notary.KindRevocation, Commitment: notary.RevocationCommitment(c), Link: c, Timestamp: ts + 99})
	}
	if _, err := l.Append(leaves, nil); err != nil {
		t.Fatal(err)
	}
	head := l.Head()
	cp, err := notary.Checkpoint{Origin: "status.test/log", Size: head.Size, Root: head.Root, Timestamp: ts + 99}.Sign(signer)
	if err != nil {
		t.Fatal(err)
	}
	receipt := func(i uint64) *notary.Receipt {
		r, err := l.Receipt(i, cp)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	s := &notary.PrescriptionStatus{Commitment: c, Prescription: receipt(1), Allowance: receipt(2)}
	for k := range used {
		s.Dispenses = append(s.Dispenses, receipt(uint64(3+k)))
	}
	if revoked {
		s.Revocation = receipt(uint64(3 + used))
	}
	return s, &notary.Bundle{Document: doc, Salt: salt, Receipt: *s.Prescription}
}

// TestVerifyStatus: genuine answers verify with their state; one that was
// edited, or that a node could only give by breaking the log's rules, is
// refused; the JSON form survives a round trip and is read strictly.
func TestVerifyStatus(t *testing.T) {
	skey, vkey, err := note.GenerateKey(nil, "status-node")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	keys, err := notary.ParseVerifierKeys([]byte(vkey + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := notary.NewVerifier(notary.Policy{Verifiers: keys, Origin: "status.test/log"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		n, used int
		revoked bool
		state   string
	}{{4, 0, false, notary.StateActive}, {4, 2, false, notary.StateActive}, {3, 3, false, notary.StateDispensed}, {4, 1, true, notary.StateRevoked}} {
		s, b := statusLog(t, signer, tc.n, tc.used, tc.revoked)
		res, err := v.VerifyStatus(s, b)
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		if res.State != tc.state || res.FillsUsed != tc.used || res.FillsAllowed != tc.n || len(res.Dispensed) != tc.used || res.RevokedAt.IsZero() == tc.revoked {
			t.Fatalf("%+v: %+v", tc, res)
		}
		j, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		back, err := notary.ParsePrescriptionStatus(j)
		if err != nil {
			t.Fatalf("%+v: the JSON form does not parse: %v", tc, err)
		}
		if j2, _ := json.Marshal(back); !bytes.Equal(j, j2) {
			t.Fatalf("round trip: %s\n%s", j, j2)
		}
	}

	s, b := statusLog(t, signer, 4, 2, true)
	other, ob := statusLog(t, signer, 4, 2, false)
	for _, tc := range []struct {
		what string
		edit func(s *notary.PrescriptionStatus) *notary.Bundle
		want error
	}{
		{"another bundle", func(*notary.PrescriptionStatus) *notary.Bundle { return ob }, notary.ErrCommitmentMismatch},
		{"a dispense hidden", func(s *notary.PrescriptionStatus) *notary.Bundle { s.Dispenses = s.Dispenses[1:]; return b }, nil},
		{"another prescription's dispense", func(s *notary.PrescriptionStatus) *notary.Bundle { s.Dispenses[0] = other.Dispenses[0]; return b }, notary.ErrMalformed},
		{"dispenses out of order", func(s *notary.PrescriptionStatus) *notary.Bundle {
			s.Dispenses[0], s.Dispenses[1] = s.Dispenses[1], s.Dispenses[0]
			return b
		}, notary.ErrInconsistentHistory},
		{"the allowance dropped", func(s *notary.PrescriptionStatus) *notary.Bundle { s.Allowance = nil; return b }, notary.ErrInconsistentHistory},
		{"the revocation as an allowance", func(s *notary.PrescriptionStatus) *notary.Bundle { s.Allowance = s.Revocation; return b }, notary.ErrMalformed},
		{"a dispense edited", func(s *notary.PrescriptionStatus) *notary.Bundle {
			r := *s.Dispenses[0]
			r.Leaf.Timestamp++
			s.Dispenses[0] = &r
			return b
		}, notary.ErrLeafMismatch},
	} {
		cp := *s
		cp.Dispenses = append([]*notary.Receipt(nil), s.Dispenses...)
		bundle := tc.edit(&cp)
		_, err := v.VerifyStatus(&cp, bundle)
		if tc.want == nil {
			// A node can leave leaves out (the answer proves what it holds,
			// not what it hides); it cannot make the rest lie.
			if err != nil {
				t.Errorf("%s: %v", tc.what, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.what, err, tc.want)
		}
	}

	j, _ := json.Marshal(s)
	for _, bad := range [][]byte{
		bytes.Replace(j, []byte(`"state":"revoked"`), []byte(`"state":"active"`), 1),
		bytes.Replace(j, []byte(`"fills_used":2`), []byte(`"fills_used":1`), 1),
		bytes.Replace(j, []byte(`"version":1`), []byte(`"version":2`), 1),
		bytes.Replace(j, []byte(`"dispenses":[`), []byte(`"colour":1,"dispenses":[`), 1),
		bytes.Replace(j, []byte(`"state"`), []byte(`"State"`), 1),
		bytes.Replace(j, []byte(`"version":1`), []byte(`"version":1,"version":1`), 1),
		append(j[:len(j):len(j)], '}'),
		bytes.Replace(j, []byte(`"dispenses":[`), []byte(`"dispenses":null,"x":[`), 1),
	} {
		if _, err := notary.ParsePrescriptionStatus(bad); !errors.Is(err, notary.ErrMalformed) {
			t.Errorf("%s: %v, want malformed", bad[:60], err)
		}
	}
}

// FuzzPrescriptionStatus parses arbitrary status answers: never a panic; a
// parsed answer re-encodes to one that parses equal, and verifying it never
// panics.
func FuzzPrescriptionStatus(f *testing.F) {
	skey, vkey, _ := note.GenerateKey(nil, "fuzz-node")
	signer, _ := note.NewSigner(skey)
	keys, _ := notary.ParseVerifierKeys([]byte(vkey + "\n"))
	v, err := notary.NewVerifier(notary.Policy{Verifiers: keys})
	if err != nil {
		f.Fatal(err)
	}
	for _, used := range []int{0, 2} {
		s, _ := statusLog(f, signer, 3, used, used == 2)
		j, _ := json.Marshal(s)
		f.Add(j)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := notary.ParsePrescriptionStatus(data)
		if err != nil {
			if !errors.Is(err, notary.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		j, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		again, err := notary.ParsePrescriptionStatus(j)
		if err != nil {
			t.Fatalf("re-encoded answer does not parse: %v", err)
		}
		if j2, _ := json.Marshal(again); !bytes.Equal(j, j2) {
			t.Fatal("re-encoding is not stable")
		}
		v.VerifyStatus(s, nil)
	})
}
