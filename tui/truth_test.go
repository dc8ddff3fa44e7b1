package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// The tests of this file check that the console tells the truth: what it
// shows comes from what the cluster says, not from what the console
// happened to notice.

// clock is a test's clock, which the test moves.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

// clockModel is a console of cfg that does not poll, sized 80×24, at a
// clock that starts at t0.
func clockModel(t *testing.T, cfg Config) (*model, *clock) {
	t.Helper()
	c := &clock{now: t0}
	m := newModel(cfg.withDefaults(), c.Now, false)
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	return m, c
}

// peers are the members a leader lists, each at address 1808<n>.
func peers(ids ...string) []notaryapi.PeerStatus {
	var out []notaryapi.PeerStatus
	for _, id := range ids {
		out = append(out, notaryapi.PeerStatus{ID: id, HTTPAddr: "http://127.0.0.1:1808" + id[len(id)-1:], Suffrage: "Voter", Reachable: true})
	}
	return out
}

// leaderWith is node-1's status as leader of term 2, listing members.
func leaderWith(members ...notaryapi.PeerStatus) *notaryapi.Status {
	st := status("node-1", "Leader", 2, 100, 100)
	st.Leader.ID = "node-1"
	st.Peers = members
	return st
}

func follower(id string) *notaryapi.Status {
	st := status(id, "Follower", 2, 100, 100)
	st.Leader.ID = "node-1"
	return st
}

// fakeTimer is the event stream's idle timer under a test's control: it
// counts its resets, and fires when the test says.
type fakeTimer struct {
	resets chan struct{}
	mu     sync.Mutex
	fire   func()
}

func (f *fakeTimer) Reset(time.Duration) bool {
	f.resets <- struct{}{}
	return true
}

func (f *fakeTimer) Stop() bool { return true }

