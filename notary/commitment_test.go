package notary_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/telenotary/telenotary/notary"
)

// jsonObject is a decoded JSON object that keeps its members in document
// order, so a re-serialization can reorder them deliberately.
type jsonObject []jsonMember

type jsonMember struct {
	key   string
	value any
}

// decodeOrdered decodes a JSON document into jsonObject, []any, string,
// json.Number (its text as written), bool and nil values.
func decodeOrdered(t testing.TB, doc []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		t.Fatalf("decode: data after the document (%v)", err)
	}
	return v
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	switch d {
	case '{':
		obj := jsonObject{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			obj = append(obj, jsonMember{k.(string), v})
		}
		_, err := dec.Token()
		return obj, err
	case '[':
		arr := []any{}
		for dec.More() {
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err := dec.Token()
		return arr, err
	}
	return nil, fmt.Errorf("unexpected %v", d)
}

// respeller writes a decoded JSON value back out. Its zero value writes
// compact JSON in document order; with rng set, it spells the same value
// differently each time as its fields ask.
type respeller struct {
	rng     *rand.Rand
	order   string  // object member order: "document", "reverse" or "shuffle"
	space   bool    // random whitespace between tokens
	numbers bool    // respell numbers to other texts of the same value
	escape  float64 // probability of writing a character as \uXXXX
	b       bytes.Buffer
}

func (w *respeller) spell(t testing.TB, v any) []byte {
	t.Helper()
	w.b.Reset()
	w.ws()
	w.value(t, v)
	w.ws()
	return bytes.Clone(w.b.Bytes())
}

func (w *respeller) ws() {
	if !w.space {
		return
	}
	for range w.rng.IntN(4) {
		w.b.WriteByte(" \t\n\r"[w.rng.IntN(4)])
	}
}

func (w *respeller) value(t testing.TB, v any) {
	t.Helper()
	switch v := v.(type) {
	case jsonObject:
		order := make([]int, len(v))
		for i := range order {
			order[i] = i
		}
		switch w.order {
		case "reverse":
			slices.Reverse(order)
		case "shuffle":
			w.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		w.b.WriteByte('{')
		for n, i := range order {
			if n > 0 {
				w.ws()
				w.b.WriteByte(',')
			}
			w.ws()
			w.str(v[i].key)
			w.ws()
			w.b.WriteByte(':')
			w.ws()
			w.value(t, v[i].value)
			w.ws()
		}
		w.b.WriteByte('}')
	case []any:
		w.b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				w.ws()
				w.b.WriteByte(',')
			}
			w.ws()
			w.value(t, e)
			w.ws()
		}
		w.b.WriteByte(']')
	case string:
		w.str(v)
	case json.Number:
		if !w.numbers {
			w.b.WriteString(string(v))
			return
		}
		s := respellNumber(w.rng, string(v))
		// The respelling must be the same IEEE double, or this test is wrong.
		a, errA := strconv.ParseFloat(string(v), 64)
		b, errB := strconv.ParseFloat(s, 64)
		if errA != nil || errB != nil || math.Float64bits(a) != math.Float64bits(b) {
			t.Fatalf("respelled %s as %s: not the same double (%v, %v)", v, s, errA, errB)
		}
		w.b.WriteString(s)
	case bool:
		w.b.WriteString(strconv.FormatBool(v))
	case nil:
		w.b.WriteString("null")
	default:
		t.Fatalf("unexpected JSON value %T", v)
	}
}

var shortEscapes = map[rune]string{'"': `\"`, '\\': `\\`, '\b': `\b`, '\f': `\f`, '\n': `\n`, '\r': `\r`, '\t': `\t`, '/': `\/`}

func (w *respeller) str(s string) {
	w.b.WriteByte('"')
	for _, r := range s {
		mustEscape := r == '"' || r == '\\' || r < 0x20
		switch {
		case (mustEscape || r == '/') && shortEscapes[r] != "" && w.rng != nil && w.rng.IntN(2) == 0:
			w.b.WriteString(shortEscapes[r])
		case mustEscape && w.rng == nil && shortEscapes[r] != "":
			w.b.WriteString(shortEscapes[r])
		case mustEscape || w.rng != nil && w.rng.Float64() < w.escape:
			w.uescape(r)
		default:
			w.b.WriteRune(r)
		}
	}
	w.b.WriteByte('"')
}

