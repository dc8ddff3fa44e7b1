package web_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/chromedp/chromedp"
	"golang.org/x/mod/sumdb/note"

	"github.com/telenotary/telenotary/notary"
	"github.com/telenotary/telenotary/session/internal/browser"
	"github.com/telenotary/telenotary/session/web"
)

const vectorsDir = "../../notary/testdata/vectors"

// outcomes are the verdicts of a verification, in the order notary.Reason
// tries them, with the error each one means.
var outcomes = []struct {
	name string
	err  error
}{
	{"commitment mismatch", notary.ErrCommitmentMismatch},
	{"leaf mismatch", notary.ErrLeafMismatch},
	{"proof invalid", notary.ErrProofInvalid},
	{"root mismatch", notary.ErrRootMismatch},
	{"signature invalid", notary.ErrSignatureInvalid},
	{"too few trusted signatures", notary.ErrTooFewSignatures},
	{"inconsistent history", notary.ErrInconsistentHistory},
	{"wrong log", notary.ErrWrongLog},
	{"malformed input", notary.ErrMalformed},
}

// verdict is the outcome of one verification, by Go or by verify.js:
// "valid", a failed check, or "usage" when keys and options make no policy.
type verdict struct {
	Outcome string
	Reason  string // notary.Reason's sentence, for a failed check
	Detail  string
}

func verdictOf(err error) verdict {
	if err == nil {
		return verdict{Outcome: "valid"}
	}
	for _, o := range outcomes {
		if errors.Is(err, o.err) {
			return verdict{Outcome: o.name, Reason: notary.Reason(err), Detail: err.Error()}
		}
	}
	return verdict{Outcome: "unexpected error", Detail: err.Error()}
}

// goVerify is what `telenotary verify` does with a bundle: parse the keys
// and make the policy (a usage error if that fails), parse the bundle, verify.
func goVerify(bundle, keys []byte, minSigs int, origin string, newer []byte, consistency []notary.Hash) (verdict, *notary.Result) {
	v, usage := goVerifier(keys, minSigs, origin)
	if v == nil {
		return usage, nil
	}
	return goVerifyWith(v, bundle, newer, consistency)
}

// goVerifier makes the verifier for a keys file and policy, or the usage
// error `telenotary verify` would stop with.
func goVerifier(keys []byte, minSigs int, origin string) (*notary.Verifier, verdict) {
	vs, err := notary.ParseVerifierKeys(keys)
	if err != nil {
		return nil, verdict{Outcome: "usage", Detail: err.Error()}
	}
	v, err := notary.NewVerifier(notary.Policy{Verifiers: vs, MinSignatures: minSigs, Origin: origin})
	if err != nil {
		return nil, verdict{Outcome: "usage", Detail: err.Error()}
	}
	return v, verdict{}
}

func goVerifyWith(v *notary.Verifier, bundle, newer []byte, consistency []notary.Hash) (verdict, *notary.Result) {
	b, err := notary.ParseBundle(bundle)
	if err != nil {
		return verdictOf(err), nil
	}
	var res *notary.Result
	if newer == nil {
		res, err = v.VerifyBundle(b)
	} else {
		doc, cerr := b.Canonical()
		if cerr != nil {
			return verdictOf(cerr), nil
		}
		res, err = v.Verify(notary.Claim{Receipt: &b.Receipt, Document: doc, Salt: b.Salt, Newer: newer, Consistency: consistency})
	}
	return verdictOf(err), res
}

// ---------------------------------------------------------------------------
// The test server.

// testServer serves the verification page from web.Files (as the
// signalling server will), the notary's keys at /v1/keys, the test vectors
// and a harness page, and logs every request it gets.
type testServer struct {
	*httptest.Server
	keys []byte // the body of /v1/keys; nil answers 404

	mu       sync.Mutex
	cases    []byte // /harness/cases.json
	requests []loggedRequest
	// statuses answers GET /v1/prescriptions/{commitment}/status, as the
	// signalling server relays the notary's answer; a commitment not in it
	// gets the notary's 404 problem, and nil bytes a dropped connection.
	// With noStatusRoute, the server has no such route (a plain 404);
	// with statusRelay (a notary node's URL), it relays the node's answer,
	// status code and body, as the signalling server does.
	statuses      map[string][]byte
	noStatusRoute bool
	statusRelay   string
}

// loggedRequest is a request the test server got.
type loggedRequest struct {
	Method, Path, Query string
	BodyBytes           int64
}

const harnessPage = `<!doctype html><meta charset="utf-8"><title>verify.js harness</title><link rel="icon" href="data:,"><p>harness`

func newTestServer(t *testing.T, keys []byte) *testServer {
	t.Helper()
	s := &testServer{keys: keys}
	verifyFiles, err := fs.Sub(web.Files, "verify")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/verify/", http.StripPrefix("/verify/", http.FileServerFS(verifyFiles)))
	mux.HandleFunc("/v1/keys", func(w http.ResponseWriter, r *http.Request) {
		if s.keys == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(s.keys)
	})
	mux.Handle("/vectors/", http.StripPrefix("/vectors/", http.FileServer(http.Dir(vectorsDir))))
	mux.Handle("/status-vectors/", http.StripPrefix("/status-vectors/", http.FileServer(http.Dir(statusVectorsDir))))
	mux.HandleFunc("GET /v1/prescriptions/{commitment}/status", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		body, ok := s.statuses[r.PathValue("commitment")]
		noRoute, relay := s.noStatusRoute, s.statusRelay
		s.mu.Unlock()
		switch {
		case noRoute:
			http.NotFound(w, r)
		case relay != "":
			resp, err := http.Get(relay + r.URL.RequestURI())
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
			w.WriteHeader(resp.StatusCode)
			io.Copy(w, resp.Body)
		case !ok:
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"type":"about:blank","title":"Not Found","status":404,"code":"not_found","detail":"no prescription with this commitment is logged"}`)
		case body == nil:
			panic(http.ErrAbortHandler) // the connection drops: the page is as offline
		default:
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		}
	})
	mux.HandleFunc("/harness/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, harnessPage)
	})
	mux.HandleFunc("/harness/cases.json", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(s.cases)
	})
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		s.requests = append(s.requests, loggedRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, BodyBytes: n})
		s.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *testServer) log() []loggedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func navigate(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate to %s: %v", url, err)
	}
}

// ---------------------------------------------------------------------------
// The test vectors.

type vectorCase struct {
	Bundle           string `json:"bundle"`
	Policy           string `json:"policy"`
	MinSignatures    int    `json:"min_signatures"`
	Origin           string `json:"origin"`
	NewerCheckpoint  string `json:"newer_checkpoint"`
	ConsistencyProof string `json:"consistency_proof"`
	Expect           string `json:"expect"`
	Why              string `json:"why"`
}

// jsResult is what the harness returns for a verification.
type jsResult struct {
	Outcome        string   `json:"outcome"`
	Reason         string   `json:"reason"`
	Detail         string   `json:"detail"`
	Index          string   `json:"index"`
	Kind           string   `json:"kind"`
	Time           string   `json:"time"`
	Origin         string   `json:"origin"`
	Commitment     string   `json:"commitment"`
	Link           string   `json:"link"`
	Signers        []string `json:"signers"`
	Cosigners      []string `json:"cosigners"`
	CheckpointSize string   `json:"checkpointSize"`
	NewerSize      string   `json:"newerSize"`
}

// vectorScript runs verify.js on every case of the manifest, each file
// read as bytes.
const vectorScript = `(async () => {
  const v = await import('/verify/verify.js');
  const get = async (name) => new Uint8Array(await (await fetch('/vectors/' + name)).arrayBuffer());
  const m = await (await fetch('/vectors/manifest.json')).json();
  const keys = await get(m.keys);
  const out = [];
  for (const c of m.cases) {
    const opts = { minSignatures: c.min_signatures, origin: c.origin };
    const trust = c.policy ? await v.parsePolicy(await get(c.policy)) : keys;
    if (c.newer_checkpoint) {
      opts.newerCheckpoint = await get(c.newer_checkpoint);
      opts.consistency = await get(c.consistency_proof);
    }
    const r = await v.verifyBundle(await get(c.bundle), trust, opts);
    out.push(r.valid ? {
      outcome: r.outcome, index: r.index, kind: r.kind, time: r.time, origin: r.origin,
      commitment: r.commitment, link: r.link || '', signers: r.signers, cosigners: r.cosigners,
      checkpointSize: r.checkpoint.size, newerSize: r.newer ? r.newer.size : '',
    } : { outcome: r.outcome, reason: r.reason, detail: r.detail });
  }
  return out;
})()`

// TestVerifierVectors runs verify.js in Chromium on every case of
// notary/testdata/vectors and requires the outcome each case names, the
// reason `telenotary verify` prints, and for valid bundles what Go's
// verifier establishes.
func TestVerifierVectors(t *testing.T) {
	var manifest struct {
		Keys  string       `json:"keys"`
		Cases []vectorCase `json:"cases"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(vectorsDir, "manifest.json")), &manifest); err != nil {
		t.Fatal(err)
	}
	keys := readFile(t, filepath.Join(vectorsDir, manifest.Keys))
	srv := newTestServer(t, keys)
	ctx := browser.New(t, nil)
	navigate(t, ctx, srv.URL+"/harness/")
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]jsResult](vectorScript, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("running the vectors in the browser: %v", err)
	}
	if len(got) != len(manifest.Cases) {
		t.Fatalf("the browser verified %d cases, the manifest has %d", len(got), len(manifest.Cases))
	}
	seen := map[string]bool{}
	for i, c := range manifest.Cases {
		js := got[i]
		name := fmt.Sprintf("case %d (%s, min %d, origin %q, newer %q)", i, c.Bundle, c.MinSignatures, c.Origin, c.NewerCheckpoint)
		seen[js.Outcome] = true
		if js.Outcome != c.Expect {
			t.Errorf("%s: verify.js says %q (%s), want %q: %s", name, js.Outcome, js.Detail, c.Expect, c.Why)
			continue
		}
		var newer []byte
		var consistency []notary.Hash
		if c.NewerCheckpoint != "" {
			newer = readFile(t, filepath.Join(vectorsDir, c.NewerCheckpoint))
			if err := json.Unmarshal(readFile(t, filepath.Join(vectorsDir, c.ConsistencyProof)), &consistency); err != nil {
				t.Fatal(err)
			}
		}
		var goV verdict
		var res *notary.Result
		if c.Policy != "" {
			pf, err := notary.ParsePolicy(readFile(t, filepath.Join(vectorsDir, c.Policy)))
			if err != nil {
				t.Fatal(err)
			}
			gv, err := notary.NewVerifier(pf.Policy)
			if err != nil {
				t.Fatal(err)
			}
			goV, res = goVerifyWith(gv, readFile(t, filepath.Join(vectorsDir, c.Bundle)), newer, consistency)
		} else {
			goV, res = goVerify(readFile(t, filepath.Join(vectorsDir, c.Bundle)), keys, c.MinSignatures, c.Origin, newer, consistency)
		}
		if goV.Outcome != c.Expect {
			t.Fatalf("%s: Go says %q (%s), the manifest %q", name, goV.Outcome, goV.Detail, c.Expect)
		}
		if c.Expect != "valid" {
			if js.Reason != goV.Reason {
				t.Errorf("%s: verify.js gives the reason %q, telenotary verify %q", name, js.Reason, goV.Reason)
			}
			continue
		}
		want := jsResult{
			Outcome:        "valid",
			Index:          strconv.FormatUint(res.Index, 10),
			Kind:           res.Leaf.Kind.String(),
			Time:           res.Leaf.Time().Format("2006-01-02T15:04:05.000Z"),
			Origin:         res.Origin,
			Commitment:     res.Leaf.Commitment.String(),
			Signers:        res.Signers,
			Cosigners:      res.Cosigners,
			CheckpointSize: strconv.FormatUint(res.Checkpoint.Size, 10),
		}
		if !res.Leaf.Link.IsZero() {
			want.Link = res.Leaf.Link.String()
		}
		if res.Newer != nil {
			want.NewerSize = strconv.FormatUint(res.Newer.Size, 10)
		}
		if fmt.Sprint(js) != fmt.Sprint(want) {
			t.Errorf("%s:\nverify.js establishes %+v\nGo establishes        %+v", name, js, want)
		}
	}
	for _, o := range outcomes {
		if !seen[o.name] {
			t.Errorf("no vector gave %q, so its reason was not compared with Go's", o.name)
		}
	}
}

