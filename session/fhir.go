package session

import (
	"regexp"
	"slices"

	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/signalapi"
)

// FHIR R4 value sets of MedicationRequest.status and .intent.
var (
	medicationRequestStatus = []string{"active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft", "unknown"}
	medicationRequestIntent = []string{"proposal", "plan", "order", "original-order", "reflex-order", "filler-order", "instance-order", "option"}
	// fhirDateTime is FHIR's dateTime: a year, year-month, date, or date and
	// time with seconds and a zone.
	fhirDateTime = regexp.MustCompile(`^([0-9]{4})(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$`)
)

// medicationRequest holds the members of a MedicationRequest that the
// server checks, each kept raw so that a member of the wrong type is
// reported by name rather than failing the whole decode. It is decoded
// with encoding/json/v2's rules (github.com/go-json-experiment/json):
// member names match exactly, as FHIR's do.
type medicationRequest struct {
	ResourceType jsontext.Value `json:"resourceType"`
	Status       jsontext.Value `json:"status"`
	Intent       jsontext.Value `json:"intent"`
	Subject      jsontext.Value `json:"subject"`
	Requester    jsontext.Value `json:"requester"`
	Concept      jsontext.Value `json:"medicationCodeableConcept"`
	Reference    jsontext.Value `json:"medicationReference"`
	AuthoredOn   jsontext.Value `json:"authoredOn"`
}

// CheckMedicationRequest checks what the notary needs of a FHIR R4
// MedicationRequest (resourceType, status, intent, subject, requester,
// exactly one medication[x], authoredOn) and returns its RFC 8785
// canonical bytes, the bytes the server commits to. It reads the document
// twice: once to canonicalize it, once to check those members of the
// canonical form. The error is a *signalapi.ProtocolError
// (invalid_resource) naming the field.
func CheckMedicationRequest(resource []byte) ([]byte, error) {
	if len(resource) > signalapi.MaxPrescriptionSize {
		return nil, invalid("MedicationRequest is %d bytes, more than %d", len(resource), signalapi.MaxPrescriptionSize)
	}
	canonical, err := notary.CanonicalJSON(resource)
	if err != nil {
		return nil, invalid("resource is not canonicalizable JSON: %v", err)
	}
	var r medicationRequest
	if err := json.Unmarshal(canonical, &r); err != nil || canonical[0] != '{' {
		return nil, invalid("resource is not a JSON object")
	}
	if rt, _ := jsonString(r.ResourceType); rt != "MedicationRequest" {
		return nil, invalid("resourceType is %.40q, not \"MedicationRequest\"", rt)
	}
	for _, f := range []struct {
		name string
		raw  jsontext.Value
		set  []string
	}{{"status", r.Status, medicationRequestStatus}, {"intent", r.Intent, medicationRequestIntent}} {
		v, ok := jsonString(f.raw)
		if !ok {
			return nil, invalid("%s is missing or not a string", f.name)
		}
		if !slices.Contains(f.set, v) {
			return nil, invalid("%s %.40q is not one of %v", f.name, v, f.set)
		}
	}
	if err := checkReference(r.Subject, "subject"); err != nil {
		return nil, err
	}
	if err := checkReference(r.Requester, "requester"); err != nil {
		return nil, err
	}
	if err := checkMedication(r.Concept, r.Reference); err != nil {
		return nil, err
	}
	authored, ok := jsonString(r.AuthoredOn)
	if !ok {
		return nil, invalid("authoredOn is missing or not a string")
	}
	if !fhirDateTime.MatchString(authored) {
		return nil, invalid("authoredOn %.40q is not a FHIR dateTime (such as 2026-11-21 or 2026-11-21T10:30:00Z)", authored)
	}
	return canonical, nil
}

// checkMedication checks medication[x]: exactly one of a CodeableConcept
// with a coding or a text, and a Reference.
func checkMedication(concept, ref jsontext.Value) error {
	switch {
	case concept != nil && ref != nil:
		return invalid("medication[x] is given twice: medicationCodeableConcept and medicationReference")
	case concept != nil:
		var c struct {
			Text   string           `json:"text"`
			Coding []jsontext.Value `json:"coding"`
		}
		if json.Unmarshal(concept, &c) != nil || (c.Text == "" && len(c.Coding) == 0) {
			return invalid("medicationCodeableConcept needs a coding or a text")
		}
		return nil
	case ref != nil:
		return checkReference(ref, "medicationReference")
	}
	return invalid("medication[x] is missing: medicationCodeableConcept or medicationReference")
}

// checkReference checks a FHIR Reference: an object with a reference, an
// identifier or a display.
func checkReference(raw jsontext.Value, name string) error {
	if raw == nil {
		return invalid("%s is missing", name)
	}
	var ref struct {
		Reference  *string        `json:"reference"`
		Identifier jsontext.Value `json:"identifier"`
		Display    *string        `json:"display"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		return invalid("%s is not a FHIR Reference object", name)
	}
	if (ref.Reference == nil || *ref.Reference == "") && (ref.Identifier == nil || string(ref.Identifier) == "null") && (ref.Display == nil || *ref.Display == "") {
		return invalid("%s has no reference, identifier or display", name)
	}
	return nil
}

// jsonString decodes a raw JSON string; ok is false for anything else.
func jsonString(raw jsontext.Value) (s string, ok bool) {
	return s, raw != nil && json.Unmarshal(raw, &s) == nil
}

func invalid(format string, args ...any) error {
	return signalapi.Refuse(signalapi.CodeInvalidResource, format, args...)
}
