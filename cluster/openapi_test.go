package cluster_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"math/big"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/telenotary/telenotary/cluster"
)

// These tests keep docs/openapi.json true to the code: the endpoints it
// lists are exactly those routes() registers, the error codes are exactly
// those writeError uses, the receipt schema is the one docs/FORMATS.md
// specifies, the security it declares is what the node enforces, and the
// JSON a live node answers validates against its schemas.

const (
	oaSpecPath    = "../docs/openapi.json"
	oaFormatsPath = "../docs/FORMATS.md"
	oaAPISource   = "api.go"
)

// oaMethods are the keys of an OpenAPI path item that name operations.
var oaMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// oaSpec is the parsed OpenAPI document, numbers kept as json.Number.
type oaSpec struct {
	doc map[string]any
}

func oaLoad(t *testing.T) *oaSpec {
	t.Helper()
	b, err := os.ReadFile(oaSpecPath)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%s is not valid JSON: %v", oaSpecPath, err)
	}
	if dec.More() {
		t.Fatalf("%s has data after the JSON object", oaSpecPath)
	}
	return &oaSpec{doc: doc}
}

// oaGet walks a path of object keys, returning nil where one is missing.
func oaGet(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// oaOperation is one documented operation.
type oaOperation struct {
	method, path string // "POST", "/v1/notarize"
	op           map[string]any
}

func (o oaOperation) String() string { return o.method + " " + o.path }

func (s *oaSpec) operations(t *testing.T) []oaOperation {
	t.Helper()
	paths, ok := s.doc["paths"].(map[string]any)
	if !ok || len(paths) == 0 {
		t.Fatal("openapi.json has no paths")
	}
	var out []oaOperation
	for path, item := range paths {
		im, ok := item.(map[string]any)
		if !ok {
			t.Fatalf("path %s is not an object", path)
		}
		for _, m := range oaMethods {
			if op, ok := im[m].(map[string]any); ok {
				out = append(out, oaOperation{method: strings.ToUpper(m), path: path, op: op})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// resolve follows a local $ref ("#/components/...").
func (s *oaSpec) resolve(t *testing.T, v any) map[string]any {
	t.Helper()
	for range 10 {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("expected an object, got %T", v)
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		v = s.ref(t, ref)
	}
	t.Fatal("$ref chain too long")
	return nil
}

func (s *oaSpec) ref(t *testing.T, ref string) any {
	t.Helper()
	keys, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		t.Fatalf("$ref %q is not local", ref)
	}
	v := oaGet(s.doc, strings.Split(keys, "/")...)
	if v == nil {
		t.Fatalf("$ref %q leads nowhere", ref)
	}
	return v
}

// oaRoutes parses the patterns routes() in api.go registers on its mux.
// It returns the method-and-path patterns and whether the catch-all "/"
// is registered.
func oaRoutes(t *testing.T) (patterns []string, catchAll bool) {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), oaAPISource, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	fn := oaFunc(t, f, "routes")
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "mux" {
			return true
		}
		lit, ok := call.Args[0].(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			t.Errorf("routes(): mux.%s with a pattern that is not a string literal; this test cannot check it", sel.Sel.Name)
			return true
		}
		pattern, err := strconv.Unquote(lit.Value)
		if err != nil {
			t.Fatal(err)
		}
		method, path, hasMethod := strings.Cut(pattern, " ")
		switch {
		case pattern == "/":
			catchAll = true
		case !hasMethod:
			t.Errorf("routes(): pattern %q has no method; give it one so the API documents one operation per method", pattern)
		case !strings.HasPrefix(path, "/"):
			t.Errorf("routes(): pattern %q has a host or is not a path; this test cannot check it", pattern)
		default:
			patterns = append(patterns, method+" "+oaTemplate(path))
		}
		return true
	})
	if len(patterns) == 0 {
		t.Fatal("found no mux.Handle or mux.HandleFunc patterns in routes()")
	}
	return patterns, catchAll
}

// oaTemplate turns a ServeMux pattern's path into an OpenAPI path
// template: "{name...}" becomes "{name}", and the end anchor "{$}" goes.
func oaTemplate(path string) string {
	path = strings.TrimSuffix(path, "{$}")
	return regexp.MustCompile(`\{(\w+)\.\.\.\}`).ReplaceAllString(path, "{$1}")
}

func oaFunc(t *testing.T, f *ast.File, name string) *ast.FuncDecl {
	t.Helper()
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Name.Name == name && fn.Body != nil {
			return fn
		}
	}
	t.Fatalf("no func %s in %s", name, oaAPISource)
	return nil
}

