package notary

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
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
	Raw      *[]byte         `json:"document_base64,omitempty"` // a pointer, so an empty document is kept
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

// MarshalJSON encodes the bundle in its version-1 JSON form. The document
// keeps its characters: <, > and & are not escaped for HTML.
func (b Bundle) MarshalJSON() ([]byte, error) {
	if _, err := b.Canonical(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	w := bundleWire{Version: BundleVersion, Document: b.Document, Salt: b.Salt, Receipt: b.Receipt}
	if b.Raw != nil {
		w.Raw = &b.Raw
	}
	if err := enc.Encode(w); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Encode returns the bundle as a file for people as well as programs:
// indented JSON whose document keeps its characters unescaped.
func (b Bundle) Encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(b); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
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
	var raw []byte
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
		if raw, err = decodeDocumentBase64(o.members["document_base64"]); err != nil {
			return err
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
	parsed := Bundle{Document: w.Document, Raw: raw, Salt: w.Salt, Receipt: w.Receipt}
	// A document that cannot be canonicalized (duplicate keys, invalid
	// UTF-8) can never be verified: refuse it here, naming the field.
	if _, err := parsed.Canonical(); err != nil {
		return fmt.Errorf("bundle field \"document\": %w", err)
	}
	*b = parsed
	return nil
}

// decodeDocumentBase64 decodes the one form document_base64 has (docs/
// FORMATS.md §7): a JSON string of standard base64 with padding, without
// line breaks, its unused bits zero; Go's lenient decoders (line breaks
// skipped, any last bits, a JSON array of bytes) are not used, so that
// every verifier takes exactly the same inputs.
func decodeDocumentBase64(member json.RawMessage) ([]byte, error) {
	var text string
	if len(member) == 0 || member[0] != '"' || json.Unmarshal(member, &text) != nil {
		return nil, fmt.Errorf("%w: bundle field \"document_base64\" must be a string", ErrMalformed)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(text)
	if err != nil || strings.ContainsAny(text, "\r\n") {
		return nil, fmt.Errorf("%w: bundle field \"document_base64\" is not standard base64 with padding, on one line, its unused bits zero", ErrMalformed)
	}
	return raw, nil
}

// ParseBundle decodes a bundle from its JSON form; see [Bundle.UnmarshalJSON].
func ParseBundle(data []byte) (*Bundle, error) {
	b := new(Bundle)
	if err := b.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	return b, nil
}
