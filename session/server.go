package session

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/session/signalapi"
	"github.com/telenotary/telenotary/session/web"
)

// Server is the signalling server: rooms, the WebSocket protocol, session
// records and their notarization, the HTTP API and the browser pages.
//
// Its goroutines and who waits for them: one per WebSocket connection (the
// HTTP server's, which runs the reader) with a writer while it has
// something to send and a ping while one waits for its pong, which it
// waits for; one notarization worker per room, which ends after the room's
// end record; the webhook senders. Close waits for all of them.
type Server struct {
	cfg      Config
	log      *slog.Logger
	registry *prometheus.Registry
	metrics  *metrics
	webhook  *webhooker
	// undelivered holds the webhook events the app did not take.
	undelivered *undelivered
	ctx         context.Context // the server's lifetime
	cancel      context.CancelFunc
	workers     sync.WaitGroup // rooms' notarization workers
	conns       sync.WaitGroup // WebSocket connections
	now         func() time.Time

	// epoch is the whole second after NewServer was called, which
	// NewServer waits for: a token whose iat (in whole seconds) is before
	// it was issued before the server started, and is refused, so that
	// nothing from before a restart (a room that ended, a token used)
	// opens anything; a token issued once NewServer returned is not.
	epoch time.Time
	used  *usedTokens // join tokens that seated someone, until they expire
	// statusLimit rate-limits the status look-ups of each client address.
	statusLimit *httpapi.RateLimiter[string]
	// group is the other instances behind the same address, nil when
	// alone; sealer seals the seats into tickets in a group.
	group      *group
	sealer     *ticketSealer
	background sync.WaitGroup // the group's prober

	mu      sync.Mutex // guards closing, rooms, ended, alerts and servers
	closing bool
	rooms   map[string]*room
	ended   map[string]time.Time // rooms whose session is over, until their tokens expire
	alerts  []signalapi.Alert    // newest last, bounded
	servers []*http.Server       // started by Serve; Close shuts them down

	keysMu   sync.Mutex // guards keys and keysTime
	keys     []byte
	keysTime time.Time
}

// NewServer returns a server for a configuration that Validate accepts;
// serve its Handler and Close it when done.
//
// It returns at the start of the next whole second (tokens' times are
// whole seconds): the server refuses every token issued before NewServer
// was called (tokens do not survive a restart) and accepts those issued
// after it returned.
//
// ctx bounds the server's life: when it ends, connections close and
// notarizations in flight are abandoned at once, without end records.
// For a graceful stop (every session ended and its end record notarized),
// call Close, with a ctx that outlives the signal to stop (such as
// context.WithoutCancel of it). Close must be called in either case.
func NewServer(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("session: config: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger, now: time.Now, registry: cfg.Registerer,
		rooms: map[string]*room{}, ended: map[string]time.Time{}, used: newUsedTokens(cfg.MaxUsedTokens),
		statusLimit: httpapi.NewRateLimiter[string](cfg.StatusRate, cfg.StatusBurst),
	}
	s.epoch = s.now().Truncate(time.Second).Add(time.Second)
	select { // at most a second: see epoch
	case <-time.After(time.Until(s.epoch)):
	case <-ctx.Done():
		return nil, fmt.Errorf("session: %w", ctx.Err())
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	s.undelivered = newUndelivered(cfg.MaxUndelivered)
	s.metrics = newMetrics(s.registry, s.used.len, s.undelivered.len)
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.webhook = newWebhooker(s.ctx, cfg.Webhook, s)
	s.metrics.instancesUp.Set(1)
	if len(cfg.Peers) > 0 {
		s.startGroup()
	}
	return s, nil
}

// startGroup asks every peer once, so that the server starts with the
// group as it is, then keeps asking in the background.
func (s *Server) startGroup() {
	client := s.cfg.PeerClient
	if client == nil {
		client = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}}
	}
	s.cfg.PeerClient = client
	s.sealer = newTicketSealer(s.cfg.TokenKey)
	s.group = newGroup(s.cfg.Instance, s.epoch.Unix(), s.cfg.Peers, client, s.cfg.ProbeInterval, s.log,
		func(up int) { s.metrics.instancesUp.Set(float64(up)) })
	s.group.probeAll(s.ctx)
	s.log.Info("signalling instance in a group", "instance", s.cfg.Instance, "group", s.group.names(), "answering", s.group.live())
	s.background.Add(1)
	go func() { defer s.background.Done(); s.group.run(s.ctx) }()
}