// policyScript parses every policy file of the vectors with verify.js.
const policyScript = `(async () => {
  const v = await import('/verify/verify.js');
  const m = await (await fetch('/vectors/manifest.json')).json();
  const out = [];
  for (const p of m.policies) {
    const bytes = new Uint8Array(await (await fetch('/vectors/' + p.file)).arrayBuffer());
    try {
      const tp = await v.parsePolicy(bytes);
      out.push({ file: p.file, fingerprint: tp.fingerprint, canonical: new TextDecoder().decode(tp.canonical) });
    } catch (e) {
      out.push({ file: p.file, error: e.name === 'PolicyError' ? e.message : 'unexpected ' + String(e.stack || e) });
    }
  }
  return out;
})()`

// TestPolicyVectorsInBrowser parses every policy file of the test vectors
// with verify.js in Chromium and with Go: the same fingerprint and canonical
// text for each accepted one, the same error, word for word, for each
// refused one (and both as the manifest says). The bundles verified under
// them are in TestVerifierVectors.
func TestPolicyVectorsInBrowser(t *testing.T) {
	var manifest struct {
		Policies []struct{ File, Fingerprint, Error string }
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(vectorsDir, "manifest.json")), &manifest); err != nil {
		t.Fatal(err)
	}
	srv := newTestServer(t, nil)
	ctx := browser.New(t, nil)
	navigate(t, ctx, srv.URL+"/harness/")
	type jsPolicy struct{ File, Fingerprint, Canonical, Error string }
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]jsPolicy](policyScript, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("parsing the policies in the browser: %v", err)
	}
	if len(got) != len(manifest.Policies) || len(got) == 0 {
		t.Fatalf("the browser parsed %d policies, the manifest has %d", len(got), len(manifest.Policies))
	}
	for i, p := range manifest.Policies {
		js := got[i]
		pf, goErr := notary.ParsePolicy(readFile(t, filepath.Join(vectorsDir, p.File)))
		if p.Error != "" {
			if js.Error != p.Error || goErr == nil || goErr.Error() != p.Error {
				t.Errorf("%s: verify.js refuses with %q, Go with %v; the manifest says %q", p.File, js.Error, goErr, p.Error)
			}
			continue
		}
		if goErr != nil {
			t.Fatalf("%s: Go refuses it: %v", p.File, goErr)
		}
		if js.Error != "" || js.Fingerprint != p.Fingerprint || js.Fingerprint != pf.Fingerprint() || js.Canonical != string(pf.Canonical) {
			t.Errorf("%s: verify.js gives %q (%s), Go %s, the manifest %s\njs canonical:\n%s\nGo canonical:\n%s", p.File, js.Fingerprint, js.Error, pf.Fingerprint(), p.Fingerprint, js.Canonical, pf.Canonical)
		}
	}
}

// policyMutationScript parses each base64 text of /harness/cases.json.
const policyMutationScript = `(async () => {
  const v = await import('/verify/verify.js');
  const texts = await (await fetch('/harness/cases.json')).json();
  const out = [];
  for (const t of texts) {
    const bytes = Uint8Array.from(atob(t), (c) => c.charCodeAt(0));
    try {
      out.push('ok ' + (await v.parsePolicy(bytes)).fingerprint);
    } catch (e) {
      out.push(e.name === 'PolicyError' ? e.message : 'unexpected ' + String(e.stack || e));
    }
  }
  return out;
})()`

// TestPolicyMutationsAgree parses policy files with one byte changed,
// inserted or removed at every position (deterministically chosen edits)
// with Go and with verify.js, and requires the same fingerprint or the same
// error for each.
func TestPolicyMutationsAgree(t *testing.T) {
	var texts [][]byte
	edits := []string{" ", "\t", "#", "x", "0", "9", "+", "\n", "\r", "\xff", "\u00a0", "é", "-", "A", "/"}
	for _, name := range []string{"policy-witnessed.txt", "policy-rotated.txt"} {
		base := readFile(t, filepath.Join(vectorsDir, name))
		texts = append(texts, base)
		for i := range base {
			e := edits[i%len(edits)]
			texts = append(texts,
				append(append(slices.Clone(base[:i]), e...), base[i+1:]...), // replaced
				append(append(slices.Clone(base[:i]), e...), base[i:]...),   // inserted
				append(slices.Clone(base[:i]), base[i+1:]...),               // removed
			)
		}
	}
	encoded := make([]string, len(texts))
	for i, b := range texts {
		encoded[i] = base64.StdEncoding.EncodeToString(b)
	}
	data, err := json.Marshal(encoded)
	if err != nil {
		t.Fatal(err)
	}
	srv := newTestServer(t, nil)
	srv.cases = data
	ctx := browser.New(t, nil)
	navigate(t, ctx, srv.URL+"/harness/")
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](policyMutationScript, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("parsing in the browser: %v", err)
	}
	if len(got) != len(texts) {
		t.Fatalf("the browser parsed %d texts of %d", len(got), len(texts))
	}
	accepted, failures := 0, 0
	for i, b := range texts {
		want := ""
		if pf, err := notary.ParsePolicy(b); err != nil {
			want = err.Error()
		} else {
			want = "ok " + pf.Fingerprint()
			accepted++
		}
		if got[i] != want && failures < 20 {
			failures++
			t.Errorf("text %d:\n%q\nverify.js: %s\nGo:        %s", i, b, got[i], want)
		}
	}
	if accepted < 10 || accepted == len(texts) {
		t.Errorf("%d of %d texts accepted: the edits do not exercise both paths", accepted, len(texts))
	}
	t.Logf("%d texts, %d accepted by both", len(texts), accepted)
}

// ---------------------------------------------------------------------------
// Cross-checking verify.js against Go on many bundles.

// xcase is one bundle for both verifiers: Bundle, or base Base with Del
// bytes at At replaced by Ins.
type xcase struct {
	Name        string   `json:"name"`
	Bundle      []byte   `json:"bundle,omitempty"`
	Base        int      `json:"base"`
	At          int      `json:"at"`
	Del         int      `json:"del"`
	Ins         []byte   `json:"ins,omitempty"`
	Keys        int      `json:"keys"`
	Min         int      `json:"min"`
	Origin      string   `json:"origin,omitempty"`
	Newer       []byte   `json:"newer,omitempty"`
	Consistency []string `json:"consistency,omitempty"`

	want string // when set, the outcome the case was built to have
}

type xset struct {
	Bases [][]byte `json:"bases"`
	Keys  [][]byte `json:"keys"`
	Cases []xcase  `json:"cases"`

	mu        sync.Mutex
	verifiers map[policyKey]func() (*notary.Verifier, verdict)
}

// policyKey names the keys file and policy of a case.
type policyKey struct {
	keys, min int
	origin    string
}

func (s *xset) bytes(c *xcase) []byte {
	if c.Bundle != nil {
		return c.Bundle
	}
	base := s.Bases[c.Base]
	out := make([]byte, 0, len(base)-c.Del+len(c.Ins))
	out = append(out, base[:c.At]...)
	out = append(out, c.Ins...)
	return append(out, base[c.At+c.Del:]...)
}

// goVerdict judges case c with Go. Cases with the same keys and policy
// share one notary.Verifier, as the command line uses one for all its
// work; it remembers the checkpoints whose signatures it checked.
func (s *xset) goVerdict(t testing.TB, c *xcase) verdict {
	var consistency []notary.Hash
	for _, h := range c.Consistency {
		var x notary.Hash
		if err := x.UnmarshalText([]byte(h)); err != nil {
			t.Errorf("%s: consistency hash: %v", c.Name, err)
		}
		consistency = append(consistency, x)
	}
	s.mu.Lock()
	if s.verifiers == nil {
		s.verifiers = make(map[policyKey]func() (*notary.Verifier, verdict))
	}
	key := policyKey{c.Keys, c.Min, c.Origin}
	get, ok := s.verifiers[key]
	if !ok {
		get = sync.OnceValues(func() (*notary.Verifier, verdict) { return goVerifier(s.Keys[c.Keys], c.Min, c.Origin) })
		s.verifiers[key] = get
	}
	s.mu.Unlock()
	v, usage := get()
	if v == nil {
		return usage
	}
	out, _ := goVerifyWith(v, s.bytes(c), c.Newer, consistency)
	return out
}

// crossScript verifies every case of /harness/cases.json.
const crossScript = `(async () => {
  const v = await import('/verify/verify.js');
  const data = await (await fetch('/harness/cases.json')).json();
  const bytes = (s) => Uint8Array.from(atob(s || ''), (c) => c.charCodeAt(0));
  const bases = data.bases.map(bytes);
  const keys = data.keys.map(bytes);
  const out = [];
  for (const c of data.cases) {
    let b;
    if (c.bundle !== undefined) {
      b = bytes(c.bundle);
    } else {
      const base = bases[c.base];
      const ins = bytes(c.ins);
      b = new Uint8Array(base.length - c.del + ins.length);
      b.set(base.subarray(0, c.at));
      b.set(ins, c.at);
      b.set(base.subarray(c.at + c.del), c.at + ins.length);
    }
    const opts = { minSignatures: c.min, origin: c.origin };
    if (c.newer !== undefined) {
      opts.newerCheckpoint = bytes(c.newer);
      opts.consistency = c.consistency || [];
    }
    try {
      const r = await v.verifyBundle(b, keys[c.keys], opts);
      out.push(r.valid ? ['valid', '', ''] : [r.outcome, r.reason, r.detail]);
    } catch (e) {
      out.push([e.name === 'PolicyError' ? 'usage' : 'exception', '', String(e.stack || e)]);
    }
  }
  return out;
})()`

// TestVerifierMatchesGo checks that verify.js and Go's notary package give
// the same verdict and reason on thousands of bundles: every byte of a
// valid bundle flipped, every byte of its receipt changed or deleted, and
// bundles built to probe each rule of the formats (canonical JSON, base64,
// receipt spelling, checkpoint notes and signatures, keys files, policies,
// newer checkpoints).
func TestVerifierMatchesGo(t *testing.T) {
	set := &xset{}
	addMutations(t, set)
	addFixtureCases(t, set)

	// Go's verdicts, computed while the browser computes its own.
	goVerdicts := make([]verdict, len(set.Cases))
	var wg sync.WaitGroup
	const workers = 4
	goStart := time.Now()
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(set.Cases); i += workers {
				goVerdicts[i] = set.goVerdict(t, &set.Cases[i])
			}
		})
	}

	srv := newTestServer(t, nil)
	data, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	srv.cases = data
	ctx := browser.New(t, &browser.Options{Timeout: 3 * time.Minute})
	navigate(t, ctx, srv.URL+"/harness/")
	started := time.Now()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[][3]string](crossScript, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("running the cases in the browser: %v", err)
	}
	t.Logf("verify.js judged %d bundles in %v", len(got), time.Since(started).Round(time.Millisecond))
	wg.Wait()
	t.Logf("Go judged them in %v (started together)", time.Since(goStart).Round(time.Millisecond))
	if len(got) != len(set.Cases) {
		t.Fatalf("the browser verified %d cases, want %d", len(got), len(set.Cases))
	}

	counts := map[string]int{}
	mismatches := 0
	for i := range set.Cases {
		c := &set.Cases[i]
		goV := goVerdicts[i]
		js := verdict{Outcome: got[i][0], Reason: got[i][1], Detail: got[i][2]}
		counts[goV.Outcome]++
		if c.want != "" && goV.Outcome != c.want {
			t.Errorf("%s: built to be %q, but Go says %q (%s)", c.Name, c.want, goV.Outcome, goV.Detail)
		}
		if js.Outcome != goV.Outcome || js.Reason != goV.Reason {
			if mismatches++; mismatches <= 40 {
				t.Errorf("%s:\n  Go:        %s (%s)\n  verify.js: %s (%s)", c.Name, goV.Outcome, goV.Detail, js.Outcome, js.Detail)
			}
		}
	}
	if mismatches > 0 {
		t.Errorf("verify.js and Go disagree on %d of %d bundles", mismatches, len(set.Cases))
	}
	t.Logf("outcomes (Go): %v", counts)
	for _, o := range append([]string{"valid", "usage"}, func() (n []string) {
		for _, o := range outcomes {
			n = append(n, o.name)
		}
		return n
	}()...) {
		if counts[o] == 0 {
			t.Errorf("no case had the outcome %q", o)
		}
	}
}

