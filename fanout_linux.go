// fanout_linux.go is the pump's non-blocking writev (fanout.go) on Linux.

//go:build linux

package main

import (
	"syscall"
	"unsafe"
)

const fanSupported = true

// fanSys holds the iovecs of one writev and the callback that makes it,
// allocated once per pump so that a write allocates nothing.
type fanSys struct {
	iov   []syscall.Iovec
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

func (s *fanSys) init() { s.fn = s.call }

// call makes the writev; returning true tells the runtime not to wait for
// the socket to become writable.
func (s *fanSys) call(fd uintptr) bool {
	for {
		r, _, e := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&s.iov[0])), uintptr(len(s.iov)))
		if e == syscall.EINTR {
			continue
		}
		s.n, s.errno = int(r), e
		return true
	}
}

// fanWritev writes w.bufs to rc without blocking: n bytes went, again is
// true when the socket's buffer was full (EAGAIN).
func fanWritev(rc syscall.RawConn, w *fanWriter) (n int, again bool, err error) {
	s := &w.sys
	s.iov = s.iov[:0]
	for _, b := range w.bufs {
		var v syscall.Iovec
		v.Base = &b[0]
		v.SetLen(len(b))
		s.iov = append(s.iov, v)
	}
	s.n, s.errno = 0, 0
	err = rc.Write(s.fn)
	clear(s.iov) // drop the references to the events
	if err != nil {
		return 0, false, err
	}
	switch s.errno {
	case 0:
		return s.n, false, nil
	case syscall.EAGAIN:
		return 0, true, nil
	default:
		return 0, false, s.errno
	}
}
