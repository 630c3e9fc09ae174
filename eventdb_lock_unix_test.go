//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestEventDBRefusesFIFO: a FIFO planted under the log's or the lock's name
// neither blocks the open nor is used.
func TestEventDBRefusesFIFO(t *testing.T) {
	for _, name := range []string{eventDBLogName, eventDBLockName} {
		dir := t.TempDir()
		path := dir + "/" + name
		if err := syscall.Mkfifo(path, 0o600); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
		done := make(chan error, 1)
		go func() {
			db, err := openEventDB(dir, defaultEventDBExpiry, nil)
			if err == nil {
				db.close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "named pipe") {
				t.Errorf("%s: err = %v, want a refusal naming the pipe", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: open blocked on a FIFO", name)
		}
	}
}

// TestOpenEventDBFileNoFollowRace: even when the Lstat check is passed (the
// link appears afterwards), O_NOFOLLOW refuses the link.
func TestOpenEventDBFileNoFollow(t *testing.T) {
	dir := t.TempDir()
	target := plantSymlink(t, dir, "f")
	f, err := os.OpenFile(dir+"/f", os.O_WRONLY|os.O_APPEND|eventDBOpenFlags, 0)
	if err == nil {
		f.Close()
		t.Fatal("O_NOFOLLOW open followed a link")
	}
	checkUntouched(t, target, "precious")
}