// addMutations adds the vectors' valid bundle with single bytes changed:
// every byte of the receipt flipped and, separately, deleted, and every
// eighth byte of the rest flipped. (The fixture's documents probe the
// document further; Go's verdicts under the race detector, some 3 ms a
// bundle, bound the count.)
func addMutations(t *testing.T, set *xset) {
	valid := readFile(t, filepath.Join(vectorsDir, "valid.json"))
	set.Bases = append(set.Bases, valid)
	set.Keys = append(set.Keys, readFile(t, filepath.Join(vectorsDir, "keys.pub")))
	base, keys := len(set.Bases)-1, len(set.Keys)-1
	receipt := bytes.Index(valid, []byte(`"receipt"`))
	if receipt < 0 {
		t.Fatal(`valid.json has no "receipt"`)
	}
	set.Cases = append(set.Cases, xcase{Name: "valid.json", Base: base, Keys: keys, Min: 2, want: "valid"})
	// Flip one bit, chosen to make digits, letters, quotes and backslashes
	// into their neighbours, other case, control characters or bytes that
	// are not UTF-8.
	masks := []byte{0x01, 0x20, 0x80, 0x02, 0x08, 0x40, 0x04, 0x10}
	flip := func(at, mask int) xcase {
		m := masks[mask%len(masks)]
		return xcase{Name: fmt.Sprintf("valid.json byte %d ^ %#02x", at, m), Base: base, At: at, Del: 1, Ins: []byte{valid[at] ^ m}, Keys: keys, Min: 2}
	}
	for at := 0; at < receipt; at += 8 {
		set.Cases = append(set.Cases, flip(at, at/8))
	}
	for at := receipt; at < len(valid); at++ {
		set.Cases = append(set.Cases, flip(at, at),
			xcase{Name: fmt.Sprintf("valid.json byte %d deleted", at), Base: base, At: at, Del: 1, Keys: keys, Min: 2})
	}
}

// ---------------------------------------------------------------------------
// A notary log of our own, to build valid bundles for any document and to
// sign any checkpoint.

const fxOrigin = "notary.test/verify"

type fxKey struct {
	name   string
	signer note.Signer
	vkey   string
}

func newFxKey(t *testing.T, name string) fxKey {
	skey, vkey, err := notary.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return fxKey{name: name, signer: s, vkey: vkey}
}

// sigLine signs body and returns the signed note's line for it.
func (k fxKey) sigLine(t *testing.T, body string) string {
	sig, err := k.signer.Sign([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return k.line(binary.BigEndian.AppendUint32(nil, k.signer.KeyHash()), sig)
}

func (k fxKey) line(hash, sig []byte) string {
	return "— " + k.name + " " + base64.StdEncoding.EncodeToString(append(slices.Clone(hash), sig...)) + "\n"
}

func (k fxKey) hash() []byte { return binary.BigEndian.AppendUint32(nil, k.signer.KeyHash()) }

// member is one member of a JSON object being written: a JSON string token
// for the name and a JSON value.
type member struct{ name, value string }

func m(name, value string) member { return member{jsonString(name), value} }

func object(ms ...member) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, x := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(x.name + ":" + x.value)
	}
	b.WriteByte('}')
	return b.String()
}

func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func receiptMembers(r *notary.Receipt) []member {
	ms := []member{
		m("version", "1"),
		m("origin", jsonString(r.Origin)),
		m("index", strconv.FormatUint(r.Index, 10)),
		m("kind", jsonString(r.Leaf.Kind.String())),
		m("commitment", jsonString(r.Leaf.Commitment.String())),
	}
	if !r.Leaf.Link.IsZero() {
		ms = append(ms, m("link", jsonString(r.Leaf.Link.String())))
	}
	var proof []string
	for _, h := range r.InclusionProof {
		proof = append(proof, jsonString(h.String()))
	}
	return append(ms,
		m("timestamp", strconv.FormatInt(r.Leaf.Timestamp, 10)),
		m("leaf_hash", jsonString(r.LeafHash.String())),
		m("inclusion_proof", "["+strings.Join(proof, ",")+"]"),
		m("checkpoint", jsonString(string(r.Checkpoint))),
	)
}

// with returns ms with the member name's value replaced (or removed, for
// value ""), or added at the end when absent.
func with(ms []member, name, value string) []member {
	out := slices.Clone(ms)
	for i, x := range out {
		if x.name == jsonString(name) {
			if value == "" {
				return slices.Delete(out, i, i+1)
			}
			out[i].value = value
			return out
		}
	}
	return append(out, m(name, value))
}

func valueOf(ms []member, name string) string {
	for _, x := range ms {
		if x.name == jsonString(name) {
			return x.value
		}
	}
	panic("no member " + name)
}

// notarized is an entry of the fixture log and what its bundle holds.
type notarized struct {
	name    string
	doc     []byte // the bundle's document value: JSON, or the raw bytes
	isJSON  bool
	salt    notary.Salt
	leaf    notary.Leaf
	receipt *notary.Receipt
}

func (n *notarized) bundleMembers() []member {
	ms := []member{m("version", "1")}
	if n.isJSON {
		ms = append(ms, member{`"document"`, string(n.doc)})
	} else {
		ms = append(ms, m("document_base64", jsonString(base64.StdEncoding.EncodeToString(n.doc))))
	}
	salt, _ := n.salt.MarshalText()
	return append(ms, m("salt", jsonString(string(salt))), m("receipt", object(receiptMembers(n.receipt)...)))
}

func (n *notarized) bundle() []byte { return []byte(object(n.bundleMembers()...)) }

// jsonDocuments are documents that probe canonicalization; those that
// cannot be canonicalized go into bundles Go refuses as malformed.
func jsonDocuments() map[string]string {
	deep := func(n int, open, close string) string { return strings.Repeat(open, n) + strings.Repeat(close, n) }
	return map[string]string{
		"numbers": ` { "n" : [1, 1.0, 1e0, 10e-1, -0, -0.0, 0e5, 0.000001, 1e-7, 1e21, 1e20, 123456789012345678901234567890,
			5e-324, 1.7976931348623157e308, -1e-400, 1e-400, 9007199254740993, 0.1, 1E+2, 2.5e-5, 333333333.33333329, 1e23,
			4.35, 0.3, -1.5e300, 18446744073709551616, 12345678901234567, 1e16, 100, 2e-6, 123e-20, 0.30000000000000004] } `,
		"strings":          `{"s":"\u00e9\/\b\f\n\r\t\u0000\u001f\u007f\ud83d\ude00 é 😀 \u2028\u2029 \"\\ \uFEFF` + "\ufeff" + ` <>&", "e":""}`,
		"key order":        `{"\u20ac":1,"\ud83d\ude00":2,"\ufb33":3,"a":4,"A":5,"":6,"aa":7,"b":[{"z":1,"y":{"x":2}}],"\u0000":8,"é":9,"e\u0301":10}`,
		"scalar string":    `"just a string"`,
		"scalar number":    "\t42\n",
		"null":             `null`,
		"true":             `true`,
		"empty array":      `[]`,
		"empty object":     ` {} `,
		"nested empties":   `[[],{},[{}],{"a":[]}]`,
		"escaped keys":     `{"\u0061b":1,"a\u0062c":2}`,
		"controls":         `{"c":"\u0001\u001F\u0008\u000b"}`,
		"deep arrays":      deep(10000, "[", "]"),
		"deep objects":     strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000),
		"too deep":         deep(10001, "[", "]"),
		"too deep objects": strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
		"duplicate key":    `{"a":1,"a":1}`,
		"duplicate esc":    `{"a":1,"\u0061":2}`,
		"duplicate deep":   `[{"x":{"b":1,"c":2,"b":3}}]`,
		"noncharacters":    `{"\ufdd0":"\ufffe\uffff` + "\ufdef\U0010FFFF" + `"}`,
		"lone high":        `{"s":"\ud800"}`,
		"lone low":         `{"s":"\udc00"}`,
		"high then A":      `{"s":"\ud800\u0041"}`,
		"high then char":   `{"s":"\ud800x"}`,
		"reversed pair":    `{"s":"\ude00\ud83d"}`,
		"invalid utf8":     "{\"s\":\"\xff\"}",
		"overlong utf8":    "{\"s\":\"\xc0\xaf\"}",
		"surrogate utf8":   "{\"s\":\"\xed\xa0\x80\"}",
		"number overflow":  `[1e400]`,
		"neg overflow":     `[-1e400]`,
		"raw control":      "{\"s\":\"a\x01\"}",
		"over 1 MiB":       `"` + strings.Repeat("x", 1<<20-1) + `"`,
		"spaced to 1 MiB":  "[" + strings.Repeat(" ", 1<<20-5) + `"z"]`,
		"spaced over":      "[" + strings.Repeat(" ", 1<<20-4) + `"z"]`,
		// 1e20 becomes 100000000000000000000: canonical forms of exactly
		// 1 MiB and one byte more, from documents under 1 MiB.
		"grows to 1 MiB":   "[" + strings.Repeat("1e20,", 1000) + `"` + strings.Repeat("g", 1<<20-22004) + `"]`,
		"grows over 1 MiB": "[" + strings.Repeat("1e20,", 1000) + `"` + strings.Repeat("g", 1<<20+1-22004) + `"]`,
		"exactly 1 MiB":    `"` + strings.Repeat("y", 1<<20-2) + `"`,
	}
}

// padLine returns a signature line of n bytes by a key nobody trusts.
func padLine(n int) string {
	fill := n - len("— ") - len(" \n") // for the name and the base64
	b64 := (fill - 1) / 4 * 4
	return "— " + strings.Repeat("u", fill-b64) + " " + strings.Repeat("A", b64) + "\n"
}

