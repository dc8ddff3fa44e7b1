package notary_test

import (
	"fmt"
	"time"

	"github.com/telenotary/telenotary/notary"
	"golang.org/x/mod/sumdb/note"
)

// Example notarizes a prescription in a log, hands out a bundle and verifies
// it offline, then shows what a changed dose does to it.
func Example() {
	// The notary: a log (here in memory; filestore.Open for a durable one)
	// and a node's signing key.
	log, _ := notary.Open(notary.NewMemoryStore())
	skey, vkey, _ := notary.GenerateKey("notary-1.example.org")
	signer, _ := note.NewSigner(skey)

	// The app commits to the document; only the commitment is logged.
	doc := []byte(`{"resourceType": "MedicationRequest", "status": "active", "intent": "order",
		"medicationCodeableConcept": {"text": "Amoxicillin 500 mg"}, "dosageInstruction": [{"text": "1 capsule every 8 hours"}]}`)
	canonical, _ := notary.CanonicalJSON(doc)
	salt := notary.NewSalt()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC).UnixMilli()
	index, _ := log.Append([]notary.Leaf{{Kind: notary.KindPrescription, Commitment: notary.Commit(salt, canonical), Timestamp: now}}, nil)

	// The log signs its new state and issues the receipt.
	head := log.Head()
	cp, _ := notary.Checkpoint{Origin: "notary.example.org/rx", Size: head.Size, Root: head.Root, Timestamp: now + 5}.Sign(signer)
	receipt, _ := log.Receipt(index[0], cp)
	bundle := notary.Bundle{Document: doc, Salt: salt, Receipt: *receipt}

	// Years later, a pharmacist who trusts the node's key verifies it.
	verifier, _ := note.NewVerifier(vkey)
	policy := notary.Policy{Verifiers: []note.Verifier{verifier}}
	res, err := notary.VerifyBundle(&bundle, policy)
	if err != nil {
		panic(err)
	}
	fmt.Printf("VALID: %s #%d, notarized %s, signed by %v\n", res.Leaf.Kind, res.Index, res.Leaf.Time().Format(time.RFC3339), res.Signers)

	bundle.Document = []byte(`{"resourceType": "MedicationRequest", "status": "active", "intent": "order",
		"medicationCodeableConcept": {"text": "Amoxicillin 500 mg"}, "dosageInstruction": [{"text": "2 capsules every 8 hours"}]}`)
	_, err = notary.VerifyBundle(&bundle, policy)
	fmt.Println("INVALID:", notary.Reason(err))
	// Output:
	// VALID: prescription #0, notarized 2026-11-21T12:00:00Z, signed by [notary-1.example.org]
	// INVALID: the document does not match this receipt: it was changed after notarization, or the salt is not the one issued with it
}
