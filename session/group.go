package session

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/telenotary/telenotary/session/signalapi"
)

// Several signalling instances behind one address (docs/PROTOCOL.md,
// "Several instances") share no state and run no consensus. Each knows
// the others from its configuration (Config.Peers) and asks each, every
// ProbeInterval, who it is and since when (GET /v1/instance). A room lives
// in the memory of one instance, and any instance can tell which:
//
//   - a token the server issued names the instance that opened its room;
//     an app-signed token names none, and its room is placed by rendezvous
//     hashing of its id over the instances that answer;
//   - a resume ticket names, in its sealed part, the instance that issued
//     it and that instance's start;
//   - when that instance is gone (it does not answer, or answers from a
//     later start), the room's successor is the rendezvous choice among
//     the others, which every instance computes alike.
//
// A WebSocket that reaches another instance than the room's is relayed
// there, message for message, so that clients need only the group's one
// address. A successor that gets a ticket of a room it does not hold
// takes the room over (takeover.go).

// Peer is another signalling instance of the group.
type Peer struct {
	// Name is its --instance name, unique in the group.
	Name string
	// URL is its base URL as the other instances reach it (http or https).
	URL string
}

// parsePeer reads a peer as name=URL.
func parsePeer(s string) (Peer, error) {
	name, u, ok := strings.Cut(s, "=")
	if !ok {
		return Peer{}, fmt.Errorf("peer %.80q is not NAME=URL", s)
	}
	return Peer{Name: name, URL: u}, nil
}

// ParsePeers reads a comma-separated list of NAME=URL peers (the signal
// command's --peers).
func ParsePeers(list string) ([]Peer, error) {
	var peers []Peer
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := parsePeer(s)
		if err != nil {
			return nil, err
		}
		peers = append(peers, p)
	}
	return peers, nil
}

// validatePeers checks a group's peers against the instance's own name.
func validatePeers(self string, peers []Peer) error {
	if len(peers) == 0 {
		return nil
	}
	if self == "" || !signalapi.ValidID(self) {
		return fmt.Errorf("Instance %.80q must be a name of 1 to 64 of A-Z a-z 0-9 - _ when the server has Peers", self)
	}
	seen := map[string]bool{self: true}
	for i, p := range peers {
		switch {
		case !signalapi.ValidID(p.Name):
			return fmt.Errorf("Peers[%d].Name %.80q must be 1 to 64 of A-Z a-z 0-9 - _", i, p.Name)
		case seen[p.Name]:
			return fmt.Errorf("Peers[%d].Name %q is given twice (or is this instance's own name)", i, p.Name)
		}
		seen[p.Name] = true
		u, err := url.Parse(p.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return fmt.Errorf("Peers[%d].URL %.200q must be an http(s) base URL such as https://signal-2.internal:8443", i, p.URL)
		}
	}
	return nil
}

// member is a peer as the group last saw it.
type member struct {
	Peer
	signalURL string // its WebSocket

	mu    sync.Mutex
	up    bool
	epoch int64 // its start, from its last answer
	err   string
}

// isUp reports whether the member answered its last probe.
func isUp(m *member) bool {
	up, _ := m.state()
	return up
}

// state returns whether the member answers, and its start.
func (m *member) state() (bool, int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.up, m.epoch
}

// group is this instance's view of the others.
type group struct {
	self     string
	epoch    int64
	members  []*member // in the order of the configuration
	client   *http.Client
	interval time.Duration
	log      *slog.Logger
	onChange func(up int) // the metric of instances up
}

func newGroup(self string, epoch int64, peers []Peer, client *http.Client, interval time.Duration, log *slog.Logger, onChange func(int)) *group {
	g := &group{self: self, epoch: epoch, client: client, interval: interval, log: log, onChange: onChange}
	for _, p := range peers {
		base := strings.TrimSuffix(p.URL, "/")
		ws := "ws" + strings.TrimPrefix(base, "http") + signalapi.PathSignal
		g.members = append(g.members, &member{Peer: Peer{Name: p.Name, URL: base}, signalURL: ws})
	}
	return g
}

