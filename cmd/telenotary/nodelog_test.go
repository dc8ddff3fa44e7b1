package main

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// logBuffer is a log that a running command writes to while a test waits
// for a line in it.
type logBuffer struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{} // closed and replaced at every write
}

func newLogBuffer() *logBuffer { return &logBuffer{changed: make(chan struct{})} }

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor waits until the log holds s, or the command ends (done closed).
func (l *logBuffer) waitFor(s string, done <-chan struct{}) bool {
	for {
		l.mu.Lock()
		found, changed := strings.Contains(l.b.String(), s), l.changed
		l.mu.Unlock()
		if found {
			return true
		}
		select {
		case <-changed:
		case <-done:
			return strings.Contains(l.String(), s)
		}
	}
}

// runNodeUntilStarted runs telenotary node in-process until it logs that
// it started, then stops it as SIGTERM would, and returns its exit status
// and everything it logged.
func runNodeUntilStarted(t *testing.T, args ...string) (code int, log string) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	errOut := newLogBuffer()
	env := &environment{stdout: new(strings.Builder), stderr: errOut, getenv: func(string) string { return "" }}
	done := make(chan struct{})
	go func() {
		defer close(done)
		code = run(ctx, env, append([]string{"node"}, args...))
	}()
	if !errOut.waitFor(`msg="node started"`, done) {
		<-done
		t.Fatalf("the node did not start: exit %d\n%s", code, errOut.String())
	}
	stop()
	<-done
	return code, errOut.String()
}

// TestNodeRestartWithFirstStartFlags: a node restarted with --bootstrap
// (or --join) resumes from its data directory and says once, as a warning,
// that the flag does nothing; without the flag it says nothing of it. And
// a clean stop logs no ERROR.
func TestNodeRestartWithFirstStartFlags(t *testing.T) {
	dir := t.TempDir()
	sec := writeTestSecrets(t, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	raftAddr := ln.Addr().String()
	ln.Close()
	base := []string{"--id", "node-1", "--data-dir", filepath.Join(dir, "data"), "--signer-key", sec.signerKey, "--tokens", sec.tokens,
		"--insecure-raft", "--raft-addr", raftAddr, "--http-addr", "127.0.0.1:0"}
	bootstrap := []string{"--bootstrap", "--origin", "o.test/log"}
	for _, tc := range []struct {
		name  string
		args  []string
		warns string
	}{
		{"first start", bootstrap, ""},
		{"restart with --bootstrap", bootstrap, "--bootstrap is ignored"},
		{"restart", nil, ""},
		{"restart with --join", []string{"--join", "http://127.0.0.1:1", "--join-token-file", sec.token}, "--join is not needed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, log := runNodeUntilStarted(t, append(append([]string{}, base...), tc.args...)...)
			if code != exitOK {
				t.Fatalf("exit %d\n%s", code, log)
			}
			if strings.Contains(log, "level=ERROR") {
				t.Errorf("a clean stop logged an error:\n%s", log)
			}
			warnings := 0
			for _, line := range strings.Split(log, "\n") {
				if strings.Contains(line, "is ignored") || strings.Contains(line, "is not needed") {
					warnings++
					if tc.warns == "" || !strings.Contains(line, "level=WARN") || !strings.Contains(line, tc.warns) {
						t.Errorf("unexpected line: %s", line)
					}
				}
			}
			if want := map[bool]int{true: 1, false: 0}[tc.warns != ""]; warnings != want {
				t.Errorf("%d warnings about the first-start flags, want %d:\n%s", warnings, want, log)
			}
		})
	}
}
