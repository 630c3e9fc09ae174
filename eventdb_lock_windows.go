//go:build windows

// eventdb_lock_windows.go: the event database's directory lock is
// LockFileEx on one byte of its lock file, which Windows releases when the
// handle is closed or the process dies, so a crash never leaves a stale lock.
//
// Windows has no O_NOFOLLOW: openEventDBFile's Lstat checks stand in for it.
// Its permission bits say nothing of ACLs, so directory modes are not
// checked, and os.TempDir is already the user's own.
package main

import (
	"io/fs"
	"os"
	"syscall"
	"unsafe"
)

// eventDBOpenFlags: nothing to add on Windows.
const eventDBOpenFlags = 0

// eventDBUnixModes: Windows permission bits do not describe who may write.
const eventDBUnixModes = false

// eventDBFileOwner: owners are not checked on Windows.
func eventDBFileOwner(fs.FileInfo) (int, bool) { return 0, false }

var procLockFileEx = syscall.NewLazyDLL("kernel32.dll").NewProc("LockFileEx")

const (
	lockfileFailImmediately = 0x1
	lockfileExclusiveLock   = 0x2
	errorLockViolation      = syscall.Errno(33)
	errorIOPending          = syscall.Errno(997)
)

// lockFile opens (creating) path and locks a byte far past its contents, so
// the pid written at its start stays readable. It returns errDirLocked when
// another process holds the lock.
func lockFile(path string) (*os.File, error) {
	f, err := openEventDBFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := procLockFileEx.Find(); err != nil {
		f.Close()
		return nil, err
	}
	ol := new(syscall.Overlapped)
	ol.OffsetHigh = 0x7fffffff
	r, _, e := procLockFileEx.Call(f.Fd(), lockfileExclusiveLock|lockfileFailImmediately, 0, 1, 0, uintptr(unsafe.Pointer(ol)))
	if r == 0 {
		f.Close()
		if e == errorLockViolation || e == errorIOPending {
			return nil, errDirLocked
		}
		return nil, &os.PathError{Op: "LockFileEx", Path: path, Err: e}
	}
	return f, nil
}

// unlockFile closes the file, which releases its lock.
func unlockFile(f *os.File) error { return f.Close() }

// syncDir does nothing on Windows: directories cannot be opened for flushing,
// and NTFS journals the rename itself.
func syncDir(string) error { return nil }