// uescape writes r as \uXXXX, or as a UTF-16 surrogate pair beyond the BMP.
func (w *respeller) uescape(r rune) {
	format := `\u%04x`
	if w.rng != nil && w.rng.IntN(2) == 0 {
		format = `\u%04X`
	}
	if r > 0xffff {
		r -= 0x10000
		fmt.Fprintf(&w.b, format, 0xd800+(r>>10))
		fmt.Fprintf(&w.b, format, 0xdc00+(r&0x3ff))
		return
	}
	fmt.Fprintf(&w.b, format, r)
}

var numberText = regexp.MustCompile(`^(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?$`)

// respellNumber returns another JSON spelling of the exact decimal value of
// the JSON number s, which therefore parses to the same IEEE double: 5 may
// become 5.0, 5e0, 50e-1, 0.5E+1 or 0.05e02.
func respellNumber(rng *rand.Rand, s string) string {
	m := numberText.FindStringSubmatch(s)
	if m == nil {
		panic("not a JSON number: " + s)
	}
	sign, digits := m[1], m[2]+m[3]
	exp := -len(m[3]) // the value is digits × 10^exp
	if m[4] != "" {
		e, err := strconv.Atoi(m[4])
		if err != nil {
			panic(err)
		}
		exp += e
	}
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		digits = "0"
	}
	k := rng.IntN(3) // trailing zeros: digits×10^k × 10^(exp-k)
	digits += strings.Repeat("0", k)
	exp -= k
	var p int // the decimal point goes after digits[:p]
	if digits[0] == '0' || rng.IntN(3) == 0 {
		if digits[0] != '0' {
			digits = "0" + digits
		}
		p = 1
	} else {
		p = 1 + rng.IntN(len(digits))
	}
	mant := digits[:p]
	if p < len(digits) {
		mant += "." + digits[p:]
	}
	x := exp + len(digits) - p // mant × 10^x = digits × 10^exp
	if x == 0 && rng.IntN(2) == 0 {
		return sign + mant
	}
	e := string("eE"[rng.IntN(2)])
	if x < 0 {
		e += "-"
	} else if rng.IntN(2) == 0 {
		e += "+"
	}
	if rng.IntN(3) == 0 {
		e += "0"
	}
	return sign + mant + e + strconv.Itoa(max(x, -x))
}

// extraDocs are documents beyond the FHIR examples for the respelling
// tests: non-ASCII and non-BMP text, control characters and edge numbers.
var extraDocs = map[string]string{
	"text": `{"note":"Prise 2×/jour — 💊 avec repas, ne pas dépasser 4 g. Ω≈ç√ 𝄞 \u0001\u001f\t\"quoted\" back\\slash /","ключ":"значение","😀":"","":"empty key"}`,
	"numbers": `{"n":[0,-0,1,-1,0.5,-0.25,1e21,1e-7,123456789012345680000,5e-324,1.7976931348623157e308,0.1,3.14159,` +
		`-2.5e-3,100,1000000,9007199254740993,4.35,1E2,0.000001],"t":true,"f":false,"z":null}`,
}

func TestCanonicalFHIR(t *testing.T) {
	salt := notary.Salt{1}
	for name, doc := range fhirDocs(t) {
		t.Run(name, func(t *testing.T) {
			canon, err := notary.CanonicalJSON(doc)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(canon) || bytes.Equal(canon, doc) || len(canon) >= len(doc) {
				t.Fatalf("canonical form of %d bytes is not a compacted JSON document of the %d input bytes", len(canon), len(doc))
			}
			again, err := notary.CanonicalJSON(canon)
			if err != nil || !bytes.Equal(again, canon) {
				t.Fatalf("canonicalization is not idempotent: %v", err)
			}
			c := notary.Commit(salt, canon)
			if c.IsZero() || c != notary.Commit(salt, again) {
				t.Fatalf("commitment %s is zero or not deterministic", c)
			}
		})
	}
}

