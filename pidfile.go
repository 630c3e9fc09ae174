// pidfile.go owns --pidfile: the file naming the broker's process, written
// at start and removed at exit (processAlive is per system, in
// pidfile_unix.go and pidfile_other.go).
//
// Invariant: a pid file held by another live process is never taken over
// or removed.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
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
