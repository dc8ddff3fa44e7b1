package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/filestore"
	"golang.org/x/mod/sumdb/note"
)

const demoOrigin = "demo.telenotary.local/log"

// demoNodes name the keys of the demo's signers, one per future cluster node.
var demoNodes = []string{"demo-node-1", "demo-node-2", "demo-node-3"}

// demoDrugs are the medications of the demo's prescriptions (RxNorm).
var demoDrugs = []struct{ code, display, dose string }{
	{"197361", "Amlodipine 5 MG Oral Tablet", "one tablet by mouth once daily"},
	{"860975", "Metformin hydrochloride 500 MG Oral Tablet", "one tablet by mouth twice daily with meals"},
	{"308136", "Amoxicillin 500 MG Oral Capsule", "one capsule by mouth every 8 hours for 7 days"},
}

func runDemo(ctx context.Context, env *environment, args []string) int {
	fs := newFlagSet(env, "demo", "demo [--dir DIR] [--clean]")
	dir := fs.String("dir", "demo-data", "where the demo keeps its log, keys and receipt bundles")
	clean := fs.Bool("clean", false, "remove the demo directory first")
	pos, err := parseFlags(fs, env, args)
	if err != nil {
		return usageError(env.stderr, "demo", err)
	}
	if len(pos) > 0 {
		return usageError(env.stderr, "demo", fmt.Errorf("unexpected argument %q", pos[0]))
	}
	out := env.stdout
	fmt.Fprintln(out, "telenotary demo")
	fmt.Fprintln(out, "Built so far: the notary core (salted commitments, the durable Merkle log, signed")
	fmt.Fprintln(out, "checkpoints, receipts) and offline verification. Not built yet: the Raft cluster, the")
	fmt.Fprintln(out, "WebRTC signalling server and the operator console; this demo runs the core in-process.")
	fmt.Fprintln(out)
	if *clean {
		if err := os.RemoveAll(*dir); err != nil {
			fmt.Fprintf(env.stderr, "telenotary demo: %v\n", err)
			return exitUsage
		}
	}
	if err := demo(ctx, env, *dir); err != nil {
		fmt.Fprintf(env.stderr, "telenotary demo: %v\n", err)
		return exitUsage
	}
	return exitOK
}

func demo(ctx context.Context, env *environment, dir string) error {
	out := env.stdout
	signers, keysFile, err := demoKeys(dir)
	if err != nil {
		return err
	}
	l, err := filestore.OpenLog(filepath.Join(dir, "log"), filestore.Options{Sync: true})
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Fprintf(out, "log:  %s (%d entries before this run)\n", filepath.Join(dir, "log"), l.Head().Size)
	fmt.Fprintf(out, "keys: %s\n\n", keysFile)

	// Each prescription: canonicalize, salt, commit, append.
	var docs [][]byte
	var salts []notary.Salt
	var leaves []notary.Leaf
	now := time.Now().UnixMilli()
	run := time.Now().UTC().Format("20060102T150405")
	for i, d := range demoDrugs {
		doc := demoPrescription(fmt.Sprintf("demo-%s-%d", run, i+1), d.code, d.display, d.dose)
		canonical, err := notary.CanonicalJSON(doc)
		if err != nil {
			return err
		}
		salt := notary.NewSalt()
		docs, salts = append(docs, doc), append(salts, salt)
		leaves = append(leaves, notary.Leaf{Kind: notary.KindPrescription, Commitment: notary.Commit(salt, canonical), Timestamp: now})
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	idx, err := l.Append(leaves, nil)
	if err != nil {
		return err
	}
	head := l.Head()
	cp, err := notary.Checkpoint{Origin: demoOrigin, Size: head.Size, Root: head.Root, Timestamp: time.Now().UnixMilli()}.Sign(signers...)
	if err != nil {
		return err
	}
	verifiers, err := readDemoVerifiers(keysFile)
	if err != nil {
		return err
	}
	policy := notary.Policy{Verifiers: verifiers, MinSignatures: 2, Origin: demoOrigin}
	for i := range docs {
		r, err := l.Receipt(idx[i], cp)
		if err != nil {
			return err
		}
		bundle := notary.Bundle{Document: docs[i], Salt: salts[i], Receipt: *r}
		res, err := notary.VerifyBundle(&bundle, policy)
		if err != nil {
			return fmt.Errorf("a fresh receipt does not verify: %w", err)
		}
		b, err := bundle.Encode()
		if err != nil {
			return err
		}
		path := filepath.Join(dir, "bundles", fmt.Sprintf("prescription-%d.json", idx[i]))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return err
		}
		fmt.Fprintf(out, "notarized %-45s index %d, signed by %s: %s\n", demoDrugs[i].display, res.Index, strings.Join(res.Signers, ", "), path)
	}
	fmt.Fprintf(out, "\nVerify a bundle offline, as a pharmacist would:\n  telenotary verify %s --keys %s --min-signatures 2\n",
		filepath.Join(dir, "bundles", fmt.Sprintf("prescription-%d.json", idx[0])), keysFile)
	fmt.Fprintln(out, "Edit anything in that file (the dose, a date, the salt) and run it again to see INVALID.")
	return nil
}