// TestRespellingsCommitAlike writes every document over and over with
// reordered keys, random whitespace, respelled numbers and escaped strings,
// and checks that each spelling has the same canonical bytes and commitment.
func TestRespellingsCommitAlike(t *testing.T) {
	docs := fhirDocs(t)
	for name, doc := range extraDocs {
		docs[name] = []byte(doc)
	}
	names := slices.Sorted(maps.Keys(docs))
	salt := notary.Salt{2}
	for i, name := range names {
		doc := docs[name]
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 0x7e1e))
			want, err := notary.CanonicalJSON(doc)
			if err != nil {
				t.Fatal(err)
			}
			wantC := notary.Commit(salt, want)
			tree := decodeOrdered(t, doc)
			variants := []respeller{
				{order: "reverse"},
				{order: "reverse", space: true, numbers: true, escape: 0.3},
				{order: "reverse", space: true, numbers: true, escape: 1},
				{order: "shuffle", space: true, numbers: true, escape: 0},
			}
			for range 6 {
				variants = append(variants, respeller{order: []string{"reverse", "shuffle"}[rng.IntN(2)], space: true, numbers: true, escape: rng.Float64()})
			}
			for v := range variants {
				w := &variants[v]
				w.rng = rng
				spelled := w.spell(t, tree)
				if bytes.Equal(spelled, doc) || bytes.Equal(spelled, want) {
					t.Fatalf("variant %d is not a different spelling", v)
				}
				got, err := notary.CanonicalJSON(spelled)
				if err != nil {
					t.Fatalf("variant %d (%+v): %v\n%s", v, *w, err, abbreviate(spelled))
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("variant %d (order %s, escape %.2f) canonicalizes differently:\n got %s\nwant %s\nfrom %s",
						v, w.order, w.escape, abbreviate(got), abbreviate(want), abbreviate(spelled))
				}
				if c := notary.Commit(salt, got); c != wantC {
					t.Fatalf("variant %d commits to %s, want %s", v, c, wantC)
				}
			}
		})
	}
}

func abbreviate(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "…"
	}
	return string(b)
}

func TestCanonicalSpellings(t *testing.T) {
	for _, tc := range []struct {
		name      string
		spellings []string
		want      string
	}{
		{"number one", []string{"1", "1.0", "1e0", "10e-1", "0.1E1", "1E+0", "1.000e00", "100e-2"}, "1"},
		{"number in an object", []string{`{"n":1.0}`, `{"n":1e0}`, `{"n":1}`, `{"n":10e-1}`}, `{"n":1}`},
		{"fractions", []string{"0.5", "5e-1", "0.50", "50E-2", "0.05e1"}, "0.5"},
		{"negative zero", []string{"0", "-0", "0.0", "-0.0e5", "0e-3"}, "0"},
		{"large and small numbers", []string{"[1e21,1e-7,123e18]", "[1000000000000000000000,0.0000001,1.23e20]"}, "[1e+21,1e-7,123000000000000000000]"},
		{"nearest double", []string{"0.1", "0.1000000000000000055511151231257827", "1e-1"}, "0.1"},
		{"escaped e acute", []string{`"\u00e9"`, `"é"`, `"\u00E9"`}, `"é"`},
		{"non-BMP character", []string{`"\ud83d\udc8a"`, `"💊"`, `"\uD83D\uDC8A"`}, `"💊"`},
		{"short escapes", []string{`"\/\"\\\b\f\n\r\t"`, `"/\u0022\u005c\u0008\u000c\u000a\u000d\u0009"`}, `"/\"\\\b\f\n\r\t"`},
		{"control characters", []string{`"\u0001\u001F"`, `"\u0001\u001f"`}, `"\u0001\u001f"`},
		{"key order", []string{`{"b":1,"a":2,"c":{"z":[],"y":null}}`, `{"c":{"y":null,"z":[]},"a":2,"b":1}`}, `{"a":2,"b":1,"c":{"y":null,"z":[]}}`},
		{"escaped keys", []string{`{"\u0061":1}`, `{"a":1}`}, `{"a":1}`},
		{"keys sort by UTF-16 code units", []string{`{"\ue000":1,"😀":2}`, `{"😀":2,"\ue000":1}`}, "{\"😀\":2,\"\ue000\":1}"},
		{"whitespace", []string{"{\"a\":[1,2,true]}", " {\n\t\"a\" :\r\n[ 1 ,\t2, true ]  }\n\n", "\t{\"a\":[1\n,2,true]}"}, `{"a":[1,2,true]}`},
		{"array order is kept", []string{"[2,1]", " [ 2 , 1 ] "}, "[2,1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range tc.spellings {
				got, err := notary.CanonicalJSON([]byte(s))
				if err != nil {
					t.Fatalf("CanonicalJSON(%q): %v", s, err)
				}
				if string(got) != tc.want {
					t.Fatalf("CanonicalJSON(%q) = %s, want %s", s, got, tc.want)
				}
				if notary.Commit(notary.Salt{}, got) != notary.Commit(notary.Salt{}, []byte(tc.want)) {
					t.Fatalf("commitments differ")
				}
			}
		})
	}
}

