//go:build linux

package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// notifySocket listens on a unixgram socket of the test's own and points
// NOTIFY_SOCKET at it.
func notifySocket(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return conn
}

func readDatagram(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 256)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestSdNotify(t *testing.T) {
	for _, tc := range []struct{ name, socket string }{
		{"path", filepath.Join(t.TempDir(), "notify")},
		{"abstract", "@comet-test-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := notifySocket(t, tc.socket)
			for _, state := range []string{"READY=1", "STOPPING=1"} {
				if err := sdNotify(state); err != nil {
					t.Fatal(err)
				}
				if got := readDatagram(t, conn); got != state {
					t.Errorf("received %q, want %q", got, state)
				}
			}
		})
	}
}

func TestSdNotifyUnset(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := sdNotify("READY=1"); err != nil {
		t.Errorf("with NOTIFY_SOCKET unset: %v", err)
	}
	t.Setenv("NOTIFY_SOCKET", "relative/path")
	if err := sdNotify("READY=1"); err == nil {
		t.Error("relative NOTIFY_SOCKET accepted")
	}
}

func TestWatchdogInterval(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		name, usec, pid string
		want            time.Duration
	}{
		{"unset", "", "", 0},
		{"thirty seconds", "30000000", "", 30 * time.Second},
		{"for us", "30000000", self, 30 * time.Second},
		{"for another process", "30000000", "1", 0},
		{"garbage", "soon", "", 0},
		{"zero", "0", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WATCHDOG_USEC", tc.usec)
			t.Setenv("WATCHDOG_PID", tc.pid)
			if got := watchdogInterval(); got != tc.want {
				t.Errorf("watchdogInterval() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRunWatchdog(t *testing.T) {
	conn := notifySocket(t, filepath.Join(t.TempDir(), "notify"))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { runWatchdog(ctx, 40*time.Millisecond) })
	begin := time.Now()
	for range 3 {
		if got := readDatagram(t, conn); got != "WATCHDOG=1" {
			t.Errorf("received %q, want WATCHDOG=1", got)
		}
	}
	// Three pings at half the interval take about 60 ms.
	if d := time.Since(begin); d < 50*time.Millisecond || d > time.Second {
		t.Errorf("three pings took %v", d)
	}
	cancel()
	wg.Wait()
	runWatchdog(context.Background(), 0) // returns at once
}
