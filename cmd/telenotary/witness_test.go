package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/notary/witness"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// witnessChildEnv, set to 1, makes TestWitnessChild run telenotary witness
// from the environment: the test binary is then the witness process that
// TestWitnessKilled kills.
const witnessChildEnv = "TELENOTARY_TEST_WITNESS_CHILD"

// witnessedLog is a notary log whose checkpoints a witness is given.
type witnessedLog struct {
	t      *testing.T
	log    *notary.Log
	signer note.Signer
	next   uint64
}

func newWitnessedLog(t *testing.T, skey string) *witnessedLog {
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := notary.Open(notary.NewMemoryStore())
	if err != nil {
		t.Fatal(err)
	}
	return &witnessedLog{t: t, log: l, signer: s}
}

// grow appends n leaves; a log grown from another seed forks.
func (l *witnessedLog) grow(n int) {
	leaves := make([]notary.Leaf, n)
	for i := range leaves {
		var doc [8]byte
		binary.BigEndian.PutUint64(doc[:], l.next)
		leaves[i] = notary.Leaf{Kind: notary.KindDocument, Commitment: notary.Commit(notary.Salt{}, doc[:]), Timestamp: 1795262400000 + int64(l.next)}
		l.next++
	}
	if _, err := l.log.Append(leaves, nil); err != nil {
		l.t.Fatal(err)
	}
}

// request is the add-checkpoint body for the head, from old.
func (l *witnessedLog) request(old uint64) []byte {
	head := l.log.Head()
	cp, err := notary.Checkpoint{Origin: "notary.test/log", Size: head.Size, Root: head.Root, Timestamp: 1795262400000 + int64(head.Size)}.Sign(l.signer)
	if err != nil {
		l.t.Fatal(err)
	}
	var proof []tlog.Hash
	if old > 0 {
		p, err := l.log.ConsistencyProof(old, head.Size)
		if err != nil {
			l.t.Fatal(err)
		}
		for _, h := range p {
			proof = append(proof, tlog.Hash(h))
		}
	}
	return witness.Request{OldSize: old, Proof: proof, Checkpoint: cp.Note}.Marshal()
}

// witnessFiles writes a witness key and a logs file for one log in dir.
func witnessFiles(t *testing.T, dir string) (keyFile, logsFile, logKey string) {
	wkey, _, err := notary.GenerateKey("witness.test")
	if err != nil {
		t.Fatal(err)
	}
	lkey, lvkey, err := notary.GenerateKey("node-1")
	if err != nil {
		t.Fatal(err)
	}
	keyFile = writeTestFile(t, dir, "witness.key", wkey+"\n", 0o600)
	logsFile = writeTestFile(t, dir, "logs", "# the cluster\nnotary.test/log "+lvkey+"\n", 0o644)
	return keyFile, logsFile, lkey
}

// TestWitnessCommandLine: --print-key prints a cosignature/v1 key; a key
// file open to others, a logs file that does not parse and a missing
// required flag are usage errors (exit 2) in one line; a sound command
// line starts and stops cleanly when interrupted.
func TestWitnessCommandLine(t *testing.T) {
	dir := t.TempDir()
	keyFile, logsFile, _ := witnessFiles(t, dir)
	code, stdout, stderr := runCmd(t, nil, "witness", "--signer-key", keyFile, "--print-key")
	if code != exitOK || !regexp.MustCompile(`^witness\.test\+[0-9a-f]{8}\+B[A-Za-z0-9+/]{43}\n$`).MatchString(stdout) {
		t.Fatalf("--print-key: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	open := writeTestFile(t, dir, "open.key", mustRead(t, keyFile), 0o644)
	notKey := writeTestFile(t, dir, "not.key", "not a key\n", 0o600)
	badLogs := writeTestFile(t, dir, "bad-logs", "notary.test/log nokey\n", 0o644)
	data := dir + "/state"
	for _, tc := range []struct {
		args    []string
		mention string
	}{
		{[]string{"--signer-key", open, "--data-dir", data, "--logs", logsFile}, "chmod 600"},
		{[]string{"--signer-key", notKey, "--data-dir", data, "--logs", logsFile}, "telenotary keygen"},
		{[]string{"--signer-key", keyFile, "--data-dir", data, "--logs", badLogs}, "line 1: not a verifier key"},
		{[]string{"--signer-key", keyFile, "--logs", logsFile}, "--data-dir is required"},
		{[]string{"--signer-key", keyFile, "--data-dir", data}, "--logs is required"},
		{[]string{"--data-dir", data, "--logs", logsFile}, "--signer-key is required"},
	} {
		code, stdout, stderr := runCmd(t, nil, append([]string{"witness"}, tc.args...)...)
		if code != exitUsage || stdout != "" || !strings.HasPrefix(stderr, "telenotary witness: ") || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.mention) {
			t.Errorf("witness %v: exit %d, stderr %q; want exit 2 and one line mentioning %q", tc.args, code, stderr, tc.mention)
		}
	}
	env := map[string]string{"TELENOTARY_SIGNER_KEY": keyFile, "TELENOTARY_DATA_DIR": data, "TELENOTARY_LOGS": logsFile, "TELENOTARY_LISTEN": "127.0.0.1:0"}
	code, _, stderr = runCmdContext(t, stoppedContext(), env, "witness")
	if code != exitOK || !strings.Contains(stderr, "witness started") {
		t.Fatalf("witness from the environment: exit %d\n%s", code, stderr)
	}
	if st, err := os.Stat(data); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("data directory: %v %v", st, err)
	}
}