// oaErrorCodes parses writeError in api.go for the codes it writes and the
// HTTP status of each: the pairs assigned together, as in
// `status, code = http.StatusBadRequest, "bad_request"`.
func oaErrorCodes(t *testing.T) map[string]int {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), oaAPISource, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	statusOf := map[string]int{} // "StatusBadRequest" -> 400, from net/http's texts
	for code := 100; code < 600; code++ {
		if text := http.StatusText(code); text != "" {
			name := strings.Map(func(r rune) rune {
				if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
					return r
				}
				return -1
			}, text)
			statusOf["Status"+name] = code
		}
	}
	codes := map[string]int{}
	ast.Inspect(oaFunc(t, f, "writeError").Body, func(n ast.Node) bool {
		as, ok := n.(*ast.AssignStmt)
		if !ok || len(as.Lhs) != len(as.Rhs) {
			return true
		}
		code, status := "", 0
		for i, l := range as.Lhs {
			id, ok := l.(*ast.Ident)
			if !ok {
				continue
			}
			switch id.Name {
			case "code":
				lit, ok := as.Rhs[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Errorf("writeError assigns code something other than a string literal; this test cannot check it")
					continue
				}
				code, _ = strconv.Unquote(lit.Value)
			case "status":
				sel, ok := as.Rhs[i].(*ast.SelectorExpr)
				if !ok {
					t.Errorf("writeError assigns status something other than http.StatusX; this test cannot check it")
					continue
				}
				if status, ok = statusOf[sel.Sel.Name]; !ok {
					t.Errorf("writeError: cannot resolve http.%s to a status code", sel.Sel.Name)
				}
			}
		}
		if code != "" {
			if status == 0 {
				t.Errorf("writeError assigns code %q without a status beside it", code)
			}
			codes[code] = status
		}
		return true
	})
	if len(codes) == 0 {
		t.Fatal("found no error codes in writeError")
	}
	return codes
}

