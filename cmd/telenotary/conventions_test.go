package main

import (
	"net"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

// TestHelpOnStdout: every command's --help (and -h, and telenotary help
// COMMAND) prints its usage on stdout, nothing on stderr, and exits 0.
func TestHelpOnStdout(t *testing.T) {
	var lines [][]string
	for _, c := range commands() {
		lines = append(lines, []string{c.name, "--help"}, []string{c.name, "-h"}, []string{"help", c.name})
	}
	lines = append(lines, []string{"bench", "notarize", "--help"}, []string{"bench", "dispense", "--help"}, []string{"bench", "signal", "--help"}, []string{"--help"}, []string{"help"})
	for _, args := range lines {
		code, stdout, stderr := runCmd(t, nil, args...)
		if code != exitOK || stderr != "" || !strings.Contains(stdout, "Usage: telenotary") {
			t.Errorf("telenotary %s: exit %d, stdout %d bytes, stderr %q; want exit 0 and the usage on stdout only", strings.Join(args, " "), code, len(stdout), stderr)
		}
	}
}

// TestUsageErrorsOnStderr: a bad flag of any command is reported on stderr
// with the command's usage, and exits 2.
func TestUsageErrorsOnStderr(t *testing.T) {
	for _, c := range commands() {
		if c.name == "completion" || c.name == "version" || c.name == "bench" {
			continue // no flags of their own: tested below
		}
		code, stdout, stderr := runCmd(t, nil, c.name, "--no-such-flag")
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, "flag provided but not defined") || !strings.Contains(stderr, "Usage: telenotary "+c.name) {
			t.Errorf("telenotary %s --no-such-flag: exit %d\nstdout %q\nstderr %q", c.name, code, stdout, stderr)
		}
	}
	for _, args := range [][]string{{"bench"}, {"bench", "nothing"}, {"bench", "notarize", "--x"}, {"bench", "dispense", "--x"}, {"completion"}, {"version", "extra"}} {
		if code, stdout, stderr := runCmd(t, nil, args...); code != exitUsage || stdout != "" || stderr == "" {
			t.Errorf("telenotary %s: exit %d\nstdout %q\nstderr %q", strings.Join(args, " "), code, stdout, stderr)
		}
	}
}

// TestUsageAligned: the summaries of the command list start in one column,
// whatever the length of the longest command's name.
func TestUsageAligned(t *testing.T) {
	_, stdout, _ := runCmd(t, nil, "--help")
	_, list, _ := strings.Cut(stdout, "Commands:\n")
	list, _, _ = strings.Cut(list, "\n\n")
	column := -1
	rows := strings.Split(list, "\n")
	if len(rows) != len(commands()) {
		t.Fatalf("%d rows for %d commands:\n%s", len(rows), len(commands()), list)
	}
	for _, row := range rows {
		m := regexp.MustCompile(`^  \S+ +`).FindString(row)
		if m == "" {
			t.Fatalf("row %q", row)
		}
		if column >= 0 && len(m) != column {
			t.Errorf("misaligned:\n%s", list)
			break
		}
		column = len(m)
	}
}

// TestRuntimeFailureExitsOne: a node whose command line is sound but which
// cannot start (its address is taken) exits 1, with one line that says
// why; the command-line problems before it exit 2.
func TestRuntimeFailureExitsOne(t *testing.T) {
	dir := t.TempDir()
	sec := writeTestSecrets(t, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	args := []string{"node", "--id", "node-1", "--data-dir", dir, "--bootstrap", "--origin", "o.test/log", "--signer-key", sec.signerKey, "--tokens", sec.tokens,
		"--insecure-raft", "--raft-addr", "127.0.0.1:0", "--http-addr", ln.Addr().String()}
	code, _, stderr := runCmd(t, nil, args...)
	if code != exitFailure || !strings.HasPrefix(stderr, "telenotary node: ") || !strings.Contains(stderr, "another process listens there") {
		t.Fatalf("node on a taken address: exit %d, want %d\n%s", code, exitFailure, stderr)
	}
	if code, _, _ := runCmd(t, nil, append(args, "--log-level", "loud")...); code != exitUsage {
		t.Fatalf("node with a bad --log-level: exit %d, want %d", code, exitUsage)
	}
}

func TestVersionLine(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version string
		bi      *debug.BuildInfo
		want    []string
	}{
		{"no build information", "", nil, []string{"telenotary devel", "commit: (unknown)", "date:   (unknown)", "go:     (unknown)"}},
		{"go run: no commit", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			[]string{"telenotary devel", "commit: (unknown)", "date:   (unknown)", "go:     go1.26.8"}},
		{"a build in a clone with changes", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261202212024-bf0b51844029+dirty"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "bf0b5184402950a42ea55009ca60db28a0496ce5"}, {Key: "vcs.time", Value: "2026-12-02T21:20:24Z"}, {Key: "vcs.modified", Value: "true"}}},
			[]string{"telenotary v0.0.0-20261202212024-bf0b51844029+dirty", "commit: bf0b5184402950a42ea55009ca60db28a0496ce5 (with uncommitted changes)", "date:   2026-12-02T21:20:24Z"}},
		{"a release", "v1.2.3", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "false"}}},
			[]string{"telenotary v1.2.3\n", "commit: abc\n", "date:   2026-01-02T03:04:05Z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func(v string) { version = v }(version)
			version = tc.version
			got := versionLine(tc.bi)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("versionLine = %q, lacks %q", got, w)
				}
			}
		})
	}
}