// valueSlots returns a pointer to every value in the tree at *root, root
// first, in document order.
func valueSlots(root *any) []*any {
	out := []*any{root}
	switch v := (*root).(type) {
	case jsonObject:
		for i := range v {
			out = append(out, valueSlots(&v[i].value)...)
		}
	case []any:
		for i := range v {
			out = append(out, valueSlots(&v[i])...)
		}
	}
	return out
}

// distinctPair returns two indexes of elements of a with different
// contents, if there are any.
func distinctPair(t testing.TB, rng *rand.Rand, a []any) (int, int, bool) {
	t.Helper()
	var pairs [][2]int
	for i := range a {
		for j := i + 1; j < len(a); j++ {
			var w respeller
			if !bytes.Equal(w.spell(t, a[i]), w.spell(t, a[j])) {
				pairs = append(pairs, [2]int{i, j})
			}
		}
	}
	if len(pairs) == 0 {
		return 0, 0, false
	}
	p := pairs[rng.IntN(len(pairs))]
	return p[0], p[1], true
}

// TestChangesChangeTheCommitment changes each document in many small ways
// and checks that every change gives another commitment.
func TestChangesChangeTheCommitment(t *testing.T) {
	type mutation struct {
		name    string
		applies func(t testing.TB, v any) bool
		apply   func(t testing.TB, rng *rand.Rand, slot *any)
	}
	mutations := []mutation{
		{"change a string character",
			func(_ testing.TB, v any) bool { s, ok := v.(string); return ok && s != "" },
			func(_ testing.TB, rng *rand.Rand, slot *any) {
				r := []rune((*slot).(string))
				i := rng.IntN(len(r))
				if r[i] == 'x' {
					r[i] = 'y'
				} else {
					r[i] = 'x'
				}
				*slot = string(r)
			}},
		{"change a number",
			func(_ testing.TB, v any) bool { _, ok := v.(json.Number); return ok },
			func(_ testing.TB, rng *rand.Rand, slot *any) {
				f, err := (*slot).(json.Number).Float64()
				if err != nil {
					panic(err)
				}
				delta := []float64{1, -1, 0.5, 1e-3}[rng.IntN(4)]
				if f+delta == f {
					delta = f
				}
				*slot = json.Number(strconv.FormatFloat(f+delta, 'g', -1, 64))
			}},
		{"number to string",
			func(_ testing.TB, v any) bool { _, ok := v.(json.Number); return ok },
			func(_ testing.TB, _ *rand.Rand, slot *any) { *slot = string((*slot).(json.Number)) }},
		{"flip a boolean",
			func(_ testing.TB, v any) bool { _, ok := v.(bool); return ok },
			func(_ testing.TB, _ *rand.Rand, slot *any) { *slot = !(*slot).(bool) }},
		{"remove a key",
			func(_ testing.TB, v any) bool { o, ok := v.(jsonObject); return ok && len(o) > 0 },
			func(_ testing.TB, rng *rand.Rand, slot *any) {
				o := (*slot).(jsonObject)
				i := rng.IntN(len(o))
				*slot = slices.Delete(slices.Clone(o), i, i+1)
			}},
		{"add a key",
			func(_ testing.TB, v any) bool { _, ok := v.(jsonObject); return ok },
			func(_ testing.TB, rng *rand.Rand, slot *any) {
				added := []any{"x", json.Number("0"), nil, jsonObject{}, []any{}}[rng.IntN(5)]
				*slot = append(slices.Clone((*slot).(jsonObject)), jsonMember{"x-notary-test", added})
			}},
		{"rename a key",
			func(_ testing.TB, v any) bool { o, ok := v.(jsonObject); return ok && len(o) > 0 },
			func(_ testing.TB, rng *rand.Rand, slot *any) {
				o := slices.Clone((*slot).(jsonObject))
				i := rng.IntN(len(o))
				o[i].key += "_"
				*slot = o
			}},
		{"swap two array elements",
			func(t testing.TB, v any) bool {
				a, ok := v.([]any)
				if !ok {
					return false
				}
				_, _, ok = distinctPair(t, rand.New(rand.NewPCG(0, 0)), a)
				return ok
			},
			func(t testing.TB, rng *rand.Rand, slot *any) {
				a := (*slot).([]any)
				i, j, _ := distinctPair(t, rng, a)
				a[i], a[j] = a[j], a[i]
			}},
	}
	required := []string{"change a string character", "change a number", "remove a key", "add a key", "swap two array elements"}

	docs := fhirDocs(t)
	names := slices.Sorted(maps.Keys(docs))
	salt := notary.Salt{3}
	tried := make(map[string]int)
	for d, name := range names {
		doc := docs[name]
		canon, err := notary.CanonicalJSON(doc)
		if err != nil {
			t.Fatal(err)
		}
		base := notary.Commit(salt, canon)
		rng := rand.New(rand.NewPCG(uint64(d), 0xc0ffee))
		orig := decodeOrdered(t, doc)
		for _, m := range mutations {
			t.Run(name+"/"+m.name, func(t *testing.T) {
				var sites []int
				for i, s := range valueSlots(&orig) {
					if m.applies(t, *s) {
						sites = append(sites, i)
					}
				}
				for _, k := range rng.Perm(len(sites))[:min(5, len(sites))] {
					tree := decodeOrdered(t, doc)
					m.apply(t, rng, valueSlots(&tree)[sites[k]])
					var w respeller
					mutated := w.spell(t, tree)
					got, err := notary.CanonicalJSON(mutated)
					if err != nil {
						t.Fatalf("site %d: %v", sites[k], err)
					}
					if bytes.Equal(got, canon) {
						t.Fatalf("site %d: the mutation did not change the canonical form", sites[k])
					}
					if notary.Commit(salt, got) == base {
						t.Fatalf("site %d: changed document has the same commitment %s", sites[k], base)
					}
					tried[m.name]++
				}
			})
		}
	}
	for _, m := range required {
		if tried[m] == 0 {
			t.Errorf("mutation %q applied nowhere", m)
		}
	}
	t.Logf("mutations per kind: %v", tried)
}

