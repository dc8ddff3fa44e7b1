package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docFiles are the README and every page under docs/.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"../../README.md"}, files...)
}

var (
	// commandLine finds "telenotary <command> ..." up to the end of the
	// line, a closing backtick or a shell operator.
	commandLine = regexp.MustCompile("telenotary ([a-z]+)((?: +[^`|;&>\n]*)?)")
	flagWord    = regexp.MustCompile(`(?:^|\s)(--[a-z][a-z0-9-]*)`)
	mdLink      = regexp.MustCompile(`\]\(([^)\s]+)\)`)
)

// TestDocumentedCommandsExist: every telenotary command and flag the README
// and docs/ mention is in that command's --help.
func TestDocumentedCommandsExist(t *testing.T) {
	helps := map[string]string{}
	help := func(args ...string) string {
		key := strings.Join(args, " ")
		if h, ok := helps[key]; ok {
			return h
		}
		code, stdout, stderr := runCmd(t, nil, append(args, "--help")...)
		if code != exitOK {
			t.Errorf("telenotary %s --help: exit %d\n%s", key, code, stderr)
		}
		helps[key] = stdout + stderr
		return helps[key]
	}
	known := map[string]bool{}
	for _, c := range commands() {
		known[c.name] = true
	}
	checked := 0
	for _, file := range docFiles(t) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		// Join continued shell lines.
		text := strings.ReplaceAll(string(data), "\\\n", " ")
		for _, m := range commandLine.FindAllStringSubmatch(text, -1) {
			cmd, rest := m[1], m[2]
			if !known[cmd] {
				if flagWord.MatchString(rest) {
					t.Errorf("%s: telenotary %s: no such command", filepath.Base(file), cmd)
				}
				continue // prose such as "telenotary is a notary"
			}
			args := []string{cmd}
			if cmd == "bench" {
				fields := strings.Fields(rest)
				if len(fields) == 0 || (fields[0] != "notarize" && fields[0] != "signal") {
					continue
				}
				args = append(args, fields[0])
			}
			if cmd == "version" || cmd == "completion" {
				continue
			}
			h := help(args...)
			for _, f := range flagWord.FindAllStringSubmatch(rest, -1) {
				flag := f[1]
				if flag == "--help" || flag == "--version" {
					continue
				}
				checked++
				if !strings.Contains(h, "  "+flag+"  [") {
					t.Errorf("%s: telenotary %s %s: not a flag of that command", filepath.Base(file), strings.Join(args, " "), flag)
				}
			}
		}
	}
	if checked < 40 {
		t.Fatalf("only %d documented flags found: the scan is broken", checked)
	}
	t.Logf("%d documented flags checked", checked)
}

// TestDocLinksResolve: every relative link in the README and docs/ names a
// file of the repository.
func TestDocLinksResolve(t *testing.T) {
	checked := 0
	for _, file := range docFiles(t) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLink.FindAllStringSubmatch(string(data), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			target, _, _ = strings.Cut(target, "#")
			checked++
			if _, err := os.Stat(filepath.Join(filepath.Dir(file), target)); err != nil {
				t.Errorf("%s links to %s, which does not exist", filepath.Base(file), m[1])
			}
		}
	}
	if checked < 5 {
		t.Fatalf("only %d links found: the scan is broken", checked)
	}
}
