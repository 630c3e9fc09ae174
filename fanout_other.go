// fanout_other.go: elsewhere than Linux the pump writes for nobody; every
// subscriber has its own writer (fanout.go).

//go:build !linux

package main

import (
	"errors"
	"syscall"
)

const fanSupported = false

type fanSys struct{}

func (s *fanSys) init() {}

func fanWritev(syscall.RawConn, *fanWriter) (int, bool, error) {
	return 0, false, errors.New("no writev here")
}