// Handler serves the HTTP API, the WebSocket and the browser pages. Every
// error of the API is an RFC 9457 problem (httpapi); a wrong method is 405
// with Allow.
func (s *Server) Handler() http.Handler {
	mux := &httpapi.Mux{Log: s.log}
	mux.HandleFunc("GET "+signalapi.PathSignal, s.serveSignal)
	mux.HandleFunc("POST "+signalapi.PathRooms, s.serveCreateRoom)
	mux.HandleFunc("GET "+signalapi.PathRooms, s.serveRooms)
	mux.HandleFunc("GET "+signalapi.PathRooms+"/{room}", s.serveRoom)
	mux.HandleFunc("POST "+signalapi.PathRooms+"/{room}/end", s.serveEndRoom)
	mux.HandleFunc("DELETE "+signalapi.PathRooms+"/{room}/participants/{role}", s.serveRemoveParticipant)
	mux.HandleFunc("GET "+signalapi.PathSessions, s.serveSessions)
	mux.HandleFunc("GET "+signalapi.PathKeys, s.serveKeys)
	mux.HandleFunc("GET "+signalapi.PathUndelivered, s.serveUndelivered)
	mux.HandleFunc("DELETE "+signalapi.PathUndelivered+"/{id}", s.serveAckUndelivered)
	mux.HandleFunc("POST "+signalapi.PathRevoke, s.serveRevoke)
	mux.HandleFunc("GET "+signalapi.PathPrescriptions+"/{commitment}/status", s.servePrescriptionStatus)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET "+signalapi.PathInstance, s.serveInstance)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	files := pageHeaders(http.FileServerFS(web.Files))
	mux.Handle("GET /app/", files)
	mux.Handle("GET /verify/", files)
	mux.HandleFunc("GET /verify/telenotary-verifier.html", serveOfflineVerifier)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/app/", http.StatusFound) })
	return securityHeaders(mux)
}