func TestSaltChangesTheCommitment(t *testing.T) {
	salts := []notary.Salt{{}, {0: 1}, {31: 0x80}, notary.NewSalt(), notary.NewSalt()}
	for name, doc := range fhirDocs(t) {
		t.Run(name, func(t *testing.T) {
			canon, err := notary.CanonicalJSON(doc)
			if err != nil {
				t.Fatal(err)
			}
			seen := make(map[notary.Commitment]int)
			for i, s := range salts {
				c := notary.Commit(s, canon)
				if j, dup := seen[c]; dup {
					t.Fatalf("salts %d and %d give the same commitment %s", j, i, c)
				}
				seen[c] = i
			}
		})
	}
}

func TestCanonicalRefuses(t *testing.T) {
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	bigString := `"` + strings.Repeat("a", notary.MaxDocumentSize-2) + `"`
	// Under MaxDocumentSize in, over it out: each 1e20 becomes 21 digits.
	expands := "[" + strings.Repeat("1e20,", notary.MaxDocumentSize/5-1) + "1]"
	for _, tc := range []struct {
		name string
		doc  string
	}{
		{"empty", ""},
		{"only whitespace", " \n"},
		{"unclosed object", `{"a":1`},
		{"trailing comma", `{"a":1,}`},
		{"missing colon", `{"a" 1}`},
		{"missing comma", `[1 2]`},
		{"bare word", `tru`},
		{"single quotes", `{'a':1}`},
		{"leading zero", `[01]`},
		{"NaN", `{"a":NaN}`},
		{"trailing data", `{"a":1} {}`},
		{"bad escape", `"\x41"`},
		{"raw control character", "\"a\x01b\""},
		{"number out of range", `[1e400]`},
		{"lone high surrogate", `"\ud83d"`},
		{"lone low surrogate", `"\udc8a"`},
		{"reversed surrogates", `"\udc8a\ud83d"`},
		{"invalid UTF-8 byte", "{\"a\":\"\xff\"}"},
		{"truncated UTF-8", "{\"a\":\"caf\xc3\"}"},
		{"overlong UTF-8", "{\"a\":\"\xc0\xaf\"}"},
		{"UTF-8 encoded surrogate", "{\"a\":\"\xed\xa0\x80\"}"},
		{"invalid UTF-8 in a key", "{\"\xfe\":1}"},
		{"duplicate keys", `{"a":1,"a":2}`},
		{"duplicate keys with equal values", `{"a":1,"b":2,"a":1}`},
		{"duplicate nested keys", `{"x":[{"k":{"a":1,"a":1}}]}`},
		{"duplicate keys spelled differently", `{"é":1,"\u00e9":2}`},
		{"over MaxDocumentSize", bigString + " "},
		{"over MaxDocumentSize once canonical", expands},
		{"nested deeper than encoding/json allows", deep},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := notary.CanonicalJSON([]byte(tc.doc))
			if !errors.Is(err, notary.ErrMalformed) {
				t.Fatalf("CanonicalJSON: %v (%d bytes out), want ErrMalformed", err, len(got))
			}
			if got != nil {
				t.Fatalf("CanonicalJSON returned %d bytes with its error", len(got))
			}
		})
	}
	// Just inside the limits.
	for _, tc := range []struct {
		name string
		doc  string
	}{
		{"exactly MaxDocumentSize", bigString},
		{"nested 1000 deep", strings.Repeat("[", 1000) + strings.Repeat("]", 1000)},
		{"expands to under MaxDocumentSize", "[" + strings.Repeat("1e20,", 1000) + "1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := notary.CanonicalJSON([]byte(tc.doc)); err != nil {
				t.Fatalf("CanonicalJSON: %v", err)
			}
		})
	}
	if len(bigString) != notary.MaxDocumentSize || !utf8.ValidString(bigString) {
		t.Fatalf("test document is %d bytes", len(bigString))
	}
}

