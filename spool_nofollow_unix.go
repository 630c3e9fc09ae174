//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

// spool_nofollow_unix.go: the position files are opened with O_NOFOLLOW, so
// a symbolic link planted in their place is refused by the kernel.
package main

import "syscall"

const cursorNoFollow = syscall.O_NOFOLLOW
