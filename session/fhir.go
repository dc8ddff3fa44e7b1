package session

import (
	"errors"

	"github.com/telenotary/telenotary/session/signalapi"
	"github.com/telenotary/telenotary/session/signalapi/prescription"
)

// CheckMedicationRequest checks a prescription with [prescription.Check],
// the check the peer SDK applies before sending (FHIR R4 validity, the
// prescription rules, and JSON the notary commits unchanged), and returns
// its RFC 8785 canonical bytes, the bytes the server commits to. The error
// is a *signalapi.ProtocolError (invalid_resource) whose message starts
// with the FHIR path of the fault, such as "MedicationRequest.authoredOn:".
func CheckMedicationRequest(resource []byte) ([]byte, error) {
	p, err := checkPrescription(resource)
	if err != nil {
		return nil, err
	}
	return p.Canonical, nil
}

// checkPrescription is CheckMedicationRequest that also returns what the
// notary logs with the prescription: the fills it allows.
func checkPrescription(resource []byte) (*prescription.Prescription, error) {
	p, err := prescription.Parse(resource)
	var perr *prescription.Error
	switch {
	case errors.As(err, &perr):
		return nil, signalapi.Refuse(signalapi.CodeInvalidResource, "%s", perr.Error())
	case err != nil:
		return nil, err
	}
	return p, nil
}
