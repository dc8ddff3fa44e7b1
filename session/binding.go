package session

import (
	"encoding/json"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/signalapi"
)

// binding ties a room to the FHIR resources of its patient and physician
// (signalapi.CreateRoomRequest): its prescriptions must be for that
// patient, by that physician. It lives in memory with the room; the
// session record carries only salted commitments of the references.
type binding struct {
	patient, physician string // references as ValidReference takes them; "" when not bound
	salt               notary.Salt
}

// reference returns the reference bound to role, "" for none.
func (b *binding) reference(role signalapi.Role) string {
	if b == nil {
		return ""
	}
	if role == signalapi.RolePatient {
		return b.patient
	}
	return b.physician
}

// commitment returns the record's commitment to role's reference, nil
// when the room binds none.
func (b *binding) commitment(role signalapi.Role) *notary.Commitment {
	ref := b.reference(role)
	if ref == "" {
		return nil
	}
	c := signalapi.ReferenceCommitment(b.salt, ref)
	return &c
}

// check refuses a prescription (its canonical JSON, already checked by
// prescription.Check) whose subject or requester is not the room's.
func (b *binding) check(canonical []byte) error {
	if b == nil {
		return nil
	}
	var rx struct {
		Subject   struct{ Reference string } `json:"subject"`
		Requester struct{ Reference string } `json:"requester"`
	}
	if err := json.Unmarshal(canonical, &rx); err != nil {
		return signalapi.Refuse(signalapi.CodeInvalidResource, "MedicationRequest: %v", err)
	}
	for _, c := range []struct{ path, got, want, who string }{
		{"MedicationRequest.subject.reference", rx.Subject.Reference, b.patient, "patient"},
		{"MedicationRequest.requester.reference", rx.Requester.Reference, b.physician, "physician"},
	} {
		switch {
		case c.want == "":
		case c.got == "":
			return signalapi.Refuse(signalapi.CodeInvalidResource, "%s: missing: this consultation's %s is %s, and a prescription in it must refer to them", c.path, c.who, c.want)
		case !signalapi.SameReference(c.got, c.want):
			return signalapi.Refuse(signalapi.CodeInvalidResource, "%s: is %.80q, but this consultation's %s is %s", c.path, c.got, c.who, c.want)
		}
	}
	return nil
}