// addFixtureCases adds bundles built on a log of our own.
func addFixtureCases(t *testing.T, set *xset) {
	k1, k2, k3, outsider := newFxKey(t, "node-1.test"), newFxKey(t, "node-2.test"), newFxKey(t, "node-3.test"), newFxKey(t, "node-9.test")
	keysFile := func(lines ...string) int {
		set.Keys = append(set.Keys, []byte(strings.Join(lines, "\n")))
		return len(set.Keys) - 1
	}
	keys := keysFile("# fixture keys", k1.vkey, k2.vkey, k3.vkey, "")
	add := func(c xcase) {
		if c.Keys == 0 {
			c.Keys = keys
		}
		if c.Min == 0 {
			c.Min = 2
		}
		set.Cases = append(set.Cases, c)
	}

	l, err := notary.Open(notary.NewMemoryStore())
	if err != nil {
		t.Fatal(err)
	}
	ts := int64(1795262400000)
	filler := func(n int) {
		var leaves []notary.Leaf
		for range n {
			ts++
			leaves = append(leaves, notary.Leaf{Kind: notary.KindConsent, Commitment: notary.Commit(notary.NewSalt(), []byte("filler")), Timestamp: ts})
		}
		if _, err := l.Append(leaves, nil); err != nil {
			t.Fatal(err)
		}
	}
	filler(5)

	// The entries: a session, a prescription linked to it, the probing
	// documents and raw documents.
	var entries []*notarized
	notarize := func(name string, doc []byte, isJSON bool, kind notary.Kind, link notary.Commitment) *notarized {
		n := &notarized{name: name, doc: doc, isJSON: isJSON, salt: notary.NewSalt()}
		canonical := doc
		if isJSON {
			if canonical, err = notary.CanonicalJSON(doc); err != nil {
				return n // not loggable; its bundle borrows a receipt
			}
		}
		ts += 7
		n.leaf = notary.Leaf{Kind: kind, Commitment: notary.Commit(n.salt, canonical), Link: link, Timestamp: ts}
		entries = append(entries, n)
		return n
	}
	session := notarize("session", []byte(`{"room":"r-9","session":"s-9"}`), true, notary.KindSessionStart, notary.Commitment{})
	rx := notarize("prescription", readFile(t, "../../notary/fhirdata/MedicationRequest-medrx0310.json"), true, notary.KindPrescription, session.leaf.Commitment)
	docs := jsonDocuments()
	var probes []*notarized
	for _, name := range slices.Sorted(mapKeys(docs)) {
		probes = append(probes, notarize("document "+name, []byte(docs[name]), true, notary.KindDocument, notary.Commitment{}))
	}
	rawDoc := []byte("\xfb\xef\xbe?>\x00 a PDF? %PDF-1.7\n")
	raw := notarize("raw", rawDoc, false, notary.KindDocument, session.leaf.Commitment)
	emptyRaw := notarize("empty raw", []byte{}, false, notary.KindDocument, notary.Commitment{})
	for _, n := range entries {
		if _, err := l.Append([]notary.Leaf{n.leaf}, nil); err != nil {
			t.Fatal(err)
		}
	}
	filler(11)
	head := l.Head()
	cpTime := ts + 500
	body := fmt.Sprintf("%s\n%d\n%s\ntimestamp %d\n", fxOrigin, head.Size, base64.StdEncoding.EncodeToString(head.Root[:]), cpTime)
	signed := body + "\n" + k1.sigLine(t, body) + k2.sigLine(t, body)
	cp, err := notary.ParseSignedCheckpoint([]byte(signed))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range entries {
		idx, found, err := l.Find(n.leaf.Commitment)
		if err != nil || !found {
			t.Fatalf("entry %d not in the log: %v", i, err)
		}
		if n.receipt, err = l.Receipt(idx, cp); err != nil {
			t.Fatal(err)
		}
	}

	// Documents: valid when Go can canonicalize them, else malformed.
	for _, n := range append(probes, raw, emptyRaw, rx, session) {
		want := "valid"
		if n.receipt == nil {
			n.receipt = rx.receipt
			want = "malformed input"
		}
		add(xcase{Name: n.name, Bundle: n.bundle(), want: want})
	}

	rxMembers := rx.bundleMembers()
	rxReceipt := receiptMembers(rx.receipt)
	bundleWith := func(name, value string) []byte { return []byte(object(with(rxMembers, name, value)...)) }
	receiptWith := func(name, value string) []byte {
		return bundleWith("receipt", object(with(rxReceipt, name, value)...))
	}

	// Bundle spelling.
	saltHex := strings.Trim(valueOf(rxMembers, "salt"), `"`)
	rawB64 := base64.StdEncoding.EncodeToString(rawDoc)
	rawMembers := raw.bundleMembers()
	rawWith := func(value string) []byte { return []byte(object(with(rawMembers, "document_base64", value)...)) }
	var numbers []string
	for _, c := range rawDoc {
		numbers = append(numbers, strconv.Itoa(int(c)))
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	lastData := strings.TrimRight(rawB64, "=")
	if len(lastData) == len(rawB64) {
		t.Fatal("the raw document's base64 needs padding for the loose-bits case")
	}
	tweaked := lastData[:len(lastData)-1] + string(alphabet[strings.IndexByte(alphabet, lastData[len(lastData)-1])^1]) + rawB64[len(lastData):]
	for _, c := range []xcase{
		{Name: "bundle members reordered and spaced", Bundle: []byte("\r\n\t{ " + strings.Join([]string{
			`"receipt" : ` + valueOf(rxMembers, "receipt"), `"salt":` + valueOf(rxMembers, "salt"),
			`"document":` + valueOf(rxMembers, "document"), `"version":1`}, " ,\n") + " }\n\n"), want: "valid"},
		{Name: "bundle names escaped", Bundle: []byte(object(
			member{`"\u0076ersion"`, "1"}, member{`"docum\u0065nt"`, valueOf(rxMembers, "document")},
			member{`"s\u0061lt"`, valueOf(rxMembers, "salt")}, member{`"receipt"`, valueOf(rxMembers, "receipt")})), want: "valid"},
		{Name: "salt escaped", Bundle: bundleWith("salt", `"\u00`+hex.EncodeToString([]byte{saltHex[0]})+saltHex[1:]+`"`), want: "valid"},
		{Name: "salt upper case", Bundle: bundleWith("salt", `"`+strings.ToUpper(saltHex)+`"`), want: "malformed input"},
		{Name: "salt short", Bundle: bundleWith("salt", `"`+saltHex[1:]+`"`), want: "malformed input"},
		{Name: "salt null", Bundle: bundleWith("salt", `null`), want: "malformed input"},
		{Name: "salt list", Bundle: bundleWith("salt", `[1]`), want: "malformed input"},
		{Name: "salt missing", Bundle: bundleWith("salt", ""), want: "malformed input"},
		{Name: "version 1.0", Bundle: bundleWith("version", "1.0"), want: "malformed input"},
		{Name: "version string", Bundle: bundleWith("version", `"1"`), want: "malformed input"},
		{Name: "version 01", Bundle: bundleWith("version", `01`), want: "malformed input"},
		{Name: "version 2", Bundle: bundleWith("version", `2`), want: "malformed input"},
		{Name: "version huge", Bundle: bundleWith("version", `99999999999999999999`), want: "malformed input"},
		{Name: "version missing", Bundle: bundleWith("version", ""), want: "malformed input"},
		{Name: "document missing", Bundle: bundleWith("document", ""), want: "malformed input"},
		{Name: "document null", Bundle: bundleWith("document", "null"), want: "commitment mismatch"},
		{Name: "both documents", Bundle: bundleWith("document_base64", `""`), want: "malformed input"},
		{Name: "receipt missing", Bundle: bundleWith("receipt", ""), want: "malformed input"},
		{Name: "receipt null", Bundle: bundleWith("receipt", "null"), want: "malformed input"},
		{Name: "receipt list", Bundle: bundleWith("receipt", "[]"), want: "malformed input"},
		{Name: "receipt empty", Bundle: bundleWith("receipt", "{}"), want: "malformed input"},
		{Name: "unknown member", Bundle: bundleWith("extra", "1"), want: "malformed input"},
		{Name: "member twice", Bundle: []byte(object(append(slices.Clone(rxMembers), m("version", "1"))...)), want: "malformed input"},
		{Name: "trailing comma", Bundle: []byte(strings.TrimSuffix(string(rx.bundle()), "}") + ",}"), want: "malformed input"},
		{Name: "data after", Bundle: append(rx.bundle(), " {}"...), want: "malformed input"},
		{Name: "byte order mark", Bundle: append([]byte("\ufeff"), rx.bundle()...), want: "malformed input"},
		{Name: "a list", Bundle: []byte("[" + string(rx.bundle()) + "]"), want: "malformed input"},
		{Name: "empty object", Bundle: []byte("{}"), want: "malformed input"},
		{Name: "null file", Bundle: []byte("null"), want: "malformed input"},
		{Name: "whitespace file", Bundle: []byte(" \n"), want: "malformed input"},
		{Name: "exactly 4 MiB", Bundle: bundleWith("document", valueOf(rxMembers, "document")+strings.Repeat(" ", 4<<20-len(rx.bundle()))), want: "valid"},
		{Name: "over 4 MiB", Bundle: bundleWith("document", valueOf(rxMembers, "document")+strings.Repeat(" ", 4<<20+1-len(rx.bundle()))), want: "malformed input"},
		{Name: "receipt over 64 KiB", Bundle: bundleWith("receipt", "{"+strings.Repeat(" ", 64<<10+1-len(object(rxReceipt...)))+object(rxReceipt...)[1:]), want: "malformed input"},
		{Name: "receipt under 64 KiB", Bundle: bundleWith("receipt", "{"+strings.Repeat(" ", 64<<10-len(object(rxReceipt...)))+object(rxReceipt...)[1:]), want: "valid"},

		{Name: "base64 with line breaks", Bundle: rawWith(jsonString(rawB64[:8] + "\r\n" + rawB64[8:16] + "\n" + rawB64[16:])), want: "malformed input"},
		{Name: "base64 escaped", Bundle: rawWith(`"\u00` + hex.EncodeToString([]byte{rawB64[0]}) + strings.ReplaceAll(rawB64[1:], "/", `\/`) + `"`), want: "valid"},
		{Name: "base64 loose last bits", Bundle: rawWith(jsonString(tweaked)), want: "malformed input"},
		{Name: "base64 as numbers", Bundle: rawWith("[ " + strings.Join(numbers, " , ") + " ]"), want: "malformed input"},
		{Name: "base64 unpadded", Bundle: rawWith(jsonString(strings.TrimRight(rawB64, "="))), want: "malformed input"},
		{Name: "base64 url alphabet", Bundle: rawWith(jsonString(strings.NewReplacer("+", "-", "/", "_").Replace(rawB64))), want: "malformed input"},
		{Name: "base64 space", Bundle: rawWith(jsonString(rawB64[:4] + " " + rawB64[4:])), want: "malformed input"},
		{Name: "base64 padding inside", Bundle: rawWith(jsonString("AA==" + rawB64)), want: "malformed input"},
		{Name: "base64 null", Bundle: rawWith("null"), want: "malformed input"},
		{Name: "base64 number", Bundle: rawWith("12"), want: "malformed input"},
		{Name: "base64 object", Bundle: rawWith("{}"), want: "malformed input"},
		{Name: "base64 [null]", Bundle: rawWith("[null]"), want: "malformed input"},
		{Name: "base64 [256]", Bundle: rawWith("[256]"), want: "malformed input"},
		{Name: "base64 [-1]", Bundle: rawWith("[-1]"), want: "malformed input"},
		{Name: "base64 [1.0]", Bundle: rawWith("[1.0]"), want: "malformed input"},
		{Name: "base64 [1e1]", Bundle: rawWith("[1e1]"), want: "malformed input"},
		{Name: "base64 [\"a\"]", Bundle: rawWith(`["a"]`), want: "malformed input"},
		{Name: "base64 [[1]]", Bundle: rawWith(`[[1]]`), want: "malformed input"},
		{Name: "base64 [] for raw", Bundle: rawWith(`[]`), want: "malformed input"},
		{Name: "base64 empty", Bundle: []byte(object(with(emptyRaw.bundleMembers(), "document_base64", `""`)...)), want: "valid"},
		{Name: "base64 [] for empty", Bundle: []byte(object(with(emptyRaw.bundleMembers(), "document_base64", `[ ]`)...)), want: "malformed input"},
		{Name: "raw over 1 MiB", Bundle: rawWith(jsonString(base64.StdEncoding.EncodeToString(make([]byte, 1<<20+1)))), want: "malformed input"},
	} {
		add(c)
	}

	// Receipt spelling.
	hexOf := func(name string) string { return strings.Trim(valueOf(rxReceipt, name), `"`) }
	escFirst := func(h string) string { return `"\u00` + hex.EncodeToString([]byte{h[0]}) + h[1:] + `"` }
	proof := rx.receipt.InclusionProof
	proofJSON := func(hs []notary.Hash) string {
		var s []string
		for _, h := range hs {
			s = append(s, jsonString(h.String()))
		}
		return "[" + strings.Join(s, ",") + "]"
	}
	for _, c := range []xcase{
		{Name: "receipt reordered", Bundle: bundleWith("receipt", object(reversed(rxReceipt)...)), want: "valid"},
		{Name: "receipt spaced", Bundle: bundleWith("receipt", strings.NewReplacer(",", " ,\n\t", ":", " : ", "[", "[ ", "]", " ]").Replace(object(rxReceipt...))), want: "valid"},
		{Name: "receipt hex escaped", Bundle: receiptWith("commitment", escFirst(hexOf("commitment"))), want: "valid"},
		{Name: "receipt names escaped", Bundle: bundleWith("receipt", strings.Replace(object(rxReceipt...), `"leaf_hash"`, `"leaf\u005fhash"`, 1)), want: "valid"},
		{Name: "receipt kind escaped", Bundle: receiptWith("kind", `"pr\u0065scription"`), want: "valid"},
		{Name: "receipt origin escaped", Bundle: receiptWith("origin", `"notary.test\/verify"`), want: "valid"},
		{Name: "receipt checkpoint escaped", Bundle: receiptWith("checkpoint", strings.ReplaceAll(jsonString(string(rx.receipt.Checkpoint)), "—", `\u2014`)), want: "valid"},
		{Name: "receipt commitment upper", Bundle: receiptWith("commitment", `"`+strings.ToUpper(hexOf("commitment"))+`"`), want: "malformed input"},
		{Name: "receipt commitment short", Bundle: receiptWith("commitment", `"`+hexOf("commitment")[2:]+`"`), want: "malformed input"},
		{Name: "receipt version string", Bundle: receiptWith("version", `"1"`), want: "malformed input"},
		{Name: "receipt version 1.0", Bundle: receiptWith("version", `1.0`), want: "malformed input"},
		{Name: "receipt version 1e0", Bundle: receiptWith("version", `1e0`), want: "malformed input"},
		{Name: "receipt version 2", Bundle: receiptWith("version", `2`), want: "malformed input"},
		{Name: "receipt version missing", Bundle: receiptWith("version", ``), want: "malformed input"},
		{Name: "receipt index -0", Bundle: receiptWith("index", `-0`), want: "malformed input"},
		{Name: "receipt index 01", Bundle: receiptWith("index", `0`+valueOf(rxReceipt, "index")), want: "malformed input"},
		{Name: "receipt index null", Bundle: receiptWith("index", `null`), want: "malformed input"},
		{Name: "receipt index max", Bundle: receiptWith("index", `18446744073709551615`), want: "proof invalid"},
		{Name: "receipt index overflow", Bundle: receiptWith("index", `18446744073709551616`), want: "malformed input"},
		{Name: "receipt timestamp max", Bundle: receiptWith("timestamp", `9223372036854775807`), want: "leaf mismatch"},
		{Name: "receipt timestamp overflow", Bundle: receiptWith("timestamp", `9223372036854775808`), want: "malformed input"},
		{Name: "receipt timestamp negative", Bundle: receiptWith("timestamp", `-1`), want: "malformed input"},
		{Name: "receipt link removed", Bundle: receiptWith("link", ``), want: "leaf mismatch"},
		{Name: "receipt link zero", Bundle: receiptWith("link", jsonString(strings.Repeat("0", 64))), want: "malformed input"},
		{Name: "receipt link null", Bundle: receiptWith("link", `null`), want: "malformed input"},
		{Name: "receipt kind unknown", Bundle: receiptWith("kind", `"letter"`), want: "malformed input"},
		{Name: "receipt kind consent", Bundle: receiptWith("kind", `"consent"`), want: "leaf mismatch"},
		{Name: "receipt origin other", Bundle: receiptWith("origin", `"notary.test/other"`), want: "wrong log"},
		{Name: "receipt origin lone surrogate", Bundle: receiptWith("origin", `"notary.test/\ud800"`), want: "wrong log"},
		{Name: "receipt origin surrogate eats", Bundle: receiptWith("origin", `"notary.test/\ud800\u0041"`), want: "wrong log"},
		{Name: "receipt origin surrogate eats a space", Bundle: receiptWith("origin", `"notary.test/\ud800\u0020"`), want: "wrong log"},
		{Name: "receipt origin surrogate pair", Bundle: receiptWith("origin", `"notary.test/\ud83d\ude00"`), want: "wrong log"},
		{Name: "receipt origin accented", Bundle: receiptWith("origin", `"notary.test/v\u00e9rify"`), want: "wrong log"},
		{Name: "receipt origin space", Bundle: receiptWith("origin", `"notary.test/ verify"`), want: "malformed input"},
		{Name: "receipt origin nbsp", Bundle: receiptWith("origin", `"notary.test/\u00a0verify"`), want: "malformed input"},
		{Name: "receipt origin next line", Bundle: receiptWith("origin", `"notary.test/\u0085"`), want: "malformed input"},
		{Name: "receipt origin soft hyphen", Bundle: receiptWith("origin", `"notary.test/\u00ad"`), want: "malformed input"},
		{Name: "receipt origin unassigned", Bundle: receiptWith("origin", `"notary.test/\u0378"`), want: "malformed input"},
		{Name: "receipt origin unicode 16", Bundle: receiptWith("origin", `"notary.test/\u1c89"`), want: "malformed input"},
		{Name: "receipt origin plus", Bundle: receiptWith("origin", `"notary.test/a+b"`), want: "malformed input"},
		{Name: "receipt origin tab", Bundle: receiptWith("origin", `"notary.test/\t"`), want: "malformed input"},
		{Name: "receipt origin empty", Bundle: receiptWith("origin", `""`), want: "malformed input"},
		{Name: "receipt origin noncharacter", Bundle: receiptWith("origin", `"notary.test/\ufffe"`), want: "malformed input"},
		{Name: "receipt origin noncharacter fdd0", Bundle: receiptWith("origin", `"notary.test/\ufdd0"`), want: "malformed input"},
		{Name: "receipt origin 255", Bundle: receiptWith("origin", jsonString(strings.Repeat("o", 255))), want: "wrong log"},
		{Name: "receipt origin 256", Bundle: receiptWith("origin", jsonString(strings.Repeat("o", 256))), want: "malformed input"},
		{Name: "receipt proof empty", Bundle: receiptWith("inclusion_proof", `[]`), want: "proof invalid"},
		{Name: "receipt proof 64", Bundle: receiptWith("inclusion_proof", proofJSON(slices.Repeat(proof[:1], 64))), want: "proof invalid"},
		{Name: "receipt proof 65", Bundle: receiptWith("inclusion_proof", proofJSON(slices.Repeat(proof[:1], 65))), want: "malformed input"},
		{Name: "receipt proof null", Bundle: receiptWith("inclusion_proof", `null`), want: "malformed input"},
		{Name: "receipt proof nested", Bundle: receiptWith("inclusion_proof", `[`+proofJSON(proof)+`]`), want: "malformed input"},
		{Name: "receipt proof swapped", Bundle: receiptWith("inclusion_proof", proofJSON(append([]notary.Hash{proof[1], proof[0]}, proof[2:]...))), want: "root mismatch"},
		{Name: "receipt unknown member", Bundle: receiptWith("note", `"x"`), want: "malformed input"},
		{Name: "receipt member twice", Bundle: bundleWith("receipt", object(append(slices.Clone(rxReceipt), m("kind", `"prescription"`))...)), want: "malformed input"},
		{Name: "receipt checkpoint null", Bundle: receiptWith("checkpoint", `null`), want: "malformed input"},
		{Name: "receipt checkpoint 16 KiB", Bundle: receiptWith("checkpoint", jsonString(string(rx.receipt.Checkpoint)+padLine(16<<10-len(rx.receipt.Checkpoint)))), want: "valid"},
		{Name: "receipt checkpoint over 16 KiB", Bundle: receiptWith("checkpoint", jsonString(string(rx.receipt.Checkpoint)+padLine(16<<10+1-len(rx.receipt.Checkpoint)))), want: "malformed input"},
	} {
		add(c)
	}

	// Checkpoints: bodies and signature lines, signed by the fixture keys.
	k2line, _ := base64.StdEncoding.DecodeString(strings.Fields(k2.sigLine(t, body))[2])
	k2sig := k2line[4:]
	rxBundle := func(note string) []byte { return receiptWith("checkpoint", jsonString(note)) }
	rootB64 := base64.StdEncoding.EncodeToString(head.Root[:])
	bodyOf := func(origin, size, root, tsLine string) string {
		return origin + "\n" + size + "\n" + root + "\n" + tsLine + "\n"
	}
	sizeStr := strconv.FormatUint(head.Size, 10)
	tsLine := "timestamp " + strconv.FormatInt(cpTime, 10)
	signedBy := func(b string, ks ...fxKey) string {
		s := b + "\n"
		for _, k := range ks {
			s += k.sigLine(t, b)
		}
		return s
	}
	looseRoot := rootB64[:42] + string(rune(rootB64[42]+1)) + "="
	for _, c := range []struct {
		name, note, want string
		min              int
	}{
		{"note as issued", signedBy(body, k1, k2), "valid", 2},
		{"note by three", signedBy(body, k1, k2, k3), "valid", 3},
		{"note size leading zero", signedBy(bodyOf(fxOrigin, "0"+sizeStr, rootB64, tsLine), k1, k2), "malformed input", 2},
		{"note size plus", signedBy(bodyOf(fxOrigin, "+"+sizeStr, rootB64, tsLine), k1, k2), "malformed input", 2},
		{"note size larger", signedBy(bodyOf(fxOrigin, strconv.FormatUint(head.Size+1, 10), rootB64, tsLine), k1, k2), "", 2},
		{"note size max", signedBy(bodyOf(fxOrigin, "18446744073709551615", rootB64, tsLine), k1, k2), "proof invalid", 2},
		{"note size overflow", signedBy(bodyOf(fxOrigin, "18446744073709551616", rootB64, tsLine), k1, k2), "malformed input", 2},
		{"note root loose bits", signedBy(bodyOf(fxOrigin, sizeStr, looseRoot, tsLine), k1, k2), "malformed input", 2},
		{"note root unpadded", signedBy(bodyOf(fxOrigin, sizeStr, rootB64[:43], tsLine), k1, k2), "malformed input", 2},
		{"note root short", signedBy(bodyOf(fxOrigin, sizeStr, base64.StdEncoding.EncodeToString(head.Root[:31]), tsLine), k1, k2), "malformed input", 2},
		{"note root other", signedBy(bodyOf(fxOrigin, sizeStr, base64.StdEncoding.EncodeToString(make([]byte, 32)), tsLine), k1, k2), "root mismatch", 2},
		{"note origin other", signedBy(bodyOf("notary.test/other", sizeStr, rootB64, tsLine), k1, k2), "wrong log", 2},
		{"note origin plus", signedBy(bodyOf("notary.test/a+b", sizeStr, rootB64, tsLine), k1, k2), "malformed input", 2},
		{"note origin space", signedBy(bodyOf("notary.test/a b", sizeStr, rootB64, tsLine), k1, k2), "malformed input", 2},
		{"note origin nbsp", signedBy(bodyOf("notary.test/a\u00a0b", sizeStr, rootB64, tsLine), k1, k2), "malformed input", 2},
		{"note origin empty", signedBy(bodyOf("", sizeStr, rootB64, tsLine), k1, k2), "malformed input", 2},
		{"note timestamp missing", signedBy(fxOrigin+"\n"+sizeStr+"\n"+rootB64+"\n", k1, k2), "malformed input", 2},
		{"note timestamp negative", signedBy(bodyOf(fxOrigin, sizeStr, rootB64, "timestamp -1"), k1, k2), "malformed input", 2},
		{"note timestamp leading zero", signedBy(bodyOf(fxOrigin, sizeStr, rootB64, "timestamp 0"+tsLine[10:]), k1, k2), "malformed input", 2},
		{"note timestamp two spaces", signedBy(bodyOf(fxOrigin, sizeStr, rootB64, "timestamp  "+tsLine[10:]), k1, k2), "malformed input", 2},
		{"note timestamp overflow", signedBy(bodyOf(fxOrigin, sizeStr, rootB64, "timestamp 9223372036854775808"), k1, k2), "malformed input", 2},
		{"note timestamp early", signedBy(bodyOf(fxOrigin, sizeStr, rootB64, "timestamp "+strconv.FormatInt(rx.leaf.Timestamp-1, 10)), k1, k2), "inconsistent history", 2},
		{"note timestamp equal", signedBy(bodyOf(fxOrigin, sizeStr, rootB64, "timestamp "+strconv.FormatInt(rx.leaf.Timestamp, 10)), k1, k2), "valid", 2},
		{"note extra line", signedBy(body+"extra\n", k1, k2), "malformed input", 2},
		{"note blank line in body", signedBy(fxOrigin+"\n\n"+sizeStr+"\n"+rootB64+"\n"+tsLine+"\n", k1, k2), "malformed input", 2},
		{"note CRLF body", signedBy(strings.ReplaceAll(body, "\n", "\r\n"), k1, k2), "malformed input", 2},
		{"note tab in body", signedBy(bodyOf(fxOrigin+"\t", sizeStr, rootB64, tsLine), k1, k2), "malformed input", 2},
		{"note malformed body, too few", signedBy(body+"extra\n", k1), "too few trusted signatures", 2},
		{"note malformed body, untrusted", signedBy(body+"extra\n", outsider), "too few trusted signatures", 1},
		{"note one signer", signedBy(body, k1), "too few trusted signatures", 2},
		{"note untrusted signer", signedBy(body, outsider, k1), "too few trusted signatures", 2},
		{"note untrusted ok", signedBy(body, outsider, k1, k2), "valid", 2},
		{"note unsigned by anyone trusted", signedBy(body, outsider), "too few trusted signatures", 1},
		{"note same line twice", signedBy(body, k1, k1, k2), "valid", 2},
		{"note bad second signature ignored", signedBy(body, k1, k2) + k1.line(k1.hash(), make([]byte, 64)), "valid", 2},
		{"note bad first signature", body + "\n" + k1.line(k1.hash(), make([]byte, 64)) + k1.sigLine(t, body) + k2.sigLine(t, body), "signature invalid", 2},
		{"note short signature", body + "\n" + k1.line(k1.hash(), make([]byte, 63)) + k2.sigLine(t, body), "signature invalid", 2},
		{"note long signature", body + "\n" + k1.line(k1.hash(), make([]byte, 65)) + k2.sigLine(t, body), "signature invalid", 2},
		{"note trusted name, other hash", signedBy(body, k1, k2) + k3.line([]byte{1, 2, 3, 4}, make([]byte, 64)), "signature invalid", 2},
		{"note other key's signature", body + "\n" + k1.line(k1.hash(), k2sig) + k2.sigLine(t, body), "signature invalid", 2},
		{"note unknown signer, 5 bytes", signedBy(body, k1, k2) + "— unknown.test " + base64.StdEncoding.EncodeToString([]byte{1, 2, 3, 4, 5}) + "\n", "valid", 2},
		{"note unknown signer, 4 bytes", signedBy(body, k1, k2) + "— unknown.test " + base64.StdEncoding.EncodeToString([]byte{1, 2, 3, 4}) + "\n", "signature invalid", 2},
		{"note no space", signedBy(body, k1, k2) + "— unknown.test\n", "signature invalid", 2},
		{"note no dash", signedBy(body, k1, k2) + "- unknown.test AAAAAAAA\n", "signature invalid", 2},
		{"note loose base64", signedBy(body, k1, k2) + "— unknown.test AAAAAAB=\n", "signature invalid", 2},
		{"note CR in base64", signedBy(body, k1, k2) + "— unknown.test AAAA\rAAAA\n", "signature invalid", 2},
		{"note CR in name", signedBy(body, k1, k2) + "— unk\rnown.test AAAAAAAA\n", "malformed input", 2},
		{"note nbsp in name", signedBy(body, k1, k2) + "— unk\u00a0nown.test AAAAAAAA\n", "malformed input", 2},
		{"note NEL in name", signedBy(body, k1, k2) + "— unk\u0085nown.test AAAAAAAA\n", "malformed input", 2},
		{"note BOM in name", signedBy(body, k1, k2) + "— unk\ufeffnown.test AAAAAAAA\n", "valid", 2},
		{"note plus in name", signedBy(body, k1, k2) + "— unk+nown.test AAAAAAAA\n", "malformed input", 2},
		{"note two spaces", signedBy(body, k1, k2) + "— unknown.test  AAAAAAAA\n", "signature invalid", 2},
		{"note damaged beats control", signedBy(bodyOf(fxOrigin+"\x01", sizeStr, rootB64, tsLine), k1, k2) + "— x\n", "signature invalid", 2},
		{"note 100 lines", signedBy(body, k1, k2) + strings.Repeat("— unknown.test AAAAAAAA\n", 98), "valid", 2},
		{"note 101 lines", signedBy(body, k1, k2) + strings.Repeat("— unknown.test AAAAAAAA\n", 99), "malformed input", 2},
		{"note 101 lines, bad signature first", body + "\n" + k1.line(k1.hash(), make([]byte, 64)) + strings.Repeat("— unknown.test AAAAAAAA\n", 100), "signature invalid", 2},
		{"note no final newline", strings.TrimSuffix(signedBy(body, k1, k2), "\n"), "malformed input", 2},
		{"note no signatures", body + "\n", "malformed input", 2},
		{"note no blank line", strings.Replace(signedBy(body, k1, k2), "\n\n", "\n", 1), "malformed input", 2},
		{"note two blank lines", strings.Replace(signedBy(body, k1, k2), "\n\n", "\n\n\n", 1), "signature invalid", 2},
		{"note body only", body, "malformed input", 2},
	} {
		add(xcase{Name: c.name, Bundle: rxBundle(c.note), Min: c.min, want: c.want})
	}
	// encoding/json writes invalid UTF-8 as \ufffd; put the byte back.
	badNote := signedBy(body, k1, k2) + "— unk\xffnown.test AAAAAAAA\n"
	add(xcase{Name: "note invalid UTF-8 in the receipt", want: "malformed input",
		Bundle: receiptWith("checkpoint", strings.Replace(jsonString(badNote), `\ufffd`, "\xff", 1))})

	// Keys files and policies.
	valid := rx.bundle()
	upper := func(vkey string) string {
		parts := strings.SplitN(vkey, "+", 3)
		return parts[0] + "+" + strings.ToUpper(parts[1]) + "+" + parts[2]
	}
	vk := func(k fxKey) (name, hash, key string) {
		parts := strings.SplitN(k.vkey, "+", 3)
		return parts[0], parts[1], parts[2]
	}
	n1, h1, key1 := vk(k1)
	rawKey, _ := base64.StdEncoding.DecodeString(key1)
	for _, c := range []xcase{
		{Name: "keys with comments, blanks, CRLF, spaces", Keys: keysFile("", "# comment", "  "+k1.vkey+"\t\r", "\u00a0"+k2.vkey+"\u3000", "", "#"+k3.vkey), want: "valid"},
		{Name: "keys without final newline", Keys: keysFile(k1.vkey, k2.vkey), want: "valid"},
		{Name: "keys upper-case hash", Keys: keysFile(upper(k1.vkey), upper(k2.vkey)), want: "valid"},
		{Name: "keys base64 with CR inside", Keys: keysFile(n1+"+"+h1+"+"+key1[:10]+"\r"+key1[10:], k2.vkey), want: "valid"},
		{Name: "keys one trusted", Keys: keysFile(k1.vkey, outsider.vkey), want: "too few trusted signatures"},
		{Name: "keys one, min 1", Keys: keysFile(k2.vkey), Min: 1, want: "valid"},
		{Name: "keys none of the signers", Keys: keysFile(k3.vkey, outsider.vkey), want: "too few trusted signatures"},
		{Name: "keys private key", Keys: keysFile("PRIVATE+KEY+" + k1.vkey), want: "usage"},
		{Name: "keys wrong hash", Keys: keysFile(n1+"+00000000+"+key1, k2.vkey), want: "usage"},
		{Name: "keys short hash", Keys: keysFile(n1+"+"+h1[1:]+"+"+key1, k2.vkey), want: "usage"},
		{Name: "keys bad base64", Keys: keysFile(n1+"+"+h1+"+"+key1[1:], k2.vkey), want: "usage"},
		{Name: "keys other algorithm", Keys: keysFile(n1+"+"+h1+"+"+base64.StdEncoding.EncodeToString(append([]byte{2}, rawKey[1:]...)), k2.vkey), want: "usage"},
		{Name: "keys name with space", Keys: keysFile("a b+"+h1+"+"+key1, k2.vkey), want: "usage"},
		{Name: "keys same name twice", Keys: keysFile(k1.vkey, k2.vkey, k1.vkey), want: "usage"},
		{Name: "keys only comments", Keys: keysFile("# nothing", ""), want: "usage"},
		{Name: "keys empty", Keys: keysFile(), want: "usage"},
		{Name: "keys garbage line", Keys: keysFile(k1.vkey, "hello"), want: "usage"},
		{Name: "min more than keys", Min: 4, want: "usage"},
		{Name: "min negative", Min: -1, want: "usage"},
		{Name: "min three", Min: 3, want: "too few trusted signatures"},
		{Name: "origin policy", Origin: fxOrigin, want: "valid"},
		{Name: "origin policy other", Origin: "notary.test/other", want: "wrong log"},
		{Name: "origin policy invalid", Origin: "a b", want: "usage"},
	} {
		c.Bundle = valid
		add(c)
	}

	// Newer checkpoints and consistency proofs.
	filler(9)
	newHead := l.Head()
	newBody := func(size uint64, root notary.Hash, at int64, origin string) string {
		return fmt.Sprintf("%s\n%d\n%s\ntimestamp %d\n", origin, size, base64.StdEncoding.EncodeToString(root[:]), at)
	}
	hexes := func(hs []notary.Hash) []string {
		out := []string{}
		for _, h := range hs {
			out = append(out, h.String())
		}
		return out
	}
	consistency, err := l.ConsistencyProof(head.Size, newHead.Size)
	if err != nil {
		t.Fatal(err)
	}
	forked := newHead.Root
	forked[3] ^= 8
	tampered := slices.Clone(consistency)
	tampered[0][0] ^= 1
	later := cpTime + 60000
	for _, c := range []struct {
		name, note string
		proof      []notary.Hash
		want       string
	}{
		{"newer valid", signedBy(newBody(newHead.Size, newHead.Root, later, fxOrigin), k1, k2), consistency, "valid"},
		{"newer forked", signedBy(newBody(newHead.Size, forked, later, fxOrigin), k1, k2), consistency, "inconsistent history"},
		{"newer tampered proof", signedBy(newBody(newHead.Size, newHead.Root, later, fxOrigin), k1, k2), tampered, "inconsistent history"},
		{"newer proof short", signedBy(newBody(newHead.Size, newHead.Root, later, fxOrigin), k1, k2), consistency[1:], "proof invalid"},
		{"newer proof long", signedBy(newBody(newHead.Size, newHead.Root, later, fxOrigin), k1, k2), append(slices.Clone(consistency), consistency[0]), "proof invalid"},
		{"newer proof empty", signedBy(newBody(newHead.Size, newHead.Root, later, fxOrigin), k1, k2), nil, "proof invalid"},
		{"newer proof 65", signedBy(newBody(newHead.Size, newHead.Root, later, fxOrigin), k1, k2), slices.Repeat(consistency[:1], 65), "proof invalid"},
		{"newer same state", signedBy(newBody(head.Size, head.Root, later, fxOrigin), k1, k2), nil, "valid"},
		{"newer same size, proof", signedBy(newBody(head.Size, head.Root, later, fxOrigin), k1, k2), consistency[:1], "inconsistent history"},
		{"newer same size, other root", signedBy(newBody(head.Size, forked, later, fxOrigin), k1, k2), nil, "inconsistent history"},
		{"newer smaller", signedBy(newBody(head.Size-1, head.Root, later, fxOrigin), k1, k2), nil, "inconsistent history"},
		{"newer dated earlier", signedBy(newBody(newHead.Size, newHead.Root, cpTime-1, fxOrigin), k1, k2), consistency, "inconsistent history"},
		{"newer other log", signedBy(newBody(newHead.Size, newHead.Root, later, "notary.test/other"), k1, k2), consistency, "wrong log"},
		{"newer one signer", signedBy(newBody(newHead.Size, newHead.Root, later, fxOrigin), k1), consistency, "too few trusted signatures"},
		{"newer bad signature", signedBy(newBody(newHead.Size, newHead.Root, later, fxOrigin), k1, k2) + k3.line(k3.hash(), make([]byte, 64)), consistency, "signature invalid"},
		{"newer malformed", signedBy(newBody(newHead.Size, newHead.Root, later, fxOrigin)+"x\n", k1, k2), consistency, "malformed input"},
		{"newer not a note", "hello", consistency, "malformed input"},
		{"newer invalid UTF-8", signedBy(newBody(newHead.Size, newHead.Root, later, fxOrigin), k1, k2) + "— unk\xffnown.test AAAAAAAA\n", consistency, "malformed input"},
		{"newer over 16 KiB", signedBy(newBody(newHead.Size, newHead.Root, later, fxOrigin), k1, k2) + padLine(16<<10), consistency, "malformed input"},
	} {
		add(xcase{Name: c.name, Bundle: valid, Newer: []byte(c.note), Consistency: hexes(c.proof), want: c.want})
	}
}

func reversed[T any](s []T) []T {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// ---------------------------------------------------------------------------
// verify.js's copy of Go's Unicode tables.

// TestPrintRangesAreGo checks the table verify.js judges origins with
// against Go's unicode.IsPrint, which notary.ValidateOrigin uses.
func TestPrintRangesAreGo(t *testing.T) {
	src := string(readFile(t, "verify/verify.js"))
	block := regexp.MustCompile(`(?s)// BEGIN PRINT_RANGES\n(.*)// END PRINT_RANGES`).FindStringSubmatch(src)
	if block == nil {
		t.Fatal("verify.js has no PRINT_RANGES block")
	}
	var table strings.Builder
	for _, lit := range regexp.MustCompile(`'([^']*)'`).FindAllStringSubmatch(block[1], -1) {
		table.WriteString(lit[1])
	}
	var want strings.Builder
	prev := 0
	for r := 0; r <= unicode.MaxRune; r++ {
		if !unicode.IsPrint(rune(r)) || r == ' ' {
			continue
		}
		start := r
		for r+1 <= unicode.MaxRune && unicode.IsPrint(rune(r+1)) && r+1 != ' ' {
			r++
		}
		fmt.Fprintf(&want, "%s,%s;", strconv.FormatInt(int64(start-prev), 36), strconv.FormatInt(int64(r-start), 36))
		prev = r + 1
	}
	if table.String() != want.String() {
		t.Errorf("verify.js's PRINT_RANGES differ from Go's unicode.IsPrint (Unicode %s); regenerate them:\n%s", unicode.Version, want.String())
	}
}

// ---------------------------------------------------------------------------
// The /verify page.

// pageView is what the page shows.
type pageView struct {
	State     string            `json:"state"`
	Done      int               `json:"done"`
	Verdict   string            `json:"verdict"`
	Summary   string            `json:"summary"`
	Technical string            `json:"technical"`
	Fields    map[string]string `json:"fields"`
	Document  map[string]string `json:"document"`
	Keys      string            `json:"keys"`
	KeysText  string            `json:"keysText"`
	KeyNames  []string          `json:"keyNames"`
	Private   string            `json:"private"`
	Trust     string            `json:"trust"`
	TrustFrom string            `json:"trustFrom"`
	Warning   string            `json:"warning"` // "" when hidden
	// The prescription's status: its state ("none" when not shown, or
	// "checking"), its line, its note, a line per fill dispensed and the
	// technical detail of an answer that does not verify.
	Status          string   `json:"status"`
	StatusLine      string   `json:"statusLine"`
	StatusNote      string   `json:"statusNote"`
	StatusFills     []string `json:"statusFills"`
	StatusTechnical string   `json:"statusTechnical"`
}

const viewScript = `(() => {
  const $ = (id) => document.getElementById(id);
  const fields = (id) => Object.fromEntries([...$(id).querySelectorAll('dd')].map((dd) => [dd.dataset.field, dd.textContent]));
  return {
    state: $('result').dataset.state,
    done: Number($('result').dataset.done),
    verdict: $('verdict').textContent,
    summary: $('summary').textContent,
    technical: $('technical').hidden ? '' : $('technical').textContent,
    fields: $('details').hidden ? {} : fields('details'),
    document: $('document').hidden ? {} : fields('document-summary'),
    keys: document.body.dataset.keys,
    keysText: $('keys-status').textContent,
    keyNames: [...document.querySelectorAll('#keys-list li')].map((li) => li.textContent),
    private: $('privacy').textContent,
    trust: $('trust').textContent,
    trustFrom: $('trust').dataset.source,
    warning: $('trust-warning').hidden ? '' : $('trust-warning').textContent,
    status: $('status').dataset.state,
    statusLine: $('status').hidden ? '' : $('status-line').textContent,
    statusNote: $('status-note').hidden ? '' : $('status-note').textContent,
    statusFills: [...document.querySelectorAll('#status-fills li')].map((li) => li.textContent),
    statusTechnical: $('status-technical').hidden ? '' : $('status-technical').textContent,
  };
})()`

// view waits until the page has shown its done-th result and returns it.
func view(t *testing.T, ctx context.Context, done int) pageView {
	t.Helper()
	cond := fmt.Sprintf(`Number(document.getElementById('result').dataset.done) >= %d`, done)
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("waiting for result %d: %v", done, err)
	}
	v, err := chromedp.Run(ctx, chromedp.Evaluate[pageView](viewScript))
	if err != nil {
		t.Fatal(err)
	}
	if v.Done != done {
		t.Fatalf("the page showed %d results, want %d", v.Done, done)
	}
	return v
}

// viewStatus waits until the page has shown its done-th result and, for a
// prescription, has finished checking its status, and returns what it shows.
func viewStatus(t *testing.T, ctx context.Context, done int) pageView {
	t.Helper()
	view(t, ctx, done)
	const cond = `document.getElementById('status').dataset.state !== 'checking'`
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("waiting for the status of result %d: %v", done, err)
	}
	return view(t, ctx, done)
}

