package signalapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/signalapi"
)

// TestDecodeClientMessage: each kind of bad message is refused with its
// code and a sentence that names the field; good ones decode whole.
func TestDecodeClientMessage(t *testing.T) {
	fp := strings.TrimSuffix(strings.Repeat("AB:", 32), ":")
	for _, tc := range []struct {
		name  string
		in    string
		code  signalapi.Code // "" for a message that decodes
		names string         // what the error message must contain
		fatal bool
	}{
		{"join", `{"type":"join","token":"a.b.c","room":"r1"}`, "", "", false},
		{"resume", `{"type":"join","ticket":"r1.abc","room":"r1"}`, "", "", false},
		{"token and ticket", `{"type":"join","token":"a.b.c","ticket":"r1.abc"}`, signalapi.CodeBadMessage, "ticket", true},
		{"ticket too long", `{"type":"join","ticket":"` + strings.Repeat("a", signalapi.MaxTicketSize+1) + `"}`, signalapi.CodeTicketInvalid, "ticket", true},
		{"ticket not printable", `{"type":"join","ticket":"r1.\u0001"}`, signalapi.CodeTicketInvalid, "ticket", true},
		{"offer", `{"type":"offer","sdp":"v=0"}`, "", "", false},
		{"fingerprint", `{"type":"fingerprint","fingerprint":"sha-256 ` + fp + `"}`, "", "", false},
		{"prescription", `{"type":"prescription","ref":"r","resource":{"a":[1,{"b":2}]}}`, "", "", false},
		{"not json", `not json`, signalapi.CodeBadMessage, "JSON", false},
		{"not an object", `[]`, signalapi.CodeBadMessage, "object", false},
		{"no type", `{"sdp":"x"}`, signalapi.CodeBadMessage, `"type"`, false},
		{"type not a string", `{"type":7}`, signalapi.CodeBadMessage, `"type"`, false},
		{"type twice", `{"type":"leave","type":"join"}`, signalapi.CodeBadMessage, `"type"`, false},
		{"unknown type", `{"type":"shout"}`, signalapi.CodeUnknownType, "shout", false},
		{"field of another type", `{"type":"offer","sdp":"x","token":""}`, signalapi.CodeBadMessage, `"token"`, false},
		{"server's field", `{"type":"offer","sdp":"x","bundle":{}}`, signalapi.CodeBadMessage, `"bundle"`, false},
		{"unknown field first", `{"nurse":1,"type":"offer","sdp":"x"}`, signalapi.CodeBadMessage, `"nurse"`, false},
		{"wrong field type", `{"type":"offer","sdp":7}`, signalapi.CodeBadMessage, `"sdp"`, false},
		{"nested unknown field", `{"type":"candidate","candidate":{"candidate":"","x":1}}`, signalapi.CodeBadMessage, "candidate.x", false},
		{"empty sdp", `{"type":"answer","sdp":""}`, signalapi.CodeBadSDP, "sdp", false},
		{"bad candidate", `{"type":"candidate","candidate":{"candidate":"hello"}}`, signalapi.CodeBadCandidate, "candidate:", false},
		{"bad fingerprint", `{"type":"fingerprint","fingerprint":"sha-256 00:01"}`, signalapi.CodeBadFingerprint, "fingerprint", false},
		{"no token", `{"type":"join"}`, signalapi.CodeTokenInvalid, "token", true},
		{"bad room", `{"type":"join","token":"t","room":"a b"}`, signalapi.CodeBadMessage, "room", true},
		{"no resource", `{"type":"prescription","ref":"r","resource":null}`, signalapi.CodeInvalidResource, "resource", false},
		{"resource key twice", `{"type":"prescription","resource":{"status":"a","status":"b"}}`, signalapi.CodeInvalidResource, "MedicationRequest.status:", false},
		{"ref not printable", `{"type":"prescription","ref":"\u0001","resource":{}}`, signalapi.CodeBadMessage, "ref", false},
		{"no granted", `{"type":"consent","scope":"recording"}`, signalapi.CodeBadMessage, "granted", false},
		{"bad scope", `{"type":"consent","scope":"Recording!","granted":true}`, signalapi.CodeBadMessage, "scope", false},
		{"invalid UTF-8", "{\"type\":\"leave\",\"reason\":\"\xff\"}", signalapi.CodeBadMessage, "", false},
		{"revoke", `{"type":"revoke","commitment":"` + strings.Repeat("0a", 32) + `"}`, "", "", false},
		{"revoke without commitment", `{"type":"revoke"}`, signalapi.CodeBadMessage, "commitment", false},
		{"revoke short commitment", `{"type":"revoke","commitment":"0a0b"}`, signalapi.CodeBadMessage, "commitment", false},
		{"revoke upper-case commitment", `{"type":"revoke","commitment":"` + strings.Repeat("0A", 32) + `"}`, signalapi.CodeBadMessage, "commitment", false},
		{"revoke with a ref", `{"type":"revoke","commitment":"` + strings.Repeat("0a", 32) + `","ref":"x"}`, signalapi.CodeBadMessage, `"ref"`, false},
		{"revoke commitment not a string", `{"type":"revoke","commitment":7}`, signalapi.CodeBadMessage, `"commitment"`, false},
		{"server's receipt", `{"type":"revoke","commitment":"` + strings.Repeat("0a", 32) + `","receipt":{}}`, signalapi.CodeBadMessage, `"receipt"`, false},
		{"too large", `{"type":"leave","reason":"` + strings.Repeat("a", signalapi.MaxMessageSize) + `"}`, signalapi.CodeTooLarge, "bytes", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := signalapi.DecodeClientMessage([]byte(tc.in))
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var pe *signalapi.ProtocolError
			if !errors.As(err, &pe) || !errors.Is(err, tc.code) || pe.Fatal != tc.fatal || !strings.Contains(pe.Message, tc.names) {
				t.Fatalf("got %+v, %v; want %s (fatal %v) naming %q", m, err, tc.code, tc.fatal, tc.names)
			}
		})
	}
}

