package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/peer"
	"github.com/telenotary/telenotary/session/signalapi"
)

// holder returns the instance that holds a room, asking this one (which
// asks the others of its group when it does not hold it): "" for none.
func (s *signalProc) holder(t *testing.T, room string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url+"/v1/rooms/"+room, nil)
	req.Header.Set("Authorization", "Bearer "+s.appKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info signalapi.SessionInfo
	switch body, _ := io.ReadAll(resp.Body); {
	case resp.StatusCode == http.StatusNotFound:
		return ""
	case resp.StatusCode != http.StatusOK || json.Unmarshal(body, &info) != nil:
		t.Fatalf("GET /v1/rooms/%s: HTTP %d %s", room, resp.StatusCode, body)
	}
	return info.Instance
}

// record returns the session record of a session-start or session-end
// receipt.
func record(t *testing.T, r peer.Receipt) signalapi.Record {
	t.Helper()
	var rec signalapi.Record
	if r.Bundle == nil || json.Unmarshal(r.Bundle.Document, &rec) != nil {
		t.Fatalf("%s receipt has no session record", r.Kind)
	}
	return rec
}

// nextRecord waits for the next verified session record receipt of a kind
// on p's receipts.
func nextRecord(t *testing.T, ctx context.Context, p *peer.Peer, kind notary.Kind) (peer.Receipt, signalapi.Record) {
	t.Helper()
	for {
		select {
		case r := <-p.Receipts():
			if r.Err != nil {
				t.Fatalf("%s: a %s receipt does not verify: %v", p.Role(), r.Kind, r.Err)
			}
			if r.Kind == kind {
				return r, record(t, r)
			}
		case <-ctx.Done():
			t.Fatalf("%s: no %s receipt: %v", p.Role(), kind, ctx.Err())
		}
	}
}

