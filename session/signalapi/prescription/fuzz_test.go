package prescription_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/fhirdata"
	"github.com/telenotary/telenotary/session/signalapi/prescription"
	"github.com/telenotary/telenotary/session/signalapi/prescription/prescriptiontest"
)

// FuzzCheck: Check never panics and leaves the document as it was; a
// refusal is an *Error whose path is a FHIR path of the resource; an
// accepted document is returned canonical, and canonicalization did not
// change it in value (checked again on the canonical bytes, which must be
// accepted as they are).
func FuzzCheck(f *testing.F) {
	_, docs := fhirdata.MedicationRequests()
	for _, d := range docs {
		f.Add(d)
	}
	for _, c := range append(prescriptiontest.Invalid(), prescriptiontest.Valid()...) {
		f.Add(c.Doc)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		canonical, err := prescription.Check(data)
		if !bytes.Equal(data, in) {
			t.Fatalf("Check changed the document it was given")
		}
		if err != nil {
			var e *prescription.Error
			if !errors.As(err, &e) || !strings.HasPrefix(e.Path, prescription.Root) {
				t.Fatalf("refusal without a FHIR path: %v", err)
			}
			return
		}
		again, err := notary.CanonicalJSON(canonical)
		if err != nil || !bytes.Equal(again, canonical) {
			t.Fatalf("accepted resource is not canonical: %v", err)
		}
		if _, err := prescription.Check(canonical); err != nil {
			t.Fatalf("the canonical form of an accepted resource is refused: %v", err)
		}
	})
}

// FuzzCheckJSON: CheckJSON agrees with the notary's canonicalization: a
// document it accepts canonicalizes, and each number keeps its value (a
// second canonicalization changes nothing, and CheckJSON accepts the
// canonical form).
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":2.50}`, `{"a":12345678901234567890}`, `{"a":1e400}`, `{"a":[0.1,-0,1E3]}`, `{"a":1,"a":2}`, "\xEF\xBB\xBF{}", `{"a":"\ud800"}`, `{}{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if prescription.CheckJSON(data) != nil {
			return
		}
		canonical, err := notary.CanonicalJSON(data)
		if err != nil {
			t.Fatalf("CheckJSON accepted what the notary refuses: %v", err)
		}
		if err := prescription.CheckJSON(canonical); err != nil {
			t.Fatalf("the canonical form is refused: %v", err)
		}
	})
}

// largest is the largest HL7 MedicationRequest example.
func largest() (name string, doc []byte) {
	names, docs := fhirdata.MedicationRequests()
	for i, d := range docs {
		if len(d) > len(doc) {
			doc, name = d, names[i]
		}
	}
	return name, doc
}

// BenchmarkCanonicalJSON is what the server did with a prescription before
// it was validated, for comparison with BenchmarkCheck.
func BenchmarkCanonicalJSON(b *testing.B) {
	_, doc := largest()
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := notary.CanonicalJSON(doc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheck validates the largest HL7 MedicationRequest example and
// reports the 99th percentile of one call (p99-ns):
//
//	go test ./session/signalapi/prescription -run '^$' -bench . -benchmem
func BenchmarkCheck(b *testing.B) {
	name, doc := largest()
	b.Logf("%s, %d bytes", name, len(doc))
	// The first calls in a process initialize the FHIR library's
	// descriptors (lazily, once): a server pays that once, not per
	// prescription, so they are made before the timing.
	for range 50 {
		if _, err := prescription.Check(doc); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	var took []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := prescription.Check(doc); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)*99/100].Nanoseconds()), "p99-ns")
}
