// logfile.go owns the broker's logging: the logger (one slog text handler,
// its level from -v/-q, no timestamps under journald), and --logfile, the
// log file that log rotation can move away (reopened on SIGHUP).
//
// Invariant: the log file is swapped only once the new one is open, so a
// failed reopen keeps logging to the old one.
package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"
)

// reopenableFile is an append-only log file that can be reopened at the
// same path, after log rotation has renamed the old one.
type reopenableFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// openLogFile opens (creating if needed) the log file at path for appending.
func openLogFile(path string) (*reopenableFile, error) {
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	return &reopenableFile{path: path, f: f}, nil
}

func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("logfile: %v", err)
	}
	return f, nil
}

// Write appends p to the current file.
func (r *reopenableFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, fs.ErrClosed
	}
	return r.f.Write(p)
}

// reopen opens the path again and switches to it; on failure it keeps the
// old file and returns the error.
func (r *reopenableFile) reopen() error {
	f, err := openAppend(r.path)
	if err != nil {
		return err
	}
	r.mu.Lock()
	old := r.f
	r.f = f
	r.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// Close closes the file; later writes fail.
func (r *reopenableFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// newLogger returns the broker's logger: one slog TextHandler on w at
// level. Under systemd (JOURNAL_STREAM set) it leaves out the time, which
// journald records itself, unless w is a --logfile, which journald never
// sees.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if _, isFile := w.(*reopenableFile); os.Getenv("JOURNAL_STREAM") != "" && !isFile {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// logLevel maps Comet's repeatable -v and -q to a level: info by default,
// each -v one step more detail (debug), each -q one step less (warn, then
// error).
func logLevel(verbose, quiet int) slog.Level {
	l := slog.LevelInfo + slog.Level(4*(quiet-verbose))
	return min(max(l, slog.LevelDebug), slog.LevelError)
}

// lazyWith is log.With(args...) made only when a line is written at a level
// log writes: an author's connection gets one, and most connections log
// nothing (With formats its attributes at once: about 1 µs and 9
// allocations per connection). What it writes is exactly what log.With's
// logger would.
func lazyWith(log *slog.Logger, args ...any) *slog.Logger {
	return slog.New(&lazyHandler{base: log, args: args})
}

type lazyHandler struct {
	base *slog.Logger
	args []any
	once sync.Once
	h    slog.Handler
}

func (l *lazyHandler) handler() slog.Handler {
	l.once.Do(func() { l.h = l.base.With(l.args...).Handler() })
	return l.h
}

func (l *lazyHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return l.base.Handler().Enabled(ctx, level)
}
func (l *lazyHandler) Handle(ctx context.Context, r slog.Record) error {
	return l.handler().Handle(ctx, r)
}
func (l *lazyHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return l.handler().WithAttrs(attrs)
}
func (l *lazyHandler) WithGroup(name string) slog.Handler { return l.handler().WithGroup(name) }
