// Package prescriptiontest holds the prescriptions the tests of the
// server, the peer SDK and the prescription check refuse and accept, so
// that each is tried on the same inputs.
package prescriptiontest

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/telenotary/telenotary/notary/fhirdata"
)

// BaseName is the HL7 example the cases are made from.
const BaseName = "MedicationRequest-medrx0302.json"

// Case is one prescription and the FHIR path a refusal names ("" for one
// that is accepted).
type Case struct {
	Name string
	Doc  []byte
	Path string
}

// Base returns the HL7 example the cases edit.
func Base() []byte {
	names, docs := fhirdata.MedicationRequests()
	for i, n := range names {
		if n == BaseName {
			return docs[i]
		}
	}
	panic("prescriptiontest: " + BaseName + " is not among the HL7 examples")
}

// edit returns the base document with fn applied to its members; a string
// member "<raw>" + JSON is written as that JSON text unchanged, so that
// numbers keep their spelling.
func edit(fn func(r map[string]any)) []byte {
	var r map[string]any
	if err := json.Unmarshal(Base(), &r); err != nil {
		panic(err)
	}
	fn(r)
	out, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	return raw(out)
}

const rawMark = "<raw>"

// Raw marks a member's value to be written as JSON text as it is.
func Raw(text string) string { return rawMark + text }

// raw replaces each "<raw>…" string with its text.
func raw(doc []byte) []byte {
	doc = bytes.ReplaceAll(doc, []byte(`\u003craw\u003e`), []byte(rawMark))
	for {
		i := bytes.Index(doc, []byte(`"`+rawMark))
		if i < 0 {
			return doc
		}
		j := bytes.IndexByte(doc[i+1:], '"') + i + 1
		text := string(doc[i+1+len(rawMark) : j])
		text = strings.ReplaceAll(text, `\u003c`, "<")
		text = strings.ReplaceAll(text, `\u003e`, ">")
		text = strings.ReplaceAll(text, `\"`, `"`)
		doc = append(doc[:i:i], append([]byte(text), doc[j+1:]...)...)
	}
}

func quantity(value string) func(r map[string]any) {
	return func(r map[string]any) {
		r["dispenseRequest"].(map[string]any)["quantity"].(map[string]any)["value"] = Raw(value)
	}
}

// replace returns the base document with old replaced by new once.
func replace(old, new string) []byte {
	base := Base()
	if !bytes.Contains(base, []byte(old)) {
		panic("prescriptiontest: " + old + " is not in " + BaseName)
	}
	return bytes.Replace(base, []byte(old), []byte(new), 1)
}

