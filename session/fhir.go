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
	canonical, err := prescription.Check(resource)
	var perr *prescription.Error
	switch {
	case errors.As(err, &perr):
		return nil, signalapi.Refuse(signalapi.CodeInvalidResource, "%s", perr.Error())
	case err != nil:
		return nil, err
	}
	return canonical, nil
}