// statusNotFound reports the console error of a status request the test
// server answers with 404 (its notary does not know the prescription): the
// page says the status was not checked, as the tests require.
func statusNotFound(m chromedp.ConsoleMessage) bool {
	return strings.Contains(m.URL, "/v1/prescriptions/") && strings.Contains(m.Text, "404")
}

func waitKeys(t *testing.T, ctx context.Context, state string) pageView {
	t.Helper()
	cond := fmt.Sprintf(`document.body.dataset.keys === %q`, state)
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("waiting for the keys to be %s: %v", state, err)
	}
	v, err := chromedp.Run(ctx, chromedp.Evaluate[pageView](viewScript))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// choose sets the page's bundle file input to the vector file name.
func choose(t *testing.T, ctx context.Context, input, path string) {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS(input), []string{abs})); err != nil {
		t.Fatalf("choosing %s: %v", path, err)
	}
}

// drop drops a file with the given content on the page's drop zone, as
// the browser does when a user drags one there.
func drop(t *testing.T, ctx context.Context, name string, content []byte) {
	t.Helper()
	script := fmt.Sprintf(`(() => {
  const bytes = Uint8Array.from(atob(%q), (c) => c.charCodeAt(0));
  const dt = new DataTransfer();
  dt.items.add(new File([bytes], %q, { type: 'application/json' }));
  const zone = document.getElementById('drop');
  for (const type of ['dragenter', 'dragover', 'drop']) {
    zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
  }
})()`, base64.StdEncoding.EncodeToString(content), name)
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](script)); err != nil {
		t.Fatalf("dropping %s: %v", name, err)
	}
}

