package notaryapi

import (
	"testing"

	"github.com/telenotary/telenotary/cluster/httpapi"
)

// TestParseEntryFast checks that the fast reader of entries agrees with
// the strict decoder on what it accepts, and leaves the rest to it.
func TestParseEntryFast(t *testing.T) {
	const c = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{`{"kind":"prescription","commitment":"` + c + `"}`, true},
		{` { "commitment" : "` + c + `" , "kind" : "consent" , "link" : "` + c + `" } `, true},
		{`{}`, true}, // the strict checks after it name the missing kind
		{`{"kind":"prescription","kind":"consent","commitment":"` + c + `"}`, false},
		{`{"kind":"prescription","colour":"red"}`, false},
		{`{"kind":"pre\u0073cription","commitment":"` + c + `"}`, false},
		{`{"kind":3,"commitment":"` + c + `"}`, false},
		{`{"kind":"prescription","commitment":"` + c + `",}`, false},
		{`{"kind":"prescription""commitment":"` + c + `"}`, false},
		{`{"kind":"prescription","commitment":"` + c + `"} x`, false},
		{`["kind"]`, false},
	} {
		w, ok := parseEntryFast([]byte(tc.body))
		if ok != tc.ok {
			t.Errorf("%s: fast path %v, want %v", tc.body, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		var strict wireEntry
		if err := httpapi.DecodeJSON([]byte(tc.body), &strict); err != nil {
			t.Errorf("%s: the fast path accepts what the strict decoder refuses: %v", tc.body, err)
			continue
		}
		fe, ferr := w.parse("")
		se, serr := strict.parse("")
		if (ferr == nil) != (serr == nil) || (ferr == nil && fe != se) {
			t.Errorf("%s: fast %+v %v, strict %+v %v", tc.body, fe, ferr, se, serr)
		}
	}
}

// FuzzEntry checks the fast entry reader against the strict decoder on
// arbitrary bodies: whatever the fast path accepts, the strict decoder
// accepts with the same meaning.
func FuzzEntry(f *testing.F) {
	f.Add([]byte(`{"kind":"prescription","commitment":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}`))
	f.Add([]byte(`{"kind":"consent","commitment":"ASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4mrze8=","link":"x"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		w, ok := parseEntryFast(body)
		if !ok {
			return
		}
		var strict wireEntry
		if err := httpapi.DecodeJSON(body, &strict); err != nil {
			t.Fatalf("fast path accepted %q, strict decoder refuses: %v", body, err)
		}
		fe, ferr := w.parse("")
		se, serr := strict.parse("")
		if (ferr == nil) != (serr == nil) || (ferr == nil && fe != se) {
			t.Fatalf("%q: fast %+v %v, strict %+v %v", body, fe, ferr, se, serr)
		}
	})
}