// find returns the member of a name, nil for none (or this instance).
func (g *group) find(name string) *member {
	for _, m := range g.members {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// live returns the names of the instances that answer, this one first.
func (g *group) live() []string {
	names := []string{g.self}
	for _, m := range g.members {
		if isUp(m) {
			names = append(names, m.Name)
		}
	}
	return names
}

// rank orders the group's instances for a room by rendezvous (highest
// random weight) hashing: every instance computes the same order from the
// configuration alone, and removing an instance moves only the rooms it
// ranked first for.
func (g *group) rank(room string) []string {
	type scored struct {
		name  string
		score uint64
	}
	all := []scored{{name: g.self}}
	for _, m := range g.members {
		all = append(all, scored{name: m.Name})
	}
	for i := range all {
		h := sha256.Sum256([]byte(all[i].name + "\x00" + room))
		all[i].score = binary.BigEndian.Uint64(h[:8])
	}
	slices.SortFunc(all, func(a, b scored) int {
		if a.score != b.score {
			return cmp.Compare(b.score, a.score)
		}
		return strings.Compare(a.name, b.name)
	})
	names := make([]string, len(all))
	for i, s := range all {
		names[i] = s.name
	}
	return names
}

// markDown records that a member did not answer; the next probe that gets
// an answer brings it back.
func (g *group) markDown(m *member, err error) {
	m.mu.Lock()
	was := m.up
	m.up, m.err = false, err.Error()
	m.mu.Unlock()
	if was {
		g.log.Warn("a signalling instance of the group does not answer: its rooms move to the others", "instance", m.Name, "error", err)
		g.changed()
	}
}

func (g *group) changed() {
	if g.onChange != nil {
		g.onChange(len(g.live()))
	}
}

// probeAll asks every member who it is, at once, and waits for the
// answers (each bounded by the probe interval).
func (g *group) probeAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, m := range g.members {
		wg.Add(1)
		go func() { defer wg.Done(); g.probe(ctx, m) }()
	}
	wg.Wait()
}

// maxInstanceInfo bounds an answer of GET /v1/instance.
const maxInstanceInfo = 4096

// probe asks one member GET /v1/instance and records the answer.
func (g *group) probe(ctx context.Context, m *member) {
	ctx, cancel := context.WithTimeout(ctx, g.interval)
	defer cancel()
	info, err := g.ask(ctx, m)
	if err != nil {
		if ctx.Err() == nil || ctx.Err() == context.DeadlineExceeded {
			g.markDown(m, err)
		}
		return
	}
	m.mu.Lock()
	was, before := m.up, m.epoch
	m.up, m.epoch, m.err = true, info.Epoch, ""
	m.mu.Unlock()
	switch {
	case !was:
		g.log.Info("a signalling instance of the group answers", "instance", m.Name, "started", time.Unix(info.Epoch, 0).UTC())
		g.changed()
	case before != info.Epoch:
		g.log.Warn("a signalling instance of the group restarted: the rooms it held moved to the others", "instance", m.Name, "started", time.Unix(info.Epoch, 0).UTC())
	}
}

func (g *group) ask(ctx context.Context, m *member) (*signalapi.InstanceInfo, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL+signalapi.PathInstance, nil)
	if err != nil {
		return nil, err
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxInstanceInfo))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", signalapi.PathInstance, resp.Status)
	}
	var info signalapi.InstanceInfo
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, fmt.Errorf("GET %s: %w", signalapi.PathInstance, err)
	}
	if info.Instance != m.Name {
		return nil, fmt.Errorf("GET %s: the instance at %s calls itself %.80q, not %q: check --peers", signalapi.PathInstance, m.URL, info.Instance, m.Name)
	}
	return &info, nil
}

// run probes every member each interval until ctx ends.
func (g *group) run(ctx context.Context) {
	t := time.NewTicker(g.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.probeAll(ctx)
		}
	}
}

// successor is where a room is served when the instance named gone does
// not hold it: the first of the room's rank, gone left out, that answers
// (this instance always does). The rank depends on the configuration
// only, so instances that disagree on which others answer still agree
// unless they disagree on the one ranked first. It returns nil for this
// instance.
func (g *group) successor(room, gone string) *member {
	for _, name := range g.rank(room) {
		switch {
		case name == gone:
			continue
		case name == g.self:
			return nil
		}
		if m := g.find(name); m != nil {
			if isUp(m) {
				return m
			}
		}
	}
	return nil
}

