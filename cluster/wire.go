package cluster

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/telenotary/telenotary/notary"
)

// Receipts dominate the API's traffic, so the responses that carry them
// are written and read by hand: encoding/json would re-scan every receipt
// the notary package already encodes and decodes strictly. Readers accept
// any spelling of the envelope by falling back to encoding/json.

// appendJSON appends the entry as the API reads it.
func (e Entry) appendJSON(b []byte) []byte {
	b = append(b, `{"kind":"`...)
	b = append(b, e.Kind.String()...)
	b = append(b, `","commitment":"`...)
	b = hex.AppendEncode(b, e.Commitment[:])
	if !e.Link.IsZero() {
		b = append(b, `","link":"`...)
		b = hex.AppendEncode(b, e.Link[:])
	}
	return append(b, '"', '}')
}

func (r NotarizeResponse) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"receipt":`...)
	b, err := r.Receipt.AppendJSON(b)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"existing":`...)
	b = strconv.AppendBool(b, r.Existing)
	return append(b, '}', '\n'), nil
}

func (r BatchResponse) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"receipts":[`...)
	for i, rc := range r.Receipts {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = rc.AppendJSON(b); err != nil {
			return nil, err
		}
	}
	return append(b, ']', '}', '\n'), nil
}

// responseBuffers recycles the buffers responses are encoded into: at
// thousands of receipts a second they are most of the node's garbage.
var responseBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// writeReceipts answers with a response that carries receipts.
func writeReceipts(w http.ResponseWriter, resp interface{ appendJSON([]byte) ([]byte, error) }) error {
	buf := responseBuffers.Get().(*[]byte)
	b, err := resp.appendJSON((*buf)[:0])
	if err != nil {
		responseBuffers.Put(buf)
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	if cap(b) <= 1<<20 { // a huge batch response is not worth keeping
		*buf = b
		responseBuffers.Put(buf)
	}
	return err
}

// token consumes whitespace and then the literal tok.
func token(b []byte, tok string) ([]byte, bool) {
	b = bytes.TrimLeft(b, " \t\r\n")
	return bytes.CutPrefix(b, []byte(tok))
}

var errEnvelope = errors.New("unexpected response layout")

func (r *NotarizeResponse) decodeJSON(b []byte) error {
	if err := r.decodeFast(b); err == nil {
		return nil
	}
	var slow struct {
		Receipt  *notary.Receipt `json:"receipt"`
		Existing bool            `json:"existing"`
	}
	if err := json.Unmarshal(b, &slow); err != nil {
		return err
	}
	r.Receipt, r.Existing = slow.Receipt, slow.Existing
	return nil
}

func (r *NotarizeResponse) decodeFast(b []byte) error {
	b, ok := token(b, `{"receipt":`)
	if !ok {
		return errEnvelope
	}
	rc, b, err := notary.ReadReceiptJSON(b)
	if err != nil {
		return err
	}
	if b, ok = token(b, `,"existing":`); !ok {
		return errEnvelope
	}
	b = bytes.TrimLeft(b, " \t\r\n")
	existing := bytes.HasPrefix(b, []byte("true"))
	if b, ok = token(b, strconv.FormatBool(existing)); !ok {
		return errEnvelope
	}
	if b, ok = token(b, "}"); !ok || len(bytes.TrimSpace(b)) != 0 {
		return errEnvelope
	}
	r.Receipt, r.Existing = rc, existing
	return nil
}

func (r *BatchResponse) decodeJSON(b []byte) error {
	if err := r.decodeFast(b); err == nil {
		return nil
	}
	var slow struct {
		Receipts []*notary.Receipt `json:"receipts"`
	}
	if err := json.Unmarshal(b, &slow); err != nil {
		return err
	}
	r.Receipts = slow.Receipts
	return nil
}

func (r *BatchResponse) decodeFast(b []byte) error {
	b, ok := token(b, `{"receipts":[`)
	if !ok {
		return errEnvelope
	}
	var out []*notary.Receipt
	if rest, ok := token(b, "]"); ok {
		b = rest
	} else {
		for {
			rc, rest, err := notary.ReadReceiptJSON(b)
			if err != nil {
				return err
			}
			out = append(out, rc)
			if b, ok = token(rest, ","); ok {
				continue
			}
			if b, ok = token(rest, "]"); !ok {
				return errEnvelope
			}
			break
		}
	}
	if b, ok = token(b, "}"); !ok || len(bytes.TrimSpace(b)) != 0 {
		return errEnvelope
	}
	r.Receipts = out
	return nil
}

// parseEntryFast reads the common spelling of a single entry, an object of
// the members kind, commitment and link with plain string values, without
// encoding/json; ok is false for any other spelling, which the strict
// decoder then judges.
func parseEntryFast(b []byte) (w wireEntry, ok bool) {
	b = bytes.TrimSpace(b)
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return w, false
	}
	b = b[1 : len(b)-1]
	for len(bytes.TrimSpace(b)) > 0 {
		name, rest, ok := plainString(b)
		if !ok {
			return w, false
		}
		if rest, ok = token(rest, ":"); !ok {
			return w, false
		}
		value, rest, ok := plainString(rest)
		if !ok {
			return w, false
		}
		var slot **string
		switch name {
		case "kind":
			slot = &w.Kind
		case "commitment":
			slot = &w.Commitment
		case "link":
			slot = &w.Link
		default:
			return w, false
		}
		if *slot != nil {
			return w, false // repeated
		}
		*slot = &value
		b = bytes.TrimSpace(rest)
		if len(b) > 0 {
			// A comma must be followed by another member.
			if b, ok = token(b, ","); !ok || len(bytes.TrimSpace(b)) == 0 {
				return w, false
			}
		}
	}
	return w, true
}

// plainString reads a JSON string without escapes after whitespace.
func plainString(b []byte) (string, []byte, bool) {
	b, ok := token(b, `"`)
	if !ok {
		return "", nil, false
	}
	end := bytes.IndexByte(b, '"')
	if end < 0 || bytes.IndexByte(b[:end], '\\') >= 0 {
		return "", nil, false
	}
	for _, c := range b[:end] {
		if c < 0x20 || c >= utf8.RuneSelf { // plain ASCII only
			return "", nil, false
		}
	}
	return string(b[:end]), b[end+1:], true
}
