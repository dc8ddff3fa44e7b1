package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// TestTransportLoggerQuietOnShutdown: the transport's "transport shutdown"
// at a clean stop is a debug line, not an ERROR; every other error stays
// an error.
func TestTransportLoggerQuietOnShutdown(t *testing.T) {
	var out bytes.Buffer
	l := transportLogger{newHclog(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})), "raft")}
	l.Error("failed to decode incoming command", "error", raft.ErrTransportShutdown)
	l.Error("failed to decode incoming command", "error", fmt.Errorf("read: %w", raft.ErrTransportShutdown))
	l.Error("failed to decode incoming command", "error", errors.New("unexpected EOF"))
	l.Log(hclog.Error, "failed to flush response", "error", errors.New("broken pipe"))
	// Raft's logger passes Info and above: the debug lines are dropped.
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || strings.Contains(out.String(), "transport shutdown") {
		t.Fatalf("want only the two other errors:\n%s", out.String())
	}
	for i, want := range []string{`level=ERROR msg="failed to decode incoming command" error="unexpected EOF"`, `level=ERROR msg="failed to flush response"`} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d: %s, want %s", i+1, lines[i], want)
		}
	}
}

// TestRaftLoggerTidies: raft's "initial configuration" names its index as
// the configuration's and formats its servers; other records pass as they
// are.
func TestRaftLoggerTidies(t *testing.T) {
	var out bytes.Buffer
	l := raftLogger{newHclog(slog.New(slog.NewTextHandler(&out, nil)), "raft")}
	l.Info("initial configuration", "index", 8, "servers", hclog.Fmt("%+v", []raft.Server{{ID: "n1", Address: "127.0.0.1:7000"}}))
	l.Warn("failed to get previous log", "previous-index", 2306, "index", 1)
	got := out.String()
	for _, want := range []string{`msg="initial configuration" configuration_index=8 servers="[{Suffrage:Voter ID:n1 Address:127.0.0.1:7000}]"`, `msg="failed to get previous log" previous-index=2306 index=1`} {
		if !strings.Contains(got, want) {
			t.Errorf("want %s in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "%+v") {
		t.Errorf("an unformatted value:\n%s", got)
	}
}
