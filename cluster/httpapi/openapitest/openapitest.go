// Package openapitest checks real HTTP exchanges against an OpenAPI 3
// document, with github.com/getkin/kin-openapi: a test sends its requests
// through [Spec.Transport], every request and answer is validated against
// the operation the document gives for it (parameters, bodies, status
// codes, content types and headers it declares), and [Spec.Uncovered]
// names the operations no exchange used. Only tests import it.
package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// Spec is a loaded, valid OpenAPI document and what the exchanges checked
// against it covered.
type Spec struct {
	// Doc is the document.
	Doc    *openapi3.T
	router routers.Router

	mu   sync.Mutex // guards used
	used map[string]bool
}

// Load reads the OpenAPI document at path, checks that it is valid, and
// fails t if it is not. The document's servers are ignored: exchanges
// match operations by path, whatever host a test server has.
func Load(t testing.TB, path string) *Spec {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("%s is not a valid OpenAPI document: %v", path, err)
	}
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &Spec{Doc: doc, router: router, used: map[string]bool{}}
}

// Operations lists the document's operations as "METHOD /path".
func (s *Spec) Operations() []string {
	var ops []string
	for path, item := range s.Doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	sort.Strings(ops)
	return ops
}

// Uncovered lists the operations that no exchange through a Transport has
// used so far.
func (s *Spec) Uncovered() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, op := range s.Operations() {
		if !s.used[op] {
			out = append(out, op)
		}
	}
	return out
}

// Transport returns a RoundTripper that sends requests with base (nil:
// http.DefaultTransport) and checks each request and its answer against
// the document, failing t (without stopping it) with what does not match:
// a request the document has no operation for, a parameter or body that
// does not fit, an answer status the operation does not declare, a body
// that does not fit the schema of its status and content type. A request
// for a path or method the document lacks must be answered 404 or 405 with
// a problem fitting the Problem schema. Streams (text/event-stream and
// the checkpoint stream's type) are checked up to their headers.
func (s *Spec) Transport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{spec: s, t: t, base: base}
}

// checkProblem checks that resp is a problem document fitting the
// document's Problem schema, if it has one.
func (tr *transport) checkProblem(what string, resp *http.Response) (*http.Response, error) {
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("openapi: read the answer to %s: %w", what, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		tr.t.Errorf("openapi: %s: HTTP %d of type %q, not a problem", what, resp.StatusCode, ct)
		return resp, nil
	}
	if schema := tr.spec.Doc.Components.Schemas["Problem"]; schema != nil {
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			tr.t.Errorf("openapi: %s: the problem is not JSON: %v", what, err)
		} else if err := schema.Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
			tr.t.Errorf("openapi: %s: the problem does not fit the Problem schema: %v", what, err)
		}
	}
	return resp, nil
}

type transport struct {
	spec *Spec
	t    testing.TB
	base http.RoundTripper
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		var err error
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := tr.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	what := req.Method + " " + req.URL.RequestURI()
	route, params, rerr := tr.spec.router.FindRoute(req)
	if rerr != nil {
		// A path the document lacks, or a method it lacks for a path, must
		// be refused (404 or 405) with a problem.
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
			tr.t.Errorf("openapi: %s: the document has no operation for it (%v), but the server answered HTTP %d", what, rerr, resp.StatusCode)
			return resp, nil
		}
		return tr.checkProblem(what, resp)
	}
	tr.spec.mu.Lock()
	tr.spec.used[route.Method+" "+route.Path] = true
	tr.spec.mu.Unlock()

	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
	check := req.Clone(req.Context())
	check.Body = io.NopCloser(bytes.NewReader(reqBody))
	in := &openapi3filter.RequestValidationInput{Request: check, PathParams: params, Route: route, Options: opts}
	// A request the server refused is expected not to fit: only a
	// request the server took must.
	if resp.StatusCode < 400 {
		if err := openapi3filter.ValidateRequest(req.Context(), in); err != nil {
			tr.t.Errorf("openapi: %s: the request does not fit the document: %v", what, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: opts}
	if mt := resp.Header.Get("Content-Type"); !slices.Contains([]string{"text/event-stream", "application/x.telenotary.checkpoint-stream"}, mt) {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("openapi: read the answer to %s: %w", what, err)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		out.SetBodyBytes(body)
	} else {
		out.Options = &openapi3filter.Options{ExcludeResponseBody: true, IncludeResponseStatus: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	}
	if err := openapi3filter.ValidateResponse(req.Context(), out); err != nil {
		tr.t.Errorf("openapi: %s: the answer (HTTP %d, %s) does not fit the document: %v", what, resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	return resp, nil
}