// TestWitnessChild is the witness process of TestWitnessKilled; it does
// nothing in a normal test run.
func TestWitnessChild(t *testing.T) {
	if os.Getenv(witnessChildEnv) != "1" {
		t.Skip("run by TestWitnessKilled")
	}
	env := &environment{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	os.Exit(run(context.Background(), env, []string{"witness"}))
}

// startWitnessProcess starts the witness as a process of its own and
// returns it and its URL, once it serves.
func startWitnessProcess(t *testing.T, env []string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestWitnessChild$")
	cmd.Env = append(os.Environ(), append(env, witnessChildEnv+"=1")...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stderr)
	url := regexp.MustCompile(`url=(http://\S+)`)
	for sc.Scan() {
		if m := url.FindStringSubmatch(sc.Text()); m != nil && strings.Contains(sc.Text(), "witness started") {
			go io.Copy(io.Discard, stderr)
			return cmd, m[1]
		}
	}
	t.Fatalf("the witness process ended before serving: %v", sc.Err())
	return nil, ""
}

func postCheckpoint(t *testing.T, url string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(url+"/add-checkpoint", "text/plain", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestWitnessKilled: the witness binary cosigns a checkpoint, is killed
// with SIGKILL right after answering, and once started again from its data
// directory refuses the checkpoints of a fork of the log (the same key,
// other leaves) and goes on cosigning the real log.
func TestWitnessKilled(t *testing.T) {
	dir := t.TempDir()
	keyFile, logsFile, lkey := witnessFiles(t, dir)
	env := []string{"TELENOTARY_SIGNER_KEY=" + keyFile, "TELENOTARY_DATA_DIR=" + dir + "/state", "TELENOTARY_LOGS=" + logsFile, "TELENOTARY_LISTEN=127.0.0.1:0"}
	real, fork := newWitnessedLog(t, lkey), newWitnessedLog(t, lkey)
	real.grow(3)
	fork.grow(3)
	fork.next = 1 << 40
	real.grow(3)
	fork.grow(3)

	cmd, url := startWitnessProcess(t, env)
	if code, body := postCheckpoint(t, url, real.request(0)); code != 200 || !strings.HasPrefix(body, "— witness.test ") {
		t.Fatalf("first checkpoint: %d %q", code, body)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no shutdown, no flush
		t.Fatal(err)
	}
	cmd.Wait()

	_, url = startWitnessProcess(t, env)
	if code, body := postCheckpoint(t, url, fork.request(6)); code != http.StatusConflict || body != "6\n" {
		t.Fatalf("the fork at the size cosigned, after kill -9: %d %q, want 409 \"6\\n\"", code, body)
	}
	if code, body := postCheckpoint(t, url, fork.request(0)); code != http.StatusConflict || body != "6\n" {
		t.Fatalf("the fork from 0, after kill -9: %d %q, want 409 \"6\\n\"", code, body)
	}
	fork.grow(2)
	if code, body := postCheckpoint(t, url, fork.request(6)); code != http.StatusUnprocessableEntity {
		t.Fatalf("the grown fork, after kill -9: %d %q, want 422", code, body)
	}
	real.grow(2)
	if code, body := postCheckpoint(t, url, real.request(6)); code != 200 {
		t.Fatalf("the real log, after kill -9: %d %q", code, body)
	}
}
