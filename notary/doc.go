// Package notary is the ledger of telenotary: salted commitments to documents,
// an append-only Merkle log of leaves over a pluggable [Store], signed
// checkpoints, receipts and their offline verification.
//
// The package is pure and deterministic. It does no networking, starts no
// goroutines and never logs; it holds no personal data, only commitments.
//
// A typical life of a document:
//
//	canonical, _ := notary.CanonicalJSON(doc)         // RFC 8785
//	salt := notary.NewSalt()
//	c := notary.Commit(salt, canonical)               // goes to the log
//	idx, _ := log.Append([]notary.Leaf{{Kind: notary.KindPrescription, Commitment: c, Timestamp: now}}, nil)
//	cp, _ := notary.Checkpoint{...}.Sign(signer)      // over the committed head
//	r, _ := log.Receipt(idx[0], cp)                   // proof into that checkpoint
//	bundle := notary.Bundle{Document: doc, Salt: salt, Receipt: *r}
//
// and, years later, anywhere:
//
//	res, err := notary.VerifyBundle(bundle, policy)   // err names the failed step
//
// The byte formats are specified in docs/FORMATS.md of the repository.
package notary
