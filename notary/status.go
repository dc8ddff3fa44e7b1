package notary

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// The states of a prescription, as a status answer names them.
const (
	// StateActive: the prescription has fills left and is not revoked.
	StateActive = "active"
	// StateDispensed: every fill it allows was dispensed.
	StateDispensed = "dispensed"
	// StateRevoked: the prescription was revoked.
	StateRevoked = "revoked"
	// StateUntracked: the prescription was logged without an allowance; the
	// log does not track its dispenses.
	StateUntracked = "untracked"
)

// MaxStatusSize bounds a status answer's JSON: a receipt per fill, at most
// MaxFills of them, and a few more.
const MaxStatusSize = (MaxFills + 3) * MaxReceiptSize / 4

// PrescriptionStatus is a node's answer about a prescription (GET
// /v1/prescriptions/{commitment}/status): the leaves that decide its
// status, each with its receipt, all proven into one signed checkpoint.
// It verifies offline like a receipt (see [Verifier.VerifyStatus]).
type PrescriptionStatus struct {
	// Commitment is the prescription's.
	Commitment Commitment
	// Prescription is the prescription's receipt.
	Prescription *Receipt
	// Allowance is the receipt of its allowance leaf; nil when it was
	// logged without one.
	Allowance *Receipt
	// Dispenses are the receipts of its dispenses, in log order.
	Dispenses []*Receipt
	// Revocation is the receipt of its revocation; nil when not revoked.
	Revocation *Receipt
}

// statusWire is the JSON form of a status answer (docs/FORMATS.md). The
// state and counts are a convenience for readers: a verifier derives them
// from the receipts and refuses an answer that says otherwise.
type statusWire struct {
	Version      int        `json:"version"`
	Commitment   Commitment `json:"commitment"`
	State        string     `json:"state"`
	FillsAllowed int        `json:"fills_allowed"`
	FillsUsed    int        `json:"fills_used"`
	Prescription *Receipt   `json:"prescription"`
	Allowance    *Receipt   `json:"allowance"`
	Dispenses    []*Receipt `json:"dispenses"`
	Revocation   *Receipt   `json:"revocation"`
}

// State derives the prescription's state and counts from the leaves the
// answer holds (unverified: see [Verifier.VerifyStatus]).
func (s *PrescriptionStatus) State() (state string, allowed, used int) {
	used = len(s.Dispenses)
	if s.Allowance != nil {
		if a, err := ParseAllowance(s.Allowance.Leaf.Commitment); err == nil {
			allowed = a.Fills
		}
	}
	switch {
	case s.Revocation != nil:
		return StateRevoked, allowed, used
	case s.Allowance == nil:
		return StateUntracked, 0, used
	case used >= allowed:
		return StateDispensed, allowed, used
	}
	return StateActive, allowed, used
}

// MarshalJSON encodes the status answer in its version-1 JSON form.
func (s PrescriptionStatus) MarshalJSON() ([]byte, error) {
	state, allowed, used := s.State()
	dispenses := s.Dispenses
	if dispenses == nil {
		dispenses = []*Receipt{}
	}
	return json.Marshal(statusWire{Version: 1, Commitment: s.Commitment, State: state, FillsAllowed: allowed, FillsUsed: used,
		Prescription: s.Prescription, Allowance: s.Allowance, Dispenses: dispenses, Revocation: s.Revocation})
}

