package tui

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// rxLife is a prescription's life as leaves of the log: the prescription
// and its allowance of four fills, two dispenses, and its revocation; and
// a consent that has nothing to do with it.
type rxLife struct {
	c, d1, d2 notary.Commitment
	leaves    []notaryapi.LeafInfo
}

func newRxLife() rxLife {
	var x rxLife
	fill := func(c *notary.Commitment, b byte) {
		for i := range c {
			c[i] = b
		}
	}
	fill(&x.c, 0x3f)
	fill(&x.d1, 0xd1)
	fill(&x.d2, 0xd2)
	var lock notary.ChainValue
	a := notary.Allowance{Fills: 4, Lock: lock}
	ts := t0.UnixMilli()
	x.leaves = []notaryapi.LeafInfo{
		{Index: 10, Kind: notary.KindPrescription, Commitment: x.c, Timestamp: ts},
		{Index: 11, Kind: notary.KindAllowance, Commitment: a.Commitment(), Link: x.c, Timestamp: ts},
		{Index: 12, Kind: notary.KindConsent, Commitment: notary.Commitment{0xcc}, Timestamp: ts},
		{Index: 13, Kind: notary.KindDispense, Commitment: x.d1, Link: x.c, Timestamp: ts + 1000},
		{Index: 14, Kind: notary.KindDispense, Commitment: x.d2, Link: x.c, Timestamp: ts + 2000},
		{Index: 15, Kind: notary.KindRevocation, Commitment: notary.RevocationCommitment(x.c), Link: x.c, Timestamp: ts + 3000},
	}
	return x
}

// event is a notarized event listing leaves.
func (x rxLife) event() eventMsg {
	byKind := map[string]int{}
	for _, l := range x.leaves {
		byKind[l.Kind.String()]++
	}
	return eventMsg{ev: notaryapi.Event{Type: notaryapi.EventNotarized, Notarized: &notaryapi.NotarizedEvent{
		First: x.leaves[0].Index, Size: x.leaves[len(x.leaves)-1].Index + 1, Count: uint64(len(x.leaves)), ByKind: byKind, Recent: x.leaves,
	}}, at: t0}
}

// status is the prescription's status with its first n leaves of kind
// dispense, as the cluster answers it (receipts without proofs: the Feed
// does not verify them).
func (x rxLife) status(dispenses int) *notary.PrescriptionStatus {
	receipt := func(l notaryapi.LeafInfo) *notary.Receipt {
		leaf := notary.Leaf{Kind: l.Kind, Commitment: l.Commitment, Link: l.Link, Timestamp: l.Timestamp}
		return &notary.Receipt{Origin: "console.test/log", Index: l.Index, Leaf: leaf, LeafHash: leaf.Hash(), Checkpoint: []byte("console.test/log\n16\n")}
	}
	st := &notary.PrescriptionStatus{Commitment: x.c, Prescription: receipt(x.leaves[0]), Allowance: receipt(x.leaves[1])}
	for _, l := range x.leaves[3 : 3+dispenses] {
		st.Dispenses = append(st.Dispenses, receipt(l))
	}
	return st
}

