//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

// eventdb_lock_unix.go: the event database's directory lock is flock(2) on
// its lock file, which the kernel releases when the process dies, so a
// crash never leaves a stale lock. The file itself stays in place.
package main

import (
	"errors"
	"os"
	"syscall"
)

// lockFile opens (creating) path and takes an exclusive, non-blocking flock
// on it. It returns errDirLocked when another process holds it.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errDirLocked
		}
		return nil, &os.PathError{Op: "flock", Path: path, Err: err}
	}
	return f, nil
}

// unlockFile releases the lock and closes the file.
func unlockFile(f *os.File) error {
	uerr := syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	cerr := f.Close()
	if uerr != nil {
		return uerr
	}
	return cerr
}