// Invalid are prescriptions each refused at its path.
func Invalid() []Case {
	const root = "MedicationRequest"
	return []Case{
		{"date that does not exist", edit(func(r map[string]any) { r["authoredOn"] = "2026-02-31" }), root + ".authoredOn"},
		{"date in words", edit(func(r map[string]any) { r["authoredOn"] = "yesterday" }), root + ".authoredOn"},
		{"date as a number", edit(func(r map[string]any) { r["authoredOn"] = 20260221 }), root + ".authoredOn"},
		{"no authoredOn", edit(func(r map[string]any) { delete(r, "authoredOn") }), root + ".authoredOn"},
		{"draft", edit(func(r map[string]any) { r["status"] = "draft" }), root + ".status"},
		{"cancelled", edit(func(r map[string]any) { r["status"] = "cancelled" }), root + ".status"},
		{"status not a FHIR code", edit(func(r map[string]any) { r["status"] = "finished" }), root + ".status"},
		{"no status", edit(func(r map[string]any) { delete(r, "status") }), root + ".status"},
		{"proposal", edit(func(r map[string]any) { r["intent"] = "proposal" }), root + ".intent"},
		{"plan", edit(func(r map[string]any) { r["intent"] = "plan" }), root + ".intent"},
		{"subject a Practitioner", edit(func(r map[string]any) {
			r["subject"] = map[string]any{"reference": "Practitioner/f007", "display": "Dr Not A Patient"}
		}), root + ".subject.reference"},
		{"subject a contained Medication", edit(func(r map[string]any) { r["subject"] = map[string]any{"reference": "#med0320"} }), root + ".subject.reference"},
		{"subject only a display", edit(func(r map[string]any) { r["subject"] = map[string]any{"display": "Donald Duck"} }), root + ".subject"},
		{"subject an identifier of no type", edit(func(r map[string]any) {
			r["subject"] = map[string]any{"identifier": map[string]any{"system": "urn:x", "value": "1"}}
		}), root + ".subject.type"},
		{"subject a string", edit(func(r map[string]any) { r["subject"] = "Patient/pat1" }), root + ".subject"},
		{"no subject", edit(func(r map[string]any) { delete(r, "subject") }), root + ".subject"},
		{"requester a Location", edit(func(r map[string]any) { r["requester"] = map[string]any{"reference": "Location/1"} }), root + ".requester"},
		{"element name capitalized", replace(`"intent"`, `"Intent"`), root + ".Intent"},
		{"element twice in two spellings", replace(`"status": "active",`, `"status": "active", "Status": "cancelled",`), root + ".Status"},
		{"two medications", replace(`"intent": "order",`, `"intent": "order", "medicationCodeableConcept": {"text": "Azithromycin"},`), root + ".medication[x]"},
		{"do not perform", edit(func(r map[string]any) { r["doNotPerform"] = true }), root + ".doNotPerform"},
		{"empty string", edit(func(r map[string]any) { r["priority"] = "" }), root + ".priority"},
		{"empty array", edit(func(r map[string]any) { r["category"] = []any{} }), root + ".category"},
		{"empty object", edit(func(r map[string]any) { r["substitution"] = map[string]any{} }), root + ".substitution"},
		{"null", edit(func(r map[string]any) { r["priority"] = nil }), root + ".priority"},
		{"no requester", edit(func(r map[string]any) { delete(r, "requester") }), root + ".requester"},
		{"no medication", edit(func(r map[string]any) { delete(r, "medicationReference") }), root + ".medication"},
		{"unknown element", edit(func(r map[string]any) { r["prescriberNote"] = "x" }), root + ".prescriberNote"},
		{"dosageInstruction not an array", edit(func(r map[string]any) { r["dosageInstruction"] = "1 tablet a day" }), root + ".dosageInstruction"},
		{"coding code a number", replace(`"code": "324252006"`, `"code": 324252006`), root + ".contained[0].Medication.code.coding[0].code"},
		{"resourceType Patient", edit(func(r map[string]any) { r["resourceType"] = "Patient" }), root + ".resourceType"},
		{"no resourceType", edit(func(r map[string]any) { delete(r, "resourceType") }), root + ".resourceType"},
		{"integer beyond 2^53", edit(quantity("12345678901234567890")), root + ".dispenseRequest.quantity.value"},
		{"2^53 + 1", edit(quantity("9007199254740993")), root + ".dispenseRequest.quantity.value"},
		{"decimal a double cannot hold as written", edit(quantity("0.12345678901234567890")), root + ".dispenseRequest.quantity.value"},
		{"number beyond a double", edit(quantity("1e400")), root + ".dispenseRequest.quantity.value"},
		{"number below a double", edit(quantity("1e-400")), root + ".dispenseRequest.quantity.value"},
		{"status twice", replace(`"status": "active",`, `"status": "active", "status": "cancelled",`), root + ".status"},
		{"member twice deeper", replace(`"reference": "Patient/pat1",`, `"reference": "Patient/pat1", "reference": "Patient/pat2",`), root + ".subject.reference"},
		{"byte order mark", append([]byte("\xEF\xBB\xBF"), Base()...), root},
		{"an array", append(append([]byte("["), Base()...), ']'), root},
		{"two objects", append(Base(), []byte("{}")...), root},
		{"cut short", Base()[:len(Base())/2], root},
		{"invalid UTF-8", replace(`"Donald Duck"`, "\"Donald \xff Duck\""), root + ".subject.display"},
		{"over 48 KiB", edit(func(r map[string]any) { r["note"] = []any{map[string]any{"text": strings.Repeat("a", 48<<10)}} }), root},
	}
}

// Valid are edits of the base document that are accepted: numbers that
// canonicalization writes differently without changing their value, and
// the subject forms a Patient may be referred to by.
func Valid() []Case {
	return []Case{
		{"2.50", edit(quantity("2.50")), ""},
		{"1E3", edit(quantity("1E3")), ""},
		{"2^53", edit(quantity("9007199254740992")), ""},
		{"0.1", edit(quantity("0.1")), ""},
		{"absolute Patient URL", edit(func(r map[string]any) {
			r["subject"] = map[string]any{"reference": "https://fhir.example.org/r4/Patient/pat1/_history/2"}
		}), ""},
		{"Patient identifier", edit(func(r map[string]any) {
			r["subject"] = map[string]any{"type": "Patient", "identifier": map[string]any{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345"}}
		}), ""},
		{"contained Patient", edit(func(r map[string]any) {
			r["contained"] = append(r["contained"].([]any), map[string]any{"resourceType": "Patient", "id": "p1", "name": []any{map[string]any{"text": "Donald Duck"}}})
			r["subject"] = map[string]any{"reference": "#p1"}
		}), ""},
		{"on-hold", edit(func(r map[string]any) { r["status"] = "on-hold" }), ""},
		{"original-order", edit(func(r map[string]any) { r["intent"] = "original-order" }), ""},
	}
}
