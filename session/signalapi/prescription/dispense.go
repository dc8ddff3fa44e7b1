package prescription

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	rcpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	mdpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/medication_dispense_go_proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// DispenseRoot is the FHIR path of a MedicationDispense: every Error.Path
// of CheckDispense starts with it.
const DispenseRoot = "MedicationDispense"

// MaxDispenseSize bounds a MedicationDispense, as a prescription is
// bounded.
const MaxDispenseSize = 48 << 10

// dispenseStatuses are the MedicationDispense.status values of a dispense
// the notary logs as a fill: the medication is being handed over
// (in-progress) or was (completed). A dispense in preparation has not
// given anything out yet, and on-hold, cancelled, stopped, declined,
// entered-in-error and unknown ones give out nothing.
var dispenseStatuses = []string{"in-progress", "completed"}

// CheckDispense checks a pharmacy's record of a dispense, a FHIR R4
// MedicationDispense, and returns its RFC 8785 canonical bytes, the bytes
// its commitment is over. It reads the document as [Check] reads a
// prescription (JSON the notary commits to, then FHIR R4 structure with
// the same library and validation) and requires:
//
//   - resourceType MedicationDispense;
//   - status in-progress or completed (preparation is refused: notarize
//     the dispense when the medication is handed over; on-hold, cancelled,
//     stopped, declined, entered-in-error and unknown are refused too);
//   - a medication: medicationCodeableConcept with a coding or a text, or
//     medicationReference;
//   - subject a reference to a Patient, in the forms Check takes for a
//     prescription's subject;
//   - with status completed, whenHandedOver (when the fill was given);
//   - whenHandedOver not before whenPrepared (FHIR's invariant mdd-1);
//   - each authorizingPrescription, when it names a resource type, a
//     MedicationRequest.
//
// The error is an *Error whose path starts with MedicationDispense.
func CheckDispense(resource []byte) ([]byte, error) {
	if len(resource) > MaxDispenseSize {
		return nil, refuse(DispenseRoot, "the dispense is %d bytes, more than the %d (%d KiB) allowed", len(resource), MaxDispenseSize, MaxDispenseSize>>10)
	}
	canonical, msg, err := readResource(resource, DispenseRoot, "dispense", func(err error) error {
		var e *Error
		if errors.As(err, &e) && e.Path == Root && strings.HasPrefix(e.Reason, "is not a JSON object") {
			return refuse(DispenseRoot, "is not a JSON object: a dispense is a FHIR MedicationDispense, {\"resourceType\": \"MedicationDispense\", …}")
		}
		return rerooted(err)
	})
	if err != nil {
		return nil, err
	}
	cr, ok := msg.(*rcpb.ContainedResource)
	if !ok || cr.GetMedicationDispense() == nil {
		return nil, refuse(DispenseRoot, "not read as a MedicationDispense")
	}
	if err := checkDispenseRules(cr.GetMedicationDispense()); err != nil {
		return nil, err
	}
	return canonical, nil
}

// rerooted moves an *Error found by the prescription's helpers, whose
// paths start with MedicationRequest, under MedicationDispense, and says
// the one required element of a dispense that has a choice of types by
// its FHIR name.
func rerooted(err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	out := *e
	if rest, ok := strings.CutPrefix(out.Path, Root); ok {
		out.Path = DispenseRoot + rest
	}
	out.Reason = strings.ReplaceAll(out.Reason, "FHIR R4 "+Root, "FHIR R4 "+DispenseRoot)
	out.Reason = strings.ReplaceAll(out.Reason, Root+".", DispenseRoot+".")
	if out.Path == DispenseRoot+".medication" && strings.HasPrefix(out.Reason, "missing") {
		out.Path, out.Reason = DispenseRoot+".medication[x]", "missing: give medicationCodeableConcept or medicationReference"
	}
	return &out
}

// checkDispenseRules checks what the FHIR library leaves to us.
func checkDispenseRules(md *mdpb.MedicationDispense) error {
	status := codeName(md.GetStatus().GetValue())
	switch {
	case status == "preparation":
		return refuse(DispenseRoot+".status", "is \"preparation\": nothing is dispensed yet; notarize the dispense when the medication is handed over (\"in-progress\" or \"completed\")")
	case !contains(dispenseStatuses, status):
		return refuse(DispenseRoot+".status", "is %q: a dispense to notarize gives the medication out, so its status is one of %s", status, strings.Join(dispenseStatuses, ", "))
	}
	switch med := md.GetMedication(); {
	case med.GetCodeableConcept() != nil:
		cc := med.GetCodeableConcept()
		if len(cc.GetCoding()) == 0 && cc.GetText().GetValue() == "" {
			return refuse(DispenseRoot+".medicationCodeableConcept", "has neither a coding nor a text: name the medication")
		}
	case med.GetReference() != nil:
		if !hasTarget(med.GetReference()) {
			return refuse(DispenseRoot+".medicationReference", "has no reference, identifier or display")
		}
	default:
		return refuse(DispenseRoot+".medication[x]", "missing: give medicationCodeableConcept or medicationReference")
	}
	if err := checkDispenseSubject(md); err != nil {
		return err
	}
	handed, prepared := md.GetWhenHandedOver(), md.GetWhenPrepared()
	if status == "completed" && handed == nil {
		return refuse(DispenseRoot+".whenHandedOver", "missing: a completed dispense says when the medication was handed over")
	}
	if handed != nil && prepared != nil && handed.GetValueUs() < prepared.GetValueUs() {
		return refuse(DispenseRoot+".whenHandedOver", "is before whenPrepared: the medication cannot be handed over before it is prepared (FHIR invariant mdd-1)")
	}
	for i, r := range md.GetAuthorizingPrescription() {
		if target := referenceTarget(r); target != "" && target != Root {
			return refuse(fmt.Sprintf("%s.authorizingPrescription[%d].reference", DispenseRoot, i), "refers to a %s: a dispense is authorized by a MedicationRequest", target)
		}
	}
	return nil
}

