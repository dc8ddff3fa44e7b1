package signalapi

import "testing"

// TestReferences: what binds a room, and which prescription references
// name the same resource.
func TestReferences(t *testing.T) {
	for ref, want := range map[string]bool{
		"Patient/pat1": true, "https://fhir.example/r4/Patient/p-1.2": true, "Practitioner/f007": false,
		"Patient/": false, "Patient/a b": false, "Patient/pat1/_history/1": false, "patient/pat1": false,
		"ftp://x/Patient/1": false, " Patient/1": false,
	} {
		if got := ValidReference(ref, "Patient"); got != want {
			t.Errorf("ValidReference(%q, Patient) = %v", ref, got)
		}
	}
	for _, c := range []struct {
		got, want string
		same      bool
	}{
		{"Patient/1", "Patient/1", true},
		{"https://a.example/Patient/1", "Patient/1", true},
		{"Patient/1/_history/4", "Patient/1", true},
		{"Patient/1", "https://a.example/Patient/1", true},
		{"https://b.example/Patient/1", "https://a.example/Patient/1", false},
		{"Patient/11", "Patient/1", false},
		{"https://a.example/Patient/11", "Patient/1", false},
		{"Practitioner/1", "Patient/1", false},
		{"", "Patient/1", false},
	} {
		if got := SameReference(c.got, c.want); got != c.same {
			t.Errorf("SameReference(%q, %q) = %v", c.got, c.want, got)
		}
	}
}

// FuzzReference: neither function panics, and a reference that binds a
// room names itself.
func FuzzReference(f *testing.F) {
	f.Add("Patient/pat1", "https://fhir.example/Patient/pat1/_history/2")
	f.Add("Practitioner/x", "")
	f.Fuzz(func(t *testing.T, a, b string) {
		SameReference(a, b)
		if ValidReference(a, "Patient", "Practitioner", "PractitionerRole") && !SameReference(a, a) {
			t.Fatalf("%q does not name itself", a)
		}
	})
}
