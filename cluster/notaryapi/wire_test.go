package notaryapi

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/notary"
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

// splitSample is a batch response with receipts whose strings need
// escapes (a quote and braces in the origin, newlines in the note).
func splitSample() BatchResponse {
	var resp BatchResponse
	for i := range 3 {
		r := &notary.Receipt{
			Origin:         `example.org/log"a{b}[c]"\`,
			Index:          uint64(40 + i),
			Leaf:           notary.Leaf{Kind: notary.KindPrescription, Timestamp: 1_700_000_000_000 + int64(i)},
			InclusionProof: []notary.Hash{{1}, {2, 3}},
			Checkpoint:     []byte("example.org/log\"a{b}[c]\"\\\n43\nroot=\n\n— node-1 sig}\n"),
		}
		r.Leaf.Commitment[0], r.Leaf.Commitment[31] = byte(i+1), 0xee
		if i == 1 {
			r.Leaf.Link[5] = 9
		}
		resp.Receipts = append(resp.Receipts, r)
	}
	resp.FirstNew = 41
	return resp
}

// TestSplitBatchResponse: a batch answer as a node writes it splits into
// each receipt's own bytes, index and commitment; spelled otherwise, it is
// decoded and written again, to the same bytes.
func TestSplitBatchResponse(t *testing.T) {
	resp := splitSample()
	body, err := resp.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	pretty, err := json.MarshalIndent(struct {
		Receipts []*notary.Receipt `json:"receipts"`
		FirstNew uint64            `json:"first_new"`
	}{resp.Receipts, resp.FirstNew}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := splitFast(pretty); err == nil {
		t.Fatal("the fast path took an indented answer")
	}
	for name, b := range map[string][]byte{"as written": body, "indented": pretty} {
		raws, firstNew, err := SplitBatchResponse(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if firstNew != resp.FirstNew || len(raws) != len(resp.Receipts) {
			t.Fatalf("%s: %d receipts, first_new %d; want %d, %d", name, len(raws), firstNew, len(resp.Receipts), resp.FirstNew)
		}
		for i, raw := range raws {
			want, _ := resp.Receipts[i].AppendJSON(nil)
			if !bytes.Equal(raw.JSON, want) || raw.Index != resp.Receipts[i].Index || raw.Commitment != resp.Receipts[i].Leaf.Commitment {
				t.Errorf("%s: receipt %d split as %d %s %s", name, i, raw.Index, raw.Commitment, raw.JSON)
			}
			single, _ := NotarizeResponse{Receipt: resp.Receipts[i], Existing: i == 0}.AppendJSON(nil)
			if got := raw.AppendNotarizeResponse(nil, i == 0); !bytes.Equal(got, single) {
				t.Errorf("%s: receipt %d relayed as %s, want %s", name, i, got, single)
			}
		}
	}
	for _, bad := range []string{
		string(body[:len(body)-3]),
		strings.Replace(string(body), `"first_new":41`, `"first_new":-1`, 1),
		`{"receipts":[{"version":1}],"first_new":0}`,
		`{"receipts":[],"first_new":0} {}`,
	} {
		if raws, _, err := SplitBatchResponse([]byte(bad)); err == nil {
			t.Errorf("split %q into %d receipts", bad, len(raws))
		}
	}
}

// FuzzSplitBatchResponse: the splitter reads only the envelope and each
// receipt's head (a follower relays the rest as the leader wrote it), so
// where the full decoder also accepts the answer, both agree on the
// receipts, their indexes and commitments, and each receipt's own bytes
// decode to the same receipt.
func FuzzSplitBatchResponse(f *testing.F) {
	body, _ := splitSample().AppendJSON(nil)
	f.Add(body)
	f.Add([]byte(`{"receipts":[],"first_new":0}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		raws, firstNew, err := SplitBatchResponse(b)
		if err != nil {
			return
		}
		var full BatchResponse
		if err := full.UnmarshalJSON(b); err != nil {
			return
		}
		if full.FirstNew != firstNew || len(full.Receipts) != len(raws) {
			t.Fatalf("split into %d receipts from %d, decoded %d from %d", len(raws), firstNew, len(full.Receipts), full.FirstNew)
		}
		for i, raw := range raws {
			r := full.Receipts[i]
			if r == nil || raw.Index != r.Index || raw.Commitment != r.Leaf.Commitment {
				t.Fatalf("receipt %d split as %d %s, decoded as %+v", i, raw.Index, raw.Commitment, r)
			}
			again, _, err := notary.ReadReceiptJSON(raw.JSON)
			if err != nil || again.Index != r.Index || again.Leaf != r.Leaf || !bytes.Equal(again.Checkpoint, r.Checkpoint) {
				t.Fatalf("receipt %d's own bytes read as %+v, %v", i, again, err)
			}
		}
	})
}