// TestKeepAlivesHoldTheStream: a node whose cluster is idle sends only
// keep-alives; each one resets the console's stream timer, so an idle
// stream is not broken off (and counted as a break) every 30 s. A stream
// that sends neither events nor keep-alives for that long is.
func TestKeepAlivesHoldTheStream(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte(": telenotary events\n\n: keep-alive\n\n: keep-alive\n\n: keep-alive\n\n" +
			"event: cluster\ndata: {\"type\":\"cluster\",\"change\":\"leader\",\"node\":\"node-1\"}\n\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	m := testModelOf(t, Config{Nodes: []string{srv.URL}})
	timer := &fakeTimer{resets: make(chan struct{}, 100)}
	m.src.afterFunc = func(_ time.Duration, f func()) stopResetter {
		timer.mu.Lock()
		defer timer.mu.Unlock()
		timer.fire = f
		return timer
	}
	ctx, cancel := context.WithCancel(context.Background())
	msgs := make(chan tea.Msg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		followEvents(ctx, m.src, func(msg tea.Msg) {
			select {
			case msgs <- msg:
			case <-ctx.Done():
			}
		})
	}()
	defer func() { cancel(); <-done }()
	// next hands the console the stream's messages up to one that is what
	// want looks for, and returns that one.
	next := func(what string, want func(tea.Msg) bool) tea.Msg {
		t.Helper()
		deadline := time.After(conditionWait)
		for {
			select {
			case msg := <-msgs:
				m.Update(msg)
				if want(msg) {
					return msg
				}
			case <-deadline:
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	next("the event", func(msg tea.Msg) bool { _, ok := msg.(eventMsg); return ok })
	// The opening comment, three keep-alives and the event.
	if n := len(timer.resets); n != 5 {
		t.Errorf("the stream timer was reset %d times, want 5: once for each keep-alive, the opening comment and the event", n)
	}
	press(m, "2")
	if view := m.View(); !strings.Contains(view, "0 stream breaks") {
		t.Errorf("an idle stream counted as broken:\n%s", view)
	}

	// Then nothing more for the whole idle time.
	timer.mu.Lock()
	fire := timer.fire
	timer.mu.Unlock()
	fire()
	msg := next("the stream to break", func(msg tea.Msg) bool { s, ok := msg.(streamMsg); return ok && s.err != nil })
	if err := msg.(streamMsg).err; !strings.Contains(err.Error(), "no event or keep-alive for 30s") {
		t.Errorf("the stream broke with %v", err)
	}
	if view := m.View(); !strings.Contains(view, "1 stream breaks") {
		t.Errorf("a silent stream is not counted:\n%s", view)
	}
}

// TestMembershipFollowsTheLeader: the console watches the members the
// leader lists, not only those it was given: a node that joins is added
// (and polled, and its stream may be followed), a node that leaves is
// taken off, and the count of nodes up is of the members.
func TestMembershipFollowsTheLeader(t *testing.T) {
	m := testModel(t, operatorToken)
	m.Update(statusMsg{node: goldenNodes[1], st: follower("node-2"), at: t0})
	m.Update(statusMsg{node: goldenNodes[2], st: follower("node-3"), at: t0})
	m.Update(statusMsg{node: goldenNodes[0], st: leaderWith(peers("node-1", "node-2", "node-3")...), at: t0})
	if view := m.View(); !strings.Contains(view, "3/3 nodes up") {
		t.Fatalf("three members:\n%s", view)
	}

	// node-4 joins, at an address the console was not given.
	t1 := t0.Add(time.Second)
	m.Update(statusMsg{node: goldenNodes[0], st: leaderWith(peers("node-1", "node-2", "node-3", "node-4")...), at: t1})
	node4 := "http://127.0.0.1:18084"
	view := m.View()
	if !strings.Contains(view, "3/4 nodes up") || !strings.Contains(rowOf(t, view, "node-4"), "asking…") {
		t.Errorf("node-4 joined, not shown:\n%s", view)
	}
	if !hasAlert(m, "node-4 is a member now") {
		t.Errorf("alerts %q", alertTexts(m))
	}
	m.cluster.poll = true
	m.cluster.pollAll()
	m.cluster.poll = false
	if n := m.cluster.nodes.find(node4); n == nil || !n.inFlight {
		t.Errorf("node-4 is not polled")
	}
	if _, count := m.src.streamNode(0); count != 4 {
		t.Errorf("the event stream may follow %d nodes, want 4", count)
	}
	m.Update(statusMsg{node: node4, st: follower("node-4"), at: t1})
	if view := m.View(); !strings.Contains(view, "4/4 nodes up") || !strings.Contains(rowOf(t, view, "node-4"), "ok") {
		t.Errorf("node-4 answered:\n%s", view)
	}

	// node-3 is removed and stops; its late answer changes nothing.
	t2 := t1.Add(time.Second)
	m.Update(statusMsg{node: goldenNodes[2], err: errors.New("connection refused"), at: t2})
	m.Update(statusMsg{node: goldenNodes[0], st: leaderWith(peers("node-1", "node-2", "node-4")...), at: t2})
	m.Update(statusMsg{node: goldenNodes[2], st: follower("node-3"), at: t2})
	view = m.View()
	if !strings.Contains(view, "3/3 nodes up") || strings.Contains(view, "127.0.0.1:18083") || strings.Contains(view, "UNREACHABLE") {
		t.Errorf("node-3 left the cluster, still shown:\n%s", view)
	}
	if !hasAlert(m, "node-3 is no longer a member") {
		t.Errorf("alerts %q", alertTexts(m))
	}
	// The other tabs follow the same list.
	if n := m.throughput.nodes.find(node4); n == nil || m.alertsTab.nodes.find(node4) == nil || m.throughput.nodes.find(goldenNodes[2]) != nil {
		t.Errorf("the Throughput and Alerts tabs do not follow the membership")
	}
}

// TestMemberAtAnotherAddress: a configured address (a proxy) that
// answers with a member's id stands for that member: the member is not
// shown twice.
func TestMemberAtAnotherAddress(t *testing.T) {
	proxy := "http://127.0.0.1:9999"
	m := testModelOf(t, Config{Nodes: []string{goldenNodes[0], proxy}, Token: operatorToken})
	m.Update(statusMsg{node: proxy, err: errors.New("connection refused"), at: t0})
	m.Update(statusMsg{node: goldenNodes[0], st: leaderWith(peers("node-1", "node-2")...), at: t0})
	if view := m.View(); !strings.Contains(view, "127.0.0.1:18082") || !strings.Contains(view, "1/2 nodes up") {
		t.Fatalf("node-2 at its own address is not watched:\n%s", view)
	}
	m.Update(statusMsg{node: proxy, st: follower("node-2"), at: t0.Add(time.Second)})
	view := m.View()
	if strings.Contains(view, "127.0.0.1:18082") || !strings.Contains(view, "2/2 nodes up") || !strings.Contains(rowOf(t, view, "node-2"), "127.0.0.1:9999") {
		t.Errorf("node-2 shown twice, or not through its configured address:\n%s", view)
	}
}

// TestLeaderNamedByOthers: the console reaches only followers (the leader
// was not given, and without the operator token the members are not
// listed): they name the leader, so the console does not say "no leader".
func TestLeaderNamedByOthers(t *testing.T) {
	m := testModelOf(t, Config{Nodes: goldenNodes[1:]})
	m.Update(statusMsg{node: goldenNodes[1], st: follower("node-2"), at: t0})
	m.Update(statusMsg{node: goldenNodes[2], st: follower("node-3"), at: t0})
	view := m.View()
	if strings.Contains(view, "no leader") || !strings.Contains(view, "leader node-1 (as node-2 says) · term 2") {
		t.Errorf("the followers name node-1:\n%s", view)
	}
	if !strings.Contains(rowOf(t, view, "node-2"), " ok") {
		t.Errorf("node-2 is not ok:\n%s", view)
	}
}

// TestStaleLeader: a leader that was paused resumes and still says it
// leads, in the term before the one the cluster is in: it is marked
// stale, and the leader of the newer term is the leader.
func TestStaleLeader(t *testing.T) {
	m := testModel(t, "")
	m.Update(statusMsg{node: goldenNodes[0], st: status("node-1", "Leader", 2, 100, 100), at: t0})
	t1 := t0.Add(5 * time.Second)
	m.Update(statusMsg{node: goldenNodes[1], st: status("node-2", "Leader", 3, 110, 110), at: t1})
	m.Update(statusMsg{node: goldenNodes[2], st: status("node-3", "Follower", 3, 110, 110), at: t1})
	m.Update(statusMsg{node: goldenNodes[0], st: status("node-1", "Leader", 2, 100, 100), at: t1})
	view := m.View()
	if row := rowOf(t, view, "node-1"); !strings.Contains(row, "STALE") || strings.Contains(row, " ok") || strings.Contains(row, "*") {
		t.Errorf("node-1 leads an older term, not marked stale: %q\n%s", row, view)
	}
	if row := rowOf(t, view, "node-2"); !strings.Contains(row, "*") || !strings.Contains(row, " ok") {
		t.Errorf("node-2 is the leader: %q", row)
	}
	if !strings.Contains(view, "leader node-2 · term 3") {
		t.Errorf("title:\n%s", view)
	}
	if view := m.View(); !strings.Contains(view, "STALE: it leads term 2, but term 3 has begun") {
		t.Errorf("node-1's details do not say why it is stale:\n%s", view)
	}
	if hasAlert(m, "node-2 -> node-1") {
		t.Errorf("the stale leader's answer changed the leader back: %q", alertTexts(m))
	}
}

// TestOutageFromLastContact: how long a node has been down counts from
// when it was last heard from (by the console, or by the leader, which
// reports its followers' last heartbeat), not from when the console first
// failed to reach it.
func TestOutageFromLastContact(t *testing.T) {
	m, clk := clockModel(t, Config{Nodes: goldenNodes, Token: operatorToken})
	m.Update(statusMsg{node: goldenNodes[1], st: follower("node-2"), at: t0})
	// The console heard from node-2 at t0, then polls failed from t0+50s
	// on (the console was suspended, or the failures were slow to come).
	m.Update(statusMsg{node: goldenNodes[1], err: context.DeadlineExceeded, at: t0.Add(50 * time.Second)})
	// node-3 never answered the console; the leader last heard from it
	// 30 s before t0.
	m.Update(statusMsg{node: goldenNodes[2], err: context.DeadlineExceeded, at: t0.Add(50 * time.Second)})
	members := peers("node-1", "node-2", "node-3")
	members[2].Reachable, members[2].LastContact = false, t0.Add(-30*time.Second)
	m.Update(statusMsg{node: goldenNodes[0], st: leaderWith(members...), at: t0.Add(55 * time.Second)})
	clk.now = t0.Add(time.Minute)
	m.Update(tea.WindowSizeMsg{Width: 160, Height: 48}) // with the CONTACT column
	press(m, "j")
	view := m.View()
	if !strings.Contains(view, "1m00s down") {
		t.Errorf("node-2 was last heard a minute ago:\n%s", view)
	}
	if !strings.Contains(view, "1m30s down") {
		t.Errorf("node-3 was last heard (by the leader) 1m30s ago:\n%s", view)
	}
	if !strings.Contains(view, "voters (as the leader sees them): node-1 ok, node-2 ok, node-3 UNREACHABLE (no heartbeat answered for 1m30s)") {
		t.Errorf("the leader's view of node-3 lacks its reason:\n%s", view)
	}
	m.Update(statusMsg{node: goldenNodes[1], st: follower("node-2"), at: t0.Add(70 * time.Second)})
	if !hasAlert(m, "node-2 reachable again after 1m10s") {
		t.Errorf("alerts %q", alertTexts(m))
	}
}

// TestThroughputFromLeaderLog: the receipts per second are the growth of
// the leader's log between its answers. The node whose event stream the
// console follows hangs (no event comes): the console still shows what
// the cluster does; when the leader stops answering, the rate is
// unknown, not zero and not the last one.
func TestThroughputFromLeaderLog(t *testing.T) {
	m, clk := clockModel(t, Config{Nodes: goldenNodes})
	m.Update(streamMsg{node: goldenNodes[1], at: t0})
	for i := range 7 {
		at := t0.Add(time.Duration(i) * time.Second)
		st := status("node-1", "Leader", 2, 100, 100)
		st.LogSize = 1000 + 500*uint64(i)
		m.Update(statusMsg{node: goldenNodes[0], st: st, at: at})
		m.Update(statusMsg{node: goldenNodes[1], st: status("node-2", "Follower", 2, 100, 100), at: at})
		clk.now = at
	}
	press(m, "2")
	view := m.View()
	if !strings.Contains(view, "· 500 receipts/s") || !strings.Contains(view, "last 5s 500") || !strings.Contains(view, "seen 3,000") {
		t.Errorf("the leader's log grows by 500 a second:\n%s", view)
	}
	for sec := t0.Unix(); sec < t0.Unix()+6; sec++ {
		if got := m.throughput.receipts.at(sec); got != 500 {
			t.Errorf("the chart has %d receipts in second %d, want 500", got, sec-t0.Unix())
		}
	}
	clk.now = clk.now.Add(10 * time.Second)
	for i := range 3 {
		m.Update(statusMsg{node: goldenNodes[0], err: context.DeadlineExceeded, at: clk.now.Add(time.Duration(i-3) * time.Second)})
	}
	view = m.View()
	if !strings.Contains(view, "· - receipts/s") || !strings.Contains(view, "last 5s -") || !strings.Contains(view, "the leader has not answered for 10s") {
		t.Errorf("the leader does not answer: the rate is not known:\n%s", view)
	}
}

// TestFeedSaysSample: an event lists at most the last few leaves of those
// it counts; the Feed says that what it shows is a sample, and only then.
func TestFeedSaysSample(t *testing.T) {
	leaves := func(first, n uint64) []notaryapi.LeafInfo {
		var out []notaryapi.LeafInfo
		for i := range n {
			out = append(out, notaryapi.LeafInfo{Index: first + i, Kind: notary.Kind(1)})
		}
		return out
	}
	whole := testModel(t, "")
	whole.Update(eventMsg{ev: notaryapi.Event{Type: notaryapi.EventNotarized, Notarized: &notaryapi.NotarizedEvent{First: 0, Size: 10, Count: 10, Recent: leaves(0, 10)}}, at: t0})
	press(whole, "3")
	if view := whole.View(); strings.Contains(view, "sample") || !strings.Contains(view, "10 shown") {
		t.Errorf("every leaf listed, called a sample:\n%s", view)
	}
	m := testModel(t, "")
	m.Update(eventMsg{ev: notaryapi.Event{Type: notaryapi.EventNotarized, Notarized: &notaryapi.NotarizedEvent{First: 0, Size: 100, Count: 100, Recent: leaves(68, 32)}}, at: t0})
	m.Update(eventMsg{ev: notaryapi.Event{Type: notaryapi.EventNotarized, Notarized: &notaryapi.NotarizedEvent{First: 100, Size: 110, Count: 10, Recent: leaves(100, 10)}}, at: t0})
	press(m, "3")
	if view := m.View(); !strings.Contains(view, "a sample: the events listed 42 of 110 notarizations") {
		t.Errorf("the feed does not say it is a sample:\n%s", view)
	}
}

// TestActionsOnTheLeader: leadership cannot move to the node that has it,
// so the key does nothing there and the help does not offer it; removing
// the leader takes a second confirmation, which says that the cluster
// will elect another leader.
func TestActionsOnTheLeader(t *testing.T) {
	m := testModel(t, operatorToken)
	m.Update(statusMsg{node: goldenNodes[0], st: status("node-1", "Leader", 2, 100, 100), at: t0})
	m.Update(statusMsg{node: goldenNodes[1], st: status("node-2", "Follower", 2, 100, 100), at: t0})
	if cmd := press(m, "t"); cmd != nil || m.cluster.confirm != nil || m.cluster.notice != nil {
		t.Errorf("t on the leader: cmd %v, confirm %+v, notice %+v", cmd, m.cluster.confirm, m.cluster.notice)
	}
	if view := m.View(); strings.Contains(view, "make leader") {
		t.Errorf("the help offers to make the leader leader:\n%s", view)
	}
	press(m, "?")
	if view := m.View(); strings.Contains(view, "make leader") || !strings.Contains(view, "remove node") {
		t.Errorf("the full help offers to make the leader leader:\n%s", view)
	}
	press(m, "?", "j")
	if view := m.View(); !strings.Contains(view, "t make leader") {
		t.Errorf("no transfer offered on a follower:\n%s", view)
	}
	if press(m, "t"); m.cluster.confirm == nil || m.cluster.confirm.target != "node-2" {
		t.Errorf("t on a follower: confirm %+v", m.cluster.confirm)
	}
	press(m, "esc", "k")

	// Remove the leader: y, then y again.
	press(m, "x")
	if cmd := press(m, "y"); cmd != nil || m.cluster.confirm == nil {
		t.Fatalf("one y removed the leader: cmd %v, confirm %+v", cmd, m.cluster.confirm)
	}
	if view := m.View(); !strings.Contains(view, "node-1 is the leader. Remove it anyway?") || !strings.Contains(view, "will elect another leader") {
		t.Errorf("the second confirmation does not say what happens:\n%s", view)
	}
	if cmd := press(m, "y"); cmd == nil || m.cluster.confirm != nil {
		t.Errorf("the second y: cmd %v, confirm %+v", cmd, m.cluster.confirm)
	}
	// esc at the second confirmation cancels.
	press(m, "x", "y")
	if cmd := press(m, "esc"); cmd != nil || m.cluster.confirm != nil {
		t.Errorf("esc at the second confirmation: cmd %v, confirm %+v", cmd, m.cluster.confirm)
	}
	// A follower goes with one y.
	press(m, "j", "x")
	if cmd := press(m, "y"); cmd == nil {
		t.Error("removing a follower takes more than one y")
	}
}

// TestUnreachableReasons: every node shown unreachable says why, in a few
// words: a node that takes the request and never answers (a blackhole)
// times out after the request timeout; a closed port refuses; and
// whatever the error, the reason is never empty.
func TestUnreachableReasons(t *testing.T) {
	hang := make(chan struct{})
	blackhole := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer blackhole.Close()
	defer close(hang)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	m := testModelOf(t, Config{Nodes: []string{blackhole.URL, closed}, RequestTimeout: 100 * time.Millisecond})
	m.Update(m.src.status(blackhole.URL)())
	m.Update(m.src.status(closed)())
	view := m.View()
	for _, want := range []string{"unreachable: timeout after 100ms", "unreachable: connection refused"} {
		if !strings.Contains(view, want) {
			t.Errorf("the screen lacks %q:\n%s", want, view)
		}
	}
	if got := strings.Count(view, "UNREACHABLE"); got != 2 {
		t.Errorf("%d nodes shown unreachable, want 2:\n%s", got, view)
	}

	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("Get %q: %w", "http://x/v1/status", context.DeadlineExceeded), "timeout after 2s"},
		{&httpapi.Problem{Status: 503, Title: "Service Unavailable"}, "Service Unavailable (HTTP 503)"},
		{fmt.Errorf("Get %q: %w", "http://x/v1/status", io.EOF), "the connection closed without an answer"},
		{errors.New(""), "no answer (*errors.errorString)"},
		{fmt.Errorf("Get %q: ", "http://x/v1/status"), "no answer (*errors.errorString)"},
	} {
		got := unreachableReason(tc.err, 2*time.Second)
		if got == "" || (tc.want != "" && got != tc.want) {
			t.Errorf("the reason of %q is %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestConfigErrorNames: a configuration error names the value and says
// what is wrong with it; a command names its flag with Named.
func TestConfigErrorNames(t *testing.T) {
	err := Config{Nodes: []string{"http://127.0.0.1:1", "127.0.0.1:8080"}}.Validate()
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "Nodes" || ce.Value != "127.0.0.1:8080" {
		t.Fatalf("Validate: %v", err)
	}
	if got, want := ce.Named("--nodes"), `--nodes "127.0.0.1:8080": is not an http(s) URL: it has no scheme (http://127.0.0.1:8080?)`; got != want {
		t.Errorf("Named: %s\nwant    %s", got, want)
	}
	if got, want := err.Error(), `tui: Config.Nodes "127.0.0.1:8080": is not an http(s) URL: it has no scheme (http://127.0.0.1:8080?)`; got != want {
		t.Errorf("Error: %s\nwant   %s", got, want)
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "--x: at least one node URL is needed"},
		{Config{Nodes: []string{"http://a", ""}}, "--x: an empty URL (a stray comma?)"},
		{Config{Nodes: []string{"ftp://a"}}, `--x "ftp://a": is not an http(s) URL: the scheme is "ftp"`},
		{Config{Nodes: []string{"http://"}}, `--x "http://": is not an http(s) URL: it has no host`},
		{Config{Nodes: []string{"http://a"}, Signal: "a:1"}, `--x "a:1": is not an http(s) URL: it has no scheme (http://a:1?)`},
	} {
		var ce *ConfigError
		if err := tc.cfg.Validate(); !errors.As(err, &ce) || ce.Named("--x") != tc.want {
			t.Errorf("%+v: %v, want %s", tc.cfg, err, tc.want)
		}
	}
	if err := (Config{Nodes: []string{"http://a", " https://b:8443/"}}).Validate(); err != nil {
		t.Errorf("good URLs refused: %v", err)
	}
}