// openOtherKeys opens the "Use other keys" section, as a user clicking it.
func openOtherKeys(t *testing.T, ctx context.Context) {
	t.Helper()
	open, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('other-keys').open`))
	if err != nil {
		t.Fatal(err)
	}
	if !open {
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#other-keys summary")),
			chromedp.WaitVisible(chromedp.CSS("#keys-use"))); err != nil {
			t.Fatal(err)
		}
	}
}

// setInput sets a form field as typing into it does.
func setInput(t *testing.T, ctx context.Context, id, value, event string) {
	t.Helper()
	script := fmt.Sprintf(`(() => { const el = document.getElementById(%q); el.value = %q; el.dispatchEvent(new Event(%q, { bubbles: true })); })()`, id, value, event)
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](script)); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyPage drives /verify/ as a pharmacist would: the page loads the
// notary's keys from ../v1/keys, a bundle is chosen, dropped, replaced by a
// tampered one; keys are loaded from a file and pasted. It checks what the
// page says each time against Go's verifier, and that the only requests the
// page made were for itself and the keys.
func TestVerifyPage(t *testing.T) {
	keysPub := readFile(t, filepath.Join(vectorsDir, "keys.pub"))
	srv := newTestServer(t, keysPub)
	ctx := browser.New(t, &browser.Options{IgnoreConsole: statusNotFound})
	navigate(t, ctx, srv.URL+"/verify/?min=2")

	v := waitKeys(t, ctx, "loaded")
	if want := []string{"notary-1.example.org", "notary-2.example.org", "notary-3.example.org"}; !slices.Equal(v.KeyNames, want) {
		t.Errorf("the page trusts %q, want %q (from /v1/keys)", v.KeyNames, want)
	}
	if !strings.Contains(v.KeysText, "3 trusted keys from the notary") {
		t.Errorf("keys status %q", v.KeysText)
	}
	if !strings.Contains(v.Private, "Nothing is uploaded") {
		t.Errorf("the page does not say that nothing is uploaded: %q", v.Private)
	}
	loaded := len(srv.log())

	// A valid bundle, chosen with the file input. The server's notary
	// has not logged it (a 404 the page cannot tell from a server without
	// the status route): its status is not checked, the server quoted.
	choose(t, ctx, "#bundle-file", filepath.Join(vectorsDir, "valid.json"))
	v = viewStatus(t, ctx, 1)
	b, err := notary.ParseBundle(readFile(t, filepath.Join(vectorsDir, "valid.json")))
	if err != nil {
		t.Fatal(err)
	}
	statusPath := "/v1/prescriptions/" + b.Receipt.Leaf.Commitment.String() + "/status"
	if v.Status != "unchecked" || v.StatusLine != "Status not checked (the server answered 404 Not Found)" ||
		!strings.Contains(v.StatusNote, "The server says: no prescription with this commitment is logged") {
		t.Errorf("valid.json, unknown to the server's notary: status %s %q %q", v.Status, v.StatusLine, v.StatusNote)
	}
	vs, err := notary.ParseVerifierKeys(keysPub)
	if err != nil {
		t.Fatal(err)
	}
	res, err := notary.VerifyBundle(b, notary.Policy{Verifiers: vs, MinSignatures: 2})
	if err != nil {
		t.Fatal(err)
	}
	if v.State != "valid" || v.Verdict != "VALID" {
		t.Fatalf("valid.json: the page shows %q (%s): %s %s", v.Verdict, v.State, v.Summary, v.Technical)
	}
	want := map[string]string{
		"time":    res.Leaf.Time().Format("2006-01-02T15:04:05.000Z"),
		"kind":    "prescription",
		"signers": strings.Join(res.Signers, ", "),
		"origin":  res.Origin,
		"index":   fmt.Sprintf("%d (of %d in the signed log state)", res.Index, res.Checkpoint.Size),
		"link":    res.Leaf.Link.String(),
	}
	for field, w := range want {
		if v.Fields[field] != w {
			t.Errorf("valid.json: %s shows %q, want %q", field, v.Fields[field], w)
		}
	}
	if v.Document["medication"] == "" || v.Document["resource"] != "MedicationRequest medrx0302" {
		t.Errorf("valid.json: what was notarized shows %v", v.Document)
	}

	// A tampered bundle.
	choose(t, ctx, "#bundle-file", filepath.Join(vectorsDir, "document-changed.json"))
	v = view(t, ctx, 2)
	reason := notary.Reason(notary.ErrCommitmentMismatch)
	if v.State != "invalid" || v.Verdict != "INVALID" || !strings.Contains(strings.ToLower(v.Summary), reason) || v.Fields["outcome"] != "commitment mismatch" {
		t.Errorf("document-changed.json: the page shows %q (%s) %q %v, want INVALID: %s", v.Verdict, v.State, v.Summary, v.Fields, reason)
	}

	if v.Status != "none" || v.StatusLine != "" {
		t.Errorf("document-changed.json: a status is shown for an invalid bundle: %s %q", v.Status, v.StatusLine)
	}

	// Dropped files.
	drop(t, ctx, "truncated.json", readFile(t, filepath.Join(vectorsDir, "truncated.json")))
	v = view(t, ctx, 3)
	if v.Verdict != "INVALID" || !strings.Contains(strings.ToLower(v.Summary), notary.Reason(notary.ErrMalformed)) {
		t.Errorf("truncated.json dropped: the page shows %q: %q", v.Verdict, v.Summary)
	}
	drop(t, ctx, "valid-raw-document.json", readFile(t, filepath.Join(vectorsDir, "valid-raw-document.json")))
	v = view(t, ctx, 4)
	if v.Verdict != "VALID" || v.Fields["kind"] != "document" || !strings.Contains(v.Document["document-type"], "a PDF file") {
		t.Errorf("valid-raw-document.json dropped: the page shows %q %v %v", v.Verdict, v.Fields, v.Document)
	}
	if v.Status != "none" {
		t.Errorf("valid-raw-document.json: a document that is not a prescription has a status: %s %q", v.Status, v.StatusLine)
	}

	// More signatures than the checkpoint has, then fewer again.
	setInput(t, ctx, "min-signatures", "3", "input")
	v = view(t, ctx, 5)
	if v.Verdict != "INVALID" || v.Fields["outcome"] != "too few trusted signatures" {
		t.Errorf("3 signatures required: the page shows %q %v", v.Verdict, v.Fields)
	}
	setInput(t, ctx, "min-signatures", "2", "input")
	if v = view(t, ctx, 6); v.Verdict != "VALID" {
		t.Errorf("2 signatures required again: the page shows %q %q", v.Verdict, v.Summary)
	}
	setInput(t, ctx, "origin", "other.example.org/log", "change")
	if v = view(t, ctx, 7); v.Fields["outcome"] != "wrong log" {
		t.Errorf("another origin: the page shows %q %v", v.Verdict, v.Fields)
	}
	setInput(t, ctx, "origin", "", "change")
	if v = view(t, ctx, 8); v.Verdict != "VALID" {
		t.Errorf("any origin again: the page shows %q %q", v.Verdict, v.Summary)
	}

	// Nothing went over the network after the keys but the prescription's
	// status, asked by its commitment: not the bundles, nothing else about
	// them.
	for _, r := range srv.log()[loaded:] {
		if r.Method != http.MethodGet || r.Path != statusPath || r.Query != "consistent=1" || r.BodyBytes != 0 {
			t.Errorf("the page made a request while verifying: %s %s?%s (%d bytes)", r.Method, r.Path, r.Query, r.BodyBytes)
		}
	}

	// A keys file with one key: two signatures cannot be met.
	keyLines := strings.Split(strings.TrimSpace(string(keysPub)), "\n")
	oneKey := filepath.Join(t.TempDir(), "one.pub")
	if err := os.WriteFile(oneKey, []byte(keyLines[1]+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	choose(t, ctx, "#keys-file", oneKey)
	v = view(t, ctx, 9)
	if v.State != "error" || !strings.Contains(v.Summary, "requires 2 signatures but trusts 1 keys") || !slices.Equal(v.KeyNames, []string{"notary-1.example.org"}) {
		t.Errorf("one key, two signatures: the page shows %q (%s) %q, keys %q", v.Verdict, v.State, v.Summary, v.KeyNames)
	}
	setInput(t, ctx, "min-signatures", "1", "input")
	if v = view(t, ctx, 10); v.Verdict != "VALID" || v.Fields["signers"] != "notary-1.example.org" {
		t.Errorf("one key, one signature: the page shows %q %v", v.Verdict, v.Fields)
	}

	// Pasted keys: the third node, which did not sign.
	openOtherKeys(t, ctx)
	setInput(t, ctx, "keys-text", "# pasted\n"+keyLines[3]+"\n", "input")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#keys-use"))); err != nil {
		t.Fatal(err)
	}
	v = view(t, ctx, 11)
	if v.Fields["outcome"] != "too few trusted signatures" || !strings.Contains(v.KeysText, "1 trusted key that you pasted") {
		t.Errorf("pasted notary-3 key: the page shows %q %v, keys %q", v.Verdict, v.Fields, v.KeysText)
	}
	setInput(t, ctx, "keys-text", "not a key", "input")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#keys-use"))); err != nil {
		t.Fatal(err)
	}
	v = view(t, ctx, 12)
	if v.State != "error" || v.Keys != "error" || !strings.Contains(v.KeysText, "not a verifier key") {
		t.Errorf("pasted garbage: the page shows %q (%s), keys %q", v.Verdict, v.State, v.KeysText)
	}

	// Back to the notary's keys, kept from the first load.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#keys-reset"))); err != nil {
		t.Fatal(err)
	}
	if v = view(t, ctx, 13); v.Verdict != "VALID" || len(v.KeyNames) != 3 {
		t.Errorf("the notary's keys again: the page shows %q, keys %q", v.Verdict, v.KeyNames)
	}

	// Every request: the page's own files, the keys and the prescription's
	// status, all GET, no body.
	allowed := []string{"/verify/", "/verify/style.css", "/verify/page.js", "/verify/verify.js", "/v1/keys", statusPath}
	for _, r := range srv.log() {
		if r.Method != http.MethodGet || r.BodyBytes != 0 || !slices.Contains(allowed, r.Path) {
			t.Errorf("unexpected request from the page: %s %s (%d bytes)", r.Method, r.Path, r.BodyBytes)
		}
	}
}

// TestVerifyPagePolicy drives the page's trust policy: with the server's
// keys it says so and warns that the server could be the forger; with a
// policy file chosen, pasted or given in the address it says "pinned policy
// <fingerprint>" (Go's fingerprint), verifies under the policy's rules
// (witness quorum included), and a policy that does not parse stops every
// check rather than falling back on the server's keys.
func TestVerifyPagePolicy(t *testing.T) {
	srv := newTestServer(t, readFile(t, filepath.Join(vectorsDir, "keys.pub")))
	ctx := browser.New(t, &browser.Options{IgnoreConsole: statusNotFound})
	navigate(t, ctx, srv.URL+"/verify/?min=2")
	v := waitKeys(t, ctx, "loaded")
	if v.TrustFrom != "server" || !strings.Contains(v.Trust, "keys from this server") || !strings.Contains(v.Warning, "This server could be the forger") {
		t.Errorf("server keys: trust %q (%s), warning %q", v.Trust, v.TrustFrom, v.Warning)
	}
	choose(t, ctx, "#bundle-file", filepath.Join(vectorsDir, "valid.json"))
	if v = view(t, ctx, 1); v.Verdict != "VALID" || v.Fields["trust"] != "keys from this server" {
		t.Errorf("valid.json with the server's keys: %q, fields %v", v.Verdict, v.Fields)
	}

	fingerprint := func(name string) string {
		pf, err := notary.ParsePolicy(readFile(t, filepath.Join(vectorsDir, name)))
		if err != nil {
			t.Fatal(err)
		}
		return pf.Fingerprint()
	}
	witnessed := fingerprint("policy-witnessed.txt")
	choose(t, ctx, "#policy-file", filepath.Join(vectorsDir, "policy-witnessed.txt"))
	v = view(t, ctx, 2)
	if v.TrustFrom != "pinned" || !strings.Contains(v.Trust, "pinned policy "+witnessed) || v.Warning != "" {
		t.Errorf("policy file: trust %q (%s), warning %q", v.Trust, v.TrustFrom, v.Warning)
	}
	// valid.json carries no cosignature: the policy's quorum is not met.
	if v.Verdict != "INVALID" || v.Fields["outcome"] != "too few trusted signatures" || !strings.Contains(v.Technical, "witness quorum q-main needs 2 of 3, 0 valid") ||
		v.Fields["trust"] != "pinned policy "+witnessed {
		t.Errorf("valid.json under the witnessed policy: %q %v %q", v.Verdict, v.Fields, v.Technical)
	}
	choose(t, ctx, "#bundle-file", filepath.Join(vectorsDir, "witnessed.json"))
	if v = view(t, ctx, 3); v.Verdict != "VALID" || v.Fields["witnesses"] != "w1, w2" || v.Fields["trust"] != "pinned policy "+witnessed {
		t.Errorf("witnessed.json under the witnessed policy: %q %v %s", v.Verdict, v.Fields, v.Technical)
	}
	// The signatures-required field does not weaken a pinned policy.
	setInput(t, ctx, "min-signatures", "1", "input")
	if v = view(t, ctx, 4); v.Verdict != "VALID" {
		t.Errorf("after editing the ignored field: %q", v.Verdict)
	}
	choose(t, ctx, "#bundle-file", filepath.Join(vectorsDir, "witnessed-once.json"))
	if v = view(t, ctx, 5); v.Verdict != "INVALID" || !strings.Contains(v.Technical, "needs 2 of 3, 1 valid") {
		t.Errorf("witnessed-once.json: %q %s", v.Verdict, v.Technical)
	}

	// A pasted policy that does not parse: nothing is judged, and the
	// server's keys are not used instead.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById('policy').open = true`)); err != nil {
		t.Fatal(err)
	}
	setInput(t, ctx, "policy-text", "origin notary.example.org/telehealth\nnode-signatures 2\n", "input")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#policy-use"))); err != nil {
		t.Fatal(err)
	}
	if v = view(t, ctx, 6); v.State != "error" || v.Verdict != "CANNOT CHECK" || v.TrustFrom != "error" || !strings.Contains(v.Trust, "policy: no node line") {
		t.Errorf("bad pasted policy: %q (%s) %q, trust %q", v.Verdict, v.State, v.Summary, v.Trust)
	}
	// A pasted policy that does, without witnesses: the two node signatures
	// are enough.
	setInput(t, ctx, "policy-text", string(readFile(t, filepath.Join(vectorsDir, "policy-nodes.txt"))), "input")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#policy-use"))); err != nil {
		t.Fatal(err)
	}
	if v = view(t, ctx, 7); v.Verdict != "VALID" || !strings.Contains(v.Trust, "pinned policy "+fingerprint("policy-nodes.txt")) {
		t.Errorf("pasted nodes policy on witnessed-once.json: %q, trust %q", v.Verdict, v.Trust)
	}
	// Back to the server's keys, with the warning.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#policy-clear"))); err != nil {
		t.Fatal(err)
	}
	if v = view(t, ctx, 8); v.TrustFrom != "server" || v.Warning == "" || v.Fields["trust"] != "keys from this server" {
		t.Errorf("policy cleared: trust %q (%s), warning %q, fields %v", v.Trust, v.TrustFrom, v.Warning, v.Fields)
	}

	// A policy in the address's fragment, which the server never sees.
	nodes := string(readFile(t, filepath.Join(vectorsDir, "policy-nodes.txt")))
	navigate(t, ctx, srv.URL+"/verify/#policy="+url.PathEscape(nodes))
	waitKeys(t, ctx, "loaded")
	choose(t, ctx, "#bundle-file", filepath.Join(vectorsDir, "valid.json"))
	if v = view(t, ctx, 1); v.Verdict != "VALID" || v.TrustFrom != "pinned" || v.Fields["trust"] != "pinned policy "+fingerprint("policy-nodes.txt") ||
		!strings.Contains(v.Trust, "from the address of this page") {
		t.Errorf("policy in the address: %q %v, trust %q", v.Verdict, v.Fields, v.Trust)
	}
	allowed := []string{"/verify/", "/verify/style.css", "/verify/page.js", "/verify/verify.js", "/v1/keys"}
	for _, r := range srv.log() {
		status := strings.HasPrefix(r.Path, "/v1/prescriptions/") && strings.HasSuffix(r.Path, "/status")
		if r.Method != http.MethodGet || r.BodyBytes != 0 || !slices.Contains(allowed, r.Path) && !status {
			t.Errorf("unexpected request from the page: %s %s (%d bytes)", r.Method, r.Path, r.BodyBytes)
		}
	}
}

