//go:build !unix

package main

import "os"

// processAlive reports whether a process with this id exists (on Windows,
// FindProcess fails for one that does not).
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	p.Release()
	return true
}
