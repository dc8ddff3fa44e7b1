package notary

import (
	"crypto/sha256"
	"errors"
	"sync"

	"github.com/transparency-dev/merkle/proof"
	"golang.org/x/mod/sumdb/note"
)

// Claim is what a verification checks: a receipt and the document it is
// for, or only the document's commitment.
type Claim struct {
	Receipt *Receipt
	// Document holds the canonical bytes of the document (see CanonicalJSON
	// and Bundle.Canonical), checked together with Salt.
	Document []byte
	Salt     Salt
	// Commitment is checked instead when Document is nil, for a verifier who
	// was handed only the commitment.
	Commitment Commitment
	// Newer optionally holds a signed checkpoint of the same log at least as
	// large as the receipt's, and Consistency the RFC 6962 proof from the
	// receipt's checkpoint to it: an online check that the log has not
	// rewritten the history the receipt is in.
	Newer       []byte
	Consistency []Hash
}

// Result is what a successful verification established.
type Result struct {
	// Origin names the log.
	Origin string
	// Index is the leaf's position in the log.
	Index uint64
	// Leaf is the logged leaf: kind, commitment, link and the time the log
	// sequenced it.
	Leaf Leaf
	// Checkpoint is the signed log state the leaf was proven into.
	Checkpoint Checkpoint
	// Signers names the trusted keys that signed it.
	Signers []string
	// Cosigners names the policy's witnesses that cosigned it.
	Cosigners []string
	// Newer is the newer checkpoint the history was checked against, if any.
	Newer *SignedCheckpoint
}

// maxCachedCheckpoints bounds a Verifier's memory.
const maxCachedCheckpoints = 1024

// Verifier verifies receipts under one policy. It remembers the checkpoints
// whose signatures it has verified, so receipts into the same checkpoint cost
// only hashing. It is safe for concurrent use.
type Verifier struct {
	policy Policy
	known  note.Verifiers

	mu    sync.Mutex                  // guards cache
	cache map[string]SignedCheckpoint // note text → opened checkpoint
}

// NewVerifier returns a verifier for the policy.
func NewVerifier(p Policy) (*Verifier, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &Verifier{policy: p, known: p.known(), cache: make(map[string]SignedCheckpoint)}, nil
}

// Verify checks a claim under the policy, in the order of docs/FORMATS.md:
// commitment, leaf, checkpoint signatures, origin, time, inclusion, and the
// newer checkpoint if any. The error is a [*VerifyError] naming the first
// step that failed.
func Verify(c Claim, p Policy) (*Result, error) {
	v, err := NewVerifier(p)
	if err != nil {
		return nil, err
	}
	return v.Verify(c)
}

// VerifyBundle checks a bundle under the policy; see [Verify].
func VerifyBundle(b *Bundle, p Policy) (*Result, error) {
	v, err := NewVerifier(p)
	if err != nil {
		return nil, err
	}
	return v.VerifyBundle(b)
}

// VerifyBundle checks a bundle; see [Verify].
func (v *Verifier) VerifyBundle(b *Bundle) (*Result, error) {
	doc, err := b.Canonical()
	if err != nil {
		return nil, &VerifyError{Err: ErrMalformed, Detail: err.Error()}
	}
	return v.Verify(Claim{Receipt: &b.Receipt, Document: doc, Salt: b.Salt})
}

