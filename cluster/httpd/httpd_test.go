package httpd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/telenotary/telenotary/cluster/auth"
	"github.com/telenotary/telenotary/cluster/httpapi"
	"github.com/telenotary/telenotary/cluster/httpapi/openapitest"
	"github.com/telenotary/telenotary/cluster/notaryapi"
	"github.com/telenotary/telenotary/notary"
)

// These tests run the API over a node without raft (memNode): they keep
// docs/openapi.json true to the code, with kin-openapi validating the
// document and every exchange, and check what the handlers do on their
// own: authorization, strict decoding, forwarding, error answers.

const (
	specPath       = "../../docs/openapi.json"
	formatsPath    = "../../docs/FORMATS.md"
	testOrigin     = "httpd.test/log"
	submitterToken = "submitter-token-0123456789"
	operatorToken  = "operator-token-0123456789"
	joinToken      = "join-token-0123456789abcd"
)

// apiCodes are every code the API answers with: httpapi's and
// notaryapi's. The document's Problem schema must list exactly these.
var apiCodes = []*httpapi.Code{
	httpapi.ErrBadRequest, httpapi.ErrUnauthorized, httpapi.ErrForbidden, httpapi.ErrNotFound, httpapi.ErrMethodNotAllowed,
	httpapi.ErrTooLarge, httpapi.ErrTimeout, httpapi.ErrCanceled, httpapi.ErrInternal, httpapi.ErrRateLimited,
	notaryapi.ErrNotLeader, notaryapi.ErrNoLeader, notaryapi.ErrOverloaded, notaryapi.ErrWrongCluster,
	notaryapi.ErrClockSkew, notaryapi.ErrLogTimeAhead, notaryapi.ErrDamaged, notaryapi.ErrDiskLow, notaryapi.ErrNoQuorum,
}

// testAPI serves the API over a memNode of three signers.
func testAPI(t *testing.T) (*memNode, *httptest.Server) {
	t.Helper()
	n, err := newMemNode(testOrigin, 3)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.ParseTokens([]byte("submitter " + submitterToken + "\noperator " + operatorToken + "\njoin " + joinToken + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		io.WriteString(w, "telenotary_log_size 0\n")
	})
	srv := httptest.NewServer(New(Config{Cluster: n, Ledger: n, Tokens: tokens, Forward: http.DefaultClient, Metrics: metrics}))
	t.Cleanup(srv.Close)
	n.leaderURL = srv.URL
	return n, srv
}

