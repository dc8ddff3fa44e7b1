package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/session/web"
)

// Notary is what the server needs of the notary cluster; *notaryapi.Client
// is one.
type Notary interface {
	// Notarize logs an entry and returns its receipt once committed.
	Notarize(ctx context.Context, e notaryapi.Entry) (*notaryapi.NotarizeResponse, error)
	// KeysText returns the cluster's verifier keys, one per line.
	KeysText(ctx context.Context) ([]byte, error)
}

// Config configures a Server.
type Config struct {
	// Notary is the cluster that notarizes session records and
	// prescriptions.
	Notary Notary
	// TokenKey signs and checks room tokens.
	TokenKey *TokenKey
	// APIKeys authorize creating rooms (role submitter: an app backend)
	// and listing sessions (role operator). The file format is that of a
	// node's tokens (auth.ParseTokens). Nil refuses both.
	APIKeys *auth.Tokens
	// Webhook, when its URL is set, receives every receipt bundle.
	Webhook WebhookConfig
	// OriginPatterns are the web origins, besides the server's own, whose
	// pages may open the WebSocket (host patterns as in path.Match).
	OriginPatterns []string

	// Grace is how long a participant whose connection dropped has to come
	// back before the session ends (default 30s).
	Grace time.Duration
	// TokenTTL is the lifetime of tokens the server issues (default 2h).
	TokenTTL time.Duration
	// MaxSessionLength ends a room's session after this long (default 4h).
	MaxSessionLength time.Duration
	// PingInterval is how often clients are pinged; one that does not answer
	// within the interval is disconnected (default 15s).
	PingInterval time.Duration
	// NotarizeTimeout bounds one notarization, retries included (default
	// 60s); on timeout the participants get notary_unavailable.
	NotarizeTimeout time.Duration
	// MessagesPerSecond and MessageBurst rate-limit each connection
	// (defaults 50 and 200).
	MessagesPerSecond int
	MessageBurst      int
	// MaxRooms bounds the rooms held at once (default 10,000).
	MaxRooms int

	// Logger receives the server's logs (default slog.Default()). Logs
	// carry room and session ids, never subjects or documents.
	Logger *slog.Logger
	// Registerer receives the server's metrics; nil means a registry of
	// its own, served at /metrics.
	Registerer *prometheus.Registry
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Grace, 30*time.Second)
	def(&c.TokenTTL, 2*time.Hour)
	def(&c.MaxSessionLength, 4*time.Hour)
	def(&c.PingInterval, 15*time.Second)
	def(&c.NotarizeTimeout, 60*time.Second)
	if c.MessagesPerSecond <= 0 {
		c.MessagesPerSecond = 50
	}
	if c.MessageBurst <= 0 {
		c.MessageBurst = 200
	}
	if c.MaxRooms <= 0 {
		c.MaxRooms = 10000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Server is the signalling server: rooms, the WebSocket protocol, session
// records and their notarization, the HTTP API and the browser pages.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	webhook *webhooker
	ctx     context.Context // the server's lifetime
	cancel  context.CancelFunc
	workers sync.WaitGroup // rooms' notarization workers
	conns   sync.WaitGroup // WebSocket connections
	now     func() time.Time

	mu      sync.Mutex
	closing bool
	rooms   map[string]*room
	ended   map[string]time.Time // rooms whose session is over, until their tokens expire
	alerts  []Alert              // newest last, bounded

	keysMu   sync.Mutex
	keys     []byte
	keysTime time.Time
}

// NewServer returns a server; Serve its Handler and Close it when done.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Notary == nil {
		return nil, errors.New("session: Config.Notary is required")
	}
	if cfg.TokenKey == nil {
		return nil, errors.New("session: Config.TokenKey is required")
	}
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel, now: time.Now,
		rooms: map[string]*room{}, ended: map[string]time.Time{},
	}
	reg := cfg.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
		s.cfg.Registerer = reg
	}
	s.metrics = newMetrics(reg)
	wh, err := newWebhooker(ctx, cfg.Webhook, s)
	if err != nil {
		cancel()
		return nil, err
	}
	s.webhook = wh
	return s, nil
}

