package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/telenotary/telenotary/notary"
)

// TestDispenseRefusesBeforeDispensing: what is wrong on the command line
// or in the files it names is reported before the cluster is asked (the
// nodes given here do not exist), with exit 2, or 1 for a bundle that does
// not verify; nothing is written.
func TestDispenseRefusesBeforeDispensing(t *testing.T) {
	dir := t.TempDir()
	valid := filepath.Join(vectors, "valid.json")
	keys := filepath.Join(vectors, "keys.pub")
	tok := filepath.Join(dir, "pharmacy.tok")
	os.WriteFile(tok, []byte("pharmacy-0123456789abcdef\n"), 0o600)
	shared := filepath.Join(dir, "shared.tok")
	os.WriteFile(shared, []byte("pharmacy-0123456789abcdef\n"), 0o644)
	badDispense := filepath.Join(dir, "bad-dispense.json")
	os.WriteFile(badDispense, []byte(`{"resourceType": "MedicationDispense", "status": "preparation", "medicationCodeableConcept": {"text": "x"}, "subject": {"reference": "Patient/1"}}`), 0o600)
	session := filepath.Join(dir, "session.json")
	sb, _ := notary.ParseBundle(readVector(t, "valid.json"))
	sb.Receipt.Leaf.Kind = notary.KindSessionStart
	data, _ := sb.Encode()
	os.WriteFile(session, data, 0o600)
	nodes := "http://127.0.0.1:1"
	base := []string{"--pharmacy-token-file", tok, "--nodes", nodes, "--keys", keys, "-o", filepath.Join(dir, "out.json")}
	for _, tc := range []struct {
		name    string
		args    []string
		code    int
		message string
	}{
		{"no bundle", base, exitUsage, "give one prescription bundle file"},
		{"two bundles", append([]string{valid, valid}, base...), exitUsage, "give one prescription bundle file"},
		{"no nodes", []string{valid, "--pharmacy-token-file", tok, "--keys", keys}, exitUsage, "--nodes is required"},
		{"no token", []string{valid, "--nodes", nodes, "--keys", keys}, exitUsage, "--pharmacy-token-file is required"},
		{"no keys", []string{valid, "--pharmacy-token-file", tok, "--nodes", nodes}, exitUsage, "--keys is required"},
		{"token file others may read", append([]string{valid, "--pharmacy-token-file", shared}, base[2:]...), exitUsage, "chmod 600"},
		{"missing bundle", append([]string{filepath.Join(dir, "missing.json")}, base...), exitUsage, "cannot read bundle"},
		{"not a bundle", append([]string{keys}, base...), exitUsage, "malformed input"},
		{"a session's bundle", append([]string{session}, base...), exitUsage, "not of a prescription"},
		{"a bundle that does not verify", append([]string{filepath.Join(vectors, "document-changed.json")}, base...), exitFailure, "does not verify"},
		{"a bundle under too many signatures", append(append([]string{valid}, base...), "--min-signatures", "3"), exitFailure, "does not verify"},
		{"an invalid MedicationDispense", append(append([]string{valid}, base...), "--medication-dispense", badDispense), exitUsage, "MedicationDispense.status"},
		{"bad --signatures", append(append([]string{valid}, base...), "--signatures", "many"), exitUsage, "--signatures"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, nil, append([]string{"dispense"}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.message) || !strings.HasPrefix(stderr, "telenotary dispense: ") {
				t.Fatalf("exit %d, want %d with %q\n%s%s", code, tc.code, tc.message, stdout, stderr)
			}
		})
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 4 {
		t.Errorf("files left in the directory: %v", left)
	}
}

