package monitor_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/telenotary/telenotary/cluster/monitor"
	"github.com/telenotary/telenotary/cluster/monitor/monitortest"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// FuzzParseLeaves: ParseLeaves never panics; what it accepts is at most
// want leaves, each valid, which encode back to a page it reads as the
// same leaves; what it refuses is a malformed page or a *LeafError naming
// a leaf of the page.
func FuzzParseLeaves(f *testing.F) {
	page := func(start uint64, ls ...notary.Leaf) []byte {
		var r notaryapi.LeavesResponse
		for i, l := range ls {
			r.Leaves = append(r.Leaves, notaryapi.LeafInfoOf(start+uint64(i), l))
		}
		b, err := json.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(page(0, monitortest.Leaf("a", 0, 1), monitortest.Leaf("a", 1, 2)), uint64(0), uint64(2))
	f.Add(page(7, monitortest.Leaf("a", 0, 1)), uint64(7), uint64(1))
	f.Add([]byte(`{"leaves":[{"index":0,"kind":"consent","commitment":"00","timestamp":-1}]}`), uint64(0), uint64(5))
	f.Add([]byte(`{"leaves":[]}`), uint64(0), uint64(5))
	f.Add([]byte(`{"leaves":[{"index":3,"kind":"sorcery"}]}`), uint64(3), uint64(5))
	f.Add([]byte(`[]`), uint64(0), uint64(1))
	f.Fuzz(func(t *testing.T, body []byte, start, want uint64) {
		if want > notaryapi.MaxLeavesPage {
			want %= notaryapi.MaxLeavesPage + 1
		}
		ls, err := monitor.ParseLeaves(body, start, want)
		if err != nil {
			var le *monitor.LeafError
			if errors.As(err, &le) {
				if le.Index < start || le.Index-start >= want {
					t.Fatalf("leaf error names leaf %d, outside [%d, %d+%d)", le.Index, start, start, want)
				}
			} else if !errors.Is(err, monitor.ErrMalformedPage) {
				t.Fatalf("error %v is neither a leaf error nor a malformed page", err)
			}
			return
		}
		if len(ls) == 0 || uint64(len(ls)) > want {
			t.Fatalf("%d leaves accepted for want %d", len(ls), want)
		}
		for i, l := range ls {
			if err := l.Validate(); err != nil {
				t.Fatalf("leaf %d accepted but invalid: %v", i, err)
			}
		}
		again, err := monitor.ParseLeaves(page(start, ls...), start, want)
		if err != nil || len(again) != len(ls) {
			t.Fatalf("re-encoded page: %v", err)
		}
		for i := range ls {
			if again[i] != ls[i] {
				t.Fatalf("leaf %d: %+v then %+v", i, ls[i], again[i])
			}
		}
	})
}
