package main

import (
	"bufio"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// fanEvent is a median-size event numbered i of series tag, for direct
// relaying.
func fanEvent(raw []byte, tag string, i int) *event {
	ri, _ := scanRoot(raw)
	b := []byte(strings.Replace(string(raw), `ivorn="`+ri.ivorn+`"`, fmt.Sprintf(`ivorn="%s-%s-%d"`, ri.ivorn, tag, i), 1))
	ri, _ = scanRoot(b)
	ev := newEvent(b, ri, sourceAuthor, "test", time.Now())
	ev.ivorn = ri.ivorn
	return ev
}

// rawSubscriber is a subscriber connection the test reads by hand: it has
// read the broker's authenticate and answered it (with filters, if any).
func rawSubscriber(t *testing.T, addr string, rcvbuf int, filters []string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if rcvbuf > 0 {
		c.(*net.TCPConn).SetReadBuffer(rcvbuf)
	}
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	msg, err := readFrameInto(br, nil, defaultMaxMessageSize)
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	tr, err := parseTransport(msg)
	if err != nil || tr.role != "authenticate" {
		t.Fatalf("first message %v %q", err, msg)
	}
	if err := writeFrame(c, newAuthenticateResponse(tr.origin, "", purposeTest, filters, time.Now()).marshal()); err != nil {
		t.Fatal(err)
	}
	return c, br
}

// readIvorns reads n events from br and returns their ivorns.
func readIvorns(t *testing.T, c net.Conn, br *bufio.Reader, n int) []string {
	t.Helper()
	var out []string
	for len(out) < n {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		msg, err := readFrameInto(br, nil, defaultMaxMessageSize)
		if err != nil {
			t.Fatalf("after %d events: %v", len(out), err)
		}
		role, ivorn, err := rootAttrs(msg)
		if err != nil || !isVOEventRole(role) {
			continue // an iamalive, say
		}
		out = append(out, ivorn)
	}
	return out
}

// subOf returns the broker's connection for the subscriber whose local
// address is addr.
func subOf(t *testing.T, bc *broadcaster, addr string) *subConn {
	t.Helper()
	var s *subConn
	waitFor(t, "subscriber registered", func() bool {
		bc.mu.Lock()
		defer bc.mu.Unlock()
		for x := range bc.subs {
			if x.peer == addr {
				s = x
			}
		}
		return s != nil
	})
	return s
}

func ownerOf(s *subConn) uint8 {
	s.out.mu.Lock()
	defer s.out.mu.Unlock()
	return s.out.owner
}

// TestFanPumpFullSocketHandsOver: a subscriber that stops reading fills its
// socket; the pump does not wait for it but hands what is left to the
// subscriber's writer; when the subscriber reads again it gets every event
// once, in order, and the pump writes for it again afterwards.
func TestFanPumpFullSocketHandsOver(t *testing.T) {
	if !fanSupported {
		t.Skip("the pump writes only on Linux")
	}
	cfg := receiveConfig(t)
	cfg.writeTimeout = time.Second
	tb := startBroker(t, cfg)
	bc := tb.broadcasters[0]
	c, br := rawSubscriber(t, tb.broadcastAddr(), 0, nil)
	s := subOf(t, bc, c.LocalAddr().String())
	if !s.out.fast {
		t.Fatal("a plain TCP subscriber is not pumped")
	}
	// A bounded send buffer on the broker's side (no autotuning to 4 MB;
	// more than a 64 KB segment, or delayed acks slow TCP to a crawl), so
	// that the events below cannot all fit in the two sockets.
	s.conn.(*net.TCPConn).SetWriteBuffer(256 << 10)
	other := dialSubscriber(t, tb.broadcastAddr(), nil) // keeps reading throughout
	waitFor(t, "subscribers", func() bool { return subscriberCount(tb.broker) == 2 })
	raw := medianEvent(t)
	const n = 400 // about 1.7 MB: far more than the sockets hold
	for i := range n {
		bc.relay(fanEvent(raw, "full", i))
	}
	waitFor(t, "the writer owns the full subscriber's stream", func() bool { return ownerOf(s) == ownWriter })
	t.Cleanup(func() {
		select {
		case <-s.done:
			t.Logf("subscriber dropped: %v", s.reason)
		default:
		}
	})
	got := readIvorns(t, c, br, n)
	for i, iv := range got {
		if !strings.HasSuffix(iv, fmt.Sprintf("-full-%d", i)) {
			t.Fatalf("event %d is %s", i, iv)
		}
	}
	for i := range n {
		if other.nextEvent(10*time.Second) == nil {
			t.Fatalf("the reading subscriber got %d of %d events", i, n)
		}
	}
	waitFor(t, "the stream back with nobody", func() bool { return ownerOf(s) == ownNone })
	// The writer's deadline must not outlive its turn: the pump writes
	// after it has passed.
	time.Sleep(cfg.writeTimeout + 300*time.Millisecond)
	writes := tb.m.deliveryWrites.Load()
	bc.relay(fanEvent(raw, "after", 0))
	if got := readIvorns(t, c, br, 1); !strings.HasSuffix(got[0], "-after-0") {
		t.Fatalf("after the hand-back: %s", got[0])
	}
	if tb.m.deliveryWrites.Load() <= writes {
		t.Fatal("the event after the hand-back was not counted as a delivery write")
	}
}

// TestFanPumpFiltersGoToWriter: a subscriber with filters is written by its
// own writer (filters must not delay the pump's other subscribers), and is
// pumped again once it asks for everything; filtering stays exact across
// the change.
func TestFanPumpFiltersGoToWriter(t *testing.T) {
	if !fanSupported {
		t.Skip("the pump writes only on Linux")
	}
	tb := startBroker(t, receiveConfig(t))
	bc := tb.broadcasters[0]
	c, br := rawSubscriber(t, tb.broadcastAddr(), 0, []string{`contains(/*/@ivorn, "keep")`})
	s := subOf(t, bc, c.LocalAddr().String())
	waitFor(t, "filters installed", func() bool { return s.filters.Load() != nil })
	raw := medianEvent(t)
	for i := range 20 {
		tag := "drop"
		if i%2 == 0 {
			tag = "keep"
		}
		bc.relay(fanEvent(raw, tag, i))
	}
	got := readIvorns(t, c, br, 10)
	for k, iv := range got {
		if !strings.HasSuffix(iv, fmt.Sprintf("-keep-%d", 2*k)) {
			t.Fatalf("filtered event %d is %s", k, iv)
		}
	}
	if o := ownerOf(s); o != ownWriter {
		t.Fatalf("a filtering subscriber's stream is owned by %d, want the writer", o)
	}
	// Now everything: an authenticate response without filters.
	if err := writeFrame(c, newAuthenticateResponse("ivo://x/y", "", purposeTest, nil, time.Now()).marshal()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "filters removed", func() bool { return s.filters.Load() == nil })
	for i := range 10 {
		bc.relay(fanEvent(raw, "all", i))
	}
	got = readIvorns(t, c, br, 10)
	for k, iv := range got {
		if !strings.HasSuffix(iv, fmt.Sprintf("-all-%d", k)) {
			t.Fatalf("event %d after the filters went is %s", k, iv)
		}
	}
	waitFor(t, "the stream back with nobody", func() bool { return ownerOf(s) == ownNone })
}

// TestFanPumpConcurrentOrder: events relayed from several goroutines at
// once reach a pumped subscriber and a filtering one (its writer) each
// exactly once, every relaying goroutine's events in its order.
func TestFanPumpConcurrentOrder(t *testing.T) {
	tb := startBroker(t, receiveConfig(t))
	bc := tb.broadcasters[0]
	pc, pbr := rawSubscriber(t, tb.broadcastAddr(), 0, nil)
	fc, fbr := rawSubscriber(t, tb.broadcastAddr(), 0, []string{`/*`})
	// A bounded send buffer on the broker's side: the pump meets a full
	// socket, and hands over to the writer, while events keep coming.
	subOf(t, bc, pc.LocalAddr().String()).conn.(*net.TCPConn).SetWriteBuffer(256 << 10)
	fs := subOf(t, bc, fc.LocalAddr().String())
	waitFor(t, "filters installed", func() bool { return fs.filters.Load() != nil })
	raw := medianEvent(t)
	const senders, each = 4, 150
	var wg sync.WaitGroup
	for g := range senders {
		evs := make([]*event, each)
		for i := range evs {
			evs[i] = fanEvent(raw, fmt.Sprintf("g%d", g), i)
		}
		wg.Go(func() {
			for _, ev := range evs {
				bc.relay(ev)
				if ev.ivorn[len(ev.ivorn)-1] == '7' {
					runtime.Gosched()
				}
			}
		})
	}
	check := func(name string, c net.Conn, br *bufio.Reader) {
		got := readIvorns(t, c, br, senders*each)
		next := make([]int, senders)
		for _, iv := range got {
			var g, i int
			k := strings.LastIndex(iv, "-g")
			if _, err := fmt.Sscanf(iv[k+1:], "g%d-%d", &g, &i); err != nil || g >= senders {
				t.Fatalf("%s: unexpected event %s", name, iv)
			}
			if i != next[g] {
				t.Fatalf("%s: sender %d's event %d came when %d was due", name, g, i, next[g])
			}
			next[g]++
		}
	}
	check("pumped", pc, pbr)
	check("filtering", fc, fbr)
	wg.Wait()
}
