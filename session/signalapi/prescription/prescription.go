// Package prescription is the one check of a prescription, a FHIR R4
// MedicationRequest, that the signalling server applies before it
// notarizes one and the peer SDK applies before it sends one. It lives
// beside the protocol's contract (signalapi) so that an app linking the SDK
// links no server package.
//
// [Check] reads the document in three passes:
//
//  1. JSON as the notary commits it: at most signalapi.MaxPrescriptionSize
//     bytes, no byte order mark, valid UTF-8, no repeated member, and no
//     number whose value RFC 8785 (JCS) canonicalization would change
//     (12345678901234567890 becomes 12345678901234567000; 2.50 becomes 2.5,
//     the same value, which is fine).
//  2. FHIR R4 structure, by github.com/google/fhir/go's R4 jsonformat
//     unmarshaller with its validation: element names, types, cardinalities,
//     primitive formats (a date such as 2026-02-31 is refused), required
//     elements and value sets of required bindings.
//  3. What a pharmacy needs of a new prescription, which FHIR leaves open:
//     see [Check].
//
// Every refusal is an *[Error] naming the FHIR path of the element at fault,
// such as MedicationRequest.authoredOn.
package prescription

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
	d4pb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	rcpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	mrpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/medication_request_go_proto"
	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/signalapi"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Root is the FHIR path of the resource itself; every Error.Path starts
// with it.
const Root = "MedicationRequest"

// statuses are the MedicationRequest.status values of a prescription the
// notary accepts: one that is in force (active), paused (on-hold) or already
// dispensed in full (completed, as several HL7 examples are). A draft is
// not yet a prescription, and cancelled, stopped, entered-in-error and
// unknown ones are not prescriptions a pharmacy may dispense.
var statuses = []string{"active", "on-hold", "completed"}

// intents are the MedicationRequest.intent values accepted: the orders. A
// proposal, plan or option is a suggestion, not an authorization to
// dispense.
var intents = []string{"order", "original-order", "reflex-order", "filler-order", "instance-order"}

// Error is a refused prescription: the FHIR path of the element at fault
// and why. errors.Is matches it against signalapi.CodeInvalidResource, the
// code the server answers it with.
type Error struct {
	// Path is the FHIR path of the element, such as
	// MedicationRequest.dosageInstruction[0].timing.
	Path string
	// Reason says what is wrong, for a person.
	Reason string
	// Err is the cause, when another library found the fault.
	Err error
}

// Error returns the path and the reason.
func (e *Error) Error() string { return e.Path + ": " + e.Reason }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is signalapi.CodeInvalidResource.
func (e *Error) Is(target error) bool {
	c, ok := target.(signalapi.Code)
	return ok && c == signalapi.CodeInvalidResource
}

func refuse(path, format string, args ...any) *Error {
	return &Error{Path: path, Reason: fmt.Sprintf(format, args...)}
}

// unmarshaller is the R4 unmarshaller with validation; it holds no state
// between calls.
var unmarshaller = sync.OnceValues(func() (*jsonformat.Unmarshaller, error) {
	return jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
})

// Check checks a prescription and returns its RFC 8785 canonical bytes,
// the bytes the notary commits to. Besides JSON and FHIR R4 validity (see
// the package documentation) it requires:
//
//   - resourceType MedicationRequest;
//   - status active, on-hold or completed (draft is refused: finish the
//     prescription and make it active; cancelled, stopped,
//     entered-in-error and unknown are refused too);
//   - intent an order: order, original-order, reflex-order, filler-order
//     or instance-order (proposal, plan and option are refused);
//   - a medication: medicationCodeableConcept with a coding or a text, or
//     medicationReference;
//   - not doNotPerform (an order not to give a medication);
//   - subject a reference to a Patient: Patient/<id>, a URL ending in
//     /Patient/<id>, #<id> of a contained Patient, or an identifier with
//     type Patient;
//   - a requester (reference, identifier or display), a reference to one
//     of the resource types FHIR allows for it;
//   - authoredOn, a real date (FHIR dateTime);
//   - dispenseRequest.numberOfRepeatsAllowed, when given, at most
//     notary.MaxFills - 1: the prescription's fills (the repeats and the
//     first dispense) are what the notary's log counts.
//
// The error is an *Error.
func Check(resource []byte) ([]byte, error) {
	p, err := Parse(resource)
	if err != nil {
		return nil, err
	}
	return p.Canonical, nil
}

// Prescription is a prescription [Parse] accepted.
type Prescription struct {
	// Canonical is its RFC 8785 canonical form, the bytes the notary
	// commits to.
	Canonical []byte
	fills     int
}

