//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

// spool_nofollow_other.go: without O_NOFOLLOW the position files rely on the
// Lstat check in spool_cursor.go alone.
package main

const cursorNoFollow = 0
