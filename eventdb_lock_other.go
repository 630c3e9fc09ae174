//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || windows)

// eventdb_lock_other.go: on systems without flock or LockFileEx the lock is
// the lock file's existence (created with O_EXCL, removed on close). A crash
// leaves it behind; the error then names the file, which an operator removes
// once sure no comet runs.
//
// Here O_NOFOLLOW is not assumed: openEventDBFile's Lstat checks stand in
// for it. Permission bits are checked, owners are not.
package main

import (
	"errors"
	"io/fs"
	"os"
)

// eventDBOpenFlags: nothing to add where O_NOFOLLOW is not assumed.
const eventDBOpenFlags = 0

// eventDBUnixModes: permission bits are trusted on these systems.
const eventDBUnixModes = true

// eventDBFileOwner: owners are not checked here.
func eventDBFileOwner(fs.FileInfo) (int, bool) { return 0, false }

// lockFile creates path exclusively; it returns errDirLocked if it exists.
func lockFile(path string) (*os.File, error) {
	f, err := openEventDBFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, errDirLocked
	}
	return f, err
}

// unlockFile closes and removes the lock file.
func unlockFile(f *os.File) error {
	cerr := f.Close()
	if err := os.Remove(f.Name()); err != nil {
		return err
	}
	return cerr
}