// Fills is the number of dispenses the prescription allows:
// dispenseRequest.numberOfRepeatsAllowed + 1, or 1 when it is absent. It
// is between 1 and notary.MaxFills, the allowance the notary logs with
// the prescription (notary.NewAllowance).
func (p *Prescription) Fills() int { return p.fills }

// readResource reads a FHIR R4 resource of type root as the notary will
// commit to it: JSON the notary takes (checkJSON, which also finds the
// resourceType), its canonical bytes, resourceType root, then the FHIR library's structure and validation. The
// errors of the checks shared with prescriptions, whose paths start with
// MedicationRequest, go through reroot; what names the resource ("a
// prescription") is what.
func readResource(resource []byte, root, what string, reroot func(error) error) ([]byte, proto.Message, error) {
	top, err := scanJSON(resource, true)
	if err != nil {
		return nil, nil, reroot(err)
	}
	canonical, err := canonicalJSON(resource)
	if err != nil { // checkJSON accepted it: cannot happen, but never commit what the notary refuses
		return nil, nil, &Error{Path: root, Reason: "not canonicalizable JSON: " + err.Error(), Err: err}
	}
	rt := top.resourceType
	if !top.hasResourceType {
		return nil, nil, refuse(root+".resourceType", "missing or not a string: a %s is a JSON object with \"resourceType\": %q", what, root)
	}
	if rt != root {
		return nil, nil, refuse(root+".resourceType", "is %.40q, not %q", rt, root)
	}
	u, err := unmarshaller()
	if err != nil {
		return nil, nil, fmt.Errorf("prescription: FHIR R4 unmarshaller: %w", err)
	}
	var rep reporter
	msg, err := u.UnmarshalWithErrorReporter(resource, &rep)
	if err != nil {
		return nil, nil, reroot(fhirError([]error{err}))
	}
	if len(rep.errs) > 0 {
		return nil, nil, reroot(fhirError(rep.errs))
	}
	return canonical, msg, nil
}

// Parse checks a prescription as [Check] does and returns it with what
// the notary needs of it besides its canonical bytes. The error is an
// *Error.
func Parse(resource []byte) (*Prescription, error) {
	if len(resource) > signalapi.MaxPrescriptionSize {
		return nil, refuse(Root, "the prescription is %d bytes, more than the %d (%d KiB) allowed", len(resource), signalapi.MaxPrescriptionSize, signalapi.MaxPrescriptionSize>>10)
	}
	canonical, msg, err := readResource(resource, Root, "prescription", func(err error) error { return err })
	if err != nil {
		return nil, err
	}
	cr, ok := msg.(*rcpb.ContainedResource)
	if !ok || cr.GetMedicationRequest() == nil {
		return nil, refuse(Root, "not read as a MedicationRequest")
	}
	mr := cr.GetMedicationRequest()
	if err := checkRules(mr); err != nil {
		return nil, err
	}
	fills, err := fillsOf(mr)
	if err != nil {
		return nil, err
	}
	return &Prescription{Canonical: canonical, fills: fills}, nil
}

// fillsOf is the number of dispenses a prescription allows: its repeats
// and the first, at most notary.MaxFills.
func fillsOf(mr *mrpb.MedicationRequest) (int, error) {
	const path = Root + ".dispenseRequest.numberOfRepeatsAllowed"
	n := mr.GetDispenseRequest().GetNumberOfRepeatsAllowed()
	if n == nil {
		return 1, nil
	}
	if repeats := uint64(n.GetValue()); repeats > notary.MaxFills-1 {
		return 0, refuse(path, "is %d: a prescription allows at most %d repeats (%d dispenses in all), the most the notary counts", repeats, notary.MaxFills-1, notary.MaxFills)
	}
	return int(n.GetValue()) + 1, nil
}

