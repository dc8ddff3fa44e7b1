package prescription_test

import (
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"testing"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/fhirdata"
	"github.com/telenotary/telenotary/session/signalapi"
	"github.com/telenotary/telenotary/session/signalapi/prescription"
)

// repeatsPattern finds an HL7 example's numberOfRepeatsAllowed, read here
// independently of the FHIR library.
var repeatsPattern = regexp.MustCompile(`"numberOfRepeatsAllowed"\s*:\s*([0-9]+)`)

// TestFillsOfHL7Examples: every HL7 example allows its repeats and the
// first dispense, one when it gives no repeats; those with 3 repeats (the
// issue's example) allow 4.
func TestFillsOfHL7Examples(t *testing.T) {
	names, docs := fhirdata.MedicationRequests()
	withThree := 0
	for i, name := range names {
		p, err := prescription.Parse(docs[i])
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		want := 1
		if m := repeatsPattern.FindSubmatch(docs[i]); m != nil {
			n, _ := strconv.Atoi(string(m[1]))
			want = n + 1
			if n == 3 {
				withThree++
			}
		}
		if p.Fills() != want {
			t.Errorf("%s: %d fills, want %d", name, p.Fills(), want)
		}
	}
	if withThree < 3 {
		t.Fatalf("%d HL7 examples with 3 repeats, want at least 3", withThree)
	}
}

// TestFillsBound: 0 to MaxFills-1 repeats are accepted (1 to MaxFills
// fills); more is refused by Parse and by Check, naming
// numberOfRepeatsAllowed, since the notary's log would refuse the
// allowance.
func TestFillsBound(t *testing.T) {
	_, docs := fhirdata.MedicationRequests()
	withRepeats := func(n any) []byte {
		var r map[string]any
		if err := json.Unmarshal(docs[0], &r); err != nil {
			t.Fatal(err)
		}
		dr, _ := r["dispenseRequest"].(map[string]any)
		if dr == nil {
			dr = map[string]any{}
			r["dispenseRequest"] = dr
		}
		if n == nil {
			delete(dr, "numberOfRepeatsAllowed")
			if len(dr) == 0 {
				delete(r, "dispenseRequest")
			}
		} else {
			dr["numberOfRepeatsAllowed"] = n
		}
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	for _, tc := range []struct {
		repeats any
		fills   int
	}{{nil, 1}, {0, 1}, {1, 2}, {3, 4}, {notary.MaxFills - 1, notary.MaxFills}} {
		p, err := prescription.Parse(withRepeats(tc.repeats))
		if err != nil {
			t.Fatalf("%v repeats: %v", tc.repeats, err)
		}
		if p.Fills() != tc.fills {
			t.Errorf("%v repeats: %d fills, want %d", tc.repeats, p.Fills(), tc.fills)
		}
		if _, err := notary.NewAllowance(notary.NewSalt(), notary.Commitment{}, p.Fills()); err != nil {
			t.Errorf("%v repeats: the notary refuses the allowance: %v", tc.repeats, err)
		}
	}
	for _, n := range []any{notary.MaxFills, 1000, 4294967295} {
		doc := withRepeats(n)
		for name, check := range map[string]func([]byte) error{
			"Parse": func(d []byte) error { _, err := prescription.Parse(d); return err },
			"Check": func(d []byte) error { _, err := prescription.Check(d); return err },
		} {
			err := check(doc)
			var e *prescription.Error
			if !errors.As(err, &e) || e.Path != "MedicationRequest.dispenseRequest.numberOfRepeatsAllowed" || !errors.Is(err, signalapi.CodeInvalidResource) {
				t.Errorf("%s of %v repeats: %v, want invalid_resource at MedicationRequest.dispenseRequest.numberOfRepeatsAllowed", name, n, err)
			}
		}
	}
	// A negative count is not a FHIR unsignedInt: the FHIR check names it.
	var e *prescription.Error
	if _, err := prescription.Parse(withRepeats(-1)); !errors.As(err, &e) || e.Path != "MedicationRequest.dispenseRequest.numberOfRepeatsAllowed" {
		t.Errorf("-1 repeats: %v", err)
	}
}
