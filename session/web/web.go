// Package web holds the browser side of telenotary, served by the signalling
// server as static files: the consultation client under app/ and the
// receipt verification page under verify/. Plain JavaScript, no build step.
package web

import "embed"

// Files holds app/ and verify/ as they are served (under /app/ and /verify/).
//
//go:embed app verify
var Files embed.FS
