//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

// nofollow_unix.go: the small state files (Kafka offsets, spool positions)
// are opened with O_NOFOLLOW, so a symbolic link planted in their place is
// refused by the kernel.
package main

import "syscall"

const oNoFollow = syscall.O_NOFOLLOW