// Verify checks a claim; see the package-level [Verify].
func (v *Verifier) Verify(c Claim) (*Result, error) {
	r := c.Receipt
	if r == nil {
		return nil, verifyErr(ErrMalformed, "no receipt")
	}
	if err := r.Leaf.Validate(); err != nil {
		return nil, &VerifyError{Err: ErrMalformed, Detail: "receipt: " + err.Error()}
	}

	// 1. The document and salt give the commitment in the receipt.
	want := c.Commitment
	if c.Document != nil {
		want = Commit(c.Salt, c.Document)
	} else if want.IsZero() {
		return nil, verifyErr(ErrMalformed, "neither a document nor a commitment to check the receipt against")
	}
	if want != r.Leaf.Commitment {
		return nil, verifyErr(ErrCommitmentMismatch, "the document gives commitment %s, the receipt says %s", want, r.Leaf.Commitment)
	}

	// 2. The receipt's details give the leaf hash it claims.
	leafHash := r.Leaf.Hash()
	if leafHash != r.LeafHash {
		return nil, verifyErr(ErrLeafMismatch, "kind, commitment, link and timestamp hash to %s, the receipt says %s", leafHash, r.LeafHash)
	}

	// 3. The checkpoint is signed as the policy demands.
	cp, err := v.open(r.Checkpoint)
	if err != nil {
		return nil, err
	}

	// 4. Receipt and checkpoint are of the same log.
	if cp.Origin != r.Origin {
		return nil, verifyErr(ErrWrongLog, "receipt names log %q, its checkpoint %q", r.Origin, cp.Origin)
	}

	// 5. The log sequenced the leaf no later than it signed the checkpoint.
	if r.Leaf.Timestamp > cp.Timestamp {
		return nil, verifyErr(ErrInconsistentHistory, "leaf time %s is after the time %s of the checkpoint that includes it",
			r.Leaf.Time().Format(timeLayout), cp.Time().Format(timeLayout))
	}

	// 6. The inclusion proof leads from the leaf to the signed root.
	if r.Index >= cp.Size {
		return nil, verifyErr(ErrProofInvalid, "leaf index %d is not below the checkpoint's size %d", r.Index, cp.Size)
	}
	if err := proof.VerifyInclusion(hasher, r.Index, cp.Size, leafHash[:], hashSlices(r.InclusionProof), cp.Root[:]); err != nil {
		var mismatch proof.RootMismatchError
		if errors.As(err, &mismatch) {
			return nil, verifyErr(ErrRootMismatch, "the proof leads to root %x, the checkpoint signs %s", mismatch.CalculatedRoot, cp.Root)
		}
		return nil, verifyErr(ErrProofInvalid, "%v", err)
	}
	res := &Result{Origin: cp.Origin, Index: r.Index, Leaf: r.Leaf, Checkpoint: cp.Checkpoint, Signers: cp.Signers, Cosigners: cp.Cosigners}

	// 7. Optionally, a newer checkpoint extends this one.
	if c.Newer != nil {
		newer, err := v.open(c.Newer)
		if err != nil {
			return nil, err
		}
		if err := CheckConsistency(cp.Checkpoint, newer.Checkpoint, c.Consistency); err != nil {
			return nil, err
		}
		res.Newer = &newer
	}
	return res, nil
}

// CheckConsistency checks that the tree of newer extends the tree of older,
// given the RFC 6962 consistency proof between them. Both checkpoints must
// already be trusted (see [OpenCheckpoint]). The error is a [*VerifyError]
// wrapping ErrWrongLog, ErrProofInvalid or ErrInconsistentHistory.
func CheckConsistency(older, newer Checkpoint, consistency []Hash) error {
	if newer.Origin != older.Origin {
		return verifyErr(ErrWrongLog, "checkpoints of logs %q and %q", older.Origin, newer.Origin)
	}
	if newer.Size < older.Size {
		return verifyErr(ErrInconsistentHistory, "the newer checkpoint has %d leaves, fewer than the %d of the older", newer.Size, older.Size)
	}
	if newer.Timestamp < older.Timestamp {
		return verifyErr(ErrInconsistentHistory, "the larger checkpoint is dated %s, before the smaller one's %s",
			newer.Time().Format(timeLayout), older.Time().Format(timeLayout))
	}
	if len(consistency) > MaxProofHashes {
		return verifyErr(ErrProofInvalid, "consistency proof has %d hashes, more than %d", len(consistency), MaxProofHashes)
	}
	err := proof.VerifyConsistency(hasher, older.Size, newer.Size, hashSlices(consistency), older.Root[:], newer.Root[:])
	if err == nil {
		return nil
	}
	var mismatch proof.RootMismatchError
	if errors.As(err, &mismatch) || older.Size == newer.Size {
		return verifyErr(ErrInconsistentHistory, "the log's tree of size %d is not a prefix of its tree of size %d", older.Size, newer.Size)
	}
	return verifyErr(ErrProofInvalid, "consistency proof: %v", err)
}

// timeLayout is how times appear in verification messages.
const timeLayout = "2006-01-02 15:04:05.000 UTC"

// open opens a checkpoint under the policy, from the cache when it was
// verified before.
func (v *Verifier) open(msg []byte) (SignedCheckpoint, error) {
	v.mu.Lock()
	cp, ok := v.cache[string(msg)]
	v.mu.Unlock()
	if ok {
		return cp, nil
	}
	cp, err := openCheckpoint(msg, &v.policy, v.known)
	if err != nil {
		return SignedCheckpoint{}, err
	}
	v.mu.Lock()
	if len(v.cache) >= maxCachedCheckpoints {
		clear(v.cache)
	}
	v.cache[string(msg)] = cp
	v.mu.Unlock()
	return cp, nil
}

func hashSlices(hs []Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// rfc6962 is the RFC 6962 tree hasher over SHA-256 for the merkle/proof
// package, with fewer allocations than its default one.
type rfc6962 struct{}

var hasher rfc6962

func (rfc6962) EmptyRoot() []byte { return emptyRoot[:] }
func (rfc6962) Size() int         { return HashSize }
func (rfc6962) HashLeaf(leaf []byte) []byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(leaf)
	return h.Sum(nil)
}
func (rfc6962) HashChildren(l, r []byte) []byte { return hashChildren(l, r) }
