package prescription

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/gowebpki/jcs"
)

// bom is the UTF-8 byte order mark.
const bom = "\xEF\xBB\xBF"

// CheckJSON checks a prescription as the JSON the notary commits to: one
// JSON object, valid UTF-8 without a byte order mark, no member name
// repeated in an object (I-JSON, RFC 7493), and no number whose value RFC
// 8785 canonicalization would change. JCS writes each number as the
// shortest form of the IEEE 754 double nearest to it: 2.50 becomes 2.5 and
// 1E3 becomes 1000, the same values, which are accepted; but
// 12345678901234567890 would become 12345678901234567000 and
// 0.12345678901234567890 would become 0.12345678901234568, so those are
// refused rather than committed changed. The error is an *Error naming the
// path of the fault.
func CheckJSON(doc []byte) error {
	_, err := scanJSON(doc, false)
	return err
}

// checkJSON is CheckJSON; with fhirNames, it also refuses a member name
// that is not a FHIR element name. The FHIR library reads "Intent" as
// intent (it lower-cases the first letter), so a document could carry an
// element that FHIR readers do not see, or two spellings of one element
// of which the library keeps either.
func checkJSON(doc []byte, fhirNames bool) error {
	_, err := scanJSON(doc, fhirNames)
	return err
}

// topLevel is what scanJSON learns of a document besides its faults.
type topLevel struct {
	// resourceType is the value of the object's resourceType member;
	// hasResourceType is false when there is none or it is not a string.
	resourceType    string
	hasResourceType bool
}

// scanner is a JSON decoder with the buffer it reads from, kept in
// scanners between documents: a decoder set up afresh allocates its
// state, and one reading through an io.Reader copies the document.
type scanner struct {
	dec jsontext.Decoder
	in  bytes.Buffer
}

var scanners = sync.Pool{New: func() any { return new(scanner) }}

// scanJSON is checkJSON, in one reading of the document that also finds
// its resourceType (what readResource needs of the JSON before the FHIR
// library reads it).
func scanJSON(doc []byte, fhirNames bool) (topLevel, error) {
	var top topLevel
	if bytes.HasPrefix(doc, []byte(bom)) {
		return top, refuse(Root, "starts with a byte order mark (U+FEFF): save the file as UTF-8 without one")
	}
	s := scanners.Get().(*scanner)
	defer func() {
		s.in = bytes.Buffer{}
		s.dec.Reset(&s.in) // keep no reference to doc
		scanners.Put(s)
	}()
	// The decoder reads a bytes.Buffer's bytes in place, without copying
	// them; it does not write to them.
	s.in = *bytes.NewBuffer(doc)
	dec := &s.dec
	dec.Reset(&s.in)
	if k := dec.PeekKind(); k != '{' {
		if _, err := dec.ReadToken(); err != nil {
			return top, syntaxError(err)
		}
		return top, refuse(Root, "is not a JSON object: a prescription is a FHIR MedicationRequest, {\"resourceType\": \"MedicationRequest\", …}")
	}
	var prev jsontext.Kind // the kind of the token before
	var lastName string    // the last member name of the top-level object, when it is resourceType
	for {
		if dec.PeekKind() == '0' {
			prev = '0'
			v, err := dec.ReadValue()
			if err != nil {
				return top, syntaxError(err)
			}
			if err := checkNumber(string(v)); err != nil {
				err.Path = pointerPath(dec.StackPointer())
				return top, err
			}
			continue
		}
		start := dec.InputOffset()
		tok, err := dec.ReadToken()
		if err != nil {
			return top, syntaxError(err)
		}
		var text []byte // a string token's text, unquoted
		if tok.Kind() == '"' {
			text = unquoted(doc[start:dec.InputOffset()])
			if text == nil {
				kind, n := dec.StackIndex(dec.StackDepth())
				if name := kind == '{' && n%2 == 1; name || dec.StackDepth() == 1 && lastName == "resourceType" {
					text = []byte(tok.String())
				} else {
					// A value with an escape, such as a narrative's
					// <div xmlns=\"…\">, is looked at only to see it
					// is not empty, which it cannot be: unquoting it
					// would copy it for nothing.
					text = escapedValue
				}
			}
		}
		if dec.StackDepth() == 1 && tok.Kind() == '"' && !top.hasResourceType {
			if kind, n := dec.StackIndex(1); kind == '{' && n%2 == 1 {
				lastName = ""
				if string(text) == "resourceType" {
					lastName = "resourceType"
				}
			} else if lastName == "resourceType" {
				top.resourceType, top.hasResourceType = string(text), true
			}
		}
		if fhirNames {
			if err := checkFHIRToken(dec, tok, text, prev); err != nil {
				return top, err
			}
		}
		prev = tok.Kind()
		if dec.StackDepth() == 0 { // the object is closed: nothing may follow
			if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
				return top, refuse(Root, "is followed by more than white space after its closing brace, at byte %d", dec.InputOffset())
			}
			return top, nil
		}
	}
}

// escapedValue stands for the text of a string value that holds an
// escape and is not otherwise looked at: it is not empty.
var escapedValue = []byte("\\")

// unquoted is the text of a JSON string token read from raw (the
// separator and white space before it, then the quoted string): the bytes
// between its quotes when it has no escape, nil when it has one.
func unquoted(raw []byte) []byte {
	i := bytes.IndexByte(raw, '"')
	if i < 0 || len(raw)-i < 2 || raw[len(raw)-1] != '"' {
		return nil
	}
	text := raw[i+1 : len(raw)-1]
	if bytes.IndexByte(text, '\\') >= 0 {
		return nil
	}
	return text
}