// Handler serves the HTTP API, the WebSocket and the browser pages.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/signal", s.serveSignal)
	mux.HandleFunc("POST /v1/rooms", s.serveCreateRoom)
	mux.HandleFunc("GET /v1/sessions", s.serveSessions)
	mux.HandleFunc("GET /v1/keys", s.serveKeys)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Registerer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	files := pageHeaders(http.FileServerFS(web.Files))
	mux.Handle("GET /app/", files)
	mux.Handle("GET /verify/", files)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/app/", http.StatusFound) })
	return securityHeaders(mux)
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
		writeError(w, http.StatusServiceUnavailable, CodeShuttingDown, "", "the server is shutting down")
		return
	}
	defer s.conns.Done()
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.cfg.OriginPatterns})
	if err != nil {
		return // Accept wrote the answer
	}
	c := &conn{srv: s, ws: ws, send: make(chan []byte, sendQueue), done: make(chan struct{})}
	s.metrics.connections.Inc()
	defer s.metrics.connections.Dec()
	c.serve(s.ctx)
}

// join seats a connection in the room its token names, creating the room
// when an app-signed token names one the server does not hold.
func (s *Server) join(c *conn, m *Message) error {
	claims, err := s.cfg.TokenKey.Parse(m.Token)
	if err != nil {
		return err
	}
	if m.Room != "" && m.Room != claims.Room {
		return fatalErr(CodeWrongRoom, "the token is for another room than %s", m.Room)
	}
	r, err := s.room(claims.Room, claims.ExpiresAt.Time)
	if err != nil {
		return err
	}
	return r.join(c, claims)
}

// room returns the open room id, creating it if needed.
func (s *Server) room(id string, tokenExpiry time.Time) (*room, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, fatalErr(CodeShuttingDown, "the server is shutting down")
	}
	if r := s.rooms[id]; r != nil {
		return r, nil
	}
	if _, over := s.ended[id]; over {
		return nil, fatalErr(CodeRoomEnded, "the consultation in room %s is over", id)
	}
	if len(s.rooms) >= s.cfg.MaxRooms {
		return nil, fatalErr(CodeLimit, "the server holds its maximum of %d rooms", s.cfg.MaxRooms)
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
	s.ended[r.id] = r.expires.Add(tokenLeeway)
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

// CreateRoomRequest is the body of POST /v1/rooms; every field is optional.
type CreateRoomRequest struct {
	// Patient and Physician are pseudonymous subject ids (1 to 64 of
	// A-Z a-z 0-9 - _); the server draws random ones when they are empty.
	Patient   string `json:"patient,omitempty"`
	Physician string `json:"physician,omitempty"`
	// TTLSeconds is the tokens' lifetime (default the server's TokenTTL).
	TTLSeconds int `json:"ttl_seconds,omitempty"`
}

// CreateRoomResponse answers POST /v1/rooms.
type CreateRoomResponse struct {
	Room    string    `json:"room"`
	Expires time.Time `json:"expires"`
	// Tokens are the participants' room tokens, by role.
	Tokens map[string]string `json:"tokens"`
}

func (s *Server) serveCreateRoom(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.APIKeys.Authorize(r, auth.RoleSubmitter); err != nil {
		writeAuthError(w, err)
		return
	}
	var req CreateRoomRequest
	if err := decodeBody(r, &req, 4096); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.field, err.msg)
		return
	}
	subjects := map[string]string{RolePatient: req.Patient, RolePhysician: req.Physician}
	for role, sub := range subjects {
		if sub == "" {
			subjects[role] = newID()
		} else if !validID(sub) {
			writeError(w, http.StatusBadRequest, "bad_request", role, role+" must be a pseudonymous id: 1 to 64 of A-Z a-z 0-9 - _")
			return
		}
	}
	ttl := s.cfg.TokenTTL
	if req.TTLSeconds < 0 || req.TTLSeconds > int(s.cfg.MaxSessionLength/time.Second) {
		writeError(w, http.StatusBadRequest, "bad_request", "ttl_seconds", fmt.Sprintf("ttl_seconds must be between 1 and %d", int(s.cfg.MaxSessionLength/time.Second)))
		return
	} else if req.TTLSeconds > 0 {
		ttl = time.Duration(req.TTLSeconds) * time.Second
	}
	id := newID()
	expires := s.now().Add(ttl).Truncate(time.Second)
	if _, err := s.room(id, expires); err != nil {
		var pe *ProtocolError
		errors.As(err, &pe)
		writeError(w, http.StatusServiceUnavailable, pe.Code, "", pe.Message)
		return
	}
	resp := CreateRoomResponse{Room: id, Expires: expires.UTC(), Tokens: map[string]string{}}
	for role, sub := range subjects {
		tok, err := s.cfg.TokenKey.Issue(id, role, sub, expires)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "internal", "", err.Error())
			return
		}
		resp.Tokens[role] = tok
	}
	writeJSON(w, http.StatusCreated, resp)
}

