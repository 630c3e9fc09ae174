// systemd.go speaks the service manager's notification protocol
// (sd_notify(3)): readiness, stopping and watchdog pings sent as datagrams
// to $NOTIFY_SOCKET. Everything here is a no-op when systemd did not ask
// for it (the variables are unset), so the broker runs the same anywhere.
package main

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"time"
)

// errNotifySocket reports a $NOTIFY_SOCKET that is neither a path nor an
// abstract socket name.
var errNotifySocket = errors.New("sd_notify: NOTIFY_SOCKET is not an absolute path or @name")

// sdNotify sends state (for example "READY=1", "STOPPING=1",
// "WATCHDOG=1") to the service manager. It returns nil at once when
// NOTIFY_SOCKET is unset. A name starting with '@' is a Linux abstract
// socket (the net package maps '@' to the leading NUL byte).
func sdNotify(state string) error {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return nil
	}
	if name[0] != '/' && name[0] != '@' {
		return errNotifySocket
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}

// watchdogInterval returns the watchdog timeout systemd asks for
// ($WATCHDOG_USEC), or 0 when there is none or it is meant for another
// process ($WATCHDOG_PID).
func watchdogInterval() time.Duration {
	usec := os.Getenv("WATCHDOG_USEC")
	if usec == "" {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	n, err := strconv.ParseInt(usec, 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(n) * time.Microsecond
}

// runWatchdog sends "WATCHDOG=1" every interval/2 until ctx is done. It
// returns at once if interval is not positive. A failed ping is not fatal:
// the next one is tried on time (systemd restarts us if too many fail).
func runWatchdog(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			sdNotify("WATCHDOG=1")
		}
	}
}
