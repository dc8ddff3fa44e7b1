// Package fhirdata holds the HL7 FHIR R4 example resources (CC0; see
// README.md in this directory) that the tests notarize and the demo
// prescribes.
package fhirdata

import (
	"embed"
	"io/fs"
	"strings"
)

//go:embed *.json
var files embed.FS

// MedicationRequests returns the MedicationRequest examples, by file name,
// in name order.
func MedicationRequests() (names []string, docs [][]byte) {
	entries, _ := fs.ReadDir(files, ".") // sorted by name
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "MedicationRequest-") {
			continue
		}
		data, err := files.ReadFile(e.Name())
		if err != nil {
			panic(err) // embedded: cannot fail
		}
		names, docs = append(names, e.Name()), append(docs, data)
	}
	return names, docs
}
