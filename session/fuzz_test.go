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
)

// FuzzDecodeClientMessage: any bytes give a message within its bounds or a
// protocol error with a code, never a panic.
func FuzzDecodeClientMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"join","token":"a.b.c","room":"r1"}`,
		`{"type":"offer","sdp":"v=0\r\n"}`,
		`{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}`,
		`{"type":"fingerprint","fingerprint":"sha-256 00:01"}`,
		`{"type":"prescription","ref":"x","resource":{"resourceType":"MedicationRequest"}}`,
		`{"type":"consent","scope":"recording","granted":true}`,
		`{"type":"leave","reason":"done"}`,
		`{"type":"leave","type":"join"}`, `[]`, `null`, `{"type":7}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := session.DecodeClientMessage(data)
		if err != nil {
			pe, ok := err.(*session.ProtocolError)
			if !ok || pe.Code == "" || pe.Message == "" {
				t.Fatalf("error %v is not a protocol error with code and text", err)
			}
			return
		}
		if len(data) > session.MaxMessageSize || len(m.SDP) > session.MaxSDPSize || len(m.Token) > session.MaxTokenSize || len(m.Ref) > session.MaxRefLength {
			t.Fatalf("message over its bounds accepted: %q", data)
		}
		if m.Type == session.TypeCandidate && m.Candidate == nil {
			t.Fatal("candidate message without a candidate")
		}
	})
}

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
	good, _ := key.Issue("room-1", session.RolePatient, "subject-1", time.Now().Add(time.Hour))
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.eyJyb29tIjoiciJ9.")
	f.Add(good[:len(good)-3])
	f.Fuzz(func(t *testing.T, token string) {
		c, err := key.Parse(token)
		if err != nil {
			if _, ok := err.(*session.ProtocolError); !ok {
				t.Fatalf("error %v is not a protocol error", err)
			}
			return
		}
		if c.Room == "" || (c.Role != session.RolePatient && c.Role != session.RolePhysician) || c.Subject() == "" {
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
