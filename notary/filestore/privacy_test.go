package filestore_test

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/filestore"
)

// TestNoPatientDataAtRest notarizes every FHIR MedicationRequest example
// through a durable store, then reads every byte the store wrote: no
// document, no name in it and no salt may be there, in any encoding we use.
func TestNoPatientDataAtRest(t *testing.T) {
	paths, err := filepath.Glob("../fhirdata/MedicationRequest-*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no FHIR examples: %v", err)
	}
	dir := t.TempDir()
	// A tiny memtable, so index tables are written too.
	l := openLog(t, openStore(t, dir, filestore.Options{MemtableSize: 4}))
	var secrets [][]byte
	for i, p := range paths {
		doc, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		canonical, err := notary.CanonicalJSON(doc)
		if err != nil {
			t.Fatal(err)
		}
		salt := notary.NewSalt()
		leaf := notary.Leaf{Kind: notary.KindPrescription, Commitment: notary.Commit(salt, canonical), Timestamp: baseTime + int64(i)}
		if _, err := l.Append([]notary.Leaf{leaf}, nil); err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, salt[:], []byte(hex.EncodeToString(salt[:])), canonical[:64], canonical[len(canonical)-64:])
	}
	// Names of people in the examples, and what marks a FHIR document.
	for _, s := range []string{"Donald Duck", "Patrick Pump", "MedicationRequest", "resourceType", "Patient/"} {
		secrets = append(secrets, []byte(s))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files := 0
	err = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, s := range secrets {
			if bytes.Contains(b, s) {
				t.Errorf("%s holds %q", filepath.Base(path), s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 5 {
		t.Fatalf("only %d files written: the test saw too little", files)
	}
}
