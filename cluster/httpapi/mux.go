package httpapi

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
)

// Mux is an http.ServeMux whose own answers, 404 for a path it does not
// serve and 405 for a method a path does not take, are problems like every
// other error. Register handlers on it with method patterns
// ("GET /v1/status").
type Mux struct {
	http.ServeMux
	// Log receives server faults that handlers pass to WriteError through
	// Error.
	Log *slog.Logger
}

// ServeHTTP dispatches the request, or answers 404 or 405 as a problem.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := m.Handler(r)
	if pattern != "" {
		m.ServeMux.ServeHTTP(w, r)
		return
	}
	// No route: the mux's own handler knows whether the path exists with
	// other methods (405, with Allow) or not at all (404).
	probe := &headerRecorder{header: http.Header{}}
	h.ServeHTTP(probe, r)
	switch probe.status {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", probe.header.Get("Allow"))
		WriteError(w, r, m.Log, fmt.Errorf("%w: %s takes %s, not %s", ErrMethodNotAllowed, r.URL.Path, probe.header.Get("Allow"), r.Method))
	case http.StatusNotFound:
		WriteError(w, r, m.Log, fmt.Errorf("%w: no such endpoint %s %s", ErrNotFound, r.Method, r.URL.Path))
	default: // a redirect to the clean path
		m.ServeMux.ServeHTTP(w, r)
	}
}

// Error answers with the problem for err (see WriteError).
func (m *Mux) Error(w http.ResponseWriter, r *http.Request, err error) { WriteError(w, r, m.Log, err) }

// headerRecorder keeps what a handler answers, without a body.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header         { return h.header }
func (h *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerRecorder) WriteHeader(status int)      { h.status = status }

// WriteJSON answers with v as JSON (HTML characters unescaped).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// HSTS tells browsers to reach this server over HTTPS only, for two years:
// wrap a server's handler with it when the server has TLS.
func HSTS(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		h.ServeHTTP(w, r)
	})
}
