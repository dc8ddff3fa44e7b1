package session

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/signalapi"
	"golang.org/x/mod/sumdb/note"
)

// TestAppendBundle: the bundle the server builds from the canonical bytes
// it committed is byte for byte the one notary.Bundle.MarshalJSON writes,
// and it verifies.
func TestAppendBundle(t *testing.T) {
	resource, err := os.ReadFile("../notary/fhirdata/MedicationRequest-medrx0302.json")
	if err != nil {
		t.Fatal(err)
	}
	canonical, err := CheckMedicationRequest(resource)
	if err != nil {
		t.Fatal(err)
	}
	d := commitCanonical(canonical)
	log, _ := notary.Open(notary.NewMemoryStore())
	skey, vkey, _ := notary.GenerateKey("test-notary")
	signer, verifier := mustSigner(t, skey, vkey)
	for _, link := range []notary.Commitment{{}, notary.Commit(notary.NewSalt(), []byte("start"))} {
		idx, err := log.Append([]notary.Leaf{{Kind: notary.KindPrescription, Commitment: d.commitment, Link: link, Timestamp: time.Now().UnixMilli()}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		head := log.Head()
		cp, _ := notary.Checkpoint{Origin: "test.example/log", Size: head.Size, Root: head.Root, Timestamp: time.Now().UnixMilli()}.Sign(signer)
		rc, err := log.Receipt(idx[0], cp)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendBundle(nil, d, rc)
		if err != nil {
			t.Fatal(err)
		}
		want, err := notary.Bundle{Document: json.RawMessage(canonical), Salt: d.salt, Receipt: *rc}.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("appendBundle:\n%s\nBundle.MarshalJSON:\n%s", got, want)
		}
		b, err := notary.ParseBundle(got)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := notary.VerifyBundle(b, notary.Policy{Verifiers: verifier}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEncodeWithBundle: a message with a spliced bundle decodes to the
// message with that bundle; without one it has no bundle member.
func TestEncodeWithBundle(t *testing.T) {
	bundle := []byte(`{"version":1,"document":{"a":"<&>"},"salt":"00","receipt":{}}`)
	m := &signalapi.Message{Type: signalapi.TypeReceipt, Kind: notary.KindPrescription, Ref: `r"1`, Session: "s"}
	data := encodeWithBundle(m, bundle)
	var back signalapi.Message
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	if !bytes.Equal(back.Bundle, bundle) || back.Ref != m.Ref || back.Kind != m.Kind || back.Type != m.Type {
		t.Fatalf("%s decoded as %+v", data, back)
	}
	if data := encodeWithBundle(&signalapi.Message{Type: signalapi.TypeSessionEnd, Reason: "x"}, nil); bytes.Contains(data, []byte("bundle")) {
		t.Fatalf("no bundle: %s", data)
	}
	if got := withMember([]byte(`{}`), "bundle", []byte(`1`)); string(got) != `{"bundle":1}` {
		t.Fatalf("empty object: %s", got)
	}
}

func mustSigner(t *testing.T, skey, vkey string) (note.Signer, []note.Verifier) {
	t.Helper()
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, []note.Verifier{v}
}
