package prescription

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/telenotary/telenotary/notary"
)

// canonicalJSON returns the RFC 8785 (JCS) canonical form of a document
// checkJSON accepted: the bytes notary.CanonicalJSON returns for it, with
// jsontext's canonicalization (Value.Canonicalize) in place of
// gowebpki/jcs, which builds a tree of the document and each of its
// strings byte by byte (a quarter of what Check allocated). On what
// checkJSON accepts (one object, valid UTF-8, no repeated member name, no
// number canonicalization would change in value) the two agree: see
// TestCanonicalRFC8785 and FuzzCanonicalJSON. doc is not modified.
func canonicalJSON(doc []byte) ([]byte, error) {
	v := canonicalScratch.Get().(*jsontext.Value)
	defer canonicalScratch.Put(v)
	*v = append((*v)[:0], doc...)
	if err := v.Canonicalize(); err != nil {
		return nil, fmt.Errorf("prescription: canonicalizing: %w", err)
	}
	if len(*v) > notary.MaxDocumentSize {
		return nil, fmt.Errorf("prescription: canonical document is %d bytes, more than the %d the notary takes", len(*v), notary.MaxDocumentSize)
	}
	return bytes.Clone(*v), nil
}

// canonicalScratch holds buffers that canonicalJSON canonicalizes a copy
// of the document in (Value.Canonicalize works in place), so that the
// one it returns is of the canonical form's size: without the document's
// white space, a third smaller for the HL7 examples.
var canonicalScratch = sync.Pool{New: func() any { return new(jsontext.Value) }}