// TestSignalGroupTakeover runs three `telenotary signal` processes as one
// group (--peers) in front of a 3-node cluster. A room created on instance
// a is joined through b (the patient) and c (the physician), which relay
// both to a; a prescription is notarized. Then a is killed (SIGKILL)
// mid-consultation: both participants come back through b and c with
// their tickets, the room's successor takes it over, notarizes the end of
// the interrupted session (reason interrupted, continued_by the new one)
// and starts a new session that continues it, in which a second
// prescription and the end are notarized. Every bundle, before and after
// the kill, verifies under the cluster's policy, and the records name
// each other.
func TestSignalGroupTakeover(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	shared := t.TempDir()
	key := make([]byte, 32)
	rand.Read(key)
	keyFile := filepath.Join(shared, "token-key")
	writeFile(t, keyFile, hex.EncodeToString(key)+"\n", 0o600)
	names := []string{"a", "b", "c"}
	addrs := map[string]string{}
	for _, n := range names {
		addrs[n] = freeAddr(t)
	}
	sig := map[string]*signalProc{}
	appKey := randomToken("app") // the group shares its API keys, as it must
	for _, n := range names {
		var peers []string
		for _, o := range names {
			if o != n {
				peers = append(peers, o+"=http://"+addrs[o])
			}
		}
		dir := filepath.Join(shared, n)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		sig[n] = startSignalAt(t, c, dir, addrs[n], appKey, "--instance", n, "--peers", strings.Join(peers, ","),
			"--token-key-file", keyFile, "--probe-interval", "250ms")
	}
	a, b, cc := sig["a"], sig["b"], sig["c"]
	for _, n := range names { // the group is whole before any traffic
		waitFor(t, startTimeout, "instance "+n+" to see the other two", func() error {
			resp, err := http.Get(sig[n].url + "/metrics")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(body), "\ntelenotary_signal_instances_up 3\n") {
				return fmt.Errorf("not all up")
			}
			return nil
		})
	}

	room := a.createRoom(t, "patient-g1", "physician-g1")
	pat, doc, err := peer.Pair(ctx,
		peer.Config{URL: b.ws, Token: room.Tokens[signalapi.RolePatient], Loopback: true, ReconnectWindow: time.Minute},
		peer.Config{URL: cc.ws, Token: room.Tokens[signalapi.RolePhysician], Loopback: true, ReconnectWindow: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer pat.Close()
	defer doc.Close()
	for _, s := range []*signalProc{a, b, cc} {
		if got := s.holder(t, room.Room); got != "a" {
			t.Fatalf("room %s is held by %q; want a, where it was created", room.Room, got)
		}
	}
	start1, rec1 := nextRecord(t, ctx, pat, notary.KindSessionStart)
	nextRecord(t, ctx, doc, notary.KindSessionStart)
	files, _ := filepath.Glob("../notary/fhirdata/MedicationRequest-medrx03*.json")
	rx := func(i int) []byte {
		b, err := os.ReadFile(files[i])
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rx1, err := doc.Prescribe(ctx, "rx-1", rx(0))
	if err != nil {
		t.Fatal(err)
	}
	relayed1 := nextReceiptRelayed(t, ctx, pat)

	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-a.done

	// Both come back through b and c; the successor takes the room over.
	_, interruptedP := nextRecord(t, ctx, pat, notary.KindSessionEnd)
	interruptedD, interruptedRec := nextRecord(t, ctx, doc, notary.KindSessionEnd)
	if interruptedP.Session != rec1.Session || interruptedRec.Session != rec1.Session {
		t.Fatalf("the interruption record is for session %s / %s, want the interrupted %s", interruptedP.Session, interruptedRec.Session, rec1.Session)
	}
	if interruptedRec.EndReason != signalapi.EndInterrupted || interruptedRec.ContinuedBy == "" || interruptedRec.ContinuedBy == rec1.Session {
		t.Fatalf("interruption record: end_reason %q, continued_by %q", interruptedRec.EndReason, interruptedRec.ContinuedBy)
	}
	if !interruptedRec.Started.Equal(rec1.Started) {
		t.Errorf("the interruption record says the session started %v; its start record says %v", interruptedRec.Started, rec1.Started)
	}
	if got, want := interruptedD.Bundle.Receipt.Leaf.Link, start1.Bundle.Receipt.Leaf.Commitment; got != want {
		t.Errorf("the interruption record links to %v, want the interrupted session's start %v", got, want)
	}
	_, rec2 := nextRecord(t, ctx, pat, notary.KindSessionStart)
	_, rec2d := nextRecord(t, ctx, doc, notary.KindSessionStart)
	if rec2.Continues != rec1.Session || rec2.Session != interruptedRec.ContinuedBy || rec2d.Session != rec2.Session {
		t.Fatalf("the new session %s (physician: %s) continues %q; want it to continue %s as the interruption record's continued_by %s says",
			rec2.Session, rec2d.Session, rec2.Continues, rec1.Session, interruptedRec.ContinuedBy)
	}
	successor := b.holder(t, room.Room)
	if successor != "b" && successor != "c" || cc.holder(t, room.Room) != successor {
		t.Fatalf("after the kill, b says room %s is held by %q and c says %q; want the same one of b and c", room.Room, successor, cc.holder(t, room.Room))
	}

	rx2, err := doc.Prescribe(ctx, "rx-2", rx(1))
	if err != nil {
		t.Fatal(err)
	}
	if got := rx2.Bundle.Receipt.Leaf.Link; got == start1.Bundle.Receipt.Leaf.Commitment {
		t.Errorf("the second prescription links to the interrupted session's start")
	}
	relayed2 := nextReceiptRelayed(t, ctx, pat)
	end, err := doc.Leave(ctx, "done")
	if err != nil || end == nil || end.Err != nil {
		t.Fatalf("session end: %+v %v", end, err)
	}
	endRec := record(t, *end)
	if endRec.Session != rec2.Session || endRec.Continues != rec1.Session || len(endRec.Prescriptions) != 1 || endRec.Prescriptions[0].Commitment != rx2.Bundle.Receipt.Leaf.Commitment {
		t.Fatalf("end record: session %s continues %q, prescriptions %+v", endRec.Session, endRec.Continues, endRec.Prescriptions)
	}
	pat.WaitEnd(ctx)

	// Every bundle verifies offline under the cluster's policy.
	v, err := notary.NewVerifier(c.policy())
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range []*notary.Bundle{start1.Bundle, rx1.Bundle, relayed1.Bundle, interruptedD.Bundle, rx2.Bundle, relayed2.Bundle, end.Bundle} {
		if _, err := v.VerifyBundle(b); err != nil {
			t.Errorf("bundle %d does not verify: %v", i, err)
		}
	}
	t.Logf("room %s: session %s interrupted by a kill of its instance, continued as %s; 7 bundles verified", room.Room, rec1.Session, rec2.Session)
}

// nextReceiptRelayed waits for the next prescription relayed to the
// patient, verified.
func nextReceiptRelayed(t *testing.T, ctx context.Context, p *peer.Peer) peer.Receipt {
	t.Helper()
	for {
		select {
		case r := <-p.Receipts():
			if r.Err != nil {
				t.Fatalf("%s: a %s receipt does not verify: %v", p.Role(), r.Kind, r.Err)
			}
			if r.Relayed {
				return r
			}
			if r.Kind == notary.KindSessionEnd {
				t.Fatalf("%s: %s", p.Role(), fmt.Sprint("a session end before the relayed prescription"))
			}
		case <-ctx.Done():
			t.Fatalf("%s: no relayed prescription: %v", p.Role(), ctx.Err())
		}
	}
}
