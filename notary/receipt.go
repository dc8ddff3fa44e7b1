package notary

import (
	"encoding/json"
	"fmt"
)

// Limits on receipts.
const (
	ReceiptVersion = 1        // the only receipt version this package writes and reads
	MaxReceiptSize = 64 << 10 // bytes of receipt JSON
	MaxProofHashes = 64       // hashes in an inclusion or consistency proof
)

// Receipt proves that a commitment was logged: the leaf, its index, an RFC
// 6962 inclusion proof and the signed checkpoint the proof leads to. Its JSON
// form is specified in docs/FORMATS.md; it holds no personal data.
type Receipt struct {
	// Origin names the log; it must equal the checkpoint's origin.
	Origin string
	// Index is the leaf's position in the log, from 0.
	Index uint64
	// Leaf is what was logged: kind, commitment, link and timestamp.
	Leaf Leaf
	// LeafHash is the RFC 6962 hash of Leaf's encoding.
	LeafHash Hash
	// InclusionProof leads from LeafHash at Index to the checkpoint's root.
	InclusionProof []Hash
	// Checkpoint is the signed note the proof leads into.
	Checkpoint []byte
}

// receiptWire is the JSON form of a receipt.
type receiptWire struct {
	Version        int         `json:"version"`
	Origin         string      `json:"origin"`
	Index          uint64      `json:"index"`
	Kind           Kind        `json:"kind"`
	Commitment     Commitment  `json:"commitment"`
	Link           *Commitment `json:"link,omitempty"`
	Timestamp      int64       `json:"timestamp"`
	LeafHash       Hash        `json:"leaf_hash"`
	InclusionProof []Hash      `json:"inclusion_proof"`
	Checkpoint     string      `json:"checkpoint"`
}

var receiptFields = []string{"version", "origin", "index", "kind", "commitment", "link", "timestamp", "leaf_hash", "inclusion_proof", "checkpoint"}

// MarshalJSON encodes the receipt in its version-1 JSON form.
func (r Receipt) MarshalJSON() ([]byte, error) {
	if !r.Leaf.Kind.Valid() {
		return nil, fmt.Errorf("receipt: invalid kind %d", r.Leaf.Kind)
	}
	w := receiptWire{
		Version:        ReceiptVersion,
		Origin:         r.Origin,
		Index:          r.Index,
		Kind:           r.Leaf.Kind,
		Commitment:     r.Leaf.Commitment,
		Timestamp:      r.Leaf.Timestamp,
		LeafHash:       r.LeafHash,
		InclusionProof: r.InclusionProof,
		Checkpoint:     string(r.Checkpoint),
	}
	if w.InclusionProof == nil {
		w.InclusionProof = []Hash{}
	}
	if !r.Leaf.Link.IsZero() {
		w.Link = &r.Leaf.Link
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes a version-1 receipt strictly: every field present
// (link may be absent), none unknown or repeated, each in its one spelling.
// Errors wrap [ErrMalformed] and name the field.
func (r *Receipt) UnmarshalJSON(data []byte) error {
	if len(data) > MaxReceiptSize {
		return fmt.Errorf("%w: receipt is %d bytes, more than %d", ErrMalformed, len(data), MaxReceiptSize)
	}
	o, err := parseObject(data, "receipt", receiptFields...)
	if err != nil {
		return err
	}
	var w receiptWire
	for _, f := range []struct {
		name string
		v    any
	}{
		{"version", &w.Version}, {"origin", &w.Origin}, {"index", &w.Index}, {"kind", &w.Kind},
		{"commitment", &w.Commitment}, {"timestamp", &w.Timestamp}, {"leaf_hash", &w.LeafHash},
		{"inclusion_proof", &w.InclusionProof}, {"checkpoint", &w.Checkpoint},
	} {
		if err := o.decode(f.name, f.v); err != nil {
			return err
		}
	}
	var link Commitment
	if err := o.decodeOptional("link", &link); err != nil {
		return err
	}
	if o.has("link") && link.IsZero() {
		return fmt.Errorf("%w: receipt field \"link\" is all zeros; a receipt without a link leaves the field out", ErrMalformed)
	}
	switch {
	case w.Version != ReceiptVersion:
		return fmt.Errorf("%w: receipt field \"version\" is %d; this verifier reads version %d", ErrMalformed, w.Version, ReceiptVersion)
	case ValidateOrigin(w.Origin) != nil:
		return fmt.Errorf("%w: receipt field \"origin\": %v", ErrMalformed, ValidateOrigin(w.Origin))
	case w.Timestamp < 0:
		return fmt.Errorf("%w: receipt field \"timestamp\" is negative", ErrMalformed)
	case len(w.InclusionProof) > MaxProofHashes:
		return fmt.Errorf("%w: receipt field \"inclusion_proof\" has %d hashes, more than %d", ErrMalformed, len(w.InclusionProof), MaxProofHashes)
	case len(w.Checkpoint) > MaxCheckpointSize:
		return fmt.Errorf("%w: receipt field \"checkpoint\" is %d bytes, more than %d", ErrMalformed, len(w.Checkpoint), MaxCheckpointSize)
	}
	*r = Receipt{
		Origin:         w.Origin,
		Index:          w.Index,
		Leaf:           Leaf{Kind: w.Kind, Commitment: w.Commitment, Link: link, Timestamp: w.Timestamp},
		LeafHash:       w.LeafHash,
		InclusionProof: w.InclusionProof,
		Checkpoint:     []byte(w.Checkpoint),
	}
	return nil
}

// ParseReceipt decodes a receipt from its JSON form; see
// [Receipt.UnmarshalJSON].
func ParseReceipt(data []byte) (*Receipt, error) {
	r := new(Receipt)
	if err := r.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	return r, nil
}
