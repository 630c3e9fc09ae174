// lifecycle.go owns the parts of running as a daemon that are not the
// protocol: the pid file (--pidfile), the log file that log rotation can
// move away (--logfile, reopened on SIGHUP), and the logger.
//
// Invariants: a pid file held by another live process is never taken over
// or removed; the log file is swapped only once the new one is open, so a
// failed reopen keeps logging to the old one.
package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
)

// errPidfileHeld reports a pid file naming another process that runs.
var errPidfileHeld = errors.New("held by a running process")

// writePidfile writes this process's id to path, refusing if the file names
// another live process; a stale file (a dead process, garbage, or our own
// id after a restart in a container) is replaced. remove deletes the file
// if it still holds our id.
func writePidfile(path string) (remove func(), err error) {
	self := os.Getpid()
	for attempt := 0; ; attempt++ {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			_, werr := fmt.Fprintf(f, "%d\n", self)
			cerr := f.Close()
			if werr == nil {
				werr = cerr
			}
			if werr != nil {
				os.Remove(path)
				return nil, fmt.Errorf("pidfile %s: %v", path, werr)
			}
			return func() { removePidfile(path, self) }, nil
		}
		if !errors.Is(err, fs.ErrExist) || attempt > 0 {
			return nil, fmt.Errorf("pidfile %s: %v", path, err)
		}
		if pid, ok := readPidfile(path); ok && pid != self && processAlive(pid) {
			return nil, fmt.Errorf("pidfile %s: %w (pid %d)", path, errPidfileHeld, pid)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("pidfile %s: remove stale file: %v", path, err)
		}
	}
}

// readPidfile returns the process id a pid file holds.
func readPidfile(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

func removePidfile(path string, self int) {
	if pid, ok := readPidfile(path); ok && pid == self {
		os.Remove(path)
	}
}

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