// SessionsResponse answers GET /v1/sessions.
type SessionsResponse struct {
	Sessions []SessionInfo `json:"sessions"`
	// Alerts are recent events an operator should see (fingerprint
	// mismatches, failed webhooks, notarizations that failed), oldest first.
	Alerts []Alert `json:"alerts"`
}

// SessionInfo describes a live consultation: no subjects, no documents.
type SessionInfo struct {
	Room    string     `json:"room"`
	Session string     `json:"session"`
	Created time.Time  `json:"created"`
	Started *time.Time `json:"started,omitempty"`
	// State is waiting (for both to join and negotiate), active,
	// reconnecting (a participant is within its grace window) or ending.
	State               string            `json:"state"`
	DurationMillis      int64             `json:"duration_ms"`
	Participants        []ParticipantInfo `json:"participants"`
	Receipts            int               `json:"receipts"`
	Prescriptions       int               `json:"prescriptions"`
	FingerprintMismatch bool              `json:"fingerprint_mismatch"`
}

// ParticipantInfo is a participant's connection state.
type ParticipantInfo struct {
	Role      string `json:"role"`
	Connected bool   `json:"connected"`
	// DTLS is new (no SDP yet), negotiating (SDP sent) or connected (the
	// participant reported the other side's certificate).
	DTLS string `json:"dtls"`
}

// Alert is an event for the operator.
type Alert struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Room    string    `json:"room,omitempty"`
	Message string    `json:"message"`
}

const maxAlerts = 100

func (s *Server) alert(kind, room, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.alerts) == maxAlerts {
		copy(s.alerts, s.alerts[1:])
		s.alerts = s.alerts[:maxAlerts-1]
	}
	s.alerts = append(s.alerts, Alert{Time: s.now().UTC(), Kind: kind, Room: room, Message: msg})
}

// Sessions returns the live consultations, oldest first, and recent alerts.
func (s *Server) Sessions() SessionsResponse {
	s.mu.Lock()
	rooms := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	alerts := append([]Alert{}, s.alerts...)
	s.mu.Unlock()
	now := s.now()
	out := SessionsResponse{Sessions: make([]SessionInfo, 0, len(rooms)), Alerts: alerts}
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

func (s *Server) serveSessions(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.APIKeys.Authorize(r, auth.RoleOperator); err != nil {
		writeAuthError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.Sessions())
}

// serveKeys serves the cluster's verifier keys (cached for a minute) for
// the browser pages.
func (s *Server) serveKeys(w http.ResponseWriter, r *http.Request) {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	if s.keys == nil || time.Since(s.keysTime) > time.Minute {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		keys, err := s.cfg.Notary.KeysText(ctx)
		cancel()
		if err != nil && s.keys == nil {
			writeError(w, http.StatusServiceUnavailable, CodeNotaryDown, "", "the notary cluster did not answer: "+err.Error())
			return
		}
		if err == nil {
			s.keys, s.keysTime = keys, time.Now()
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(s.keys)
}

// Close ends every session (notarizing the end records), waits for the
// notarizations and the webhook queue until ctx ends, then closes every
// connection.
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
	s.cancel()
	waitGroup(ctx, &s.conns)
	return err
}

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

type bodyError struct{ field, msg string }

func decodeBody(r *http.Request, v any, limit int64) *bodyError {
	data, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return &bodyError{"", "could not read the body: " + err.Error()}
	}
	if int64(len(data)) > limit {
		return &bodyError{"", fmt.Sprintf("body is over %d bytes", limit)}
	}
	if len(data) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &bodyError{te.Field, fmt.Sprintf("%s must be %s", te.Field, typeName(te.Type.String()))}
		}
		return &bodyError{"", "body is not a valid JSON object: " + err.Error()}
	}
	return nil
}

// ErrorResponse is the body of every HTTP error.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody is an HTTP error: a stable code, the field at fault and a
// sentence.
type ErrorBody struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, field, msg string) {
	writeJSON(w, status, ErrorResponse{ErrorBody{Code: code, Field: field, Message: msg}})
}

func writeAuthError(w http.ResponseWriter, err error) {
	if errors.Is(err, notaryapi.ErrForbidden) {
		writeError(w, http.StatusForbidden, "forbidden", "", "this API key may not do this: "+err.Error())
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="telenotary"`)
	writeError(w, http.StatusUnauthorized, "unauthorized", "", "a valid API key is required (Authorization: Bearer KEY)")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
