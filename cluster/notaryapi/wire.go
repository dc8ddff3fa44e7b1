package notaryapi

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/notary"
)

// Receipts dominate the API's traffic, so the messages that carry them are
// written and read by hand: encoding/json would re-scan every receipt the
// notary package already encodes and decodes strictly. Readers accept any
// spelling of the envelope by falling back to encoding/json; requests fall
// back to the strict decoder, which names the field of a mistake.

// AppendJSON appends the entry as the API reads it.
func (e Entry) AppendJSON(b []byte) []byte {
	b = append(b, `{"kind":"`...)
	b = append(b, e.Kind.String()...)
	b = append(b, `","commitment":"`...)
	b = hex.AppendEncode(b, e.Commitment[:])
	if !e.Link.IsZero() {
		b = append(b, `","link":"`...)
		b = hex.AppendEncode(b, e.Link[:])
	}
	b = append(b, '"')
	if e.Allowance != nil {
		b = append(b, `,"allowance":{"fills":`...)
		b = strconv.AppendInt(b, int64(e.Allowance.Fills), 10)
		b = append(b, `,"lock":"`...)
		b = hex.AppendEncode(b, e.Allowance.Lock[:])
		b = append(b, `"}`...)
	}
	if e.Fill != 0 {
		b = append(b, `,"fill":`...)
		b = strconv.AppendInt(b, int64(e.Fill), 10)
	}
	if e.Proof != nil {
		b = append(b, `,"proof":"`...)
		b = hex.AppendEncode(b, e.Proof[:])
		b = append(b, '"')
	}
	return append(b, '}')
}

// AppendBatchJSON appends the body of a batch request for entries.
func AppendBatchJSON(b []byte, entries []Entry) ([]byte, error) {
	b = append(b, `{"entries":[`...)
	for i, e := range entries {
		if !e.Kind.Valid() {
			return nil, httpapi.Field(fmt.Sprintf("entries[%d].kind", i), "is not a defined kind")
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = e.AppendJSON(b)
	}
	return append(b, ']', '}'), nil
}

// AppendJSON appends the response, with a final newline.
func (r NotarizeResponse) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"receipt":`...)
	b, err := r.Receipt.AppendJSON(b)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"existing":`...)
	b = strconv.AppendBool(b, r.Existing)
	if r.Fill != 0 {
		b = append(b, `,"fill":`...)
		b = strconv.AppendInt(b, int64(r.Fill), 10)
		b = append(b, `,"fills":`...)
		b = strconv.AppendInt(b, int64(r.Fills), 10)
	}
	return append(b, '}', '\n'), nil
}