func randomHex() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// exchange sends one request through client and returns the status, the
// headers and the body.
func exchange(t *testing.T, client *http.Client, method, url, token, body string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// TestOpenAPIDocument: the document is valid OpenAPI 3.1 (kin-openapi
// checks it), its operations are exactly the API's routes, each with an
// operationId, a security list and the leader header on every answer, its
// Problem schema lists exactly the codes the API answers with, and its
// receipt is the one FORMATS.md specifies.
func TestOpenAPIDocument(t *testing.T) {
	spec := openapitest.Load(t, specPath)
	if !spec.Doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi is %q, want 3.1", spec.Doc.OpenAPI)
	}
	a := &api{}
	routes := []string{"GET /metrics"}
	for _, rt := range a.routes() {
		routes = append(routes, rt.pattern)
	}
	documented := spec.Operations()
	for _, r := range routes {
		if !slices.Contains(documented, r) {
			t.Errorf("%s is a route of the API but not in openapi.json", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routes, d) {
			t.Errorf("%s is in openapi.json but not a route of the API", d)
		}
	}
	ids := map[string]bool{}
	for path, item := range spec.Doc.Paths.Map() {
		for method, op := range item.Operations() {
			what := method + " " + path
			if op.OperationID == "" || ids[op.OperationID] {
				t.Errorf("%s: operationId %q missing or repeated", what, op.OperationID)
			}
			ids[op.OperationID] = true
			if op.Security == nil {
				t.Errorf("%s: no security list (use [] for a public endpoint)", what)
			}
			for status, r := range op.Responses.Map() {
				if r.Value.Headers[notaryapi.HeaderLeader] == nil {
					t.Errorf("%s: answer %s does not document the %s header", what, status, notaryapi.HeaderLeader)
				}
			}
		}
	}

	problem := spec.Doc.Components.Schemas["Problem"]
	if problem == nil {
		t.Fatal("components.schemas has no Problem")
	}
	var enum []string
	for _, v := range problem.Value.Properties["code"].Value.Enum {
		enum = append(enum, v.(string))
	}
	var codes []string
	for _, c := range apiCodes {
		codes = append(codes, c.Name)
	}
	slices.Sort(enum)
	slices.Sort(codes)
	if !slices.Equal(slices.Compact(enum), slices.Compact(codes)) {
		t.Errorf("the Problem schema lists codes %v; the API answers with %v", enum, slices.Compact(codes))
	}

	members, optional := receiptMembers(t)
	receipt := spec.Doc.Components.Schemas["Receipt"].Value
	var props, required, wantRequired []string
	for name := range receipt.Properties {
		props = append(props, name)
	}
	required = append(required, receipt.Required...)
	for _, m := range members {
		if !slices.Contains(optional, m) {
			wantRequired = append(wantRequired, m)
		}
	}
	for _, s := range [][]string{props, required, members, wantRequired} {
		slices.Sort(s)
	}
	if !slices.Equal(props, members) || !slices.Equal(required, wantRequired) {
		t.Errorf("Receipt properties %v (required %v); FORMATS.md section 6 has %v (required %v)", props, required, members, wantRequired)
	}
	if receipt.AdditionalProperties.Has == nil || *receipt.AdditionalProperties.Has {
		t.Error("Receipt must refuse other members (additionalProperties false), as FORMATS.md says")
	}
}

// receiptMembers reads the member table of FORMATS.md section 6.
func receiptMembers(t *testing.T) (members, optional []string) {
	t.Helper()
	b, err := os.ReadFile(formatsPath)
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

// TestOpenAPILive runs every operation of the document, and the error
// answers, against the API, through a transport that validates each
// request and answer against the document; no operation may go unused.
func TestOpenAPILive(t *testing.T) {
	spec := openapitest.Load(t, specPath)
	_, srv := testAPI(t)
	client := &http.Client{Transport: spec.Transport(t, nil)}
	do := func(method, path, token, body string) (int, http.Header, []byte) {
		t.Helper()
		return exchange(t, client, method, srv.URL+path, token, body)
	}
	want := func(status int, what string, got int, body []byte) {
		t.Helper()
		if got != status {
			t.Errorf("%s: HTTP %d %s, want %d", what, got, body, status)
		}
	}

	c1, c2, c3 := randomHex(), randomHex(), randomHex()
	st, _, b := do("POST", "/v1/notarize", submitterToken, `{"kind":"session-start","commitment":"`+c1+`"}`)
	want(200, "notarize", st, b)
	st, _, b = do("POST", "/v1/notarize", submitterToken, `{"kind":"session-start","commitment":"`+strings.ToUpper(c1)+`"}`)
	if want(200, "resubmission", st, b); !bytes.Contains(b, []byte(`"existing":true`)) {
		t.Errorf("a resubmission answered %s, want existing true", b)
	}
	st, _, b = do("POST", "/v1/notarize/batch", submitterToken, `{"entries":[{"kind":"prescription","commitment":"`+c2+`","link":"`+c1+`"},{"kind":"consent","commitment":"`+c3+`"}]}`)
	want(200, "batch", st, b)
	for _, path := range []string{"/v1/receipts/" + c2, "/v1/receipts/" + c2 + "?signatures=2", "/v1/checkpoint", "/v1/checkpoint?size=1&signatures=3", "/v1/checkpoint/cosignatures",
		"/v1/proofs/inclusion?index=0", "/v1/proofs/inclusion?index=1&size=3", "/v1/proofs/consistency?from=1&to=3", "/v1/proofs/consistency",
		"/v1/leaves?start=0&count=10", "/v1/keys", "/v1/status", "/v1/time", "/metrics", "/healthz", "/readyz"} {
		st, _, b := do("GET", path, "", "")
		want(200, path, st, b)
	}
	st, _, b = do("POST", "/v1/cluster/join", operatorToken, `{"id":"node-4","raft_addr":"127.0.0.1:7004","http_addr":"http://127.0.0.1:8084","verifier_key":"`+mustKey(t, "node-4")+`","cluster_id":"`+testClusterID+`","key_proof":"AAAA"}`)
	want(200, "join", st, b)
	// A join token may not change a member's key; an operator may (rekey).
	newKey := mustKey(t, "node-4")
	st, _, b = do("POST", "/v1/cluster/join", joinToken, `{"id":"node-4","raft_addr":"127.0.0.1:7004","http_addr":"http://127.0.0.1:8084","verifier_key":"`+newKey+`","cluster_id":"`+testClusterID+`","key_proof":"AAAA"}`)
	want(403, "join with another key", st, b)
	st, _, b = do("POST", "/v1/cluster/rekey", operatorToken, `{"id":"node-4","raft_addr":"127.0.0.1:7004","http_addr":"http://127.0.0.1:8084","verifier_key":"`+newKey+`","cluster_id":"`+testClusterID+`","key_proof":"AAAA"}`)
	want(200, "rekey", st, b)
	if st, _, keys := do("GET", "/v1/keys", "", ""); st != 200 || !strings.Contains(string(keys), "# retired key of node node-4, signed log sizes ") {
		t.Errorf("keys after a rekey: %d %s", st, keys)
	}
	st, _, b = do("POST", "/v1/cluster/transfer", operatorToken, `{"id":"node-4"}`)
	want(200, "transfer", st, b)
	st, _, b = do("POST", "/v1/cluster/remove", operatorToken, `{"id":"node-4"}`)
	want(200, "remove", st, b)

	for _, bad := range []struct {
		status              int
		code, field         string
		method, path, token string
		body                string
	}{
		{400, "bad_request", "kind", "POST", "/v1/notarize", submitterToken, `{"kind":"pizza","commitment":"` + randomHex() + `"}`},
		{400, "bad_request", "entries[0].commitment", "POST", "/v1/notarize/batch", submitterToken, `{"entries":[{"kind":"consent","commitment":"abc"}]}`},
		{400, "bad_request", "colour", "POST", "/v1/notarize", submitterToken, `{"kind":"consent","commitment":"` + randomHex() + `","colour":"red"}`},
		{400, "bad_request", "kind", "POST", "/v1/notarize", submitterToken, `{"kind":"consent","kind":"document","commitment":"` + randomHex() + `"}`},
		{400, "bad_request", "count", "GET", "/v1/leaves?count=1001", "", ""},
		{400, "bad_request", "signatures", "GET", "/v1/checkpoint?signatures=4", "", ""},
		{400, "bad_request", "witnessed", "GET", "/v1/checkpoint?witnessed=1", "", ""}, // no witnesses
		{400, "bad_request", "witnessed", "GET", "/v1/receipts/" + randomHex() + "?witnessed=all", "", ""},
		{401, "unauthorized", "", "POST", "/v1/notarize", "", `{}`},
		{401, "unauthorized", "", "POST", "/v1/notarize", "not-a-token-of-this-cluster", `{}`},
		{403, "forbidden", "", "POST", "/v1/cluster/remove", submitterToken, `{"id":"node-1"}`},
		{404, "not_found", "", "GET", "/v1/receipts/" + randomHex(), "", ""},
		{404, "not_found", "", "GET", "/v1/prescriptions/" + randomHex() + "/status", "", ""}, // the memNode tracks none; the cluster tests answer 200
		{404, "not_found", "", "POST", "/v1/cluster/remove", operatorToken, `{"id":"node-9"}`},
		{405, "method_not_allowed", "", "GET", "/v1/notarize", "", ""},
		{409, "wrong_cluster", "", "POST", "/v1/cluster/join", operatorToken, `{"id":"node-5","raft_addr":"127.0.0.1:7005","http_addr":"http://127.0.0.1:8085","verifier_key":"` + mustKey(t, "node-5") + `","cluster_id":"0123456789abcdef0123456789abcdef","key_proof":"AAAA"}`},
		{413, "too_large", "", "POST", "/v1/notarize", submitterToken, `{"kind":"consent","commitment":"` + strings.Repeat(" ", notaryapi.MaxEntryBody) + `"}`},
	} {
		st, h, b := do(bad.method, bad.path, bad.token, bad.body)
		what := bad.method + " " + bad.path
		var p httpapi.Problem
		if st != bad.status || h.Get("Content-Type") != httpapi.ContentTypeProblem || json.Unmarshal(b, &p) != nil || p.Code != bad.code || p.Field != bad.field {
			t.Errorf("%s: HTTP %d %s %s, want %d %s naming field %q", what, st, h.Get("Content-Type"), b, bad.status, bad.code, bad.field)
		}
		if st == 401 && h.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", what)
		}
		if st == 405 && h.Get("Allow") != "POST" {
			t.Errorf("%s: 405 with Allow %q, want POST", what, h.Get("Allow"))
		}
	}

	// The event stream: its headers through the validating transport, one
	// event's JSON against the Event schema.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/events", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	go func() { // once the stream is open, notarize something
		do("POST", "/v1/notarize", submitterToken, `{"kind":"document","commitment":"`+randomHex()+`"}`)
	}()
	event := spec.Doc.Components.Schemas["Event"].Value
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var v any
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			t.Fatal(err)
		}
		if err := event.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
			t.Errorf("event %s does not fit the Event schema: %v", data, err)
		}
		break
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("event stream: %v", err)
	}

	// The checkpoint stream: the newest signed checkpoint at once, then
	// one per batch applied, each a length line and the note.
	sreq, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/checkpoint/stream", nil)
	sresp, err := client.Do(sreq)
	if err != nil {
		t.Fatal(err)
	}
	defer sresp.Body.Close()
	br := bufio.NewReader(sresp.Body)
	var sizes []uint64
	for len(sizes) < 2 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("checkpoint stream: %v", err)
		}
		n, err := strconv.Atoi(strings.TrimSuffix(line, "\n"))
		if err != nil || n <= 0 {
			t.Fatalf("checkpoint stream frame %q", line)
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(br, msg); err != nil {
			t.Fatal(err)
		}
		cp, err := notary.ParseSignedCheckpoint(msg)
		if err != nil {
			t.Fatalf("checkpoint stream note %q: %v", msg, err)
		}
		sizes = append(sizes, cp.Size)
		if len(sizes) == 1 {
			go do("POST", "/v1/notarize", submitterToken, `{"kind":"document","commitment":"`+randomHex()+`"}`)
		}
	}
	if sizes[1] != sizes[0]+1 {
		t.Errorf("checkpoint stream sizes %v, want the head and then one more leaf", sizes)
	}

	// Consistent reads, through the validating transport; a bad value is
	// a problem naming the parameter.
	for _, path := range []string{"/v1/checkpoint?consistent=1", "/v1/leaves?start=0&count=1&consistent=true"} {
		if st, _, body := do("GET", path, "", ""); st != http.StatusOK {
			t.Errorf("%s: %d %s", path, st, body)
		}
	}
	if st, _, body := do("GET", "/v1/checkpoint?consistent=yes", "", ""); st != http.StatusBadRequest || !strings.Contains(string(body), `"field":"consistent"`) {
		t.Errorf("consistent=yes: %d %s", st, body)
	}

	if un := spec.Uncovered(); len(un) > 0 {
		t.Errorf("operations no test exchange used: %v", un)
	}
}

