package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/peer"
	"github.com/telenotary/telenotary/session/signalapi"
)

// signalProc is a `telenotary signal` process.
type signalProc struct {
	url, ws string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	log     string
	appKey  string
}

// startSignal starts a signalling server in front of the cluster, logging
// at debug level into dir.
func startSignal(t *testing.T, c *procCluster, dir string, extra ...string) *signalProc {
	t.Helper()
	return startSignalAt(t, c, dir, freeAddr(t), randomToken("app"), extra...)
}

// startSignalAt is startSignal listening on addr, with appKey its app
// (submitter) API key.
func startSignalAt(t *testing.T, c *procCluster, dir, addr, appKey string, extra ...string) *signalProc {
	t.Helper()
	s := &signalProc{appKey: appKey, log: filepath.Join(dir, "signal.log")}
	writeFile(t, filepath.Join(dir, "api-keys"), "submitter "+s.appKey+"\n", 0o600)
	writeFile(t, filepath.Join(dir, "cluster-token"), c.submitter+"\n", 0o600)
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, n.url)
	}
	s.url, s.ws = "http://"+addr, "ws://"+addr+"/v1/signal"
	f, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	args := append([]string{"signal", "--listen", addr, "--cluster", strings.Join(urls, ","),
		"--cluster-token-file", filepath.Join(dir, "cluster-token"), "--api-keys", filepath.Join(dir, "api-keys"), "--log-level", "debug"}, extra...)
	s.cmd = exec.Command(telenotaryBin, args...)
	s.cmd.Stdout, s.cmd.Stderr = f, f
	killWithParent(s.cmd)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.done = make(chan struct{})
	go func() { s.waitErr = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
		if t.Failed() {
			b, _ := os.ReadFile(s.log)
			t.Logf("--- signal log ---\n%s", b)
		}
	})
	waitFor(t, startTimeout, "the signalling server to answer", func() error {
		select {
		case <-s.done:
			b, _ := os.ReadFile(s.log)
			t.Fatalf("telenotary signal exited: %v\n%s", s.waitErr, b)
		default:
		}
		resp, err := http.Get(s.url + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	return s
}

// createRoom asks the server for a room for two pseudonymous subjects.
func (s *signalProc) createRoom(t *testing.T, patient, physician string) signalapi.CreateRoomResponse {
	t.Helper()
	body := fmt.Sprintf(`{"patient":%q,"physician":%q}`, patient, physician)
	req, _ := http.NewRequest(http.MethodPost, s.url+"/v1/rooms", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.appKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var room signalapi.CreateRoomResponse
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(data, &room) != nil {
		t.Fatalf("POST /v1/rooms: HTTP %d %s", resp.StatusCode, data)
	}
	return room
}

// TestNoPatientDataAtRest runs consultations with prescriptions through a
// signalling server process and a 3-node cluster of processes, stops
// everything, and scans every file they wrote (data dirs and logs, the
// server logging at debug level): no document, no name in a document, no
// salt and no subject id is in any of them.
func TestNoPatientDataAtRest(t *testing.T) {
	c := startCluster(t)
	sigDir := t.TempDir()
	s := startSignal(t, c, sigDir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	files, _ := filepath.Glob("../notary/fhirdata/MedicationRequest-medrx03*.json")
	var secrets [][]byte
	secrets = append(secrets, []byte("Donald Duck"), []byte("Patrick Pump"))
	var bundles []*notary.Bundle
	for i := range 2 {
		patient, physician := randomToken(fmt.Sprintf("patient%d", i)), randomToken(fmt.Sprintf("physician%d", i))
		secrets = append(secrets, []byte(patient), []byte(physician))
		room := s.createRoom(t, patient, physician)
		pat, doc, err := peer.Pair(ctx,
			peer.Config{URL: s.ws, Token: room.Tokens[signalapi.RolePatient], Loopback: true},
			peer.Config{URL: s.ws, Token: room.Tokens[signalapi.RolePhysician], Loopback: true})
		if err != nil {
			t.Fatal(err)
		}
		for j, f := range files[:4] {
			resource, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			r, err := doc.Prescribe(ctx, fmt.Sprintf("rx-%d", j), resource)
			if err != nil {
				t.Fatal(err)
			}
			bundles = append(bundles, r.Bundle)
		}
		end, err := doc.Leave(ctx, "done")
		if err != nil || end == nil || end.Err != nil {
			t.Fatalf("session end: %+v %v", end, err)
		}
		bundles = append(bundles, end.Bundle)
		pat.WaitEnd(ctx)
	}
	for _, b := range bundles {
		canonical, err := b.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		salt := b.Salt[:]
		secrets = append(secrets, canonical, salt, []byte(hex.EncodeToString(salt)), []byte(base64.StdEncoding.EncodeToString(salt)))
	}

	s.cmd.Process.Signal(syscall.SIGTERM)
	<-s.done
	if s.waitErr != nil {
		t.Fatalf("telenotary signal exited with %v after SIGTERM", s.waitErr)
	}
	for _, n := range c.nodes {
		n.stop()
	}
	// The scan finds a secret where there is one.
	canary := t.TempDir()
	writeFile(t, filepath.Join(canary, "leak.log"), "x "+string(secrets[len(secrets)-2])+" y", 0o600)
	if found, _ := findSecrets(t, []string{canary}, secrets); len(found) != 1 {
		t.Fatalf("the scan found %d leaks in the canary, want 1", len(found))
	}
	found, scanned := findSecrets(t, []string{c.dir, sigDir}, secrets)
	for _, f := range found {
		t.Error(f)
	}
	if scanned < 10 {
		t.Fatalf("scanned only %d files", scanned)
	}
	t.Logf("%d files scanned for %d secrets: %d found", scanned, len(secrets), len(found))
}

// findSecrets reads every file under roots and reports each that holds
// one of the secrets.
func findSecrets(t *testing.T, roots []string, secrets [][]byte) (found []string, scanned int) {
	t.Helper()
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			scanned++
			for _, secret := range secrets {
				if bytes.Contains(data, secret) {
					found = append(found, fmt.Sprintf("%s holds patient data: %.60q", path, secret))
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return found, scanned
}

// TestBenchSignal runs `telenotary bench signal` against a server process:
// every consultation is set up, relays, prescribes and ends, and every
// receipt verifies.
func TestBenchSignal(t *testing.T) {
	c := newProcCluster(t, testOrigin)
	waitReady(t, c.bootstrap("node-1"))
	dir := t.TempDir()
	s := startSignal(t, c, dir)
	keyFile := filepath.Join(dir, "app-key")
	writeFile(t, keyFile, s.appKey+"\n", 0o600)
	for _, light := range []bool{false, true} {
		args := []string{"bench", "signal", "--signal", s.url, "--api-key-file", keyFile,
			"--rooms", "12", "--setup-parallel", "4", "--duration", "1s", "--relay-rate", "5"}
		if light { // signalling-only participants, receipts verified all the same
			args = append(args, "--light")
		}
		out, err := exec.Command(telenotaryBin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("bench signal (light %v): %v\n%s", light, err, out)
		}
		for _, want := range []string{"12 consultations in", ", 0 failed", "0 lost", "12 prescriptions and session ends", "errors:  0; receipts failing verification: 0"} {
			if !bytes.Contains(out, []byte(want)) {
				t.Errorf("bench output (light %v) lacks %q:\n%s", light, want, out)
			}
		}
	}
}
