package main

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/telenotary/telenotary/cluster/auth"
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
				if len(fields) == 0 || (fields[0] != "notarize" && fields[0] != "dispense" && fields[0] != "signal") {
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

// TestReadmeClusterRecipe: the README's cluster recipe makes its token
// files private before writing them, and each token file it writes (the
// join token for joining, the submitter token for the signalling server,
// the operator token for the console) holds a token of the tokens file
// with the role the file is named after; every .tok file the README uses
// is one the recipe makes.
func TestReadmeClusterRecipe(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	heredoc := regexp.MustCompile(`(?s)cat > tokens <<'T'[^\n]*\n(.*?)\nT\n`).FindStringSubmatchIndex(readme)
	if heredoc == nil {
		t.Fatal("the README makes no tokens file")
	}
	if umask := strings.Index(readme, "umask 077"); umask < 0 || umask > heredoc[0] {
		t.Error("the README writes the tokens file before umask 077")
	}
	tokens, err := auth.ParseTokens([]byte(readme[heredoc[2]:heredoc[3]]))
	if err != nil {
		t.Fatalf("the README's tokens file: %v", err)
	}
	made := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^echo (\S+) > (\w+)\.tok`).FindAllStringSubmatch(readme, -1) {
		made[m[2]+".tok"] = true
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+m[1])
		if got := tokens.Role(r).String(); got != m[2] {
			t.Errorf("%s.tok holds a token of role %q", m[2], got)
		}
	}
	for _, used := range regexp.MustCompile(`\w+\.tok\b`).FindAllString(readme, -1) {
		if !made[used] {
			t.Errorf("the README uses %s, which its recipe does not make", used)
		}
	}
	if !strings.Contains(readme, "--join-token-file join.tok") {
		t.Error("the README's joining node does not use join.tok")
	}
}
