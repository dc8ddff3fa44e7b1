package cluster

import (
	"context"
	"io"
	"log"
	"log/slog"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// slogHclog is an hclog.Logger for hashicorp/raft that hands its records
// straight to a slog.Logger, keys and values as they are.
type slogHclog struct {
	logger *slog.Logger  // with the implied arguments
	name   string        // the module, logged with every record
	args   []any         // implied arguments, for ImpliedArgs
	level  *atomic.Int32 // an hclog.Level, shared by the loggers derived from one
}

// newHclog returns raft's logger: records of level Info and above go to
// logger with "module" set to name.
func newHclog(logger *slog.Logger, name string) hclog.Logger {
	level := new(atomic.Int32)
	level.Store(int32(hclog.Info))
	return &slogHclog{logger: logger, name: name, level: level}
}

// slogLevel maps hclog's levels to slog's.
func slogLevel(l hclog.Level) slog.Level {
	switch {
	case l <= hclog.Debug:
		return slog.LevelDebug
	case l == hclog.Info:
		return slog.LevelInfo
	case l == hclog.Warn:
		return slog.LevelWarn
	}
	return slog.LevelError
}

func (h *slogHclog) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off || level < hclog.Level(h.level.Load()) {
		return
	}
	h.logger.Log(context.Background(), slogLevel(level), msg, append(args, "module", h.name)...)
}

func (h *slogHclog) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *slogHclog) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *slogHclog) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *slogHclog) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *slogHclog) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

func (h *slogHclog) enabled(l hclog.Level) bool {
	return l >= hclog.Level(h.level.Load()) && h.logger.Enabled(context.Background(), slogLevel(l))
}

func (h *slogHclog) IsTrace() bool { return h.enabled(hclog.Trace) }
func (h *slogHclog) IsDebug() bool { return h.enabled(hclog.Debug) }
func (h *slogHclog) IsInfo() bool  { return h.enabled(hclog.Info) }
func (h *slogHclog) IsWarn() bool  { return h.enabled(hclog.Warn) }
func (h *slogHclog) IsError() bool { return h.enabled(hclog.Error) }

func (h *slogHclog) ImpliedArgs() []any { return h.args }

func (h *slogHclog) With(args ...any) hclog.Logger {
	c := *h
	c.logger = h.logger.With(args...)
	c.args = append(append([]any(nil), h.args...), args...)
	return &c
}

func (h *slogHclog) Name() string { return h.name }

func (h *slogHclog) Named(name string) hclog.Logger {
	if h.name != "" {
		name = h.name + "." + name
	}
	return h.ResetNamed(name)
}

func (h *slogHclog) ResetNamed(name string) hclog.Logger {
	c := *h
	c.name = name
	return &c
}

func (h *slogHclog) SetLevel(level hclog.Level) { h.level.Store(int32(level)) }
func (h *slogHclog) GetLevel() hclog.Level      { return hclog.Level(h.level.Load()) }

func (h *slogHclog) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	level := slog.LevelInfo
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = slogLevel(opts.ForceLevel)
	}
	return slog.NewLogLogger(h.logger.With("module", h.name).Handler(), level)
}

func (h *slogHclog) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	return h.StandardLogger(opts).Writer()
}