// ParsePrescriptionStatus decodes a status answer strictly, as receipts
// and bundles are: exactly the members of the version-1 form, each once,
// nothing after the object, null only for a missing allowance or
// revocation; more dispenses than MaxFills, or state and counts that
// disagree with the receipts, are refused. Errors wrap [ErrMalformed] and
// name the member.
func ParsePrescriptionStatus(data []byte) (*PrescriptionStatus, error) {
	if len(data) > MaxStatusSize {
		return nil, fmt.Errorf("%w: status is %d bytes, more than %d", ErrMalformed, len(data), MaxStatusSize)
	}
	o, err := parseObject(data, "status", "version", "commitment", "state", "fills_allowed", "fills_used", "prescription", "allowance", "dispenses", "revocation")
	if err != nil {
		return nil, err
	}
	var w statusWire
	for _, m := range []struct {
		name string
		v    any
	}{{"version", &w.Version}, {"commitment", &w.Commitment}, {"state", &w.State}, {"fills_allowed", &w.FillsAllowed}, {"fills_used", &w.FillsUsed}} {
		if err := o.decode(m.name, m.v); err != nil {
			return nil, err
		}
	}
	if w.Version != 1 {
		return nil, fmt.Errorf("%w: status field \"version\" is %d; this verifier reads version 1", ErrMalformed, w.Version)
	}
	receipt := func(name string, raw json.RawMessage, nullable bool) (*Receipt, error) {
		if nullable && string(raw) == "null" {
			return nil, nil
		}
		var r Receipt
		if err := r.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("status field %q: %w", name, err)
		}
		return &r, nil
	}
	for _, name := range []string{"prescription", "allowance", "dispenses", "revocation"} {
		if !o.has(name) {
			return nil, fmt.Errorf("%w: status field %q is missing", ErrMalformed, name)
		}
	}
	if w.Prescription, err = receipt("prescription", o.members["prescription"], false); err != nil {
		return nil, err
	}
	if w.Allowance, err = receipt("allowance", o.members["allowance"], true); err != nil {
		return nil, err
	}
	if w.Revocation, err = receipt("revocation", o.members["revocation"], true); err != nil {
		return nil, err
	}
	var dispenses []json.RawMessage
	if raw := o.members["dispenses"]; bytes.TrimSpace(raw)[0] != '[' || json.Unmarshal(raw, &dispenses) != nil {
		return nil, fmt.Errorf("%w: status field \"dispenses\" must be an array of receipts", ErrMalformed)
	}
	if len(dispenses) > MaxFills {
		return nil, fmt.Errorf("%w: status field \"dispenses\" holds %d receipts, more than %d", ErrMalformed, len(dispenses), MaxFills)
	}
	w.Dispenses = []*Receipt{}
	for i, raw := range dispenses {
		r, err := receipt(fmt.Sprintf("dispenses[%d]", i), raw, false)
		if err != nil {
			return nil, err
		}
		w.Dispenses = append(w.Dispenses, r)
	}
	s := &PrescriptionStatus{Commitment: w.Commitment, Prescription: w.Prescription, Allowance: w.Allowance, Dispenses: w.Dispenses, Revocation: w.Revocation}
	if state, allowed, used := s.State(); state != w.State || allowed != w.FillsAllowed || used != w.FillsUsed {
		return nil, fmt.Errorf("%w: status says %s, %d of %d fills used; its receipts say %s, %d of %d",
			ErrMalformed, w.State, w.FillsUsed, w.FillsAllowed, state, used, allowed)
	}
	return s, nil
}

// StatusResult is what a verified status answer established.
type StatusResult struct {
	// State is one of StateActive, StateDispensed, StateRevoked and
	// StateUntracked.
	State string
	// FillsAllowed and FillsUsed count the prescription's fills.
	FillsAllowed, FillsUsed int
	// Prescription is the prescription's verified receipt.
	Prescription *Result
	// Dispensed are the times the log sequenced each dispense, in order.
	Dispensed []time.Time
	// RevokedAt is when the log sequenced the revocation (zero when none).
	RevokedAt time.Time
	// Checkpoint is the signed log state every receipt is proven into:
	// the status holds as of its time.
	Checkpoint Checkpoint
}

