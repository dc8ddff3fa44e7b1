package prescription_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/fhirdata"
	"github.com/telenotary/telenotary/session/signalapi"
	"github.com/telenotary/telenotary/session/signalapi/prescription"
)

// readDispense reads an HL7 MedicationDispense example of testdata.
func readDispense(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "MedicationDispense-"+name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHL7Dispenses: the HL7 R4 MedicationDispense examples that give the
// medication out (in-progress, completed) are accepted and returned in
// their canonical form; the on-hold and entered-in-error ones are refused
// at their status.
func TestHL7Dispenses(t *testing.T) {
	for name, wantErr := range map[string]bool{
		"meddisp0301": false, "meddisp0302": false, "meddisp0304": false,
		"meddisp0303": true, "meddisp0305": true,
	} {
		doc := readDispense(t, name)
		got, err := prescription.CheckDispense(doc)
		if wantErr {
			var e *prescription.Error
			if !errors.As(err, &e) || e.Path != "MedicationDispense.status" {
				t.Errorf("%s: %v, want a refusal at MedicationDispense.status", name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if want, _ := notary.CanonicalJSON(doc); !bytes.Equal(got, want) {
			t.Errorf("%s: not returned in its canonical form", name)
		}
	}
}

// dispenseBase is a valid dispense the cases below edit.
const dispenseBase = `{
  "resourceType": "MedicationDispense",
  "status": "completed",
  "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1313112"}]},
  "subject": {"reference": "Patient/pat1"},
  "authorizingPrescription": [{"reference": "MedicationRequest/medrx0321"}],
  "whenPrepared": "2026-11-21T10:00:00Z",
  "whenHandedOver": "2026-11-21T10:30:00Z"
}`

// editDispense returns dispenseBase changed by fn.
func editDispense(fn func(map[string]any)) []byte {
	var r map[string]any
	if err := json.Unmarshal([]byte(dispenseBase), &r); err != nil {
		panic(err)
	}
	fn(r)
	b, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	return b
}

// TestInvalidDispenses: each invalid dispense is refused with an *Error at
// its FHIR path, which errors.Is matches against invalid_resource.
func TestInvalidDispenses(t *testing.T) {
	const root = "MedicationDispense"
	_, medrx := fhirdata.MedicationRequests()
	for _, c := range []struct {
		name string
		doc  []byte
		path string
	}{
		{"not JSON", []byte(`{"resourceType": `), root},
		{"an array", []byte(`[1]`), root},
		{"a MedicationRequest", medrx[0], root + ".resourceType"},
		{"no resourceType", editDispense(func(r map[string]any) { delete(r, "resourceType") }), root + ".resourceType"},
		{"member given twice", []byte(`{"resourceType": "MedicationDispense", "status": "completed", "status": "completed"}`), root + ".status"},
		{"unknown element", editDispense(func(r map[string]any) { r["fill"] = 2 }), root + ".fill"},
		{"number JCS would change", editDispense(func(r map[string]any) {
			r["quantity"] = json.RawMessage(`{"value": 12345678901234567890}`)
		}), root + ".quantity.value"},
		{"no status", editDispense(func(r map[string]any) { delete(r, "status") }), root + ".status"},
		{"status not a FHIR code", editDispense(func(r map[string]any) { r["status"] = "dispensed" }), root + ".status"},
		{"preparation", editDispense(func(r map[string]any) { r["status"] = "preparation" }), root + ".status"},
		{"cancelled", editDispense(func(r map[string]any) { r["status"] = "cancelled" }), root + ".status"},
		{"declined", editDispense(func(r map[string]any) { r["status"] = "declined" }), root + ".status"},
		{"no medication", editDispense(func(r map[string]any) { delete(r, "medicationCodeableConcept") }), root + ".medication[x]"},
		{"medication without coding or text", editDispense(func(r map[string]any) {
			r["medicationCodeableConcept"] = map[string]any{"id": "m"}
		}), root + ".medicationCodeableConcept"},
		{"medication in two forms", editDispense(func(r map[string]any) {
			r["medicationReference"] = map[string]any{"reference": "Medication/1"}
		}), root + ".medication[x]"},
		{"no subject", editDispense(func(r map[string]any) { delete(r, "subject") }), root + ".subject"},
		{"subject a Group", editDispense(func(r map[string]any) { r["subject"] = map[string]any{"reference": "Group/1"} }), root + ".subject.reference"},
		{"subject not a contained Patient", editDispense(func(r map[string]any) { r["subject"] = map[string]any{"reference": "#p1"} }), root + ".subject.reference"},
		{"subject only a display", editDispense(func(r map[string]any) { r["subject"] = map[string]any{"display": "Donald Duck"} }), root + ".subject"},
		{"subject an identifier of no type", editDispense(func(r map[string]any) {
			r["subject"] = map[string]any{"identifier": map[string]any{"system": "urn:x", "value": "1"}}
		}), root + ".subject.type"},
		{"completed, not handed over", editDispense(func(r map[string]any) { delete(r, "whenHandedOver") }), root + ".whenHandedOver"},
		{"handed over before prepared", editDispense(func(r map[string]any) { r["whenPrepared"] = "2026-11-22" }), root + ".whenHandedOver"},
		{"date that does not exist", editDispense(func(r map[string]any) { r["whenHandedOver"] = "2026-02-31" }), root + ".whenHandedOver"},
		{"authorized by a Patient", editDispense(func(r map[string]any) {
			r["authorizingPrescription"] = []any{map[string]any{"reference": "Patient/pat1"}}
		}), root + ".authorizingPrescription[0].reference"},
		{"too large", editDispense(func(r map[string]any) {
			r["note"] = []any{map[string]any{"text": strings.Repeat("x", prescription.MaxDispenseSize)}}
		}), root},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := prescription.CheckDispense(c.doc)
			var e *prescription.Error
			if !errors.As(err, &e) {
				t.Fatalf("accepted or not an *Error: %v", err)
			}
			if e.Path != c.path {
				t.Fatalf("path %q, want %q (%v)", e.Path, c.path, err)
			}
			if !errors.Is(err, signalapi.CodeInvalidResource) {
				t.Fatalf("%v is not invalid_resource", err)
			}
			if strings.Contains(e.Reason, "MedicationRequest,") || strings.Contains(e.Reason, "a prescription is") || strings.Contains(e.Reason, "MedicationRequest.") {
				t.Fatalf("a dispense's refusal speaks of a prescription: %v", err)
			}
			t.Log(err)
		})
	}
}

// TestValidDispenses: each way to name the medication and the Patient is
// accepted, and in-progress needs no whenHandedOver.
func TestValidDispenses(t *testing.T) {
	for name, doc := range map[string][]byte{
		"base": []byte(dispenseBase),
		"in progress, not handed over yet": editDispense(func(r map[string]any) {
			r["status"] = "in-progress"
			delete(r, "whenHandedOver")
		}),
		"medication as text": editDispense(func(r map[string]any) {
			r["medicationCodeableConcept"] = map[string]any{"text": "paracetamol 500 mg"}
		}),
		"medication by reference": editDispense(func(r map[string]any) {
			delete(r, "medicationCodeableConcept")
			r["medicationReference"] = map[string]any{"reference": "Medication/m1"}
		}),
		"subject a contained Patient": editDispense(func(r map[string]any) {
			r["contained"] = []any{map[string]any{"resourceType": "Patient", "id": "p1"}}
			r["subject"] = map[string]any{"reference": "#p1"}
		}),
		"subject an absolute URL": editDispense(func(r map[string]any) {
			r["subject"] = map[string]any{"reference": "https://fhir.example.org/r4/Patient/pat1"}
		}),
		"subject by identifier": editDispense(func(r map[string]any) {
			r["subject"] = map[string]any{"type": "Patient", "identifier": map[string]any{"system": "urn:x", "value": "1"}}
		}),
		"authorized by identifier": editDispense(func(r map[string]any) {
			r["authorizingPrescription"] = []any{map[string]any{"type": "MedicationRequest", "identifier": map[string]any{"value": "12345689"}}}
		}),
	} {
		if _, err := prescription.CheckDispense(doc); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestNewDispense: the minimal dispense made from each HL7 prescription
// passes CheckDispense, is completed at the time given, and carries the
// prescription's medication (with the contained resource it points to),
// subject and id.
func TestNewDispense(t *testing.T) {
	when := time.Date(2026, 11, 21, 10, 30, 15, 500, time.FixedZone("CET", 3600))
	names, docs := fhirdata.MedicationRequests()
	for i, name := range names {
		d, err := prescription.NewDispense(docs[i], when)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if _, err := prescription.CheckDispense(d); err != nil {
			t.Errorf("%s: the dispense made does not pass: %v", name, err)
		}
		var mr, md map[string]json.RawMessage
		json.Unmarshal(docs[i], &mr)
		if err := json.Unmarshal(d, &md); err != nil {
			t.Fatal(err)
		}
		var id string
		json.Unmarshal(mr["id"], &id)
		for member, want := range map[string]string{
			"status":                  `"completed"`,
			"whenHandedOver":          `"2026-11-21T09:30:15Z"`,
			"subject":                 string(mr["subject"]),
			"authorizingPrescription": `[{"reference":"MedicationRequest/` + id + `"}]`,
		} {
			if got, _ := notary.CanonicalJSON(md[member]); string(got) != mustCanonical(t, want) {
				t.Errorf("%s: %s is %s, want %s", name, member, got, want)
			}
		}
		for _, med := range []string{"medicationCodeableConcept", "medicationReference"} {
			if got, want := mustCanonical(t, string(md[med])), mustCanonical(t, string(mr[med])); got != want {
				t.Errorf("%s: %s is %s, want %s", name, med, got, want)
			}
		}
		var ref struct{ Reference string }
		if json.Unmarshal(mr["medicationReference"], &ref) == nil && strings.HasPrefix(ref.Reference, "#") &&
			!bytes.Contains(md["contained"], []byte(`"id":"`+ref.Reference[1:]+`"`)) && !bytes.Contains(md["contained"], []byte(`"id": "`+ref.Reference[1:]+`"`)) {
			t.Errorf("%s: the contained %s is not copied", name, ref.Reference)
		}
	}
	if _, err := prescription.NewDispense([]byte(dispenseBase), when); err == nil {
		t.Error("a dispense made from what is not a prescription")
	}
}

func mustCanonical(t *testing.T, doc string) string {
	t.Helper()
	if doc == "" {
		return ""
	}
	b, err := notary.CanonicalJSON([]byte(doc))
	if err != nil {
		t.Fatalf("%s: %v", doc, err)
	}
	return string(b)
}

// FuzzCheckDispense: CheckDispense never panics; a refusal is an *Error
// whose path is under MedicationDispense; an accepted document is
// returned canonical, and its canonical bytes are accepted as they are.
func FuzzCheckDispense(f *testing.F) {
	entries, _ := os.ReadDir("testdata")
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			b, _ := os.ReadFile(filepath.Join("testdata", e.Name()))
			f.Add(b)
		}
	}
	f.Add([]byte(dispenseBase))
	_, docs := fhirdata.MedicationRequests()
	f.Add(docs[0])
	f.Fuzz(func(t *testing.T, data []byte) {
		canonical, err := prescription.CheckDispense(data)
		if err != nil {
			var e *prescription.Error
			if !errors.As(err, &e) || !strings.HasPrefix(e.Path, prescription.DispenseRoot) {
				t.Fatalf("refusal without a MedicationDispense path: %v", err)
			}
			return
		}
		again, err := notary.CanonicalJSON(canonical)
		if err != nil || !bytes.Equal(again, canonical) {
			t.Fatalf("accepted resource is not canonical: %v", err)
		}
		if _, err := prescription.CheckDispense(canonical); err != nil {
			t.Fatalf("the canonical form of an accepted resource is refused: %v", err)
		}
	})
}
