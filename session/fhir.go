package session

import (
	"encoding/json"
	"regexp"
	"slices"

	"github.com/telenotary/telenotary/notary"
)

// MaxPrescriptionSize bounds a MedicationRequest in bytes.
const MaxPrescriptionSize = 48 << 10

// FHIR R4 value sets of MedicationRequest.status and .intent.
var (
	medicationRequestStatus = []string{"active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft", "unknown"}
	medicationRequestIntent = []string{"proposal", "plan", "order", "original-order", "reflex-order", "filler-order", "instance-order", "option"}
	// fhirDateTime is FHIR's dateTime: a year, year-month, date, or date and
	// time with seconds and a zone.
	fhirDateTime = regexp.MustCompile(`^([0-9]{4})(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$`)
)

// CheckMedicationRequest checks what the notary needs of a FHIR R4
// MedicationRequest (resourceType, status, intent, subject, requester,
// exactly one medication[x], authoredOn) and returns its RFC 8785 canonical
// bytes. The error is a *ProtocolError naming the field.
func CheckMedicationRequest(resource []byte) ([]byte, error) {
	if len(resource) > MaxPrescriptionSize {
		return nil, protoErr(CodeInvalidFHIR, "MedicationRequest is %d bytes, more than %d", len(resource), MaxPrescriptionSize)
	}
	canonical, err := notary.CanonicalJSON(resource)
	if err != nil {
		return nil, protoErr(CodeInvalidFHIR, "resource is not canonicalizable JSON: %v", err)
	}
	var r map[string]json.RawMessage
	if err := json.Unmarshal(canonical, &r); err != nil || r == nil {
		return nil, protoErr(CodeInvalidFHIR, "resource is not a JSON object")
	}
	str := func(name string) (string, bool) {
		var s string
		raw, ok := r[name]
		return s, ok && json.Unmarshal(raw, &s) == nil
	}
	if rt, _ := str("resourceType"); rt != "MedicationRequest" {
		return nil, protoErr(CodeInvalidFHIR, "resourceType is %.40q, not \"MedicationRequest\"", rt)
	}
	for _, f := range []struct {
		name string
		set  []string
	}{{"status", medicationRequestStatus}, {"intent", medicationRequestIntent}} {
		v, ok := str(f.name)
		if !ok {
			return nil, protoErr(CodeInvalidFHIR, "%s is missing or not a string", f.name)
		}
		if !slices.Contains(f.set, v) {
			return nil, protoErr(CodeInvalidFHIR, "%s %.40q is not one of %v", f.name, v, f.set)
		}
	}
	for _, name := range []string{"subject", "requester"} {
		if err := checkReference(r[name], name); err != nil {
			return nil, err
		}
	}
	concept, hasConcept := r["medicationCodeableConcept"]
	ref, hasRef := r["medicationReference"]
	switch {
	case hasConcept && hasRef:
		return nil, protoErr(CodeInvalidFHIR, "medication[x] is given twice: medicationCodeableConcept and medicationReference")
	case hasConcept:
		var c struct {
			Text   string            `json:"text"`
			Coding []json.RawMessage `json:"coding"`
		}
		if json.Unmarshal(concept, &c) != nil || (c.Text == "" && len(c.Coding) == 0) {
			return nil, protoErr(CodeInvalidFHIR, "medicationCodeableConcept needs a coding or a text")
		}
	case hasRef:
		if err := checkReference(ref, "medicationReference"); err != nil {
			return nil, err
		}
	default:
		return nil, protoErr(CodeInvalidFHIR, "medication[x] is missing: medicationCodeableConcept or medicationReference")
	}
	authored, ok := str("authoredOn")
	if !ok {
		return nil, protoErr(CodeInvalidFHIR, "authoredOn is missing or not a string")
	}
	if !fhirDateTime.MatchString(authored) {
		return nil, protoErr(CodeInvalidFHIR, "authoredOn %.40q is not a FHIR dateTime (such as 2026-11-21 or 2026-11-21T10:30:00Z)", authored)
	}
	return canonical, nil
}

// checkReference checks a FHIR Reference: an object with a reference, an
// identifier or a display.
func checkReference(raw json.RawMessage, name string) error {
	if raw == nil {
		return protoErr(CodeInvalidFHIR, "%s is missing", name)
	}
	var ref struct {
		Reference  *string          `json:"reference"`
		Identifier *json.RawMessage `json:"identifier"`
		Display    *string          `json:"display"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		return protoErr(CodeInvalidFHIR, "%s is not a FHIR Reference object", name)
	}
	if (ref.Reference == nil || *ref.Reference == "") && ref.Identifier == nil && (ref.Display == nil || *ref.Display == "") {
		return protoErr(CodeInvalidFHIR, "%s has no reference, identifier or display", name)
	}
	return nil
}