// checkRules checks what the FHIR library leaves to us.
func checkRules(mr *mrpb.MedicationRequest) error {
	status := codeName(mr.GetStatus().GetValue())
	switch {
	case status == "draft":
		return refuse(Root+".status", "is \"draft\": a draft is not a prescription yet; finish it and set status to \"active\"")
	case !contains(statuses, status):
		return refuse(Root+".status", "is %q: a prescription to notarize is one of %s", status, strings.Join(statuses, ", "))
	}
	intent := codeName(mr.GetIntent().GetValue())
	switch {
	case intent == "proposal" || intent == "plan" || intent == "option":
		return refuse(Root+".intent", "is %q: a %s is not an order a pharmacy may dispense; a prescription's intent is \"order\"", intent, intent)
	case !contains(intents, intent):
		return refuse(Root+".intent", "is %q: a prescription's intent is one of %s", intent, strings.Join(intents, ", "))
	}
	if mr.GetDoNotPerform().GetValue() {
		return refuse(Root+".doNotPerform", "is true: this MedicationRequest orders that the medication not be given, which is not a prescription")
	}
	switch med := mr.GetMedication(); {
	case med.GetCodeableConcept() != nil:
		cc := med.GetCodeableConcept()
		if len(cc.GetCoding()) == 0 && cc.GetText().GetValue() == "" {
			return refuse(Root+".medicationCodeableConcept", "has neither a coding nor a text: name the medication")
		}
	case med.GetReference() != nil:
		if !hasTarget(med.GetReference()) {
			return refuse(Root+".medicationReference", "has no reference, identifier or display")
		}
	default:
		return refuse(Root+".medication[x]", "missing: give medicationCodeableConcept or medicationReference")
	}
	if err := checkSubject(mr); err != nil {
		return err
	}
	if mr.GetRequester() == nil {
		return refuse(Root+".requester", "missing: a prescription names who prescribes it")
	}
	if !hasTarget(mr.GetRequester()) {
		return refuse(Root+".requester", "has no reference, identifier or display")
	}
	if mr.GetAuthoredOn() == nil {
		return refuse(Root+".authoredOn", "missing: a prescription carries the date it was written")
	}
	return nil
}

// patientURL is an absolute or relative literal reference to a Patient,
// possibly of one version.
var patientURL = regexp.MustCompile(`(^|/)Patient/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?$`)

// checkSubject requires a subject that refers to a Patient.
func checkSubject(mr *mrpb.MedicationRequest) error {
	const path = Root + ".subject"
	s := mr.GetSubject()
	if s == nil {
		return refuse(path, "missing: a prescription is for a patient")
	}
	if s.GetPatientId() != nil {
		return nil
	}
	if u := s.GetUri().GetValue(); u != "" {
		if patientURL.MatchString(u) {
			return nil
		}
		return refuse(path+".reference", "is %.80q: the subject of a prescription is a Patient (Patient/<id>)", u)
	}
	if f := s.GetFragment().GetValue(); f != "" {
		if containedPatient(mr, f) {
			return nil
		}
		return refuse(path+".reference", "is #%.64s, which is not a Patient contained in this MedicationRequest", f)
	}
	if target := referenceTarget(s); target != "" {
		return refuse(path+".reference", "refers to a %s: the subject of a prescription is a Patient (Patient/<id>)", target)
	}
	if s.GetIdentifier() != nil {
		if s.GetType().GetValue() == "Patient" {
			return nil
		}
		return refuse(path+".type", "is %.40q: a subject given by identifier needs \"type\": \"Patient\"", s.GetType().GetValue())
	}
	return refuse(path, "names no Patient: give a reference (Patient/<id>) or an identifier with \"type\": \"Patient\"")
}