// VerifyStatus checks a status answer under the verifier's policy: every
// receipt verifies into one checkpoint; the allowance, dispenses and
// revocation link to the prescription and have their kinds; there are no
// more dispenses than fills allowed, none without an allowance and none
// after the revocation. With the prescription's bundle (b not nil), the
// answer must be about its commitment and the allowance's lock must be
// the one its salt gives. The error is a [*VerifyError].
func (v *Verifier) VerifyStatus(s *PrescriptionStatus, b *Bundle) (*StatusResult, error) {
	c := s.Commitment
	if b != nil && b.Receipt.Leaf.Commitment != c {
		return nil, verifyErr(ErrCommitmentMismatch, "the status is about %s, the bundle's prescription is %s", c, b.Receipt.Leaf.Commitment)
	}
	pres, err := v.statusReceipt("prescription", s.Prescription, c, s.Prescription, KindPrescription, Commitment{})
	if err != nil {
		return nil, err
	}
	res := &StatusResult{Prescription: pres, Checkpoint: pres.Checkpoint}
	after := pres.Index
	if s.Allowance != nil {
		r, err := v.statusReceipt("allowance", s.Allowance, s.Allowance.Leaf.Commitment, s.Prescription, KindAllowance, c)
		if err != nil {
			return nil, err
		}
		a, err := ParseAllowance(r.Leaf.Commitment)
		if err != nil {
			return nil, &VerifyError{Err: ErrMalformed, Detail: "allowance: " + err.Error()}
		}
		if b != nil {
			want, err := NewAllowance(b.Salt, c, a.Fills)
			if err != nil || want.Lock != a.Lock {
				return nil, verifyErr(ErrCommitmentMismatch, "allowance: its lock is not the one the bundle's salt gives")
			}
		}
		if r.Index <= after {
			return nil, verifyErr(ErrInconsistentHistory, "allowance at index %d is not after its prescription at %d", r.Index, after)
		}
		res.FillsAllowed, after = a.Fills, r.Index
	} else if len(s.Dispenses) > 0 {
		return nil, verifyErr(ErrInconsistentHistory, "%d dispenses of a prescription without an allowance", len(s.Dispenses))
	}
	if len(s.Dispenses) > res.FillsAllowed {
		return nil, verifyErr(ErrInconsistentHistory, "%d dispenses of a prescription that allows %d", len(s.Dispenses), res.FillsAllowed)
	}
	for i, d := range s.Dispenses {
		r, err := v.statusReceipt(fmt.Sprintf("dispenses[%d]", i), d, d.Leaf.Commitment, s.Prescription, KindDispense, c)
		if err != nil {
			return nil, err
		}
		if r.Index <= after {
			return nil, verifyErr(ErrInconsistentHistory, "dispenses[%d] at index %d is not after index %d", i, r.Index, after)
		}
		after = r.Index
		res.Dispensed = append(res.Dispensed, r.Leaf.Time())
	}
	res.FillsUsed = len(s.Dispenses)
	if s.Revocation != nil {
		r, err := v.statusReceipt("revocation", s.Revocation, RevocationCommitment(c), s.Prescription, KindRevocation, c)
		if err != nil {
			return nil, err
		}
		if r.Index <= pres.Index {
			return nil, verifyErr(ErrInconsistentHistory, "revocation at index %d is not after its prescription at %d", r.Index, pres.Index)
		}
		if n := len(s.Dispenses); n > 0 && s.Dispenses[n-1].Index > r.Index {
			return nil, verifyErr(ErrInconsistentHistory, "a dispense at index %d after the revocation at %d", s.Dispenses[n-1].Index, r.Index)
		}
		res.RevokedAt = r.Leaf.Time()
	}
	res.State, _, _ = s.State()
	return res, nil
}

// statusReceipt verifies one receipt of a status answer: commitment want,
// the kind and (but for the prescription's own) the link given, proven into the same checkpoint as first.
func (v *Verifier) statusReceipt(name string, r *Receipt, want Commitment, first *Receipt, kind Kind, link Commitment) (*Result, error) {
	if r == nil {
		return nil, verifyErr(ErrMalformed, "%s: no receipt", name)
	}
	res, err := v.Verify(Claim{Receipt: r, Commitment: want})
	if err != nil {
		if ve, ok := err.(*VerifyError); ok {
			return nil, &VerifyError{Err: ve.Err, Detail: name + ": " + ve.Detail}
		}
		return nil, err
	}
	switch {
	case r.Leaf.Kind != kind:
		return nil, verifyErr(ErrMalformed, "%s: a leaf of kind %s, want %s", name, r.Leaf.Kind, kind)
	case kind != KindPrescription && r.Leaf.Link != link:
		return nil, verifyErr(ErrMalformed, "%s: links to %s, not to the prescription %s", name, r.Leaf.Link, link)
	case !bytes.Equal(r.Checkpoint, first.Checkpoint):
		return nil, verifyErr(ErrMalformed, "%s: proven into another checkpoint than the prescription's", name)
	}
	return res, nil
}