// TestMessageRoundTrip: what a client encodes of each client type decodes
// to the same message.
func TestMessageRoundTrip(t *testing.T) {
	fp := signalapi.FingerprintOf([]byte("certificate"))
	yes := true
	mid := "0"
	for _, m := range []signalapi.Message{
		{Type: signalapi.TypeJoin, Token: "a.b.c", Room: "room-1"},
		{Type: signalapi.TypeJoin, Ticket: "room-1.abc", Room: "room-1"},
		{Type: signalapi.TypeCandidate, Candidate: &signalapi.Candidate{Candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host", SDPMid: &mid}},
		{Type: signalapi.TypeFingerprint, Fingerprint: &fp},
		{Type: signalapi.TypePrescription, Ref: "rx-1", Resource: json.RawMessage(`{"resourceType":"MedicationRequest"}`)},
		{Type: signalapi.TypeConsent, Scope: "recording", Granted: &yes},
		{Type: signalapi.TypeLeave, Reason: "done"},
		{Type: signalapi.TypeRevoke, Commitment: strings.Repeat("0a", 32)},
	} {
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := signalapi.DecodeClientMessage(data)
		if err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		again, _ := json.Marshal(got)
		if !bytes.Equal(again, data) {
			t.Fatalf("%s decoded as %s", data, again)
		}
	}
}

// TestServerMessageKinds: a receipt's kind travels by name.
func TestServerMessageKinds(t *testing.T) {
	data, err := json.Marshal(signalapi.Message{Type: signalapi.TypeReceipt, Kind: notary.KindSessionStart, Role: signalapi.RolePatient})
	if err != nil || !bytes.Contains(data, []byte(`"kind":"session-start"`)) {
		t.Fatalf("%s %v", data, err)
	}
	var m signalapi.Message
	if err := json.Unmarshal(data, &m); err != nil || m.Kind != notary.KindSessionStart || m.Role != signalapi.RolePatient {
		t.Fatalf("%+v %v", m, err)
	}
	if data, _ := json.Marshal(signalapi.Message{Type: signalapi.TypeJoined}); bytes.Contains(data, []byte("kind")) {
		t.Fatalf("a message without a kind: %s", data)
	}
}

// TestRefusedResourceKeepsRef: a prescription refused while the message is
// decoded (a repeated member, too large) still gives its ref, wherever it
// stands in the message, so that the refusal names the prescription; a ref
// that is not a valid one is not echoed.
func TestRefusedResourceKeepsRef(t *testing.T) {
	for _, tc := range []struct{ in, ref string }{
		{`{"type":"prescription","ref":"rx-1","resource":{"status":"a","status":"b"}}`, "rx-1"},
		{`{"resource":{"status":"a","status":"b"},"type":"prescription","ref":"rx-2"}`, "rx-2"},
		{`{"type":"prescription","ref":"rx-3","resource":{"note":"` + strings.Repeat("a", signalapi.MaxPrescriptionSize) + `"}}`, "rx-3"},
		{`{"type":"prescription","ref":"` + strings.Repeat("r", signalapi.MaxRefLength+1) + `","resource":{"a":1,"a":2}}`, ""},
	} {
		m, err := signalapi.DecodeClientMessage([]byte(tc.in))
		if !errors.Is(err, signalapi.CodeInvalidResource) || m == nil || m.Ref != tc.ref {
			t.Errorf("%.60s: %+v %v, want ref %q", tc.in, m, err, tc.ref)
		}
	}
}

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
		`{"type":"kept","commitment":"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"}`,
		`{"type":"kept","commitment":"0011"}`,
		`{"type":"path","path":"relay"}`, `{"type":"path","path":"carrier-pigeon"}`,
		`{"type":"revoke","commitment":"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"}`,
		`{"type":"revoke","commitment":"00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff"}`,
		`{"type":"revoke"}`,
		`{"type":"leave","type":"join"}`, `[]`, `null`, `{"type":7}`,
		`{"type":"prescription","ref":"x","resource":{"a":1,"a":2}}`,
		`{"resource":{"a":1,"a":2},"type":"prescription","ref":"x\u0001"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := signalapi.DecodeClientMessage(data)
		if err != nil {
			var pe *signalapi.ProtocolError
			if !errors.As(err, &pe) || pe.Code == "" || pe.Message == "" {
				t.Fatalf("error %v is not a protocol error with code and text", err)
			}
			// A refused resource comes with the ref to echo, a valid one.
			if m != nil && (pe.Code != signalapi.CodeInvalidResource || m.Type != signalapi.TypePrescription || len(m.Ref) > signalapi.MaxRefLength || m.Resource != nil) {
				t.Fatalf("refusal %v came with message %+v", err, m)
			}
			return
		}
		if len(data) > signalapi.MaxMessageSize || len(m.SDP) > signalapi.MaxSDPSize || len(m.Token) > signalapi.MaxTokenSize ||
			len(m.Ref) > signalapi.MaxRefLength || len(m.Resource) > signalapi.MaxPrescriptionSize {
			t.Fatalf("message over its bounds accepted: %q", data)
		}
		if m.Type == signalapi.TypeCandidate && m.Candidate == nil {
			t.Fatal("candidate message without a candidate")
		}
		if m.Type == signalapi.TypeFingerprint && m.Fingerprint == nil {
			t.Fatal("fingerprint message without a fingerprint")
		}
		if m.Type == signalapi.TypeRevoke || m.Type == signalapi.TypeKept {
			if c, err := notary.ParseCommitment(m.Commitment); err != nil || c.String() != m.Commitment {
				t.Fatalf("%s message with commitment %q accepted", m.Type, m.Commitment)
			}
		}
	})
}

// TestFingerprint: the text form is SDP's, parsed in either case, and
// refused with a reason when it is not a sha-256 fingerprint.
func TestFingerprint(t *testing.T) {
	fp := signalapi.FingerprintOf([]byte("certificate"))
	s := fp.String()
	if !strings.HasPrefix(s, "sha-256 ") || len(s) != len("sha-256 ")+32*3-1 || strings.ToUpper(s[8:]) != s[8:] {
		t.Fatalf("String: %q", s)
	}
	for _, text := range []string{s, strings.ToLower(s), " " + s + " ", "SHA-256 " + s[8:]} {
		if got, err := signalapi.ParseFingerprint(text); err != nil || got != fp {
			t.Errorf("ParseFingerprint(%q) = %v, %v", text, got, err)
		}
	}
	for _, bad := range []string{"", "sha-256", "sha-1 " + s[8:], "sha-256 " + s[11:], "sha-256 " + strings.Replace(s[8:], "A", "G", 1) + "G"} {
		if _, err := signalapi.ParseFingerprint(bad); err == nil {
			t.Errorf("ParseFingerprint(%q) accepted", bad)
		}
	}
	var back signalapi.Fingerprint
	if text, _ := fp.MarshalText(); back.UnmarshalText(text) != nil || back != fp {
		t.Fatal("MarshalText does not round-trip")
	}
}

// TestPathMessage: a path message names one of the ICE candidate types,
// and nothing else.
func TestPathMessage(t *testing.T) {
	for _, path := range signalapi.PathTypes {
		if m, err := signalapi.DecodeClientMessage([]byte(`{"type":"path","path":"` + path + `"}`)); err != nil || m.Path != path {
			t.Errorf("%s: %+v, %v", path, m, err)
		}
	}
	for _, bad := range []string{`{"type":"path","path":"tcp"}`, `{"type":"path"}`, `{"type":"path","path":"relay","ref":"x"}`} {
		_, err := signalapi.DecodeClientMessage([]byte(bad))
		var pe *signalapi.ProtocolError
		if !errors.As(err, &pe) || pe.Code != signalapi.CodeBadMessage || pe.Fatal {
			t.Errorf("%s: %v, want a bad_message refusal that keeps the connection", bad, err)
		}
	}
}