// lineWith is the line of view that contains s.
func lineWith(t *testing.T, view, s string) string {
	t.Helper()
	for _, l := range strings.Split(view, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	t.Fatalf("no line with %q in:\n%s", s, view)
	return ""
}

// TestFeedLifecycle: the Feed shows a prescription's allowance, dispenses
// and revocation with the prescription they link to, shortened; each
// dispense's fill once the prescription's status lists it; and filtering
// by the prescription's commitment shows its whole life and nothing else.
func TestFeedLifecycle(t *testing.T) {
	x := newRxLife()
	m := testModel(t, "")
	m.Update(x.event())
	press(m, "3")
	view := m.View()
	if l := lineWith(t, view, " allowance "); !strings.Contains(l, "3f3f3f3f 4 fills") {
		t.Errorf("the allowance does not show its prescription and fills: %q", l)
	}
	if l := lineWith(t, view, " revocation "); !strings.Contains(l, " 15 ") || !strings.HasSuffix(strings.TrimSpace(l), "3f3f3f3f") {
		t.Errorf("the revocation does not show the prescription it revokes: %q", l)
	}
	for _, d := range []string{"d1d1d1", "d2d2d2"} {
		if l := lineWith(t, view, d); !strings.Contains(l, " dispense ") || !strings.HasSuffix(strings.TrimSpace(l), "3f3f3f3f") {
			t.Errorf("a dispense before its fill is known: %q, want its kind and prescription, no fill", l)
		}
	}

	// The status lists the first dispense only (a node that lags): the
	// second shows no fill yet.
	m.Update(rxStatusMsg{link: x.c, st: x.status(1)})
	view = m.View()
	if l := lineWith(t, view, "d1d1d1"); !strings.Contains(l, "3f3f3f3f fill 1/4") {
		t.Errorf("dispense 1: %q, want fill 1/4", l)
	}
	if l := lineWith(t, view, "d2d2d2"); strings.Contains(l, "fill") {
		t.Errorf("dispense 2 shows a fill the status did not give: %q", l)
	}
	m.Update(rxStatusMsg{link: x.c, st: x.status(2)})
	if l := lineWith(t, m.View(), "d2d2d2"); !strings.Contains(l, "3f3f3f3f fill 2/4") {
		t.Errorf("dispense 2: %q, want fill 2/4", l)
	}
	// A status that fails changes nothing.
	m.Update(rxStatusMsg{link: x.c, err: errors.New("timeout")})
	if l := lineWith(t, m.View(), "d2d2d2"); !strings.Contains(l, "fill 2/4") {
		t.Errorf("a failed status lost the fill: %q", l)
	}

	press(m, "/", "3", "f", "3", "f", "enter")
	view = m.View()
	if !strings.Contains(view, "5 shown") || strings.Contains(view, " consent ") {
		t.Errorf("the filter by the prescription's commitment shows other leaves, or not all of its own:\n%s", view)
	}
}

// runCmds runs cmd and the commands of the batches it returns, and
// returns their status answers (rxStatusMsg).
func runCmds(cmd tea.Cmd) []tea.Msg {
	if cmd == nil {
		return nil
	}
	switch msg := cmd().(type) {
	case tea.BatchMsg:
		var out []tea.Msg
		for _, c := range msg {
			out = append(out, runCmds(c)...)
		}
		return out
	case rxStatusMsg:
		return []tea.Msg{msg}
	}
	return nil
}

// TestFeedAsksFills: a dispense whose fill the Feed does not know makes it
// ask the cluster for its prescription's status, as a consistent read
// (the node that sent the event may be ahead of the one that answers),
// once while a request is out, and again when a dispense came meanwhile
// that the answer lacks.
func TestFeedAsksFills(t *testing.T) {
	x := newRxLife()
	var mu sync.Mutex
	var asked []string
	answer := 1 // dispenses in the next answer
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.Path+" consistent="+r.URL.Query().Get("consistent"))
		st := x.status(answer)
		answer = 2
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
	}))
	defer srv.Close()
	cfg := Config{Nodes: []string{srv.URL}}.withDefaults()
	m := newModel(cfg, func() time.Time { return t0 }, true)
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 24})

	first := x
	first.leaves = x.leaves[:4] // up to the first dispense
	_, cmd := m.Update(first.event())
	second := x
	second.leaves = x.leaves[4:5] // the second, while the first request is out
	_, again := m.Update(second.event())
	if msgs := runCmds(again); len(msgs) != 0 {
		t.Errorf("a second request while one is out")
	}
	msgs := runCmds(cmd)
	if len(msgs) != 1 {
		t.Fatalf("the first dispense made %d requests' messages, want 1: %v", len(msgs), msgs)
	}
	_, cmd = m.Update(msgs[0])
	msgs = runCmds(cmd)
	if len(msgs) != 1 {
		t.Fatalf("no second request for the dispense the first answer lacked")
	}
	m.Update(msgs[0])
	mu.Lock()
	want := "/v1/prescriptions/" + x.c.String() + "/status consistent=1"
	if len(asked) != 2 || asked[0] != want || asked[1] != want {
		t.Errorf("requests %q, want two of %s", asked, want)
	}
	mu.Unlock()
	press(m, "3")
	view := m.View()
	if !strings.Contains(lineWith(t, view, "d1d1d1"), "fill 1/4") || !strings.Contains(lineWith(t, view, "d2d2d2"), "fill 2/4") {
		t.Errorf("the fills are not shown:\n%s", view)
	}
	// Both known: a dispense seen again asks nothing.
	if _, cmd := m.Update(second.event()); len(runCmds(cmd)) != 0 {
		t.Errorf("a request for a dispense whose fill is known")
	}
}