// TestOpenAPIDocument checks openapi.json against the source, without a
// node: version, operations, error codes, and the receipt schema.
func TestOpenAPIDocument(t *testing.T) {
	spec := oaLoad(t)

	t.Run("version", func(t *testing.T) {
		v, _ := spec.doc["openapi"].(string)
		if !regexp.MustCompile(`^3\.1\.\d+$`).MatchString(v) {
			t.Fatalf("openapi is %q, want 3.1.x", v)
		}
		if oaGet(spec.doc, "info", "title") == nil || oaGet(spec.doc, "info", "version") == nil {
			t.Fatal("info.title and info.version are required")
		}
	})

	t.Run("operations match routes", func(t *testing.T) {
		registered, catchAll := oaRoutes(t)
		if !catchAll {
			t.Error(`routes() registers no catch-all "/": TestOpenAPILive cannot tell a registered route from a missing one`)
		}
		var documented []string
		for _, o := range spec.operations(t) {
			documented = append(documented, o.String())
		}
		for _, p := range registered {
			if !slices.Contains(documented, p) {
				t.Errorf("%s is registered in routes() but not in openapi.json", p)
			}
		}
		for _, d := range documented {
			if !slices.Contains(registered, d) {
				t.Errorf("%s is in openapi.json but routes() does not register it", d)
			}
		}
	})

	t.Run("operations are complete", func(t *testing.T) {
		ids := map[string]bool{}
		for _, o := range spec.operations(t) {
			id, _ := o.op["operationId"].(string)
			if id == "" || ids[id] {
				t.Errorf("%s: operationId %q missing or repeated", o, id)
			}
			ids[id] = true
			if _, ok := o.op["security"].([]any); !ok {
				t.Errorf("%s: no security list (use [] for a public endpoint)", o)
			}
			responses, _ := o.op["responses"].(map[string]any)
			if responses["200"] == nil {
				t.Errorf("%s: no 200 response", o)
			}
			for status, r := range responses {
				if oaGet(spec.resolve(t, r), "headers", cluster.HeaderLeader) == nil {
					t.Errorf("%s: response %s does not document the %s header", o, status, cluster.HeaderLeader)
				}
			}
			var pathParams []string
			for _, p := range oaSlice(o.op["parameters"]) {
				pm := spec.resolve(t, p)
				if pm["in"] == "path" {
					pathParams = append(pathParams, pm["name"].(string))
				}
			}
			var inTemplate []string
			for _, m := range regexp.MustCompile(`\{(\w+)\}`).FindAllStringSubmatch(o.path, -1) {
				inTemplate = append(inTemplate, m[1])
			}
			slices.Sort(pathParams)
			slices.Sort(inTemplate)
			if !slices.Equal(pathParams, inTemplate) {
				t.Errorf("%s: path parameters %v, template has %v", o, pathParams, inTemplate)
			}
		}
	})

	t.Run("error codes", func(t *testing.T) {
		codes := oaErrorCodes(t)
		errSchema := spec.resolve(t, oaGet(spec.doc, "components", "schemas", "Error"))
		codeSchema, _ := oaGet(errSchema, "properties", "error", "properties", "code").(map[string]any)
		if codeSchema == nil {
			t.Fatal("components.schemas.Error has no properties.error.properties.code")
		}
		var enum []string
		for _, v := range oaSlice(codeSchema["enum"]) {
			enum = append(enum, v.(string))
		}
		statuses, _ := codeSchema["x-http-status"].(map[string]any)
		for code, status := range codes {
			if !slices.Contains(enum, code) {
				t.Errorf("writeError uses code %q (HTTP %d); the Error schema's code enum lacks it", code, status)
			}
			if got := fmt.Sprint(statuses[code]); got != strconv.Itoa(status) {
				t.Errorf("code %q: writeError answers HTTP %d, x-http-status says %s", code, status, got)
			}
		}
		for _, code := range enum {
			if _, ok := codes[code]; !ok {
				t.Errorf("the Error schema lists code %q, which writeError never uses", code)
			}
		}
		// Every code appears in the document's prose too, for readers.
		raw, err := os.ReadFile(oaSpecPath)
		if err != nil {
			t.Fatal(err)
		}
		for code := range codes {
			if bytes.Count(raw, []byte(code)) < 3 {
				t.Errorf("code %q is in the enum but described nowhere", code)
			}
		}
	})

	t.Run("receipt matches FORMATS.md", func(t *testing.T) {
		members, optional := oaReceiptMembers(t)
		receipt := spec.resolve(t, oaGet(spec.doc, "components", "schemas", "Receipt"))
		props, _ := receipt["properties"].(map[string]any)
		var documented, required []string
		for name := range props {
			documented = append(documented, name)
		}
		for _, r := range oaSlice(receipt["required"]) {
			required = append(required, r.(string))
		}
		var wantRequired []string
		for _, m := range members {
			if !slices.Contains(optional, m) {
				wantRequired = append(wantRequired, m)
			}
		}
		for _, s := range [][]string{documented, required, members, wantRequired} {
			slices.Sort(s)
		}
		if !slices.Equal(documented, members) {
			t.Errorf("Receipt properties %v, FORMATS.md section 6 has %v", documented, members)
		}
		if !slices.Equal(required, wantRequired) {
			t.Errorf("Receipt required %v, FORMATS.md section 6 makes %v required", required, wantRequired)
		}
		if receipt["additionalProperties"] != false {
			t.Error("Receipt must refuse other members (additionalProperties false), as FORMATS.md says")
		}
	})
}

