package notary

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
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

// receiptFields are the members of a receipt's JSON form, in the order
// they are written.
var receiptFields = [...]string{"version", "origin", "index", "kind", "commitment", "link", "timestamp", "leaf_hash", "inclusion_proof", "checkpoint"}

// MarshalJSON encodes the receipt in its version-1 JSON form.
func (r Receipt) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil) }

// AppendJSON appends the receipt's version-1 JSON form to b.
func (r Receipt) AppendJSON(b []byte) ([]byte, error) {
	if !r.Leaf.Kind.Valid() {
		return b, fmt.Errorf("receipt: invalid kind %d", r.Leaf.Kind)
	}
	b = append(b, `{"version":`...)
	b = strconv.AppendInt(b, ReceiptVersion, 10)
	b = append(b, `,"origin":`...)
	b = appendJSONString(b, r.Origin)
	b = append(b, `,"index":`...)
	b = strconv.AppendUint(b, r.Index, 10)
	b = append(b, `,"kind":"`...)
	b = append(b, kindNames[r.Leaf.Kind]...)
	b = append(b, `","commitment":"`...)
	b = hex.AppendEncode(b, r.Leaf.Commitment[:])
	if !r.Leaf.Link.IsZero() {
		b = append(b, `","link":"`...)
		b = hex.AppendEncode(b, r.Leaf.Link[:])
	}
	b = append(b, `","timestamp":`...)
	b = strconv.AppendInt(b, r.Leaf.Timestamp, 10)
	b = append(b, `,"leaf_hash":"`...)
	b = hex.AppendEncode(b, r.LeafHash[:])
	b = append(b, `","inclusion_proof":[`...)
	for i, h := range r.InclusionProof {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = hex.AppendEncode(b, h[:])
		b = append(b, '"')
	}
	b = append(b, `],"checkpoint":`...)
	b = appendJSONString(b, string(r.Checkpoint))
	return append(b, '}'), nil
}

// UnmarshalJSON decodes a version-1 receipt strictly: every field present
// (link may be absent), none unknown, repeated or null, each in its one
// spelling. Errors wrap [ErrMalformed] and name the field.
func (r *Receipt) UnmarshalJSON(data []byte) error {
	if len(data) > MaxReceiptSize {
		return fmt.Errorf("%w: receipt is %d bytes, more than %d", ErrMalformed, len(data), MaxReceiptSize)
	}
	s := &scanner{b: data}
	out, err := decodeReceipt(s)
	if err != nil {
		return err
	}
	if s.peek() != 0 {
		return fmt.Errorf("%w: receipt has data after its closing brace", ErrMalformed)
	}
	*r = out
	return nil
}

// ReadReceiptJSON decodes the receipt that starts data (after whitespace),
// as UnmarshalJSON does, and returns the bytes that follow it: for reading
// receipts out of a larger document without decoding it twice.
func ReadReceiptJSON(data []byte) (*Receipt, []byte, error) {
	s := &scanner{b: data}
	r, err := decodeReceipt(s)
	if err != nil {
		return nil, nil, err
	}
	if s.i > MaxReceiptSize {
		return nil, nil, fmt.Errorf("%w: receipt is %d bytes, more than %d", ErrMalformed, s.i, MaxReceiptSize)
	}
	return &r, data[s.i:], nil
}

func decodeReceipt(s *scanner) (Receipt, error) {
	var out Receipt
	if s.peek() != '{' {
		return out, fmt.Errorf("%w: receipt must be a JSON object", ErrMalformed)
	}
	s.i++
	var seen [len(receiptFields)]bool
	var version uint64
	for first := true; ; first = false {
		if c := s.peek(); c == '}' && first {
			s.i++
			break
		}
		name, err := s.string()
		if err != nil {
			return out, fmt.Errorf("%w: receipt is not JSON: member name %v", ErrMalformed, err)
		}
		if err := s.expect(':'); err != nil {
			return out, fmt.Errorf("%w: receipt is not JSON: %v", ErrMalformed, err)
		}
		field := slices.Index(receiptFields[:], name)
		if field < 0 {
			return out, fmt.Errorf("%w: receipt has unknown field %q", ErrMalformed, name)
		}
		if seen[field] {
			return out, fmt.Errorf("%w: receipt has field %q twice", ErrMalformed, name)
		}
		seen[field] = true
		if err := out.decodeField(s, name, &version); err != nil {
			return out, fmt.Errorf("%w: receipt field %q: %v", ErrMalformed, name, err)
		}
		switch s.peek() {
		case ',':
			s.i++
			continue
		case '}':
			s.i++
		case 0:
			return out, fmt.Errorf("%w: receipt is not JSON: %v", ErrMalformed, errTruncated)
		default:
			return out, fmt.Errorf("%w: receipt is not JSON: want ',' or '}' at byte %d", ErrMalformed, s.i)
		}
		break
	}
	for i, ok := range seen {
		if !ok && receiptFields[i] != "link" {
			return out, fmt.Errorf("%w: receipt field %q is missing", ErrMalformed, receiptFields[i])
		}
	}
	if version != ReceiptVersion {
		return out, fmt.Errorf("%w: receipt field \"version\" is %d; this verifier reads version %d", ErrMalformed, version, ReceiptVersion)
	}
	return out, nil
}

// decodeField decodes the value of one member.
func (r *Receipt) decodeField(s *scanner, name string, version *uint64) error {
	hexValue := s.hexInto
	switch name {
	case "version":
		v, err := s.uint()
		*version = v
		return err
	case "origin":
		o, err := s.string()
		if err != nil {
			return err
		}
		if err := ValidateOrigin(o); err != nil {
			return err
		}
		r.Origin = o
	case "index":
		v, err := s.uint()
		r.Index = v
		return err
	case "kind":
		k, err := s.string()
		if err != nil {
			return err
		}
		if r.Leaf.Kind, err = ParseKind(k); err != nil {
			return err
		}
	case "commitment":
		return hexValue(r.Leaf.Commitment[:])
	case "link":
		if err := hexValue(r.Leaf.Link[:]); err != nil {
			return err
		}
		if r.Leaf.Link.IsZero() {
			return errors.New("is all zeros; a receipt without a link leaves the field out")
		}
	case "timestamp":
		v, err := s.uint()
		if err == nil && v > math.MaxInt64 {
			err = errors.New("is out of range")
		}
		r.Leaf.Timestamp = int64(v)
		return err
	case "leaf_hash":
		return hexValue(r.LeafHash[:])
	case "inclusion_proof":
		r.InclusionProof = make([]Hash, 0, 32)
		return s.hexList(MaxProofHashes, func(h Hash) { r.InclusionProof = append(r.InclusionProof, h) })
	case "checkpoint":
		cp, err := s.string()
		if err != nil {
			return err
		}
		if len(cp) > MaxCheckpointSize {
			return fmt.Errorf("is %d bytes, more than %d", len(cp), MaxCheckpointSize)
		}
		r.Checkpoint = []byte(cp)
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