// TestVerifyPageWithoutKeys checks the page when the server has no keys
// for it: it says so, refuses to judge, and works once keys are pasted;
// the server has no status route either, and the page says the status was
// not checked.
func TestVerifyPageWithoutKeys(t *testing.T) {
	srv := newTestServer(t, nil)
	srv.noStatusRoute = true // nor the status route: an older server
	ctx := browser.New(t, &browser.Options{IgnoreConsole: func(m chromedp.ConsoleMessage) bool {
		return strings.HasSuffix(m.URL, "/v1/keys") && strings.Contains(m.Text, "404") || statusNotFound(m)
	}})
	navigate(t, ctx, srv.URL+"/verify/")
	v := waitKeys(t, ctx, "error")
	if !strings.Contains(v.KeysText, "Could not load the notary's keys") {
		t.Errorf("keys status %q", v.KeysText)
	}
	choose(t, ctx, "#bundle-file", filepath.Join(vectorsDir, "valid.json"))
	if v = view(t, ctx, 1); v.State != "error" || v.Verdict != "CANNOT CHECK" {
		t.Errorf("no keys: the page shows %q (%s) %q", v.Verdict, v.State, v.Summary)
	}
	openOtherKeys(t, ctx)
	setInput(t, ctx, "keys-text", string(readFile(t, filepath.Join(vectorsDir, "keys.pub"))), "input")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#keys-use"))); err != nil {
		t.Fatal(err)
	}
	if v = viewStatus(t, ctx, 2); v.Verdict != "VALID" {
		t.Errorf("pasted keys: the page shows %q %q %s", v.Verdict, v.Summary, v.Technical)
	}
	if v.Status != "unchecked" || v.StatusLine != "Status not checked (the server answered 404 Not Found)" {
		t.Errorf("a server without the status route: status %s %q %q", v.Status, v.StatusLine, v.StatusNote)
	}
}

