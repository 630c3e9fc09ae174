package main

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// deadPid returns the id of a process that has exited.
func deadPid(t *testing.T) int {
	t.Helper()
	c := exec.Command(os.Args[0], "-test.run=^$")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	return c.Process.Pid
}

func TestWritePidfile(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		name     string
		existing string // "" for no file
		wantErr  bool
	}{
		{"no file", "", false},
		{"stale: dead process", strconv.Itoa(deadPid(t)) + "\n", false},
		{"stale: garbage", "not a pid\n", false},
		{"stale: our own pid", self + "\n", false},
		{"held by a live process", strconv.Itoa(os.Getppid()) + "\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "comet.pid")
			if tc.existing != "" {
				if err := os.WriteFile(path, []byte(tc.existing), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			remove, err := writePidfile(path)
			if tc.wantErr {
				if !errors.Is(err, errPidfileHeld) {
					t.Fatalf("err = %v, want %v", err, errPidfileHeld)
				}
				if got, _ := os.ReadFile(path); string(got) != tc.existing {
					t.Errorf("file now holds %q, want it untouched", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(path); string(got) != self+"\n" {
				t.Errorf("file holds %q, want %q", got, self+"\n")
			}
			remove()
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("after remove: %v", err)
			}
		})
	}
}

func TestPidfileRemoveKeepsOthers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "comet.pid")
	remove, err := writePidfile(path)
	if err != nil {
		t.Fatal(err)
	}
	other := strconv.Itoa(os.Getppid()) + "\n"
	if err := os.WriteFile(path, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	remove()
	if got, _ := os.ReadFile(path); string(got) != other {
		t.Errorf("remove deleted or changed another process's pid file: %q", got)
	}
}

func TestPidfileNoDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "comet.pid")
	if _, err := writePidfile(path); err == nil || !strings.HasPrefix(err.Error(), "pidfile "+path) {
		t.Errorf("err = %v", err)
	}
}

func TestReopenableFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "comet.log")
	rotated := path + ".1"
	f, err := openLogFile(path)
	if err != nil {
		t.Fatal(err)
	}
	write := func(s string) {
		t.Helper()
		if _, err := f.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	write("one\n")
	if err := os.Rename(path, rotated); err != nil { // what logrotate does
		t.Fatal(err)
	}
	write("two\n") // still the old file until the reopen
	if err := f.reopen(); err != nil {
		t.Fatal(err)
	}
	write("three\n")

	// A reopen that fails keeps the current file.
	if err := os.Rename(path, path+".2"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := f.reopen(); err == nil {
		t.Error("reopen onto a directory succeeded")
	}
	write("four\n")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("late\n")); err == nil {
		t.Error("write after close succeeded")
	}
	for name, want := range map[string]string{rotated: "one\ntwo\n", path + ".2": "three\nfour\n"} {
		if got, _ := os.ReadFile(name); string(got) != want {
			t.Errorf("%s holds %q, want %q", filepath.Base(name), got, want)
		}
	}
}

func TestNewLogger(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "comet.log")
	for _, tc := range []struct {
		name     string
		journal  string
		logfile  bool
		wantTime bool
	}{
		{"terminal", "", false, true},
		{"journald", "8:12345", false, false},
		{"journald with --logfile", "8:12345", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("JOURNAL_STREAM", tc.journal)
			var buf bytes.Buffer
			var log *slog.Logger
			if tc.logfile {
				f, err := openLogFile(logPath)
				if err != nil {
					t.Fatal(err)
				}
				log = newLogger(f, slog.LevelInfo)
				log.Info("event accepted", "ivorn", "ivo://a/b#c")
				log.Debug("hidden")
				f.Close()
				b, _ := os.ReadFile(logPath)
				buf.Write(b)
				os.Remove(logPath)
			} else {
				log = newLogger(&buf, slog.LevelInfo)
				log.Info("event accepted", "ivorn", "ivo://a/b#c")
				log.Debug("hidden")
			}
			line := buf.String()
			if got := strings.HasPrefix(line, "time="); got != tc.wantTime {
				t.Errorf("time shown = %v, want %v: %q", got, tc.wantTime, line)
			}
			if !strings.HasSuffix(line, `level=INFO msg="event accepted" ivorn=ivo://a/b#c`+"\n") || strings.Contains(line, "hidden") {
				t.Errorf("line %q", line)
			}
		})
	}
}

func TestLogLevel(t *testing.T) {
	for _, tc := range []struct {
		verbose, quiet int
		want           slog.Level
	}{
		{0, 0, slog.LevelInfo},
		{1, 0, slog.LevelDebug},
		{3, 0, slog.LevelDebug},
		{0, 1, slog.LevelWarn},
		{0, 2, slog.LevelError},
		{0, 5, slog.LevelError},
		{1, 1, slog.LevelInfo},
	} {
		if got := logLevel(tc.verbose, tc.quiet); got != tc.want {
			t.Errorf("logLevel(%d, %d) = %v, want %v", tc.verbose, tc.quiet, got, tc.want)
		}
	}
}