// TestDispenseUnreachable: a sound command line whose cluster does not
// answer fails with exit 1 once --timeout is over, and leaves no file.
func TestDispenseUnreachable(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "pharmacy.tok")
	os.WriteFile(tok, []byte("pharmacy-0123456789abcdef\n"), 0o600)
	bundle := filepath.Join(dir, "rx.json")
	os.WriteFile(bundle, readVector(t, "valid.json"), 0o600)
	code, stdout, stderr := runCmd(t, nil, "dispense", bundle, "--pharmacy-token-file", tok, "--nodes", "http://127.0.0.1:1",
		"--keys", filepath.Join(vectors, "keys.pub"), "--timeout", "300ms")
	if code != exitFailure || !strings.HasPrefix(stderr, "telenotary dispense: the prescription's status: ") {
		t.Fatalf("exit %d, want %d\n%s%s", code, exitFailure, stdout, stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 2 {
		t.Errorf("files left: %v", left)
	}
}

// TestVerifyStatusFlags: the status flags' combinations that cannot be
// run are usage errors, and a prescription verified offline says its
// status was not checked.
func TestVerifyStatusFlags(t *testing.T) {
	valid := filepath.Join(vectors, "valid.json")
	keys := filepath.Join(vectors, "keys.pub")
	for _, tc := range []struct {
		args    []string
		message string
	}{
		{[]string{valid, "--nodes", "http://127.0.0.1:1", "--status", "s.json"}, "exclude each other"},
		{[]string{valid, "--save-status", "s.json"}, "--save-status needs --nodes"},
		{[]string{"--nodes", "http://127.0.0.1:1"}, "give the bundle"},
		{[]string{"--receipt", "r.json", "--commitment", strings.Repeat("0", 64), "--status", "s.json"}, "not with --receipt"},
		{[]string{valid, "--status", filepath.Join(t.TempDir(), "missing.json")}, "cannot read status answer"},
	} {
		code, stdout, stderr := runCmd(t, nil, append([]string{"verify", "--keys", keys}, tc.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tc.message) {
			t.Errorf("verify %s: exit %d, want 2 with %q\n%s%s", strings.Join(tc.args, " "), code, tc.message, stdout, stderr)
		}
	}
	code, stdout, _ := runCmd(t, nil, "verify", valid, "--keys", keys)
	if code != exitOK || !strings.HasSuffix(stdout, "  status:     not checked (offline; --nodes asks the cluster, --status verifies a kept answer)\n") {
		t.Errorf("exit %d\n%s", code, stdout)
	}
	malformed := filepath.Join(t.TempDir(), "status.json")
	os.WriteFile(malformed, []byte(`{"version": 2}`), 0o600)
	if code, stdout, _ := runCmd(t, nil, "verify", valid, "--keys", keys, "--status", malformed); code != exitInvalid || !strings.Contains(stdout, "INVALID: the prescription's status: the answer is not a readable status answer\n  detail: status answer: malformed input: status ") {
		t.Errorf("a malformed status answer: exit %d\n%s", code, stdout)
	}
	if code, stdout, unreachable := runCmd(t, nil, "verify", valid, "--keys", keys, "--nodes", "http://127.0.0.1:1", "--timeout", "200ms"); code != exitFailure || !strings.Contains(stdout, "status:     not checked: the cluster did not answer") {
		t.Errorf("an unreachable cluster: exit %d\n%s%s", code, stdout, unreachable)
	}
}

// TestStatusLine: each state in the words verify prints.
func TestStatusLine(t *testing.T) {
	t1 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	t2 := t1.Add(24 * time.Hour)
	for _, tc := range []struct {
		res  notary.StatusResult
		want string
	}{
		{notary.StatusResult{State: notary.StateActive, FillsAllowed: 4}, "active, 0 of 4 fills used"},
		{notary.StatusResult{State: notary.StateActive, FillsAllowed: 4, FillsUsed: 2, Dispensed: []time.Time{t1, t2}},
			"active, 2 of 4 fills used (2026-11-21 10:00:00.000 UTC, 2026-11-22 10:00:00.000 UTC)"},
		{notary.StatusResult{State: notary.StateDispensed, FillsAllowed: 1, FillsUsed: 1, Dispensed: []time.Time{t1}},
			"fully dispensed, 1 of 1 fills used (2026-11-21 10:00:00.000 UTC)"},
		{notary.StatusResult{State: notary.StateRevoked, FillsAllowed: 4, RevokedAt: t2}, "revoked at 2026-11-22 10:00:00.000 UTC; 0 of 4 fills used before"},
		{notary.StatusResult{State: notary.StateUntracked}, "untracked: logged without an allowance, so the log does not count its dispenses"},
	} {
		if got := statusLine(&tc.res); got != tc.want {
			t.Errorf("statusLine = %q, want %q", got, tc.want)
		}
	}
}
