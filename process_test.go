package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain lets a test run this test binary as the real comet: with
// COMET_TEST_MAIN=1 it behaves as main.
func TestMain(m *testing.M) {
	if os.Getenv("COMET_TEST_MAIN") == "1" {
		os.Exit(dispatch("comet", os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p
}

// proc is a comet process started by a test.
type proc struct {
	cmd  *exec.Cmd
	logs *testLogWriter
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
}

func startProcess(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	// GORACE: a -race binary otherwise sleeps a second at exit.
	cmd.Env = append(os.Environ(), "COMET_TEST_MAIN=1", "GORACE=atexit_sleep_ms=0")
	logs := &testLogWriter{t: t}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, logs: logs, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("comet log:\n%s", logs.String())
		}
	})
	return p
}

// waitListening waits until addr accepts connections.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	waitFor(t, addr+" listening", func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return true
		}
		return false
	})
}

// submitOnce sends one event and returns the reply role ("" if the
// connection closed without one, or could not be made).
func submitOnce(addr string, ev []byte) string {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if err := writeFrame(c, ev); err != nil {
		return ""
	}
	msg, err := readFrame(c, defaultMaxMessageSize)
	if err != nil {
		return ""
	}
	ri, err := scanRoot(msg)
	if err != nil {
		return ""
	}
	return ri.role
}

func TestProcessReloadAndStop(t *testing.T) {
	dir := t.TempDir()
	wl := filepath.Join(dir, "authors")
	writeFile(t, wl, "127.0.0.0/8\n")
	port := freePort(t)
	addr := "127.0.0.1:" + port
	p := startProcess(t, "--receive=tcp:"+port+":interface=127.0.0.1", "--local-ivo=ivo://test/proc",
		"--eventdb", filepath.Join(dir, "db"), "--author-whitelist", wl, "-n", "-v")
	waitListening(t, addr)
	ev := testEventBytes("proc-1")
	if role := submitOnce(addr, ev); role != "ack" {
		t.Fatalf("before reload: %q", role)
	}
	// Hold a connection open across the reload: it must survive.
	held, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	// Accepted (and so admitted by the old whitelist) before the reload.
	waitFor(t, "held connection accepted", func() bool {
		return strings.Contains(p.logs.String(), `msg="connection accepted" role=receiver peer=`+held.LocalAddr().String())
	})
	writeFile(t, wl, "10.0.0.0/8\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "reload", func() bool { return strings.Contains(p.logs.String(), "reloaded whitelists") })
	if role := submitOnce(addr, testEventBytes("proc-2")); role != "" {
		t.Fatalf("after reload, a refused peer got %q", role)
	}
	held.SetDeadline(time.Now().Add(3 * time.Second))
	writeFrame(held, testEventBytes("proc-3"))
	if msg, err := readFrame(held, defaultMaxMessageSize); err != nil || !bytes.Contains(msg, []byte(`role="ack"`)) {
		t.Fatalf("connection held across the reload: %v %s", err, msg)
	}
	// A bad whitelist file keeps the old set.
	writeFile(t, wl, "not a network\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "failed reload", func() bool { return strings.Contains(p.logs.String(), "keeping the previous whitelists") })

	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("exit: %v", p.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("did not stop within 5 s of SIGTERM")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stopping took %v, want under 2 s", d)
	}
	if !strings.Contains(p.logs.String(), "msg=stopped") {
		t.Error("no stop log line")
	}
	// The event DB was synced and closed: it opens (the lock is free) and
	// remembers both accepted events.
	db, err := openEventDB(filepath.Join(dir, "db"), defaultEventDBExpiry, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.close()
	for _, e := range [][]byte{ev, testEventBytes("proc-3")} {
		ri, _ := scanRoot(e)
		if !db.seen(e[ri.start:ri.end]) {
			t.Errorf("event %s not in the event DB after stop", ri.ivorn)
		}
	}
}

// TestKillDuringLoad: kill -9 while authors submit; after a restart on the
// same event DB, every event acked before the kill is a duplicate.
func TestKillDuringLoad(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	addr := "127.0.0.1:" + port
	args := []string{"--receive=tcp:" + port + ":interface=127.0.0.1", "--local-ivo=ivo://test/kill",
		"--eventdb", filepath.Join(dir, "db"), "-q"}
	p := startProcess(t, args...)
	waitListening(t, addr)
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("kill-%d-%d", w, i)
				if submitOnce(addr, testEventBytes(id)) == "ack" {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
			}
		}()
	}
	waitFor(t, "some acks", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 200
	})
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	close(stop)
	wg.Wait()
	mu.Lock()
	ids := append([]string(nil), acked...)
	mu.Unlock()

	p2 := startProcess(t, args...)
	waitListening(t, addr)
	_ = p2
	for _, id := range ids {
		if role := submitOnce(addr, testEventBytes(id)); role != "nak" {
			t.Fatalf("event %s acked before the kill: resubmitted it got %q, want nak (duplicate)", id, role)
		}
	}
	t.Logf("%d events acked before kill -9, all remembered", len(ids))
}
