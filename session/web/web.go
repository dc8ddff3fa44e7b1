// Package web holds the browser side of telenotary, served by the signalling
// server as static files: the consultation client under app/ and the
// receipt verification page under verify/. Plain JavaScript, no build step.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
)

// Files holds app/ and verify/ as they are served (under /app/ and /verify/).
//
//go:embed app verify
var Files embed.FS

// OfflineVerifier is the verification page as one HTML file, its style
// and scripts inline (verify.js's exports and page.js's import joined into
// one module), with a Content-Security-Policy that lets in only those and
// connects nowhere: saved to disk and opened from there (file://), it
// verifies bundles with the policy or keys file its user chooses, asking
// no server for anything.
var OfflineVerifier = sync.OnceValues(func() ([]byte, error) {
	read := func(name string) (string, error) {
		b, err := fs.ReadFile(Files, "verify/"+name)
		return string(b), err
	}
	page, err1 := read("index.html")
	css, err2 := read("style.css")
	lib, err3 := read("verify.js")
	main, err4 := read("page.js")
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, fmt.Errorf("offline verifier: %w", err)
	}
	const importLine = "import { verifyBundle, parseKeys, parsePolicy, REASONS } from './verify.js';\n"
	if !strings.Contains(main, importLine) || strings.Contains(lib, "\nimport ") {
		return nil, errors.New("offline verifier: page.js no longer imports verify.js as expected: update OfflineVerifier")
	}
	js := strings.ReplaceAll(lib, "\nexport ", "\n") + "\n" + strings.Replace(main, importLine, "", 1)
	// Nothing in them may end the inline element early.
	if strings.Contains(js, "</script") || strings.Contains(css, "</style") {
		return nil, errors.New("offline verifier: a script or the style sheet holds its own end tag")
	}
	hash := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	for _, r := range []struct{ old, new string }{
		{`<link rel="stylesheet" href="style.css">`, "<style>" + css + "</style>"},
		{`<script type="module" src="page.js"></script>`, `<script type="module">` + js + "</script>"},
		{"script-src 'self'; style-src 'self'; connect-src 'self'", "script-src " + hash(js) + "; style-src " + hash(css) + "; connect-src 'none'"},
	} {
		if !strings.Contains(page, r.old) {
			return nil, fmt.Errorf("offline verifier: index.html no longer has %q: update OfflineVerifier", r.old)
		}
		page = strings.Replace(page, r.old, r.new, 1)
	}
	return []byte(page), nil
})
