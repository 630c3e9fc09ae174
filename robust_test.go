//go:build unix

package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMesh: five brokers subscribed to each other in a ring with chords,
// authors submitting to several of them, a subscriber on each: every event
// reaches every subscriber exactly once, and nothing circulates.
func TestMesh(t *testing.T) {
	const n = 5
	cfgs := make([]*config, n)
	addrs := make([]string, n)
	for i := range n {
		cfgs[i] = receiveConfig(t)
		cfgs[i].localIVO = fmt.Sprintf("ivo://test/mesh%d", i)
		addrs[i] = "127.0.0.1:" + freePort(t)
		cfgs[i].broadcast = []endpoint{{"tcp", addrs[i]}}
	}
	// Ring i -> i+1, chords i -> i+2: each broker subscribes to two others.
	for i := range n {
		cfgs[i].remotes = []string{addrs[(i+1)%n], addrs[(i+2)%n]}
	}
	brokers := make([]*testBroker, n)
	for i := range n {
		brokers[i] = startBroker(t, cfgs[i])
	}
	subs := make([]*testSubscriber, n)
	for i := range n {
		subs[i] = dialSubscriber(t, addrs[i], nil)
	}
	waitFor(t, "mesh connected", func() bool {
		for _, b := range brokers {
			if subscriberCount(b.broker) != 3 { // two brokers and our subscriber
				return false
			}
		}
		return true
	})
	const events = 30
	var wg sync.WaitGroup
	for a := range 3 { // three authors, each to its own broker
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range events / 3 {
				ev := testEventBytes(fmt.Sprintf("mesh-%d-%d", a, e))
				if role := submitOnce(brokers[a*2%n].receiveAddr(), ev); role != "ack" {
					t.Errorf("author %d event %d: %q", a, e, role)
				}
			}
		}()
	}
	wg.Wait()
	for i, s := range subs {
		seen := map[string]bool{}
		for len(seen) < events {
			ev := s.nextEvent(5 * time.Second)
			if ev == nil {
				t.Fatalf("subscriber of broker %d got %d of %d events", i, len(seen), events)
			}
			ri, _ := scanRoot(ev)
			if seen[ri.ivorn] {
				t.Fatalf("subscriber of broker %d got %s twice", i, ri.ivorn)
			}
			seen[ri.ivorn] = true
		}
	}
	// Quiet: nothing more arrives, and every broker accepted each event once.
	time.Sleep(300 * time.Millisecond)
	for i, s := range subs {
		if extra := s.nextEvent(10 * time.Millisecond); extra != nil {
			t.Errorf("subscriber of broker %d got an extra event", i)
		}
	}
	for i, b := range brokers {
		if got := b.m.accepted.Load(); got != events {
			t.Errorf("broker %d accepted %d events, want %d", i, got, events)
		}
	}
	received := func() (total int64) {
		for _, b := range brokers {
			total += b.m.received.Load()
		}
		return total
	}
	before := received()
	time.Sleep(200 * time.Millisecond)
	if after := received(); after != before {
		t.Errorf("events still circulating: %d more received", after-before)
	}
}

// TestEventDBWriteFailureKeepsRelaying: when the event log cannot be
// written (disk full), the broker says so, counts it, and keeps accepting
// and relaying, still catching duplicates in memory.
func TestEventDBWriteFailureKeepsRelaying(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	tb := startBroker(t, receiveConfig(t))
	sub := dialSubscriber(t, tb.broadcastAddr(), nil)
	waitFor(t, "subscriber", func() bool { return subscriberCount(tb.broker) == 1 })
	tb.db.mu.Lock()
	good := tb.db.f
	tb.db.f = full
	tb.db.mu.Unlock()
	defer func() {
		tb.db.mu.Lock()
		tb.db.f = good
		tb.db.mu.Unlock()
		full.Close()
	}()
	ev := testEventBytes("disk-full")
	if r := rawExchange(t, tb.receiveAddr(), ev); r == nil || r.role != "ack" {
		t.Fatalf("with the disk full: %+v", r)
	}
	if got := sub.nextEvent(2 * time.Second); !bytes.Equal(got, ev) {
		t.Fatal("not relayed with the disk full")
	}
	if r := rawExchange(t, tb.receiveAddr(), ev); r == nil || r.role != "nak" {
		t.Fatalf("duplicate with the disk full: %+v", r)
	}
	if tb.m.eventDBErrors.Load() == 0 || !strings.Contains(tb.logs.String(), "event database write failed") {
		t.Error("write failure not counted or logged")
	}
}

// TestIdleConnectionsBounded: 10,000 idle connections cost bounded
// memory: beyond --max-connections they are closed at once, and those
// held cost a goroutine each until the 20 s receiver timeout.
func TestIdleConnectionsBounded(t *testing.T) {
	// Both ends live in this process: leave room under the file limit.
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	flood := min(10000, int(lim.Cur)-700)
	if flood < 1000 {
		t.Skipf("file descriptor limit %d is too low for the flood", lim.Cur)
	}
	cfg := receiveConfig(t)
	cfg.maxConnections = 500
	cfg.maxConnectionsPerHost = 1 << 20 // this tests the listener's cap
	tb := startBroker(t, cfg)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range flood {
		c, err := net.Dial("tcp", tb.receiveAddr())
		if err != nil {
			t.Fatalf("dial after %d connections: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	waitFor(t, "the limit reached", func() bool { return len(tb.receivers[0].sem) == 500 })
	waitFor(t, "connections beyond the limit refused", func() bool { return tb.m.connRefused.get("connection-limit") >= int64(flood-600) })
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// Heap plus stacks of this whole test process (client side included).
	grew := int64(after.HeapInuse+after.StackInuse) - int64(before.HeapInuse+before.StackInuse)
	t.Logf("%d idle connections (500 held): memory grew %d KiB", flood, grew/1024)
	if grew > 64<<20 {
		t.Errorf("memory grew by %d MiB", grew>>20)
	}
	// The broker still serves.
	for _, c := range conns[:500] {
		c.Close()
	}
	waitFor(t, "slots freed", func() bool { return len(tb.receivers[0].sem) < 500 })
	if r := rawExchange(t, tb.receiveAddr(), testEventBytes("after-idle")); r == nil || r.role != "ack" {
		t.Fatalf("after the idle flood: %+v", r)
	}
}