// oaReceiptMembers reads the member table of FORMATS.md section 6.
func oaReceiptMembers(t *testing.T) (members, optional []string) {
	t.Helper()
	b, err := os.ReadFile(oaFormatsPath)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## 6. Receipt\n")
	if !ok {
		t.Fatal("FORMATS.md has no section 6. Receipt")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `([a-z_]+)` +\\|([^|]*)\\|")
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		members = append(members, m[1])
		if strings.Contains(m[2], "optional") {
			optional = append(optional, m[1])
		}
	}
	if len(members) == 0 {
		t.Fatal("found no members in FORMATS.md section 6")
	}
	return members, optional
}

func oaSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// oaAnswer is a response as the probes see it.
type oaAnswer struct {
	status int
	header http.Header
	body   []byte
	// code and message of a JSON error body.
	code, message string
}

// oaDo sends one request; it does not read an event stream's body.
func oaDo(t *testing.T, method, url, token string, body []byte) oaAnswer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	a := oaAnswer{status: resp.StatusCode, header: resp.Header}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return a
	}
	if a.body, err = io.ReadAll(resp.Body); err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	var e struct {
		Error struct{ Code, Message string }
	}
	if json.Unmarshal(a.body, &e) == nil {
		a.code, a.message = e.Error.Code, e.Error.Message
	}
	return a
}

// isCatchAll reports whether the answer is the catch-all's "no such
// endpoint" 404.
func (a oaAnswer) isCatchAll() bool {
	return a.status == http.StatusNotFound && a.code == "not_found" && strings.Contains(a.message, "no such endpoint")
}

// oaURL fills a path template with each path parameter's example.
func (s *oaSpec) oaURL(t *testing.T, base string, o oaOperation) string {
	t.Helper()
	path := o.path
	for _, p := range oaSlice(o.op["parameters"]) {
		pm := s.resolve(t, p)
		if pm["in"] != "path" {
			continue
		}
		ex, _ := pm["example"].(string)
		if ex == "" {
			t.Fatalf("%s: path parameter %v has no example to probe with", o, pm["name"])
		}
		path = strings.ReplaceAll(path, "{"+pm["name"].(string)+"}", ex)
	}
	return base + path
}

