//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

// nofollow_other.go: without O_NOFOLLOW the small state files rely on an
// Lstat check before opening alone.
package main

const oNoFollow = 0
