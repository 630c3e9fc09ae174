//go:build unix

package main

import (
	"os/signal"
	"syscall"
)

// ignoreSIGPIPE keeps a write to a closed pipe (a --print-event reader that
// went away) from killing the broker; the write fails with an error instead.
func ignoreSIGPIPE() { signal.Ignore(syscall.SIGPIPE) }
