package prescription

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/fhirdata"
	"github.com/telenotary/telenotary/session/signalapi/prescription/prescriptiontest"
)

// sameAsNotary fails t unless canonicalJSON and notary.CanonicalJSON (the
// notary's canonicalization, gowebpki/jcs) give the same bytes for doc,
// and canonicalJSON left doc as it was. It returns the canonical bytes.
func sameAsNotary(t *testing.T, doc []byte) []byte {
	t.Helper()
	in := bytes.Clone(doc)
	want, err := notary.CanonicalJSON(doc)
	if err != nil {
		t.Fatalf("notary.CanonicalJSON(%.80q): %v", doc, err)
	}
	got, err := canonicalJSON(doc)
	if err != nil {
		t.Fatalf("canonicalJSON(%.80q): %v", doc, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("canonicalJSON(%.80q)\n= %q\nnotary.CanonicalJSON gives\n  %q", doc, got, want)
	}
	if !bytes.Equal(doc, in) {
		t.Fatalf("canonicalJSON changed its input %.80q to %.80q", in, doc)
	}
	return got
}

// TestCanonicalRFC8785: canonicalJSON gives RFC 8785's own examples (the
// document of its section 3.2.2, the sorting of section 3.2.3, the
// numbers of its Appendix B) as the RFC writes them, and as the notary
// does.
func TestCanonicalRFC8785(t *testing.T) {
	cases := []struct{ in, want string }{
		{ // section 3.2.2
			"{\n  \"numbers\": [333333333.33333329, 1E30, 4.50,\n              2e-3, 0.000000000000000000000000001],\n" +
				"  \"string\": \"\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\\"\\/\",\n  \"literals\": [null, true, false]\n}",
			`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`,
		},
		{ // section 3.2.3: members sorted by their names' UTF-16 code units
			`{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One",` +
				`"\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}`,
			"{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"\u00f6\":\"Latin Small Letter O With Diaeresis\"," +
				"\"\u20ac\":\"Euro Sign\",\"\U0001F600\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}",
		},
		{ // escapes: only the control characters, quote and backslash; U+007F, U+2028 and </script> as they are
			`{"a":"\u007f\u2028</script>\b\f\t\u0001\u001F\u00e9\ud83d\ude02", "b" : { "z":[ ], "y":{}, "x":-0, "w":1.0E+2 }}`,
			"{\"a\":\"\u007f\u2028</script>\\b\\f\\t\\u0001\\u001f\u00e9\U0001F602\",\"b\":{\"w\":100,\"x\":0,\"y\":{},\"z\":[]}}",
		},
		{`"only a string"`, `"only a string"`},
		{` [ 1 , "two" , null ] `, `[1,"two",null]`},
	}
	for _, c := range cases {
		if got := sameAsNotary(t, []byte(c.in)); string(got) != c.want {
			t.Errorf("canonicalJSON(%.60q) = %s, want %s", c.in, got, c.want)
		}
	}

	numbers := []struct {
		bits uint64
		want string
	}{ // Appendix B
		{0x0000000000000000, "0"},
		{0x8000000000000000, "0"}, // minus zero
		{0x0000000000000001, "5e-324"},
		{0x8000000000000001, "-5e-324"},
		{0x7fefffffffffffff, "1.7976931348623157e+308"},
		{0xffefffffffffffff, "-1.7976931348623157e+308"},
		{0x4340000000000000, "9007199254740992"},
		{0xc340000000000000, "-9007199254740992"},
		{0x4430000000000000, "295147905179352830000"},
		{0x44b52d02c7e14af5, "9.999999999999997e+22"},
		{0x44b52d02c7e14af6, "1e+23"},
		{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
		{0x444b1ae4d6e2ef4e, "999999999999999700000"},
		{0x444b1ae4d6e2ef4f, "999999999999999900000"},
		{0x444b1ae4d6e2ef50, "1e+21"},
		{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
		{0x3eb0c6f7a0b5ed8d, "0.000001"},
		{0x41b3de4355555553, "333333333.3333332"},
		{0x41b3de4355555554, "333333333.33333325"},
		{0x41b3de4355555555, "333333333.3333333"},
		{0x41b3de4355555556, "333333333.3333334"},
		{0x41b3de4355555557, "333333333.33333343"},
		{0xbecbf647612f3696, "-0.0000033333333333333333"},
		{0x43143ff3c1cb0959, "1424953923781206.2"},
	}
	for _, n := range numbers {
		f := math.Float64frombits(n.bits)
		for _, lit := range []string{strconv.FormatFloat(f, 'g', -1, 64), strconv.FormatFloat(f, 'E', 20, 64)} {
			if got := sameAsNotary(t, []byte("["+lit+"]")); string(got) != "["+n.want+"]" {
				t.Errorf("%016x written %s: %s, want [%s]", n.bits, lit, got, n.want)
			}
		}
	}
}

// TestCanonicalNumbers: canonicalJSON writes numbers as the notary does,
// for doubles of every exponent and for integers and decimals of every
// length, written in several ways.
func TestCanonicalNumbers(t *testing.T) {
	r := rand.New(rand.NewPCG(8785, 1))
	var doc bytes.Buffer
	flush := func() {
		doc.WriteByte(']')
		sameAsNotary(t, doc.Bytes())
		doc.Reset()
	}
	for i := range 200_000 {
		if doc.Len() == 0 {
			doc.WriteByte('[')
		} else {
			doc.WriteByte(',')
		}
		var lit string
		switch i % 4 {
		case 0: // any finite double
			f := math.Float64frombits(r.Uint64())
			for math.IsNaN(f) || math.IsInf(f, 0) {
				f = math.Float64frombits(r.Uint64())
			}
			lit = strconv.FormatFloat(f, 'g', -1, 64)
		case 1: // an integer of up to 25 digits
			lit = strconv.FormatUint(r.Uint64(), 10)
			lit = lit[:1+r.IntN(len(lit))]
			if r.IntN(2) == 0 {
				lit += lit[:r.IntN(len(lit))]
			}
		case 2: // a decimal with up to 17 significant digits and trailing zeros
			lit = strconv.FormatInt(r.Int64N(1e17)-5e16, 10) + "." + strconv.Itoa(r.IntN(1000)) + "000"[:r.IntN(4)]
		case 3: // an exponent form
			lit = strconv.FormatInt(r.Int64N(2e6)-1e6, 10) + "eE"[r.IntN(2):][:1] + strconv.Itoa(r.IntN(600)-300)
		}
		doc.WriteString(lit)
		if doc.Len() > 32<<10 {
			flush()
		}
	}
	flush()
}

// TestCanonicalHL7: the HL7 examples and the package's test documents
// that checkJSON accepts canonicalize as the notary does.
func TestCanonicalHL7(t *testing.T) {
	_, docs := fhirdata.MedicationRequests()
	for _, c := range append(prescriptiontest.Invalid(), prescriptiontest.Valid()...) {
		docs = append(docs, c.Doc)
	}
	n := 0
	for _, d := range docs {
		if checkJSON(d, false) == nil {
			sameAsNotary(t, d)
			n++
		}
	}
	if n < 30 {
		t.Fatalf("only %d documents checked", n)
	}
}

// FuzzCanonicalJSON: on every document checkJSON accepts, canonicalJSON
// gives the bytes notary.CanonicalJSON (gowebpki/jcs) gives, and leaves
// the document as it was.
func FuzzCanonicalJSON(f *testing.F) {
	_, docs := fhirdata.MedicationRequests()
	for _, d := range docs {
		f.Add(d)
	}
	for _, c := range append(prescriptiontest.Invalid(), prescriptiontest.Valid()...) {
		f.Add(c.Doc)
	}
	for _, s := range []string{`{"a":1}`, `{"a":2.50,"B":[1E3,-0,0.1e-6,1e21]}`, `{"\u20ac":1,"\r":2,"\ufb33":3,"1":4,"\ud83d\ude00":5,"\u0080":6,"\u00f6":7}`,
		`{"a":"\u007f\u2028\/\b\f\n\r\t\u0001\u001F\"\\"}`, `{"z":{"b":[{"d":1,"c":2}],"a":null},"y":true}`, `{"a":123456789012345}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if checkJSON(data, false) != nil {
			return
		}
		sameAsNotary(t, data)
	})
}

// TestScanResourceType: scanJSON finds the top-level resourceType when it
// is a string, however spelled and wherever among the members, and not
// one of a nested object or a member's value.
func TestScanResourceType(t *testing.T) {
	cases := []struct {
		doc  string
		want string
		ok   bool
	}{
		{`{"resourceType":"MedicationRequest"}`, "MedicationRequest", true},
		{"{ \"id\" : \"x\" ,\n \"resourceType\" :\t\"Patient\" }", "Patient", true},
		{`{"contained":[{"resourceType":"Patient"}],"subject":{"resourceType":"Group"},"resourceType":"MedicationRequest"}`, "MedicationRequest", true},
		{`{"resourceType":"Medication\u0052equest"}`, "MedicationRequest", true},
		{`{"resource\u0054ype":"Patient"}`, "Patient", true},
		{`{"resourceType":""}`, "", true},
		{`{"id":"resourceType","text":"Patient"}`, "", false},
		{`{"resourceType":1,"id":"Patient"}`, "", false},
		{`{"resourceType":{"a":"Patient"},"id":"x"}`, "", false},
		{`{"resourceType":["Patient"],"id":"x"}`, "", false},
		{`{"resourceType":null,"id":"Patient"}`, "", false},
		{`{"resourcetype":"Patient"}`, "", false},
		{`{}`, "", false},
	}
	for _, c := range cases {
		top, err := scanJSON([]byte(c.doc), false)
		if err != nil {
			t.Errorf("%s: %v", c.doc, err)
			continue
		}
		if top.resourceType != c.want || top.hasResourceType != c.ok {
			t.Errorf("%s: resourceType %q, %v; want %q, %v", c.doc, top.resourceType, top.hasResourceType, c.want, c.ok)
		}
	}
}

// TestScanEscapes: scanJSON reads member names and values that hold
// escapes by what they stand for: an escaped name is checked as the name
// it spells, and a value with an escape is not empty.
func TestScanEscapes(t *testing.T) {
	cases := []struct {
		doc  string
		path string // of the refusal, "" for none
	}{
		{`{"resourceType":"MedicationRequest","text":{"div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}}`, ""},
		{`{"a":"\u0041","b":["\n"]}`, ""},
		{`{"a\u0062":"x"}`, ""},
		{`{"\u0041b":"x"}`, Root + ".Ab"},
		{`{"a":{"\u005fb":"x","_\u0043":1}}`, Root + ".a._C"},
		{`{"a":["x",""]}`, Root + ".a[1]"},
		{`{"a":"","b":"\u0041"}`, Root + ".a"},
	}
	for _, c := range cases {
		_, err := scanJSON([]byte(c.doc), true)
		var path string
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%s: %v is not an *Error", c.doc, err)
			}
			path = e.Path
		}
		if path != c.path {
			t.Errorf("%s: refused at %q (%v), want %q", c.doc, path, err, c.path)
		}
	}
}