// checkDispenseSubject requires a subject that refers to a Patient.
func checkDispenseSubject(md *mdpb.MedicationDispense) error {
	const path = DispenseRoot + ".subject"
	s := md.GetSubject()
	if s == nil {
		return refuse(path, "missing: a dispense is for a patient")
	}
	if s.GetPatientId() != nil {
		return nil
	}
	if u := s.GetUri().GetValue(); u != "" {
		if patientURL.MatchString(u) {
			return nil
		}
		return refuse(path+".reference", "is %.80q: the subject of a dispense is a Patient (Patient/<id>)", u)
	}
	if f := s.GetFragment().GetValue(); f != "" {
		if containsPatient(md.GetContained(), f) {
			return nil
		}
		return refuse(path+".reference", "is #%.64s, which is not a Patient contained in this MedicationDispense", f)
	}
	if target := referenceTarget(s); target != "" {
		return refuse(path+".reference", "refers to a %s: the subject of a dispense is a Patient (Patient/<id>)", target)
	}
	if s.GetIdentifier() != nil {
		if s.GetType().GetValue() == "Patient" {
			return nil
		}
		return refuse(path+".type", "is %.40q: a subject given by identifier needs \"type\": \"Patient\"", s.GetType().GetValue())
	}
	return refuse(path, "names no Patient: give a reference (Patient/<id>) or an identifier with \"type\": \"Patient\"")
}

// containsPatient reports whether contained holds a Patient whose id is id.
func containsPatient(contained []*anypb.Any, id string) bool {
	for _, a := range contained {
		var cr rcpb.ContainedResource
		if a.UnmarshalTo(&cr) == nil && cr.GetPatient() != nil && cr.GetPatient().GetId().GetValue() == id {
			return true
		}
	}
	return false
}

// NewDispense returns a minimal MedicationDispense of the prescription (a
// MedicationRequest that Check accepts), handed over at when: status
// completed, the prescription's medication and subject (with the contained
// resources they point to), authorizingPrescription the prescription (by
// its id, or else its first identifier, when it has either), and
// whenHandedOver. It is what a pharmacy records when it has nothing more
// to say; the result passes CheckDispense.
func NewDispense(prescription []byte, when time.Time) ([]byte, error) {
	if _, err := Check(prescription); err != nil {
		return nil, fmt.Errorf("the prescription: %w", err)
	}
	var mr map[string]json.RawMessage
	if err := json.Unmarshal(prescription, &mr); err != nil {
		return nil, fmt.Errorf("the prescription: %w", err)
	}
	// Contained resources by id, to copy those the dispense points to.
	var contained []json.RawMessage
	if c, ok := mr["contained"]; ok {
		if err := json.Unmarshal(c, &contained); err != nil {
			return nil, fmt.Errorf("the prescription's contained: %w", err)
		}
	}
	var keep []json.RawMessage
	copyContained := func(ref json.RawMessage) {
		var r struct {
			Reference string `json:"reference"`
		}
		if json.Unmarshal(ref, &r) != nil || !strings.HasPrefix(r.Reference, "#") {
			return
		}
		for _, c := range contained {
			var head struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(c, &head) == nil && head.ID == r.Reference[1:] {
				keep = append(keep, c)
				return
			}
		}
	}
	type member struct {
		name  string
		value any
	}
	var members []member
	add := func(name string, v any) { members = append(members, member{name, v}) }
	add("resourceType", DispenseRoot)
	medName := "medicationCodeableConcept"
	if _, ok := mr[medName]; !ok {
		medName = "medicationReference"
		copyContained(mr[medName])
	}
	copyContained(mr["subject"])
	if len(keep) > 0 {
		add("contained", keep)
	}
	add("status", "completed")
	add(medName, mr[medName])
	add("subject", mr["subject"])
	var id string
	var identifiers []json.RawMessage
	json.Unmarshal(mr["id"], &id)
	json.Unmarshal(mr["identifier"], &identifiers)
	switch {
	case id != "":
		add("authorizingPrescription", []map[string]string{{"reference": Root + "/" + id}})
	case len(identifiers) > 0:
		add("authorizingPrescription", []map[string]any{{"type": Root, "identifier": identifiers[0]}})
	}
	add("whenHandedOver", when.UTC().Truncate(time.Second).Format(time.RFC3339))

	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			buf.WriteByte(',')
		}
		name, _ := json.Marshal(m.name)
		value, err := json.Marshal(m.value)
		if err != nil {
			return nil, err
		}
		buf.Write(name)
		buf.WriteByte(':')
		buf.Write(value)
	}
	buf.WriteByte('}')
	var out bytes.Buffer
	if err := json.Indent(&out, buf.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	if _, err := CheckDispense(out.Bytes()); err != nil {
		return nil, fmt.Errorf("the dispense made from the prescription: %w", err)
	}
	return out.Bytes(), nil
}