// TestOpenAPILive checks openapi.json against a running node.
func TestOpenAPILive(t *testing.T) {
	spec := oaLoad(t)
	n := newTestCluster(t).bootstrap("node-1")

	t.Run("every documented operation is registered", func(t *testing.T) {
		// The probe must tell the catch-all from a route.
		for _, bogus := range [][2]string{{"GET", "/v1/no-such-endpoint"}, {"DELETE", "/v1/status"}, {"GET", "/v1/notarize"}} {
			if a := oaDo(t, bogus[0], n.url+bogus[1], "", nil); !a.isCatchAll() {
				t.Fatalf("%s %s answered %d %q, not the catch-all 404: the probe cannot work", bogus[0], bogus[1], a.status, a.body)
			}
		}
		for _, o := range spec.operations(t) {
			// No token: nothing that changes state runs.
			a := oaDo(t, o.method, spec.oaURL(t, n.url, o), "", nil)
			if a.isCatchAll() {
				t.Errorf("%s is documented but the node answers %q", o, a.message)
			}
			if got := a.header.Get(cluster.HeaderLeader); got != n.url {
				t.Errorf("%s: %s header %q, want %q", o, cluster.HeaderLeader, got, n.url)
			}
		}
	})

	t.Run("security is what the node enforces", func(t *testing.T) {
		for _, o := range spec.operations(t) {
			role, _ := o.op["x-required-role"].(string)
			var scopes []string
			for _, req := range oaSlice(o.op["security"]) {
				for _, sc := range oaSlice(oaGet(req, "bearerAuth")) {
					scopes = append(scopes, sc.(string))
				}
			}
			switch {
			case role == "none" && len(scopes) == 0:
			case (role == "submitter" || role == "operator") && slices.Equal(scopes, []string{role}):
			default:
				t.Errorf("%s: x-required-role %q and security scopes %v disagree", o, role, scopes)
				continue
			}
			url := spec.oaURL(t, n.url, o)
			a := oaDo(t, o.method, url, "", nil)
			if role == "none" {
				if a.status == http.StatusUnauthorized || a.status == http.StatusForbidden {
					t.Errorf("%s is documented as public but answers %d without a token", o, a.status)
				}
				continue
			}
			if a.status != http.StatusUnauthorized || a.code != "unauthorized" || a.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s needs a %s token but answers %d %q without one", o, role, a.status, a.body)
			}
			if role == "operator" {
				if a := oaDo(t, o.method, url, submitterToken, nil); a.status != http.StatusForbidden || a.code != "forbidden" {
					t.Errorf("%s needs an operator token but answers %d %q to a submitter's", o, a.status, a.body)
				}
			}
		}
	})

	t.Run("responses validate against the schemas", func(t *testing.T) {
		v := &oaValidator{t: t, spec: spec}
		events := oaSubscribe(t, n.url)

		post := func(path, token, body string) oaAnswer {
			return oaDo(t, http.MethodPost, n.url+path, token, []byte(body))
		}
		get := func(path string) oaAnswer { return oaDo(t, http.MethodGet, n.url+path, "", nil) }
		want := func(a oaAnswer, status int, schema, what string) map[string]any {
			t.Helper()
			if a.status != status {
				t.Fatalf("%s: HTTP %d %s, want %d", what, a.status, a.body, status)
			}
			return v.validateJSON(a.body, schema, what)
		}

		c1, c2, c3 := hex64(), hex64(), hex64()
		first := want(post("/v1/notarize", submitterToken, `{"kind":"session-start","commitment":"`+c1+`"}`), 200, "NotarizeResponse", "notarize")
		if first["existing"] != false {
			t.Errorf("a new commitment answered existing %v", first["existing"])
		}
		again := want(post("/v1/notarize", submitterToken, `{"kind":"session-start","commitment":"`+strings.ToUpper(c1)+`"}`), 200, "NotarizeResponse", "resubmission")
		if again["existing"] != true {
			t.Errorf("a resubmission answered existing %v", again["existing"])
		}
		want(post("/v1/notarize/batch", submitterToken, `{"entries":[{"kind":"prescription","commitment":"`+c2+`","link":"`+c1+`"},{"kind":"consent","commitment":"`+c3+`","link":"`+c1+`"}]}`), 200, "BatchResponse", "batch")
		want(get("/v1/receipts/"+c2), 200, "NotarizeResponse", "receipt")
		want(get("/v1/proofs/inclusion?index=0"), 200, "InclusionProof", "inclusion proof of index 0")
		want(get("/v1/proofs/inclusion?index=1&size=3"), 200, "InclusionProof", "inclusion proof")
		want(get("/v1/proofs/consistency?from=1&to=3"), 200, "ConsistencyProof", "consistency proof")
		want(get("/v1/proofs/consistency"), 200, "ConsistencyProof", "consistency proof from 0")
		want(get("/v1/leaves?start=0&count=10"), 200, "LeavesResponse", "leaves")
		want(get("/v1/status"), 200, "Status", "status")
		self := fmt.Sprintf(`{"id":%q,"raft_addr":%q,"http_addr":%q,"verifier_key":%q}`, n.cfg.ID, n.RaftAddr(), n.url, n.cfg.VerifierKey)
		want(post("/v1/cluster/join", operatorToken, self), 200, "JoinResponse", "join of a node already in")

		for _, bad := range []struct {
			status     int
			what       string
			answer     oaAnswer
			wantHeader string
		}{
			{400, "unknown kind", post("/v1/notarize", submitterToken, `{"kind":"pizza","commitment":"`+hex64()+`"}`), ""},
			{400, "bad entry in a batch", post("/v1/notarize/batch", submitterToken, `{"entries":[{"kind":"consent","commitment":"abc"}]}`), ""},
			{400, "count out of range", get("/v1/leaves?count=1001"), ""},
			{401, "no token", post("/v1/notarize", "", `{}`), "WWW-Authenticate"},
			{403, "submitter removing", post("/v1/cluster/remove", submitterToken, `{"id":"node-1"}`), ""},
			{404, "unknown commitment", get("/v1/receipts/" + hex64()), ""},
			{404, "unknown endpoint", get("/v1/nothing"), ""},
		} {
			want(bad.answer, bad.status, "Error", bad.what)
			if bad.wantHeader != "" && bad.answer.header.Get(bad.wantHeader) == "" {
				t.Errorf("%s: no %s header", bad.what, bad.wantHeader)
			}
		}

		cp := get("/v1/checkpoint")
		if cp.status != 200 || !strings.HasPrefix(cp.header.Get("Content-Type"), "text/plain") || !bytes.Contains(cp.body, []byte("\n\n— node-1 ")) {
			t.Errorf("checkpoint: HTTP %d %s %q, want a text/plain signed note", cp.status, cp.header.Get("Content-Type"), cp.body)
		}
		keys := get("/v1/keys")
		if keys.status != 200 || !strings.HasPrefix(keys.header.Get("Content-Type"), "text/plain") || !slices.Contains(strings.Split(string(keys.body), "\n"), n.cfg.VerifierKey) {
			t.Errorf("keys: HTTP %d %s %q, want text/plain with the node's key", keys.status, keys.header.Get("Content-Type"), keys.body)
		}
		for path, body := range map[string]string{"/healthz": "ok\n", "/readyz": "ready\n"} {
			if a := get(path); a.status != 200 || string(a.body) != body {
				t.Errorf("%s: HTTP %d %q, want 200 %q", path, a.status, a.body, body)
			}
		}
		if a := get("/metrics"); a.status != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/plain") || !bytes.Contains(a.body, []byte("telenotary_log_size ")) {
			t.Errorf("metrics: HTTP %d %s", a.status, a.header.Get("Content-Type"))
		}

		// The event stream reports the notarizations above.
		deadline := time.After(10 * time.Second)
		for seen := false; !seen; {
			select {
			case data := <-events:
				e := v.validateJSON([]byte(data), "Event", "event")
				seen = e["type"] == "notarized"
			case <-deadline:
				t.Fatal("no notarized event within 10s")
			}
		}
	})
}