// refusedEvent is an event that counts refusals only.
func refusedEvent(at time.Time, refused map[string]int) eventMsg {
	return eventMsg{ev: notaryapi.Event{Type: notaryapi.EventNotarized, Notarized: &notaryapi.NotarizedEvent{Refused: refused}}, at: at}
}

// TestFraudAlert: refused dispenses for a sign of fraud (a wrong proof, a
// revoked or fully dispensed prescription, an unknown one) raise one
// ALERT when they reach the threshold within a minute, whatever the
// events that count them; fill_taken, a race lost between pharmacies, does
// not count however many; the alert clears once when the minute holds
// fewer than half the threshold, and is raised again when they come back.
func TestFraudAlert(t *testing.T) {
	m, clk := clockModel(t, Config{Nodes: goldenNodes})
	fraud := func() []alert { return alertsLike(m, "possible fraud") }
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

	m.Update(refusedEvent(at(0), map[string]int{"fill_taken": 400}))
	m.Update(refusedEvent(at(10), map[string]int{"bad_proof": 2}))
	m.Update(refusedEvent(at(20), map[string]int{"revoked": 1, "unknown_prescription": 1, "fill_taken": 3}))
	if got := fraud(); len(got) != 0 {
		t.Fatalf("an alert below the threshold: %+v", got)
	}
	m.Update(refusedEvent(at(30), map[string]int{"fully_dispensed": 1}))
	got := fraud()
	if len(got) != 1 {
		t.Fatalf("fraud alerts %+v, want one at the fifth sign within a minute", got)
	}
	want := "possible fraud: 5 dispenses or revocations refused in the last minute: bad_proof 2, fully_dispensed 1, revoked 1, unknown_prescription 1 (alert at 5 a minute; 403 fill_taken, races between pharmacies, not counted)"
	if a := got[0]; a.text != want || a.level != levelBad || !a.at.Equal(at(30)) {
		t.Errorf("the alert is %+v, want %q, ALERT, at %v", a, want, at(30))
	}
	m.Update(refusedEvent(at(40), map[string]int{"bad_proof": 3}))
	if got := fraud(); len(got) != 1 {
		t.Errorf("more signs while raised made another alert: %+v", got)
	}
	press(m, "5")
	if view := m.View(); !strings.Contains(view, "possible fraud: 5 dispenses or revocations refused") {
		t.Errorf("the Alerts tab does not show it:\n%s", view)
	}
	press(m, "2")
	m.Update(tea.WindowSizeMsg{Width: 160, Height: 24})
	if view := m.View(); !strings.Contains(view, "Refused dispenses and revocations: bad_proof 5, fully_dispensed 1, revoked 1, unknown_prescription 1, fill_taken 403") {
		t.Errorf("the Throughput tab does not count the refusals:\n%s", view)
	}

	// At 95 s the minute holds the 3 of 40 s: not below half of 5. At
	// 101 s it holds none: cleared, once.
	clk.now = at(95)
	m.alertsTab.Update(tickMsg(clk.now))
	if got := alertsLike(m, "refused dispenses back to normal"); len(got) != 0 {
		t.Errorf("cleared with 3 signs in the minute: %+v", got)
	}
	clk.now = at(101)
	m.alertsTab.Update(tickMsg(clk.now))
	m.Update(refusedEvent(at(102), map[string]int{"fill_taken": 50}))
	if got := alertsLike(m, "refused dispenses back to normal"); len(got) != 1 || got[0].level != levelInfo || !got[0].at.Equal(at(101)) {
		t.Errorf("cleared alerts %+v, want one at %v", got, at(101))
	}
	m.Update(refusedEvent(at(110), map[string]int{"revoked": 5}))
	if got := fraud(); len(got) != 2 || !got[1].at.Equal(at(110)) {
		t.Errorf("fraud alerts %+v, want a second one when the signs came back", got)
	}
}

