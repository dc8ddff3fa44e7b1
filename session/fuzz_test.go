package session_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session"
	"github.com/telenotary/telenotary/session/signalapi"
)

// FuzzCheckSDP: an accepted SDP carries the fingerprint returned.
func FuzzCheckSDP(f *testing.F) {
	sdp := "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 " +
		strings.Repeat("AB:", 31) + "AB\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
	f.Add(sdp)
	f.Add(strings.Replace(sdp, "sha-256", "sha-1", 1))
	f.Add("v=0\r\n")
	f.Fuzz(func(t *testing.T, text string) {
		fp, err := session.CheckSDP(text)
		if err != nil {
			return
		}
		hexPart := strings.TrimPrefix(fp.String(), "sha-256 ")
		if !strings.Contains(strings.ToUpper(text), hexPart) {
			t.Fatalf("fingerprint %s not in the SDP", fp)
		}
	})
}

// FuzzToken: no token verifies unless signed with the key; a valid one
// has valid claims.
func FuzzToken(f *testing.F) {
	key, _ := session.NewTokenKey(bytes.Repeat([]byte{7}, 32))
	good, _ := key.Issue("room-1", signalapi.RolePatient, "subject-1", time.Now().Add(time.Hour))
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.eyJyb29tIjoiciJ9.")
	f.Add(good[:len(good)-3])
	f.Fuzz(func(t *testing.T, token string) {
		c, err := key.Parse(token)
		if err != nil {
			if _, ok := err.(*signalapi.ProtocolError); !ok {
				t.Fatalf("error %v is not a protocol error", err)
			}
			return
		}
		if c.Room == "" || (c.Role != signalapi.RolePatient && c.Role != signalapi.RolePhysician) || c.Subject() == "" {
			t.Fatalf("accepted token with claims %+v", c)
		}
	})
}

// FuzzMedicationRequest: an accepted resource is returned canonical.
func FuzzMedicationRequest(f *testing.F) {
	files, _ := filepath.Glob("../notary/fhirdata/*.json")
	for _, file := range files {
		data, _ := os.ReadFile(file)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		canonical, err := session.CheckMedicationRequest(data)
		if err != nil {
			return
		}
		again, err := notary.CanonicalJSON(canonical)
		if err != nil || !bytes.Equal(again, canonical) {
			t.Fatalf("accepted resource is not canonical: %v", err)
		}
		if !bytes.Contains(canonical, []byte(`"resourceType":"MedicationRequest"`)) {
			t.Fatal("accepted a resource that is not a MedicationRequest")
		}
	})
}

// TestMedicationRequestExamples: every HL7 MedicationRequest example
// passes; every other resource type is refused.
func TestMedicationRequestExamples(t *testing.T) {
	files, _ := filepath.Glob("../notary/fhirdata/*.json")
	if len(files) < 26 {
		t.Fatalf("%d FHIR examples", len(files))
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		_, err = session.CheckMedicationRequest(data)
		isRx := strings.HasPrefix(filepath.Base(file), "MedicationRequest-")
		if isRx && err != nil {
			t.Errorf("%s: %v", filepath.Base(file), err)
		}
		if !isRx && err == nil {
			t.Errorf("%s accepted as a MedicationRequest", filepath.Base(file))
		}
	}
}