// AppendJSON appends the response, with a final newline.
func (r BatchResponse) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"receipts":[`...)
	for i, receipt := range r.Receipts {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = receipt.AppendJSON(b); err != nil {
			return nil, err
		}
	}
	b = append(b, `],"first_new":`...)
	b = strconv.AppendUint(b, r.FirstNew, 10)
	return append(b, '}', '\n'), nil
}

// token consumes whitespace and then the literal tok.
func token(b []byte, tok string) ([]byte, bool) {
	b = bytes.TrimLeft(b, " \t\r\n")
	return bytes.CutPrefix(b, []byte(tok))
}

var errEnvelope = errors.New("unexpected response layout")

// UnmarshalJSON reads a response, fast when it is spelled as a node
// writes it.
func (r *NotarizeResponse) UnmarshalJSON(b []byte) error {
	if err := r.decodeFast(b); err == nil {
		return nil
	}
	var slow struct {
		Receipt  *notary.Receipt `json:"receipt"`
		Existing bool            `json:"existing"`
		Fill     int             `json:"fill"`
		Fills    int             `json:"fills"`
	}
	if err := json.Unmarshal(b, &slow); err != nil {
		return err
	}
	r.Receipt, r.Existing, r.Fill, r.Fills = slow.Receipt, slow.Existing, slow.Fill, slow.Fills
	return nil
}

func (r *NotarizeResponse) decodeFast(b []byte) error {
	b, ok := token(b, `{"receipt":`)
	if !ok {
		return errEnvelope
	}
	receipt, b, err := notary.ReadReceiptJSON(b)
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
	r.Receipt, r.Existing = receipt, existing
	return nil
}

// UnmarshalJSON reads a response, fast when it is spelled as a node
// writes it.
func (r *BatchResponse) UnmarshalJSON(b []byte) error {
	if err := r.decodeFast(b); err == nil {
		return nil
	}
	var slow struct {
		Receipts []*notary.Receipt `json:"receipts"`
		FirstNew uint64            `json:"first_new"`
	}
	if err := json.Unmarshal(b, &slow); err != nil {
		return err
	}
	r.Receipts, r.FirstNew = slow.Receipts, slow.FirstNew
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
			receipt, rest, err := notary.ReadReceiptJSON(b)
			if err != nil {
				return err
			}
			out = append(out, receipt)
			if b, ok = token(rest, ","); ok {
				continue
			}
			if b, ok = token(rest, "]"); !ok {
				return errEnvelope
			}
			break
		}
	}
	var firstNew uint64
	if rest, ok := token(b, `,"first_new":`); ok {
		rest = bytes.TrimLeft(rest, " \t\r\n")
		n := 0
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		v, err := strconv.ParseUint(string(rest[:n]), 10, 64)
		if err != nil {
			return errEnvelope
		}
		firstNew, b = v, rest[n:]
	}
	if b, ok = token(b, "}"); !ok || len(bytes.TrimSpace(b)) != 0 {
		return errEnvelope
	}
	r.Receipts, r.FirstNew = out, firstNew
	return nil
}

// wireEntry is an entry as a request spells it; every field is checked by
// hand so errors can name it.
type wireEntry struct {
	Kind       *string `json:"kind"`
	Commitment *string `json:"commitment"`
	Link       *string `json:"link"`
	Allowance  *struct {
		Fills *int    `json:"fills"`
		Lock  *string `json:"lock"`
	} `json:"allowance"`
	Fill  *int    `json:"fill"`
	Proof *string `json:"proof"`
}

func (w wireEntry) parse(prefix string) (Entry, error) {
	var e Entry
	if w.Kind == nil {
		return e, httpapi.Field(prefix+"kind", "is required")
	}
	k, err := notary.ParseKind(*w.Kind)
	if err != nil {
		return e, httpapi.Field(prefix+"kind", "%v", err)
	}
	e.Kind = k
	if w.Commitment == nil {
		return e, httpapi.Field(prefix+"commitment", "is required")
	}
	if e.Commitment, err = ParseCommitment(*w.Commitment); err != nil {
		return e, httpapi.Field(prefix+"commitment", "%v", err)
	}
	if w.Link != nil {
		if e.Link, err = ParseCommitment(*w.Link); err != nil {
			return e, httpapi.Field(prefix+"link", "%v", err)
		}
	}
	if err := w.parseLifecycle(prefix, &e); err != nil {
		return e, err
	}
	return e, nil
}

// parseLifecycle reads and checks the members of a prescription's
// allowance, a dispense or a revocation (docs/FORMATS.md, "Dispensing and
// revocation").
func (w wireEntry) parseLifecycle(prefix string, e *Entry) error {
	switch e.Kind {
	case notary.KindAllowance:
		return httpapi.Field(prefix+"kind", "allowance leaves are logged by the cluster: give \"allowance\" with the prescription")
	case notary.KindDispense, notary.KindRevocation:
		if e.Link.IsZero() {
			return httpapi.Field(prefix+"link", "is required on a %s: the prescription's commitment", e.Kind)
		}
		if w.Proof == nil {
			return httpapi.Field(prefix+"proof", "is required on a %s", e.Kind)
		}
		var p notary.ChainValue
		if err := p.UnmarshalText([]byte(*w.Proof)); err != nil {
			return httpapi.Field(prefix+"proof", "%v", err)
		}
		e.Proof = &p
	}
	if e.Kind == notary.KindDispense {
		if w.Fill == nil {
			return httpapi.Field(prefix+"fill", "is required on a dispense")
		}
		if *w.Fill < 1 || *w.Fill > notary.MaxFills {
			return httpapi.Field(prefix+"fill", "must be 1 to %d, not %d", notary.MaxFills, *w.Fill)
		}
		e.Fill = *w.Fill
	} else if w.Fill != nil {
		return httpapi.Field(prefix+"fill", "is only for a dispense")
	}
	if e.Kind == notary.KindRevocation && e.Commitment != notary.RevocationCommitment(e.Link) {
		return httpapi.Field(prefix+"commitment", "a revocation's commitment is %s, derived from the prescription's", notary.RevocationCommitment(e.Link))
	}
	if w.Proof != nil && !e.Lifecycle() {
		return httpapi.Field(prefix+"proof", "is only for a dispense or a revocation")
	}
	if w.Allowance == nil {
		return nil
	}
	if e.Kind != notary.KindPrescription {
		return httpapi.Field(prefix+"allowance", "is only for a prescription")
	}
	a := w.Allowance
	switch {
	case a.Fills == nil:
		return httpapi.Field(prefix+"allowance.fills", "is required")
	case *a.Fills < 1 || *a.Fills > notary.MaxFills:
		return httpapi.Field(prefix+"allowance.fills", "must be 1 to %d, not %d", notary.MaxFills, *a.Fills)
	case a.Lock == nil:
		return httpapi.Field(prefix+"allowance.lock", "is required")
	}
	e.Allowance = &notary.Allowance{Fills: *a.Fills}
	if err := e.Allowance.Lock.UnmarshalText([]byte(*a.Lock)); err != nil {
		return httpapi.Field(prefix+"allowance.lock", "%v", err)
	}
	return nil
}

// DecodeEntry reads the body of a single notarization. The error is a
// *httpapi.FieldError naming the field.
func DecodeEntry(body []byte) (Entry, error) {
	we, ok := parseEntryFast(body)
	if !ok {
		if err := httpapi.DecodeJSON(body, &we); err != nil {
			return Entry{}, err
		}
	}
	return we.parse("")
}

// DecodeBatch reads the body of a batch notarization: 1 to
// MaxBatchRequest entries. The error is a *httpapi.FieldError naming the
// field ("entries[3].commitment").
func DecodeBatch(body []byte) ([]Entry, error) {
	var req struct {
		Entries []wireEntry `json:"entries"`
	}
	if err := httpapi.DecodeJSON(body, &req); err != nil {
		return nil, err
	}
	if len(req.Entries) == 0 || len(req.Entries) > MaxBatchRequest {
		return nil, httpapi.Field("entries", "must hold 1 to %d entries, not %d", MaxBatchRequest, len(req.Entries))
	}
	entries := make([]Entry, len(req.Entries))
	for i, we := range req.Entries {
		var err error
		if entries[i], err = we.parse(fmt.Sprintf("entries[%d].", i)); err != nil {
			return nil, err
		}
		if entries[i].Lifecycle() {
			return nil, httpapi.Field(fmt.Sprintf("entries[%d].kind", i), "a %s may be refused by the log's rules: submit it alone, to POST /v1/notarize", entries[i].Kind)
		}
	}
	return entries, nil
}

// parseEntryFast reads the common spelling of a single entry, an object of
// the members kind, commitment and link with plain string values, without
// a JSON decoder; ok is false for any other spelling, which the strict
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

// RawReceipt is one receipt of a batch response as the node that wrote it
// spelled it, with the members a relay checks: a follower hands the
// leader's receipts on to its clients without decoding and writing them
// again (the clients verify them anyway).
type RawReceipt struct {
	JSON       []byte
	Index      uint64
	Commitment notary.Commitment
}

// AppendNotarizeResponse appends the single response that carries the
// receipt, as [NotarizeResponse.AppendJSON] writes it (no fill: a relayed
// batch holds no dispenses).
func (r RawReceipt) AppendNotarizeResponse(b []byte, existing bool) []byte {
	b = append(b, `{"receipt":`...)
	b = append(b, r.JSON...)
	b = append(b, `,"existing":`...)
	b = strconv.AppendBool(b, existing)
	return append(b, '}', '\n')
}

// SplitBatchResponse reads a batch response into its raw receipts and
// first_new. It reads the envelope and each receipt's head (version,
// origin, index, kind, commitment) as a node writes them and only finds
// the end of the rest; an answer spelled otherwise is decoded in full
// and its receipts written again.
func SplitBatchResponse(b []byte) ([]RawReceipt, uint64, error) {
	if out, firstNew, err := splitFast(b); err == nil {
		return out, firstNew, nil
	}
	var resp BatchResponse
	if err := resp.UnmarshalJSON(b); err != nil {
		return nil, 0, err
	}
	out := make([]RawReceipt, len(resp.Receipts))
	for i, r := range resp.Receipts {
		if r == nil {
			return nil, 0, fmt.Errorf("receipts[%d] is null", i)
		}
		raw, err := r.AppendJSON(nil)
		if err != nil {
			return nil, 0, fmt.Errorf("receipts[%d]: %w", i, err)
		}
		out[i] = RawReceipt{JSON: raw, Index: r.Index, Commitment: r.Leaf.Commitment}
	}
	return out, resp.FirstNew, nil
}

func splitFast(b []byte) ([]RawReceipt, uint64, error) {
	rest, ok := bytes.CutPrefix(b, []byte(`{"receipts":[`))
	if !ok {
		return nil, 0, errEnvelope
	}
	var out []RawReceipt
	if r, ok := bytes.CutPrefix(rest, []byte("]")); ok {
		rest = r
	} else {
		for {
			head, err := readReceiptHead(rest)
			if err != nil {
				return nil, 0, err
			}
			n, err := objectEnd(rest)
			if err != nil {
				return nil, 0, err
			}
			head.JSON = rest[:n:n]
			out = append(out, head)
			rest = rest[n:]
			if r, ok := bytes.CutPrefix(rest, []byte(",")); ok {
				rest = r
				continue
			}
			if rest, ok = bytes.CutPrefix(rest, []byte("]")); !ok {
				return nil, 0, errEnvelope
			}
			break
		}
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"first_new":`)); !ok {
		return nil, 0, errEnvelope
	}
	digits := 0
	for digits < len(rest) && rest[digits] >= '0' && rest[digits] <= '9' {
		digits++
	}
	firstNew, err := strconv.ParseUint(string(rest[:digits]), 10, 64)
	if err != nil || !bytes.Equal(bytes.TrimRight(rest[digits:], "\n"), []byte("}")) {
		return nil, 0, errEnvelope
	}
	return out, firstNew, nil
}

// readReceiptHead reads the members a receipt starts with as
// [notary.Receipt.AppendJSON] writes them.
func readReceiptHead(b []byte) (RawReceipt, error) {
	var r RawReceipt
	b, ok := bytes.CutPrefix(b, []byte(`{"version":`+strconv.Itoa(notary.ReceiptVersion)+`,"origin":`))
	if !ok {
		return r, errEnvelope
	}
	n, err := stringEnd(b)
	if err != nil {
		return r, err
	}
	if b, ok = bytes.CutPrefix(b[n:], []byte(`,"index":`)); !ok {
		return r, errEnvelope
	}
	digits := 0
	for digits < len(b) && b[digits] >= '0' && b[digits] <= '9' {
		digits++
	}
	if r.Index, err = strconv.ParseUint(string(b[:digits]), 10, 64); err != nil {
		return r, errEnvelope
	}
	if b, ok = bytes.CutPrefix(b[digits:], []byte(`,"kind":`)); !ok {
		return r, errEnvelope
	}
	if n, err = stringEnd(b); err != nil {
		return r, err
	}
	if b, ok = bytes.CutPrefix(b[n:], []byte(`,"commitment":"`)); !ok || len(b) < 2*len(r.Commitment)+1 || b[2*len(r.Commitment)] != '"' {
		return r, errEnvelope
	}
	if r.Commitment, err = ParseCommitment(string(b[:2*len(r.Commitment)])); err != nil {
		return r, errEnvelope
	}
	return r, nil
}

// stringEnd returns the length of the JSON string b starts with.
func stringEnd(b []byte) (int, error) {
	if len(b) == 0 || b[0] != '"' {
		return 0, errEnvelope
	}
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1, nil
		}
	}
	return 0, errEnvelope
}

// objectEnd returns the length of the JSON object b starts with, finding
// its closing brace past strings and nested values; it does not check
// what lies between.
func objectEnd(b []byte) (int, error) {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			n, err := stringEnd(b[i:])
			if err != nil {
				return 0, err
			}
			i += n - 1
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return i + 1, nil
			}
		}
	}
	return 0, errEnvelope
}
