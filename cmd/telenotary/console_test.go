package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestConsoleRefusesBadStart checks the console's usage errors, which come
// before it takes the terminal. (The console itself is tested in tui/ and,
// in a real terminal, in e2e/console_test.go.)
func TestConsoleRefusesBadStart(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no nodes", nil, []string{"console"}, "--nodes is required"},
		{"not a URL", nil, []string{"console", "--nodes", "127.0.0.1:8080"}, `--nodes "127.0.0.1:8080": is not an http(s) URL: it has no scheme (http://127.0.0.1:8080?)`},
		{"a stray comma", nil, []string{"console", "--nodes", "http://127.0.0.1:1,"}, "--nodes: an empty URL"},
		{"token file missing", nil, []string{"console", "--nodes", "http://127.0.0.1:1", "--token-file", missing}, "--token-file"},
		{"signal key without signal", nil, []string{"console", "--nodes", "http://127.0.0.1:1", "--signal-key-file", missing}, "needs --signal"},
		{"from the environment", map[string]string{"TELENOTARY_NODES": "ftp://x"}, []string{"console"}, `--nodes "ftp://x": is not an http(s) URL`},
		{"monitor not a URL", nil, []string{"console", "--nodes", "http://127.0.0.1:1", "--monitor", "127.0.0.1:9464"}, `--monitor "127.0.0.1:9464": is not an http(s) URL`},
		{"poll too fast", nil, []string{"console", "--nodes", "http://127.0.0.1:1", "--poll", "1ms"}, "--poll"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, tt.env, tt.args...)
			if code != exitUsage || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr, exitUsage, tt.want)
			}
		})
	}
}
