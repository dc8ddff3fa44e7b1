package notary

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Limits on bundles.
const (
	BundleVersion = 1       // the only bundle version this package writes and reads
	MaxBundleSize = 4 << 20 // bytes of bundle JSON
)

// Bundle is what a patient or a pharmacy receives: a document, its salt and
// its receipt, in one file. With the log's verifier keys, it proves offline
// that the document existed, unaltered, when the log sequenced it.
type Bundle struct {
	// Document is a JSON document (a FHIR resource); its commitment is over
	// its RFC 8785 canonical form. Exactly one of Document and Raw is set.
	Document json.RawMessage
	// Raw is a document that is not JSON, committed byte for byte.
	Raw []byte
	// Salt is the secret mixed into the commitment.
	Salt Salt
	// Receipt is the log's receipt for the commitment.
	Receipt Receipt
}

type bundleWire struct {
	Version  int             `json:"version"`
	Document json.RawMessage `json:"document,omitempty"`
	Raw      []byte          `json:"document_base64,omitempty"`
	Salt     Salt            `json:"salt"`
	Receipt  Receipt         `json:"receipt"`
}

// Canonical returns the bytes the bundle's commitment is over.
func (b *Bundle) Canonical() ([]byte, error) {
	switch {
	case b.Document != nil && b.Raw != nil:
		return nil, fmt.Errorf("%w: bundle has both a JSON and a raw document", ErrMalformed)
	case b.Document != nil:
		return CanonicalJSON(b.Document)
	case b.Raw != nil:
		if len(b.Raw) > MaxDocumentSize {
			return nil, fmt.Errorf("%w: document is %d bytes, more than %d", ErrMalformed, len(b.Raw), MaxDocumentSize)
		}
		return b.Raw, nil
	}
	return nil, fmt.Errorf("%w: bundle has no document", ErrMalformed)
}

// MarshalJSON encodes the bundle in its version-1 JSON form.
func (b Bundle) MarshalJSON() ([]byte, error) {
	if _, err := b.Canonical(); err != nil {
		return nil, err
	}
	var doc json.RawMessage
	if b.Document != nil {
		var buf bytes.Buffer
		if err := json.Compact(&buf, b.Document); err != nil {
			return nil, err
		}
		doc = buf.Bytes()
	}
	return json.Marshal(bundleWire{Version: BundleVersion, Document: doc, Raw: b.Raw, Salt: b.Salt, Receipt: b.Receipt})
}

// UnmarshalJSON decodes a version-1 bundle strictly; errors wrap
// [ErrMalformed] and name the field.
func (b *Bundle) UnmarshalJSON(data []byte) error {
	if len(data) > MaxBundleSize {
		return fmt.Errorf("%w: bundle is %d bytes, more than %d", ErrMalformed, len(data), MaxBundleSize)
	}
	o, err := parseObject(data, "bundle", "version", "document", "document_base64", "salt", "receipt")
	if err != nil {
		return err
	}
	var w bundleWire
	if err := o.decode("version", &w.Version); err != nil {
		return err
	}
	if w.Version != BundleVersion {
		return fmt.Errorf("%w: bundle field \"version\" is %d; this verifier reads version %d", ErrMalformed, w.Version, BundleVersion)
	}
	switch {
	case o.has("document") && o.has("document_base64"):
		return fmt.Errorf("%w: bundle has both \"document\" and \"document_base64\"", ErrMalformed)
	case o.has("document"):
		w.Document = o.members["document"]
	case o.has("document_base64"):
		if err := o.decode("document_base64", &w.Raw); err != nil {
			return err
		}
		if w.Raw == nil {
			w.Raw = []byte{}
		}
	default:
		return fmt.Errorf("%w: bundle field \"document\" is missing", ErrMalformed)
	}
	if err := o.decode("salt", &w.Salt); err != nil {
		return err
	}
	if !o.has("receipt") {
		return fmt.Errorf("%w: bundle field \"receipt\" is missing", ErrMalformed)
	}
	if err := w.Receipt.UnmarshalJSON(o.members["receipt"]); err != nil {
		return err // it names the receipt's field
	}
	*b = Bundle{Document: w.Document, Raw: w.Raw, Salt: w.Salt, Receipt: w.Receipt}
	return nil
}

// ParseBundle decodes a bundle from its JSON form; see [Bundle.UnmarshalJSON].
func ParseBundle(data []byte) (*Bundle, error) {
	b := new(Bundle)
	if err := b.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	return b, nil
}