// referenceTarget names the resource type a typed relative reference
// points to (such as Practitioner for Practitioner/1), "" for none.
func referenceTarget(r *d4pb.Reference) string {
	m := r.ProtoReflect()
	oneof := m.Descriptor().Oneofs().ByName("reference")
	if oneof == nil {
		return ""
	}
	f := m.WhichOneof(oneof)
	if f == nil {
		return ""
	}
	name := string(f.Name()) // such as practitioner_id
	if !strings.HasSuffix(name, "_id") {
		return ""
	}
	var b strings.Builder
	for _, part := range strings.Split(strings.TrimSuffix(name, "_id"), "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

// containedPatient reports whether mr contains a Patient whose id is id.
func containedPatient(mr *mrpb.MedicationRequest, id string) bool {
	for _, a := range mr.GetContained() {
		var cr rcpb.ContainedResource
		if a.UnmarshalTo(&cr) == nil && cr.GetPatient() != nil && cr.GetPatient().GetId().GetValue() == id {
			return true
		}
	}
	return false
}

// hasTarget reports whether a Reference says what it refers to.
func hasTarget(r *d4pb.Reference) bool {
	m := r.ProtoReflect()
	if oneof := m.Descriptor().Oneofs().ByName("reference"); oneof != nil && m.WhichOneof(oneof) != nil {
		return true
	}
	return r.GetIdentifier() != nil || r.GetDisplay().GetValue() != ""
}

// codeName turns a FHIR code enum value (ON_HOLD) into its FHIR code
// (on-hold).
func codeName(v protoreflect.Enum) string {
	d := v.Descriptor().Values().ByNumber(v.Number())
	if d == nil {
		return ""
	}
	return strings.ToLower(strings.ReplaceAll(string(d.Name()), "_", "-"))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var (
	missingField   = regexp.MustCompile(`^missing required field "([A-Za-z0-9]+)"`)
	multipleValues = regexp.MustCompile(`^cannot accept multiple values for ([A-Za-z0-9]+) field$`)
	libraryPath    = regexp.MustCompile(`^error at "([^"]*)": (.*)$`)
)

// reporter collects the faults the FHIR library's validation finds. A
// reference to a resource type the element does not allow is a fault only
// for requester: subject is checked by checkSubject (a Patient, where FHIR
// also allows a Group), and elsewhere it is tolerated, for HL7's own R4
// examples refer to a Practitioner as dispenseRequest.performer.
type reporter struct{ errs []error }

// ReportValidationError keeps a fault.
func (r *reporter) ReportValidationError(path string, err error) error {
	if strings.Contains(err.Error(), "invalid reference to a ") && path != Root+".requester" {
		return nil
	}
	r.errs = append(r.errs, err)
	return nil
}

// ReportValidationWarning ignores a warning.
func (r *reporter) ReportValidationWarning(string, error) error { return nil }

// fhirError turns the FHIR library's errors into an *Error naming the
// path of the first. The library's errors carry the path and a message
// without the document's content; an unknown element's name is added from
// its diagnostics (a member name, not a value).
func fhirError(errs []error) error {
	var all []error
	for _, err := range errs {
		if list, ok := asList(err); ok {
			all = append(all, list...)
		} else {
			all = append(all, err)
		}
	}
	first := all[0]
	path, reason := Root, first.Error()
	if m := libraryPath.FindStringSubmatch(reason); m != nil {
		if m[1] != "" {
			path = m[1]
		}
		reason = m[2]
	}
	if m := multipleValues.FindStringSubmatch(reason); m != nil {
		path += "." + m[1] + "[x]"
		reason = "is given in two forms: give one (such as " + m[1] + "CodeableConcept or " + m[1] + "Reference)"
	} else if reason == "unknown field" {
		if name, err := strconv.Unquote(diagnostics(first)); err == nil && name != "" {
			path += "." + name
			reason = "is not an element of FHIR R4 " + lastType(path)
		}
	} else if m := missingField.FindStringSubmatch(reason); m != nil {
		path += "." + m[1]
		reason = "missing: FHIR R4 requires it"
	}
	if plain, ok := plainReasons[reason]; ok {
		reason = plain
	}
	if len(all) > 1 {
		reason += fmt.Sprintf(" (and %d more faults)", len(all)-1)
	}
	return &Error{Path: path, Reason: reason, Err: errors.Join(errs...)}
}

// plainReasons say some of the library's terse reasons for a person.
var plainReasons = map[string]string{
	"expected datetime":  "is not a real FHIR dateTime (such as 2026-11-21 or 2026-11-21T10:30:00Z)",
	"expected date":      "is not a real FHIR date (such as 2026-11-21)",
	"code type mismatch": "is not a code of the FHIR R4 value set of this element",
	"invalid JSON":       "is not of the JSON type FHIR R4 gives this element",
	"expected array":     "is not an array, as FHIR R4 gives this element",
	"expected decimal":   "is not a JSON number, as FHIR R4 gives this element",
	"expected code":      "is not a FHIR code (a JSON string without leading or trailing spaces)",
}

// lastType names what an unknown element is not part of, for the message.
func lastType(path string) string {
	parent := path[:strings.LastIndexByte(path, '.')]
	if parent == Root {
		return Root
	}
	return parent
}

// asList unpacks the library's list of errors (an unexported slice type
// of errors).
func asList(err error) ([]error, bool) {
	v := reflect.ValueOf(err)
	if v.Kind() != reflect.Slice {
		return nil, false
	}
	out := make([]error, 0, v.Len())
	for i := range v.Len() {
		e, ok := v.Index(i).Interface().(error)
		if !ok {
			return nil, false
		}
		out = append(out, e)
	}
	return out, true
}

// diagnostics is the Diagnostics field of the library's error (its
// internal UnmarshalError type), "" when there is none.
func diagnostics(err error) string {
	v := reflect.ValueOf(err)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return ""
	}
	if f := v.FieldByName("Diagnostics"); f.IsValid() && f.Kind() == reflect.String {
		return f.String()
	}
	return ""
}