// place decides where a join message is served. The instance that serves
// it (here, or the member returned) checks it; a message place cannot
// read is served here, which refuses it.
func (s *Server) place(m *signalapi.Message) *member {
	g := s.group
	if g == nil {
		return nil
	}
	if m.Ticket != "" {
		id, _, seat, err := s.parseTicket(m.Ticket)
		if err != nil || seat == nil || s.holds(id) {
			return nil
		}
		if seat.Instance == g.self && seat.Epoch == g.epoch {
			return nil // issued here: this instance says what became of it
		}
		if mem := g.find(seat.Instance); mem != nil {
			if up, epoch := mem.state(); up && epoch == seat.Epoch {
				return mem
			}
		}
		return g.successor(id, seat.Instance)
	}
	claims, err := s.cfg.TokenKey.Parse(m.Token)
	if err != nil || s.holds(claims.Room) {
		return nil
	}
	switch opened := claims.Instance; {
	case opened == g.self:
		return nil
	case opened != "":
		if mem := g.find(opened); mem != nil {
			if isUp(mem) {
				return mem
			}
		}
		return g.successor(claims.Room, opened)
	}
	return g.successor(claims.Room, "")
}

// holds reports whether the room is open here.
func (s *Server) holds(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rooms[id] != nil
}

// serveInstance answers GET /v1/instance.
func (s *Server) serveInstance(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(signalapi.InstanceInfo{Instance: s.cfg.Instance, Epoch: s.epoch.Unix()})
}

// groupNames lists the group's instances, for logs.
func (g *group) names() []string {
	names := []string{g.self}
	for _, m := range g.members {
		names = append(names, m.Name)
	}
	slices.Sort(names)
	return names
}

// maxGroupSessions bounds the answer of one peer's GET /v1/sessions.
const maxGroupSessions = 64 << 20

// groupSessions adds the consultations and alerts of every instance of the
// group that answers to out, asking each with the request's own
// authorization (the operator's key, which every instance of a group
// shares), so that an operator's console behind the group's address sees
// them all. An instance that does not answer is left out, and said so in
// an alert.
func (s *Server) groupSessions(r *http.Request, out *signalapi.SessionsResponse) {
	type answer struct {
		name string
		resp *signalapi.SessionsResponse
		err  error
	}
	answers := make(chan answer, len(s.group.members))
	asked := 0
	for _, m := range s.group.members {
		if !isUp(m) {
			continue
		}
		asked++
		go func() {
			ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ProbeInterval+2*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.URL+signalapi.PathSessions, nil)
			req.Header.Set("Authorization", r.Header.Get("Authorization"))
			req.Header.Set(signalapi.RelayHeader, s.relayProof())
			var a signalapi.SessionsResponse
			resp, err := s.cfg.PeerClient.Do(req)
			if err == nil {
				body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxGroupSessions))
				resp.Body.Close()
				switch {
				case rerr != nil:
					err = rerr
				case resp.StatusCode != http.StatusOK:
					err = fmt.Errorf("%s", resp.Status)
				default:
					err = json.Unmarshal(body, &a)
				}
			}
			answers <- answer{name: m.Name, resp: &a, err: err}
		}()
	}
	for range asked {
		a := <-answers
		if a.err != nil {
			out.Alerts = append(out.Alerts, signalapi.Alert{Time: s.now().UTC(), Kind: signalapi.AlertInstanceUnavailable,
				Message: fmt.Sprintf("instance %s did not list its sessions: %v", a.name, a.err)})
			continue
		}
		out.Sessions = append(out.Sessions, a.resp.Sessions...)
		out.Alerts = append(out.Alerts, a.resp.Alerts...)
	}
	slices.SortStableFunc(out.Sessions, func(a, b signalapi.SessionInfo) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.Room, b.Room)
	})
	slices.SortStableFunc(out.Alerts, func(a, b signalapi.Alert) int { return a.Time.Compare(b.Time) })
}

// relayProof is what this instance sends in RelayHeader: its name and an
// HMAC of it under a key derived from the token key the group shares, so
// that no client can pass as an instance (a relayed connection is served
// where it lands, and may take a room over).
func (s *Server) relayProof() string {
	return s.cfg.Instance + " " + base64.RawURLEncoding.EncodeToString(s.relayMAC(s.cfg.Instance))
}

func (s *Server) relayMAC(name string) []byte {
	mac := hmac.New(sha256.New, s.cfg.TokenKey.key)
	mac.Write([]byte("telenotary relay v1\x00" + name))
	return mac.Sum(nil)
}

// fromPeer reports whether a request comes from another instance of the
// group: its RelayHeader names a peer and proves it.
func (s *Server) fromPeer(r *http.Request) bool {
	if s.group == nil {
		return false
	}
	name, proof, ok := strings.Cut(r.Header.Get(signalapi.RelayHeader), " ")
	if !ok || s.group.find(name) == nil {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(proof)
	return err == nil && hmac.Equal(got, s.relayMAC(name))
}