// TestCommitVector checks Commit against SHA-256 over the documented
// concatenation "telenotary/commit/v1" || 0x00 || salt || document.
func TestCommitVector(t *testing.T) {
	var salt notary.Salt
	for i := range salt {
		salt[i] = byte(i)
	}
	doc := []byte(`{"resourceType":"MedicationRequest","status":"active"}`)
	var msg []byte
	msg = append(msg, "telenotary/commit/v1"...)
	msg = append(msg, 0x00)
	for i := range 32 {
		msg = append(msg, byte(i))
	}
	msg = append(msg, doc...)
	sum := sha256.Sum256(msg)
	want := hex.EncodeToString(sum[:])
	// The same digest, written down once, so a change on both sides is caught.
	const fixed = "99f7c7da8523c01886a675c45743a502ec6a3f69a964aaabcff8fd030d510d60"
	for _, tc := range []struct {
		name string
		want string
	}{
		{"computed", want},
		{"written down", fixed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := notary.Commit(salt, doc)
			if c.String() != tc.want {
				t.Fatalf("Commit = %s, want %s", c, tc.want)
			}
			text, err := c.MarshalText()
			if err != nil || string(text) != tc.want {
				t.Fatalf("MarshalText = %s, %v", text, err)
			}
			back, err := notary.ParseCommitment(tc.want)
			if err != nil || back != c {
				t.Fatalf("ParseCommitment = %s, %v", back, err)
			}
		})
	}
}
