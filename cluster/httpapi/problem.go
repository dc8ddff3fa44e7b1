package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// ContentTypeProblem is the media type of every error answer (RFC 9457).
const ContentTypeProblem = "application/problem+json"

// problemTypePrefix starts the "type" URI of every problem; the code ends it.
const problemTypePrefix = "urn:telenotary:problem:"

// A Code is a kind of failure that a server and its clients both know: the
// stable name that goes in a problem's "code" member, the HTTP status it is
// answered with, and a title. Codes are errors: a server wraps one
// (fmt.Errorf("%w: no member %q", ErrNotFound, id)) and [WriteError] turns
// it into its status and problem; a client matches the *[Problem] it gets
// back with errors.Is against the same Code.
type Code struct {
	// Name is the value of the problem's "code" member; it never changes.
	Name string
	// Status is the HTTP status the code is answered with.
	Status int
	// Title is a short sentence for people, the same for every occurrence.
	Title string
}

func (c *Code) Error() string { return c.Title }

// Codes every API of telenotary answers with. Each API adds its own (see
// the notaryapi and signalapi packages).
var (
	// ErrBadRequest: the request is malformed; the problem's field names
	// where. Do not retry it unchanged.
	ErrBadRequest = &Code{"bad_request", http.StatusBadRequest, "bad request"}
	// ErrUnauthorized: no valid bearer token was given.
	ErrUnauthorized = &Code{"unauthorized", http.StatusUnauthorized, "missing or invalid token"}
	// ErrForbidden: the token's role may not do this.
	ErrForbidden = &Code{"forbidden", http.StatusForbidden, "forbidden for this token's role"}
	// ErrNotFound: no such resource or endpoint.
	ErrNotFound = &Code{"not_found", http.StatusNotFound, "not found"}
	// ErrMethodNotAllowed: the endpoint exists but not with this method;
	// the Allow header lists the methods it takes.
	ErrMethodNotAllowed = &Code{"method_not_allowed", http.StatusMethodNotAllowed, "method not allowed"}
	// ErrTooLarge: the request body is over its limit; split it.
	ErrTooLarge = &Code{"too_large", http.StatusRequestEntityTooLarge, "request too large"}
	// ErrTimeout: the server gave up waiting on something it needed.
	// Retrying may succeed.
	ErrTimeout = &Code{"timeout", http.StatusGatewayTimeout, "timed out"}
	// ErrCanceled: the request was canceled (its client went away).
	ErrCanceled = &Code{"canceled", http.StatusServiceUnavailable, "canceled"}
	// ErrInternal: a fault of the server, logged there.
	ErrInternal = &Code{"internal", http.StatusInternalServerError, "internal error"}
)

// Problem is an RFC 9457 problem details object: the body of every error
// answer of telenotary's HTTP APIs, and the error their Go clients return
// for one. Match it with errors.Is against a [Code].
type Problem struct {
	// Type is a URI naming the problem type: "urn:telenotary:problem:" and
	// the code.
	Type string `json:"type"`
	// Title is the code's title.
	Title string `json:"title"`
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Detail says what went wrong with this request.
	Detail string `json:"detail,omitempty"`
	// Code is the stable name of the problem (a Code's Name).
	Code string `json:"code"`
	// Field names the offending request field or parameter, such as
	// "entries[3].commitment".
	Field string `json:"field,omitempty"`
}

func (p *Problem) Error() string {
	msg := p.Detail
	if msg == "" {
		msg = p.Title
	}
	return fmt.Sprintf("%s (HTTP %d)", msg, p.Status)
}

// Is reports whether target is the Code of this problem.
func (p *Problem) Is(target error) bool {
	c, ok := target.(*Code)
	return ok && c.Name == p.Code
}

// FieldError is a bad request that names the field at fault. It matches
// [ErrBadRequest].
type FieldError struct {
	// Field is the request field or parameter, such as "entries[3].kind".
	Field string
	// Reason completes the sentence that starts with the field's name.
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap returns ErrBadRequest.
func (e *FieldError) Unwrap() error { return ErrBadRequest }

// Field returns a *FieldError for field with a formatted reason.
func Field(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ProblemOf returns the problem that answers err: the Code err wraps (an
// expired context is ErrTimeout or ErrCanceled, anything else ErrInternal),
// err's text as the detail, and the field of a *FieldError.
func ProblemOf(err error) *Problem {
	code := ErrInternal
	var c *Code
	switch {
	case errors.As(err, &c):
		code = c
	case errors.Is(err, context.DeadlineExceeded):
		code = ErrTimeout
	case errors.Is(err, context.Canceled):
		code = ErrCanceled
	}
	p := &Problem{Type: problemTypePrefix + code.Name, Title: code.Title, Status: code.Status, Code: code.Name, Detail: err.Error()}
	var fe *FieldError
	if errors.As(err, &fe) {
		p.Field = fe.Field
	}
	return p
}

// WriteError answers the request with the problem for err (see
// [ProblemOf]), with the headers its status calls for: WWW-Authenticate on
// 401, Retry-After on 429 and 503. A server fault (5xx other than an
// unavailable or timed-out dependency) is logged to log with the request's
// context.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	p := ProblemOf(err)
	if p.Status == http.StatusInternalServerError && log != nil {
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	WriteProblem(w, p)
}

// WriteProblem answers with the problem p as it is (one a node relays from
// another, say), with the headers its status calls for.
func WriteProblem(w http.ResponseWriter, p *Problem) {
	switch p.Status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="telenotary"`)
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		if w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", "1")
		}
	}
	w.Header().Set("Content-Type", ContentTypeProblem)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(p)
}

// maxProblemBody bounds what a client reads of an error answer.
const maxProblemBody = 64 << 10

// ReadProblem reads the error answer resp (status not 2xx) into a *Problem.
// An answer that is not a problem document (a proxy's error page, say)
// gets the code "http_<status>" and its text as the detail. It does not
// close the body.
func ReadProblem(resp *http.Response) *Problem {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxProblemBody))
	p := &Problem{}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == ContentTypeProblem && json.Unmarshal(b, p) == nil && p.Code != "" {
		p.Status = resp.StatusCode // the status line wins over the body's copy
		return p
	}
	code := "http_" + strconv.Itoa(resp.StatusCode)
	return &Problem{Type: problemTypePrefix + code, Title: http.StatusText(resp.StatusCode), Status: resp.StatusCode,
		Code: code, Detail: strings.TrimSpace(string(b))}
}
