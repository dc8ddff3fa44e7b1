package notary

import (
	"errors"
	"fmt"
)

// Errors a verification can end with. Each names one step of the procedure in
// docs/FORMATS.md; [Verify] and friends return them wrapped in a
// [*VerifyError] that carries the evidence, so match them with errors.Is.
// [Reason] turns any of them into a sentence for a pharmacist.
var (
	// ErrMalformed: an input (receipt, bundle, checkpoint, key) could not be
	// parsed. The receipt cannot be judged; ask its issuer for an intact copy.
	ErrMalformed = errors.New("malformed input")
	// ErrCommitmentMismatch: the document and salt do not hash to the
	// commitment in the receipt. The document was altered or is not the one
	// the receipt was issued for.
	ErrCommitmentMismatch = errors.New("commitment mismatch")
	// ErrLeafMismatch: the receipt's stated kind, link or time do not hash to
	// the leaf it claims was logged. The receipt was edited.
	ErrLeafMismatch = errors.New("leaf mismatch")
	// ErrProofInvalid: the inclusion or consistency proof has the wrong shape
	// for its index and tree size. The receipt was edited or truncated.
	ErrProofInvalid = errors.New("proof invalid")
	// ErrRootMismatch: the inclusion proof leads to a root other than the
	// one the checkpoint signs. The receipt was edited.
	ErrRootMismatch = errors.New("root mismatch")
	// ErrSignatureInvalid: a signature on the checkpoint, from a key the
	// policy trusts (by name), does not verify. The checkpoint was edited or
	// the signature forged.
	ErrSignatureInvalid = errors.New("signature invalid")
	// ErrTooFewSignatures: fewer trusted keys signed the checkpoint than the
	// policy requires. The receipt may be genuine but comes from keys the
	// verifier does not trust; check the keys file.
	ErrTooFewSignatures = errors.New("too few trusted signatures")
	// ErrInconsistentHistory: two checkpoints of the log, or a checkpoint and
	// the leaf it includes, contradict each other. The log rewrote its
	// history; report it.
	ErrInconsistentHistory = errors.New("inconsistent history")
	// ErrWrongLog: the receipt and its checkpoint, or the checkpoint and the
	// policy, name different logs.
	ErrWrongLog = errors.New("wrong log")
)

// Errors of the log and its stores.
var (
	// ErrOutOfRange: an index or tree size beyond the log's committed size.
	// The caller asked for something that does not exist (yet).
	ErrOutOfRange = errors.New("index or size out of range")
	// ErrCorrupt: a store's data failed a consistency check on open. Nothing
	// was changed; restore the data directory from a replica or backup.
	ErrCorrupt = errors.New("store corrupt")
	// ErrDamaged: data read from a store does not match what the log
	// recorded of it (a leaf and its stored hash disagree). Do not serve
	// it; repair the store from a sound copy.
	ErrDamaged = errors.New("data damaged")
	// ErrClosed: the log or store was closed, or failed earlier and must be
	// reopened.
	ErrClosed = errors.New("log closed")
)

// VerifyError is the error of a failed verification: Err is one of the
// sentinels above and Detail says what was expected and what was found.
type VerifyError struct {
	Err    error
	Detail string
}

func (e *VerifyError) Error() string {
	if e.Detail == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + ": " + e.Detail
}

// Unwrap returns the sentinel, so errors.Is works.
func (e *VerifyError) Unwrap() error { return e.Err }

func verifyErr(sentinel error, format string, args ...any) error {
	return &VerifyError{Err: sentinel, Detail: fmt.Sprintf(format, args...)}
}

// reasons are the plain-language explanations printed by `telenotary verify`.
var reasons = []struct {
	err    error
	reason string
}{
	{ErrCommitmentMismatch, "the document does not match this receipt: it was changed after notarization, or the salt is not the one issued with it"},
	{ErrLeafMismatch, "the receipt's details (kind, time or link) were changed after it was issued"},
	{ErrProofInvalid, "the receipt's proof is damaged or incomplete"},
	{ErrRootMismatch, "the receipt's proof does not lead to the log state its signatures vouch for: the receipt was altered"},
	{ErrSignatureInvalid, "a signature on the receipt is not valid: the receipt was altered or forged"},
	{ErrTooFewSignatures, "the receipt is not signed by enough of the notary keys and witnesses you trust"},
	{ErrInconsistentHistory, "the notary log contradicts its own earlier state: do not rely on it and report this"},
	{ErrWrongLog, "the receipt belongs to a different notary log than expected"},
	{ErrMalformed, "the file is not a readable telenotary receipt or bundle"},
}

// Reason returns a sentence explaining a verification failure to someone who
// is not a cryptographer, such as a pharmacist. It returns err.Error() for
// errors that are not verification failures.
func Reason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return err.Error()
}