// TestFraudThreshold: the threshold is the Config's when given.
func TestFraudThreshold(t *testing.T) {
	m := testModelOf(t, Config{Nodes: goldenNodes, FraudThreshold: 1})
	m.Update(refusedEvent(t0, map[string]int{"bad_proof": 1}))
	if got := alertsLike(m, "possible fraud: 1 dispense or revocation refused in the last minute: bad_proof 1 (alert at 1 a minute)"); len(got) != 1 {
		t.Errorf("alerts %q, want one at the first sign with a threshold of 1", alertTexts(m))
	}
	if err := (Config{Nodes: goldenNodes, FraudThreshold: -1}).Validate(); err == nil {
		t.Error("a negative threshold is valid")
	}
}

// TestLiveDispenses: on a real cluster, a prescription allows two fills;
// two pharmacy tills dispense them through different nodes, and the Feed
// shows each dispense with its fill. Then the physician revokes it and a
// till tries again and again, once with a made-up proof: the cluster
// refuses each, and the Alerts tab says possible fraud.
func TestLiveDispenses(t *testing.T) {
	c := startLiveCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	submitter := notaryapi.NewClient(notaryapi.ClientConfig{Nodes: c.urls, Token: "submitter-token-0123456789"})
	tills := []*notaryapi.Client{
		notaryapi.NewClient(notaryapi.ClientConfig{Nodes: c.urls[1:2], Token: pharmacyToken}),
		notaryapi.NewClient(notaryapi.ClientConfig{Nodes: c.urls[2:3], Token: pharmacyToken}),
	}
	var salt notary.Salt
	var rx notary.Commitment
	rand.Read(salt[:])
	rand.Read(rx[:])
	a, err := notary.NewAllowance(salt, rx, 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Nodes: c.urls, Token: operatorToken, PollInterval: 100 * time.Millisecond, RequestTimeout: time.Second, FraudThreshold: 3}
	lc := startConsole(t, cfg, 120, 40)
	lc.Type("3")
	// The Feed shows what the event stream brings once it is followed: a
	// document notarized at each look until one shows says it is, and the
	// prescription's allowance comes after.
	lc.waitFor("the event stream followed", func(out []byte) bool {
		if bytes.Contains(out, []byte(" document ")) {
			return true
		}
		var doc notary.Commitment
		rand.Read(doc[:])
		submitter.Notarize(ctx, notaryapi.Entry{Kind: notary.KindDocument, Commitment: doc})
		return false
	})
	if _, err := submitter.Notarize(ctx, notaryapi.Entry{Kind: notary.KindPrescription, Commitment: rx, Allowance: &a}); err != nil {
		t.Fatal(err)
	}

	dispense := func(till *notaryapi.Client, k int, proof notary.ChainValue) (*notaryapi.NotarizeResponse, error) {
		var d notary.Commitment
		rand.Read(d[:])
		return till.Notarize(ctx, notaryapi.Entry{Kind: notary.KindDispense, Commitment: d, Link: rx, Fill: k, Proof: &proof})
	}
	for k := 1; k <= 2; k++ {
		proof, err := notary.DispenseProof(salt, rx, a, k)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := dispense(tills[k-1], k, proof)
		if err != nil || resp.Fill != k || resp.Fills != 2 {
			t.Fatalf("fill %d: %+v, %v", k, resp, err)
		}
	}
	rxShort := rx.String()[:8]
	lc.waitScreen("both dispenses with their fills", rxShort+" fill 1/2", rxShort+" fill 2/2", rxShort+" 2 fills")

	seed := notary.DispenseSeed(salt, rx)
	if _, err := submitter.Notarize(ctx, notaryapi.Entry{Kind: notary.KindRevocation, Commitment: notary.RevocationCommitment(rx), Link: rx, Proof: &seed}); err != nil {
		t.Fatal(err)
	}
	lc.waitScreen("the revocation", " revocation ")
	var madeUp notary.ChainValue
	rand.Read(madeUp[:])
	last, _ := notary.DispenseProof(salt, rx, a, 2)
	for i, proof := range []notary.ChainValue{last, last, madeUp} {
		_, err := dispense(tills[i%2], 2, proof)
		var p *httpapi.Problem
		if !errors.As(err, &p) || p.Status != http.StatusConflict || errors.Is(err, notaryapi.ErrFillTaken) {
			t.Fatalf("dispense %d after the revocation: %v, want a 409 other than fill_taken", i+1, err)
		}
	}
	lc.Type("5")
	lc.waitScreen("the fraud alert", "possible fraud: 3 dispenses or revocations refused")
	lc.Quit()
	lc.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
}
