//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

// eventdb_lock_unix.go: the event database's directory lock is flock(2) on
// its lock file, which the kernel releases when the process dies, so a
// crash never leaves a stale lock. The file itself stays in place.
//
// It also holds what the event database needs to know of Unix files: the
// open flags that refuse symbolic links and FIFOs, and a file's owner.
package main

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// eventDBOpenFlags go with every open of the event database's files:
// O_NOFOLLOW fails on a symbolic link instead of following it, and
// O_NONBLOCK keeps a FIFO planted under a log's name from blocking the open
// (openEventDBFile then refuses it as not a regular file).
const eventDBOpenFlags = syscall.O_NOFOLLOW | syscall.O_NONBLOCK

// eventDBUnixModes: permission bits and owners mean what they say here.
const eventDBUnixModes = true

// eventDBFileOwner is the uid owning the file fi describes.
func eventDBFileOwner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// lockFile opens (creating) path and takes an exclusive, non-blocking flock
// on it. It returns errDirLocked when another process holds it.
func lockFile(path string) (*os.File, error) {
	f, err := openEventDBFile(path, os.O_RDWR|os.O_CREATE, 0o600)
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