func mustKey(t *testing.T, name string) string {
	t.Helper()
	_, vkey, err := notary.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}

// TestSecurityAsDocumented: each operation's x-required-role is what the
// API enforces: a public one answers without a token, a submitter one
// answers 401 without and an operator one 403 to a submitter.
func TestSecurityAsDocumented(t *testing.T) {
	spec := openapitest.Load(t, specPath)
	_, srv := testAPI(t)
	for path, item := range spec.Doc.Paths.Map() {
		for method, op := range item.Operations() {
			role, _ := op.Extensions["x-required-role"].(string)
			var scopes []string
			for _, req := range *op.Security {
				scopes = append(scopes, req["bearerAuth"]...)
			}
			what := method + " " + path
			switch {
			case role == "none" && len(scopes) == 0:
			case (role == "submitter" || role == "join" || role == "operator") && slices.Equal(scopes, []string{role}):
			default:
				t.Errorf("%s: x-required-role %q and security scopes %v disagree", what, role, scopes)
				continue
			}
			url := srv.URL + strings.ReplaceAll(path, "{commitment}", randomHex())
			if method == "GET" && (path == "/v1/events" || path == "/v1/checkpoint/stream") {
				continue // a stream: public, checked by TestOpenAPILive
			}
			st, _, _ := exchange(t, http.DefaultClient, method, url, "", "")
			if role == "none" {
				if st == http.StatusUnauthorized || st == http.StatusForbidden {
					t.Errorf("%s is documented as public but answers %d without a token", what, st)
				}
				continue
			}
			if st != http.StatusUnauthorized {
				t.Errorf("%s needs a %s token but answers %d without one", what, role, st)
			}
			if role == "operator" || role == "join" {
				if st, _, _ := exchange(t, http.DefaultClient, method, url, submitterToken, "{}"); st != http.StatusForbidden {
					t.Errorf("%s needs a %s token but answers %d to a submitter's", what, role, st)
				}
			}
			if role == "operator" || role == "submitter" {
				if st, _, _ := exchange(t, http.DefaultClient, method, url, joinToken, "{}"); st != http.StatusForbidden {
					t.Errorf("%s needs a %s token but answers %d to a join token", what, role, st)
				}
			}
		}
	}
}