// oaSubscribe follows a node's event stream and sends each data line's
// JSON; the stream ends with the test.
func oaSubscribe(t *testing.T, base string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: HTTP %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan string, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				select {
				case out <- data:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-done
	})
	return out
}

// oaValidator checks JSON against the document's schemas. It knows the
// JSON Schema keywords openapi.json uses and fails on any other, so a
// schema cannot silently go unchecked.
type oaValidator struct {
	t    *testing.T
	spec *oaSpec
}

// oaAnnotations are keywords that do not constrain a value.
var oaAnnotations = map[string]bool{
	"description": true, "examples": true, "example": true, "format": true, "default": true,
	"title": true, "summary": true, "$ref": true,
}

func (v *oaValidator) validateJSON(b []byte, schema, what string) map[string]any {
	v.t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var val any
	if err := dec.Decode(&val); err != nil {
		v.t.Errorf("%s: not JSON: %v: %q", what, err, b)
		return nil
	}
	for _, e := range v.check(val, map[string]any{"$ref": "#/components/schemas/" + schema}, what) {
		v.t.Errorf("%s does not match %s: %s", what, schema, e)
	}
	m, _ := val.(map[string]any)
	return m
}

// check returns the ways val breaks schema.
func (v *oaValidator) check(val any, schema map[string]any, at string) []string {
	if ref, ok := schema["$ref"].(string); ok {
		target, _ := v.spec.ref(v.t, ref).(map[string]any)
		errs := v.check(val, target, at)
		// Keywords beside $ref apply too (3.1).
		rest := map[string]any{}
		for k, x := range schema {
			if k != "$ref" {
				rest[k] = x
			}
		}
		return append(errs, v.check(val, rest, at)...)
	}
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, at+": "+fmt.Sprintf(format, args...)) }
	for key, kw := range schema {
		switch key {
		case "type":
			var types []string
			if s, ok := kw.(string); ok {
				types = []string{s}
			}
			for _, x := range oaSlice(kw) {
				types = append(types, x.(string))
			}
			if !slices.ContainsFunc(types, func(ty string) bool { return oaIsType(val, ty) }) {
				fail("is %s, want type %v", oaTypeOf(val), types)
			}
		case "properties":
			obj, ok := val.(map[string]any)
			if !ok {
				continue
			}
			for name, sub := range kw.(map[string]any) {
				if x, ok := obj[name]; ok {
					errs = append(errs, v.check(x, sub.(map[string]any), at+"."+name)...)
				}
			}
		case "required":
			obj, ok := val.(map[string]any)
			if !ok {
				continue
			}
			for _, name := range oaSlice(kw) {
				if _, ok := obj[name.(string)]; !ok {
					fail("lacks required member %q", name)
				}
			}
		case "additionalProperties":
			obj, ok := val.(map[string]any)
			if !ok {
				continue
			}
			props, _ := schema["properties"].(map[string]any)
			for name, x := range obj {
				if _, known := props[name]; known {
					continue
				}
				switch ap := kw.(type) {
				case bool:
					if !ap {
						fail("has member %q, which the schema does not allow", name)
					}
				case map[string]any:
					errs = append(errs, v.check(x, ap, at+"."+name)...)
				}
			}
		case "propertyNames":
			if obj, ok := val.(map[string]any); ok {
				for name := range obj {
					errs = append(errs, v.check(name, kw.(map[string]any), at+" member name "+strconv.Quote(name))...)
				}
			}
		case "items":
			for i, x := range oaSlice(val) {
				errs = append(errs, v.check(x, kw.(map[string]any), fmt.Sprintf("%s[%d]", at, i))...)
			}
		case "minItems", "maxItems":
			if arr, ok := val.([]any); ok && !oaBound(key, big.NewFloat(float64(len(arr))), kw) {
				fail("has %d items, %s is %v", len(arr), key, kw)
			}
		case "minLength", "maxLength":
			if s, ok := val.(string); ok && !oaBound(key, big.NewFloat(float64(utf8.RuneCountInString(s))), kw) {
				fail("is %d characters, %s is %v", utf8.RuneCountInString(s), key, kw)
			}
		case "minimum", "maximum":
			if num, ok := val.(json.Number); ok {
				f, _, err := big.ParseFloat(num.String(), 10, 128, big.ToNearestEven)
				if err != nil || !oaBound(key, f, kw) {
					fail("is %s, %s is %v", num, key, kw)
				}
			}
		case "pattern":
			if s, ok := val.(string); ok && !regexp.MustCompile(kw.(string)).MatchString(s) {
				fail("%q does not match %s", s, kw)
			}
		case "enum":
			if !slices.ContainsFunc(oaSlice(kw), func(x any) bool { return oaEqual(x, val) }) {
				fail("%v is not one of %v", val, kw)
			}
		case "const":
			if !oaEqual(kw, val) {
				fail("%v is not %v", val, kw)
			}
		case "allOf":
			for _, sub := range oaSlice(kw) {
				errs = append(errs, v.check(val, sub.(map[string]any), at)...)
			}
		case "not":
			if len(v.check(val, kw.(map[string]any), at)) == 0 {
				fail("matches a schema it must not: %v", kw)
			}
		default:
			if !oaAnnotations[key] && !strings.HasPrefix(key, "x-") {
				v.t.Errorf("%s: schema keyword %q is unknown to this test's validator; teach it", at, key)
			}
		}
	}
	return errs
}

func oaBound(key string, got *big.Float, limit any) bool {
	n, ok := limit.(json.Number)
	if !ok {
		return false
	}
	l, _, err := big.ParseFloat(n.String(), 10, 128, big.ToNearestEven)
	if err != nil {
		return false
	}
	if strings.HasPrefix(key, "min") {
		return got.Cmp(l) >= 0
	}
	return got.Cmp(l) <= 0
}

func oaIsType(val any, ty string) bool {
	switch ty {
	case "integer":
		n, ok := val.(json.Number)
		return ok && !strings.ContainsAny(n.String(), ".eE")
	case "number":
		_, ok := val.(json.Number)
		return ok
	}
	return oaTypeOf(val) == ty
}

func oaTypeOf(val any) string {
	switch val.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", val)
}

func oaEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}