// serveOfflineVerifier offers the verification page as one file to save
// (web.OfflineVerifier).
func serveOfflineVerifier(w http.ResponseWriter, r *http.Request) {
	page, err := web.OfflineVerifier()
	if err != nil {
		httpapi.WriteError(w, r, nil, fmt.Errorf("%w: %v", httpapi.ErrInternal, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="telenotary-verifier.html"`)
	w.Write(page)
}

// securityHeaders keeps the pages from being framed or sniffed.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

// pageHeaders confines the browser pages to this server: scripts, styles
// and connections of its own only, camera and microphone for this origin.
func pageHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' blob:; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		w.Header().Set("Permissions-Policy", "camera=(self), microphone=(self)")
		h.ServeHTTP(w, r)
	})
}

func (s *Server) serveSignal(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	closing := s.closing
	if !closing {
		s.conns.Add(1)
	}
	s.mu.Unlock()
	if closing {
		httpapi.WriteError(w, r, s.log, fmt.Errorf("%w: the server is shutting down", signalapi.ErrShuttingDown))
		return
	}
	defer s.conns.Done()
	if err := liftDeadlines(w); err != nil {
		httpapi.WriteError(w, r, s.log, fmt.Errorf("%w: lift the HTTP timeouts for the WebSocket: %w", httpapi.ErrInternal, err))
		return
	}
	if !isUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		httpapi.WriteError(w, r, s.log, fmt.Errorf("%w: %s is a WebSocket: send a handshake (Connection: Upgrade, Upgrade: websocket)", signalapi.ErrUpgradeRequired, signalapi.PathSignal))
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.cfg.OriginPatterns})
	if err != nil {
		return // Accept wrote the answer
	}
	c := newConn(s, ws)
	c.relayed = s.fromPeer(r)
	s.metrics.connections.Inc()
	defer s.metrics.connections.Dec()
	c.serve(s.ctx)
}

// isUpgrade reports whether r asks for a WebSocket: the WebSocket library
// checks the rest of the handshake.
func isUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

// headerHasToken reports whether a comma-separated header lists token, in
// any case.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// join seats a connection in the room its token names, creating the room
// when an app-signed token names one the server does not hold; or, with a
// resume ticket, in the seat the ticket is for.
func (s *Server) join(c *conn, m *signalapi.Message) error {
	if m.Ticket != "" {
		return s.resume(c, m)
	}
	claims, err := s.cfg.TokenKey.Parse(m.Token)
	if err != nil {
		return err
	}
	if err := s.checkTokenTimes(claims); err != nil {
		return err
	}
	if m.Room != "" && m.Room != claims.Room {
		return signalapi.RefuseFatal(signalapi.CodeWrongRoom, "the token is for another room than %s", m.Room)
	}
	s.mu.Lock()
	_, over := s.ended[claims.Room]
	s.mu.Unlock()
	if over { // said first: nothing else matters for a room that ended
		return signalapi.RefuseFatal(signalapi.CodeRoomEnded, "the consultation in room %s is over", claims.Room)
	}
	id := tokenID(m.Token)
	if err := s.used.check(id, s.now()); err != nil {
		return err // before the room: a refused token opens none
	}
	if s.group != nil && claims.Instance != "" && claims.Instance != s.cfg.Instance && !s.holds(claims.Room) {
		// Its room was opened by an instance that went away before this
		// participant joined: its other participant, had it joined, would
		// have brought the room here with its ticket (a takeover).
		return signalapi.RefuseFatal(signalapi.CodeRoomEnded, "room %s was opened on signalling instance %s, which went away before you joined it; ask the app's backend for a new room", claims.Room, claims.Instance)
	}
	r, err := s.room(claims.Room)
	if err != nil {
		return err
	}
	return r.join(c, claims, id)
}

// checkTokenTimes refuses a token issued before the server started (its
// room may have ended, or the token been used, before a restart: the
// server keeps nothing across one), and a token valid for longer than a
// session may last, which the record of used tokens would have to hold as
// long.
func (s *Server) checkTokenTimes(c *Claims) error {
	iat := c.IssuedAt.Time
	if iat.Before(s.epoch) {
		return signalapi.RefuseFatal(signalapi.CodeTokenExpired, "token was issued at %s, before this signalling server started (%s): tokens do not outlive a restart, so that a room that ended stays ended; ask the app's backend for a new one",
			iat.UTC().Format(time.RFC3339), s.epoch.UTC().Format(time.RFC3339))
	}
	if life := c.ExpiresAt.Sub(iat); life > s.cfg.MaxSessionLength {
		return signalapi.RefuseFatal(signalapi.CodeTokenInvalid, "token is valid for %s (claim \"iat\" to claim \"exp\"), longer than the server's maximum session length %s: sign tokens that expire sooner", life, s.cfg.MaxSessionLength)
	}
	return nil
}

// parseTicket reads a ticket: its room, its hash, and in a group its
// sealed seat (nil without one).
func (s *Server) parseTicket(ticket string) (string, ticketHash, *ticketSeat, error) {
	id, hash, sealed, err := ticketRoom(ticket)
	if err != nil || s.sealer == nil {
		return id, hash, nil, err
	}
	seat, err := s.sealer.open(ticket, sealed, s.now())
	return id, hash, seat, err
}

// resume seats a connection that presents a resume ticket.
func (s *Server) resume(c *conn, m *signalapi.Message) error {
	id, hash, seat, err := s.parseTicket(m.Ticket)
	if err != nil {
		return err
	}
	if m.Room != "" && m.Room != id {
		return signalapi.RefuseFatal(signalapi.CodeWrongRoom, "the ticket is for another room than %s", m.Room)
	}
	s.mu.Lock()
	closing, r := s.closing, s.rooms[id]
	_, over := s.ended[id]
	s.mu.Unlock()
	switch {
	case closing:
		return signalapi.RefuseFatal(signalapi.CodeShuttingDown, "the server is shutting down")
	case r == nil && over:
		return signalapi.RefuseFatal(signalapi.CodeRoomEnded, "the consultation in room %s is over", id)
	case r == nil && seat != nil && (seat.Instance != s.cfg.Instance || seat.Epoch != s.epoch.Unix()):
		return s.takeOver(c, id, seat)
	case r == nil:
		return signalapi.RefuseFatal(signalapi.CodeTicketInvalid, "this server holds no room %s: the ticket is from before a restart of the server, or its room never opened here; ask the app's backend for a new token", id)
	}
	if seat != nil && seat.Session == r.continues && !r.knowsTicket(hash) {
		return r.takeSeat(c, seat)
	}
	return r.resume(c, hash)
}

// room returns the open room id, creating it if needed. Its error is a
// fatal *signalapi.ProtocolError: shutting_down, room_ended or limit.
func (s *Server) room(id string) (*room, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, signalapi.RefuseFatal(signalapi.CodeShuttingDown, "the server is shutting down")
	}
	if r := s.rooms[id]; r != nil {
		return r, nil
	}
	if _, over := s.ended[id]; over {
		return nil, signalapi.RefuseFatal(signalapi.CodeRoomEnded, "the consultation in room %s is over", id)
	}
	if len(s.rooms) >= s.cfg.MaxRooms {
		return nil, signalapi.RefuseFatal(signalapi.CodeLimit, "the server holds its maximum of %d rooms", s.cfg.MaxRooms)
	}
	r := newRoom(s, id, s.now().Add(s.cfg.MaxSessionLength))
	s.rooms[id] = r
	s.metrics.rooms.Inc()
	s.pruneEndedLocked()
	return r, nil
}

// forget drops an ended room, remembering its id while its tokens may
// still be presented.
func (s *Server) forget(r *room) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rooms[r.id] == r {
		delete(s.rooms, r.id)
		s.metrics.rooms.Dec()
	}
	// A token of the room issued before now expires within a session's
	// maximum length (checkTokenTimes), clock skew allowed on iat and exp.
	s.ended[r.id] = s.now().Add(s.cfg.MaxSessionLength + 2*tokenLeeway)
}

func (s *Server) pruneEndedLocked() {
	if len(s.ended) < 1024 {
		return
	}
	now := s.now()
	for id, until := range s.ended {
		if now.After(until) {
			delete(s.ended, id)
		}
	}
}

const maxAlerts = 100

func (s *Server) alert(kind signalapi.AlertKind, room, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.alerts) == maxAlerts {
		copy(s.alerts, s.alerts[1:])
		s.alerts = s.alerts[:maxAlerts-1]
	}
	s.alerts = append(s.alerts, signalapi.Alert{Time: s.now().UTC(), Kind: kind, Room: room, Message: msg})
}

// Sessions returns the live consultations, oldest first, and recent alerts:
// what GET /v1/sessions answers.
func (s *Server) Sessions() signalapi.SessionsResponse {
	s.mu.Lock()
	rooms := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	alerts := append([]signalapi.Alert{}, s.alerts...)
	s.mu.Unlock()
	now := s.now()
	out := signalapi.SessionsResponse{Sessions: make([]signalapi.SessionInfo, 0, len(rooms)), Alerts: alerts}
	for _, r := range rooms {
		out.Sessions = append(out.Sessions, r.info(now))
	}
	sort.Slice(out.Sessions, func(i, j int) bool {
		a, b := out.Sessions[i], out.Sessions[j]
		if !a.Created.Equal(b.Created) {
			return a.Created.Before(b.Created)
		}
		return a.Room < b.Room
	})
	return out
}

// Close stops the server gracefully: it refuses new connections and
// rooms, ends every session (notarizing the end records), waits for those
// notarizations and the webhook queue until ctx ends, then closes every
// connection and waits for every goroutine of the server to return; last,
// it shuts down the HTTP servers of Serve. The error says what ctx cut
// short.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	rooms := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	for _, r := range rooms {
		r.end("server-shutdown")
	}
	var err error
	if !waitGroup(ctx, &s.workers) {
		err = fmt.Errorf("session: shutdown: end records still being notarized: %w", ctx.Err())
	}
	s.webhook.close(ctx)
	// What is left now stops at once: connections close, notarizations
	// still in flight fail.
	s.cancel()
	s.workers.Wait()
	s.conns.Wait()
	s.background.Wait()
	// Last, the HTTP servers of Serve, which answered shutting_down until
	// now; what ctx leaves no time for is closed at once.
	s.mu.Lock()
	servers := s.servers
	s.mu.Unlock()
	for _, hs := range servers {
		if hs.Shutdown(ctx) != nil {
			hs.Close()
		}
	}
	return err
}

// waitGroup waits for wg until ctx ends and reports whether wg finished.
// Its helper goroutine ends with wg, which its caller waits for anyway.
func waitGroup(ctx context.Context, wg *sync.WaitGroup) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}