// TestForwarding: a follower relays submissions and operator actions to
// the leader with the caller's token, answers a commitment it already has
// itself, and never forwards a forwarded request again.
func TestForwarding(t *testing.T) {
	leader, leaderSrv := testAPI(t)
	follower, followerSrv := testAPI(t)
	follower.leader, follower.leaderURL = false, leaderSrv.URL

	c := randomHex()
	st, h, b := exchange(t, http.DefaultClient, "POST", followerSrv.URL+"/v1/notarize", submitterToken, `{"kind":"consent","commitment":"`+c+`"}`)
	if st != 200 || h.Get(notaryapi.HeaderLeader) != leaderSrv.URL {
		t.Fatalf("through the follower: HTTP %d %s (leader header %q)", st, b, h.Get(notaryapi.HeaderLeader))
	}
	if leader.log.Head().Size != 1 || follower.log.Head().Size != 0 {
		t.Fatalf("the leader has %d leaves and the follower %d, want 1 and 0", leader.log.Head().Size, follower.log.Head().Size)
	}
	st, _, b = exchange(t, http.DefaultClient, "POST", followerSrv.URL+"/v1/notarize", "not-a-token-of-this-cluster", `{"kind":"consent","commitment":"`+randomHex()+`"}`)
	if st != http.StatusUnauthorized {
		t.Fatalf("a bad token through the follower: HTTP %d %s, want 401", st, b)
	}
	req, _ := http.NewRequest("POST", followerSrv.URL+"/v1/notarize", strings.NewReader(`{"kind":"consent","commitment":"`+randomHex()+`"}`))
	req.Header.Set("Authorization", "Bearer "+submitterToken)
	req.Header.Set(notaryapi.HeaderForwarded, "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	p := httpapi.ReadProblem(resp)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !errors.Is(p, notaryapi.ErrNotLeader) {
		t.Fatalf("a forwarded request at a follower: HTTP %d %v, want 503 not_leader", resp.StatusCode, p)
	}

	// A commitment the follower has answers there, without the leader.
	follower.leader = true
	if _, _, err := follower.Submit(context.Background(), []notaryapi.Entry{{Kind: notary.KindConsent, Commitment: mustCommitment(t, c)}}, 1); err != nil {
		t.Fatal(err)
	}
	follower.leader = false
	leaderSrv.Close()
	st, _, b = exchange(t, http.DefaultClient, "POST", followerSrv.URL+"/v1/notarize", submitterToken, `{"kind":"consent","commitment":"`+c+`"}`)
	if st != 200 || !bytes.Contains(b, []byte(`"existing":true`)) {
		t.Fatalf("a commitment the follower has, with the leader gone: HTTP %d %s", st, b)
	}
}