// demoKeys loads the demo's signer keys, making them on the first run, and
// writes the verifier keys to dir/keys.pub.
func demoKeys(dir string) ([]note.Signer, string, error) {
	keyDir := filepath.Join(dir, "keys")
	if err := os.MkdirAll(keyDir, 0o700); err != nil {
		return nil, "", err
	}
	var signers []note.Signer
	var pubs []string
	for _, name := range demoNodes {
		path := filepath.Join(keyDir, name+".key")
		skey, err := os.ReadFile(path)
		var vkey string
		if errors.Is(err, os.ErrNotExist) {
			var s string
			if s, vkey, err = notary.GenerateKey(name); err != nil {
				return nil, "", err
			}
			skey = []byte(s)
			if err := writeNew(path, s+"\n", 0o600); err != nil {
				return nil, "", err
			}
			if err := os.WriteFile(filepath.Join(keyDir, name+".pub"), []byte(vkey+"\n"), 0o644); err != nil {
				return nil, "", err
			}
		} else if err != nil {
			return nil, "", err
		} else if b, err := os.ReadFile(filepath.Join(keyDir, name+".pub")); err != nil {
			return nil, "", err
		} else {
			vkey = strings.TrimSpace(string(b))
		}
		s, err := note.NewSigner(strings.TrimSpace(string(skey)))
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", path, err)
		}
		signers, pubs = append(signers, s), append(pubs, vkey)
	}
	keysFile := filepath.Join(dir, "keys.pub")
	text := "# verifier keys of the telenotary demo's signers\n" + strings.Join(pubs, "\n") + "\n"
	return signers, keysFile, os.WriteFile(keysFile, []byte(text), 0o644)
}

func readDemoVerifiers(path string) ([]note.Verifier, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return notary.ParseVerifierKeys(b)
}

// demoPrescription returns a FHIR R4 MedicationRequest for a made-up patient.
func demoPrescription(id, code, display, dose string) []byte {
	doc := map[string]any{
		"resourceType": "MedicationRequest",
		"id":           id,
		"status":       "active",
		"intent":       "order",
		"medicationCodeableConcept": map[string]any{
			"coding": []any{map[string]any{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code, "display": display}},
		},
		"subject":           map[string]any{"reference": "Patient/demo-patient"},
		"requester":         map[string]any{"reference": "Practitioner/demo-physician"},
		"authoredOn":        time.Now().UTC().Format("2006-01-02"),
		"dosageInstruction": []any{map[string]any{"text": dose}},
	}
	b, _ := json.Marshal(doc)
	return b
}
