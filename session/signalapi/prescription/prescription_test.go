package prescription_test

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/fhirdata"
	"github.com/telenotary/telenotary/session/signalapi"
	"github.com/telenotary/telenotary/session/signalapi/prescription"
	"github.com/telenotary/telenotary/session/signalapi/prescription/prescriptiontest"
)

// TestHL7Examples: every HL7 R4 MedicationRequest example is accepted and
// returned in its canonical form.
func TestHL7Examples(t *testing.T) {
	names, docs := fhirdata.MedicationRequests()
	if len(names) < 26 {
		t.Fatalf("%d HL7 MedicationRequest examples, want at least 26", len(names))
	}
	for i, name := range names {
		got, err := prescription.Check(docs[i])
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		want, _ := notary.CanonicalJSON(docs[i])
		if !bytes.Equal(got, want) {
			t.Errorf("%s: not returned in its canonical form", name)
		}
	}
}

// TestInvalid: each invalid prescription is refused with an *Error at its
// FHIR path, which errors.Is matches against invalid_resource.
func TestInvalid(t *testing.T) {
	cases := prescriptiontest.Invalid()
	if len(cases) < 20 {
		t.Fatalf("%d cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			_, err := prescription.Check(c.Doc)
			var e *prescription.Error
			if !errors.As(err, &e) {
				t.Fatalf("accepted or not an *Error: %v", err)
			}
			if e.Path != c.Path {
				t.Fatalf("path %q, want %q (%v)", e.Path, c.Path, err)
			}
			if !errors.Is(err, signalapi.CodeInvalidResource) {
				t.Fatalf("%v is not invalid_resource", err)
			}
			t.Log(err)
		})
	}
}

// TestValid: numbers JCS respells without changing their value, and each
// way to name a Patient, are accepted.
func TestValid(t *testing.T) {
	for _, c := range prescriptiontest.Valid() {
		t.Run(c.Name, func(t *testing.T) {
			if _, err := prescription.Check(c.Doc); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCheckConcurrent: Check called from several goroutines at once (as
// the server calls it, sharing the FHIR unmarshaller and the pooled JSON
// decoders) gives each document the answer it gives alone.
func TestCheckConcurrent(t *testing.T) {
	_, docs := fhirdata.MedicationRequests()
	for _, c := range append(prescriptiontest.Invalid(), prescriptiontest.Valid()...) {
		docs = append(docs, c.Doc)
	}
	answer := func(doc []byte) string {
		canonical, err := prescription.Check(doc)
		if err != nil {
			return "refused: " + err.Error()
		}
		return string(canonical)
	}
	want := make([]string, len(docs))
	for i, d := range docs {
		want[i] = answer(d)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for n := range 3 * len(docs) {
				i := (n*(2*g+1) + g) % len(docs)
				if got := answer(docs[i]); got != want[i] {
					t.Errorf("document %d, goroutine %d: %.80s, alone %.80s", i, g, got, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
}