func mustCommitment(t *testing.T, s string) notary.Commitment {
	t.Helper()
	c, err := notaryapi.ParseCommitment(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestStatusHidesTopology: anonymous callers see a node's health, not its
// peers' addresses; an operator sees them.
func TestStatusHidesTopology(t *testing.T) {
	n, srv := testAPI(t)
	raftAddr := n.members[1].RaftAddr
	for _, tc := range []struct {
		token string
		shows bool
	}{{"", false}, {submitterToken, false}, {operatorToken, true}} {
		st, _, b := exchange(t, http.DefaultClient, "GET", srv.URL+"/v1/status", tc.token, "")
		var got notaryapi.Status
		if st != 200 || json.Unmarshal(b, &got) != nil || !got.Ready {
			t.Fatalf("token %q: HTTP %d %s", tc.token, st, b)
		}
		if shows := bytes.Contains(b, []byte(raftAddr)); shows != tc.shows || (len(got.Peers) > 0) != tc.shows {
			t.Errorf("token %q: peers shown %v (raft address in the body %v), want %v", tc.token, len(got.Peers) > 0, shows, tc.shows)
		}
	}
}

// TestRateLimits: an address without a valid token gets its share and
// then 429 with Retry-After, and a made-up token does not buy another;
// a valid token has a share of its own; the probes are never limited.
func TestRateLimits(t *testing.T) {
	n, err := newMemNode(testOrigin, 1)
	if err != nil {
		t.Fatal(err)
	}
	tokens, _ := auth.ParseTokens([]byte("submitter " + submitterToken + "\n"))
	limits := DefaultLimits()
	limits.AnonymousRate, limits.AnonymousBurst = 0.001, 3
	limits.TokenRate, limits.TokenBurst = 0.001, 5
	srv := httptest.NewServer(New(Config{Cluster: n, Ledger: n, Tokens: tokens, Forward: http.DefaultClient, Limits: limits}))
	defer srv.Close()
	get := func(path, token string) (int, http.Header) {
		st, h, _ := exchange(t, http.DefaultClient, "GET", srv.URL+path, token, "")
		return st, h
	}
	for i := range 3 {
		if st, _ := get("/v1/status", ""); st != 200 {
			t.Fatalf("anonymous request %d: HTTP %d", i, st)
		}
	}
	if st, h := get("/v1/status", ""); st != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Fatalf("anonymous request over the share: HTTP %d, Retry-After %q", st, h.Get("Retry-After"))
	}
	if st, _ := get("/v1/status", "made-up-token-0123456789"); st != http.StatusTooManyRequests {
		t.Fatalf("a made-up token from the same address: HTTP %d, want 429", st)
	}
	for i := range 5 {
		if st, _ := get("/v1/status", submitterToken); st != 200 {
			t.Fatalf("request %d with a valid token: HTTP %d", i, st)
		}
	}
	if st, _ := get("/v1/status", submitterToken); st != http.StatusTooManyRequests {
		t.Fatalf("a valid token over its share: HTTP %d, want 429", st)
	}
	for range 10 {
		if st, _ := get("/readyz", ""); st != 200 {
			t.Fatalf("/readyz: HTTP %d", st)
		}
	}
}