// syntaxError turns the JSON decoder's error into an *Error at the path
// where the decoder stopped.
func syntaxError(err error) *Error {
	var serr *jsontext.SyntacticError
	if !errors.As(err, &serr) {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return &Error{Path: Root, Reason: "is not complete JSON: it ends too early", Err: err}
		}
		return &Error{Path: Root, Reason: "is not valid JSON: " + err.Error(), Err: err}
	}
	path := pointerPath(serr.JSONPointer)
	switch {
	case errors.Is(serr.Err, jsontext.ErrDuplicateName):
		return &Error{Path: path, Reason: "is given twice in one object: each member name at most once (a reader would keep either)", Err: err}
	case errors.Is(serr.Err, io.ErrUnexpectedEOF):
		return &Error{Path: Root, Reason: "is not complete JSON: it ends too early, in " + path, Err: err}
	}
	reason := serr.Err.Error()
	if reason == "" {
		reason = err.Error()
	}
	return &Error{Path: path, Reason: "is not valid JSON at byte " + strconv.FormatInt(serr.ByteOffset, 10) + ": " + reason, Err: err}
}

// pointerPath turns a JSON Pointer into a FHIR path:
// /dosageInstruction/0/timing becomes
// MedicationRequest.dosageInstruction[0].timing. A segment of digits is
// taken for an array index: FHIR element names start with a letter.
func pointerPath(p jsontext.Pointer) string {
	var b strings.Builder
	b.WriteString(Root)
	for seg := range p.Tokens() {
		if isIndex(seg) {
			b.WriteString("[" + seg + "]")
		} else {
			b.WriteString("." + seg)
		}
	}
	return b.String()
}

// checkFHIRToken checks a token of a FHIR resource against what FHIR's
// JSON form leaves out: member names that are not element names, and
// empty strings, objects and arrays or nulls (an element without a value
// is absent; null stands only in an array, for a primitive without a
// value beside its extensions).
func checkFHIRToken(dec *jsontext.Decoder, tok jsontext.Token, text []byte, prev jsontext.Kind) *Error {
	kind, n := dec.StackIndex(dec.StackDepth())
	switch tok.Kind() {
	case '"':
		switch {
		case kind == '{' && n%2 == 1:
			if !elementName(text) {
				return refuse(pointerPath(dec.StackPointer()), "is not a FHIR element name: FHIR R4 names start with a lower-case letter (or _ and one) and are case-sensitive")
			}
		case len(text) == 0:
			return refuse(pointerPath(dec.StackPointer()), "is an empty string: FHIR leaves out an element without a value")
		}
	case 'n':
		if kind != '[' {
			return refuse(pointerPath(dec.StackPointer()), "is null: FHIR leaves out an element without a value")
		}
	case '}', ']':
		if prev == '{' || prev == '[' {
			return refuse(pointerPath(dec.StackPointer()), "is empty: FHIR leaves out an element without a value")
		}
	}
	return nil
}

// elementName reports whether name is a FHIR JSON member name: an element
// name ([a-z][A-Za-z0-9]*), or one with "_" before it for a primitive's
// id and extensions.
func elementName(name []byte) bool {
	name = bytes.TrimPrefix(name, []byte("_"))
	if len(name) == 0 || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// checkNumber refuses a JSON number whose value canonicalization would
// change. The returned Error has no path yet.
func checkNumber(lit string) *Error {
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return &Error{Reason: "is " + clip(lit) + ", beyond what a JSON number may hold (an IEEE 754 double)", Err: err}
	}
	out, err := jcs.NumberToJSON(f)
	if err != nil {
		return &Error{Reason: "is " + clip(lit) + ", which canonical JSON cannot write", Err: err}
	}
	if sameValue(lit, out) {
		return nil
	}
	return &Error{Reason: "is " + clip(lit) + ", which canonical JSON (RFC 8785) would write as " + out +
		", a different value: a JSON number holds about 15 significant digits (an IEEE 754 double), so write it with fewer"}
}

// clip keeps a long literal readable in a message.
func clip(lit string) string {
	if len(lit) > 40 {
		return lit[:37] + "..."
	}
	return lit
}

// sameValue reports whether two JSON numbers are the same decimal value.
func sameValue(a, b string) bool {
	an, ad, ae := decimal(a)
	bn, bd, be := decimal(b)
	return an == bn && ad == bd && ae == be
}

// decimal writes a JSON number as sign, significant digits without
// leading or trailing zeros, and the power of ten of the last digit; zero
// is (false, "", 0).
func decimal(lit string) (neg bool, digits string, exp int) {
	if strings.HasPrefix(lit, "-") {
		neg, lit = true, lit[1:]
	}
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		e, err := strconv.Atoi(strings.TrimPrefix(lit[i+1:], "+"))
		if err != nil { // an exponent beyond int: ParseFloat refused it before
			e = 1 << 40
		}
		exp, lit = e, lit[:i]
	}
	intPart, frac, _ := strings.Cut(lit, ".")
	digits = strings.TrimLeft(intPart+frac, "0")
	exp -= len(frac)
	trimmed := strings.TrimRight(digits, "0")
	exp += len(digits) - len(trimmed)
	if trimmed == "" {
		return false, "", 0
	}
	return neg, trimmed, exp
}