// TestEmbeddedVerifyFiles checks that web.Files carries the page, so the
// signalling server serves what these tests load.
func TestEmbeddedVerifyFiles(t *testing.T) {
	for _, name := range []string{"verify/index.html", "verify/page.js", "verify/verify.js", "verify/style.css"} {
		b, err := fs.ReadFile(web.Files, name)
		if err != nil {
			t.Errorf("web.Files: %v", err)
			continue
		}
		disk := readFile(t, name)
		if !bytes.Equal(b, disk) {
			t.Errorf("web.Files has another %s than the disk", name)
		}
	}
	index, _ := fs.ReadFile(web.Files, "verify/index.html")
	if !bytes.Contains(index, []byte("connect-src 'self'")) || !bytes.Contains(index, []byte("default-src 'none'")) {
		t.Error("verify/index.html lacks the content security policy that keeps the page from sending anything elsewhere")
	}
}

// TestOfflineVerifier: the verifier saved as one file verifies from disk
// (file://) with no server anywhere: it asks nothing of the network, says
// it is offline until the user chooses a policy, and then judges bundles
// under that pinned policy as the served page does.
func TestOfflineVerifier(t *testing.T) {
	page, err := web.OfflineVerifier()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(page, []byte(`src="`)) || bytes.Contains(page, []byte(`href="style.css"`)) || !bytes.Contains(page, []byte("connect-src 'none'")) {
		t.Fatal("the saved verifier still loads files or may connect somewhere")
	}
	path := filepath.Join(t.TempDir(), "telenotary-verifier.html")
	if err := os.WriteFile(path, page, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := browser.New(t, nil) // any console error (a blocked script or style, a refused fetch) fails the test
	navigate(t, ctx, "file://"+path)
	v := waitKeys(t, ctx, "error")
	if !strings.Contains(v.KeysText, "working offline") || !strings.Contains(v.Trust, "offline") || v.TrustFrom == "server" || v.Warning != "" {
		t.Fatalf("offline, before a policy: keys %q, trust %q (%s), warning %q", v.KeysText, v.Trust, v.TrustFrom, v.Warning)
	}
	pf, err := notary.ParsePolicy(readFile(t, filepath.Join(vectorsDir, "policy-witnessed.txt")))
	if err != nil {
		t.Fatal(err)
	}
	choose(t, ctx, "#policy-file", filepath.Join(vectorsDir, "policy-witnessed.txt"))
	choose(t, ctx, "#bundle-file", filepath.Join(vectorsDir, "witnessed.json"))
	if v = viewStatus(t, ctx, 1); v.Verdict != "VALID" || v.Fields["trust"] != "pinned policy "+pf.Fingerprint() || v.Fields["witnesses"] != "w1, w2" {
		t.Errorf("witnessed.json offline: %q %v %s", v.Verdict, v.Fields, v.Technical)
	}
	// A prescription: the saved copy asks no one for its status, and says so.
	if v.Status != "offline" || v.StatusLine != "Status not checked (offline)" || !strings.Contains(v.StatusNote, "asks no server") {
		t.Errorf("witnessed.json offline: status %s %q %q", v.Status, v.StatusLine, v.StatusNote)
	}
	choose(t, ctx, "#bundle-file", filepath.Join(vectorsDir, "witnessed-once.json"))
	if v = view(t, ctx, 2); v.Verdict != "INVALID" || !strings.Contains(v.Technical, "needs 2 of 3, 1 valid") {
		t.Errorf("witnessed-once.json offline: %q %s", v.Verdict, v.Technical)
	}
	if hidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('save-offline').hidden`)); err != nil || !hidden {
		t.Errorf("the saved copy still offers to save itself (%v)", err)
	}
}
