package main

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestReceiverOutcomes(t *testing.T) {
	tb := startBroker(t, receiveConfig(t))
	addr := tb.receiveAddr()
	good := testEventBytes("outcomes-1")

	t.Run("ack", func(t *testing.T) {
		r := rawExchange(t, addr, good)
		if r == nil || r.role != "ack" || r.origin != "ivo://test.local/sample#outcomes-1" || r.response != "ivo://test/comet" {
			t.Fatalf("reply %+v", r)
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		r := rawExchange(t, addr, good)
		if r == nil || r.role != "nak" || r.result != "Event rejected: Previously seen by this broker" {
			t.Fatalf("reply %+v", r)
		}
	})
	t.Run("duplicate with another XML declaration", func(t *testing.T) {
		other := bytes.Replace(good, []byte(`<?xml version='1.0' encoding='UTF-8'?>`), []byte(`<?xml version="1.0"?>`), 1)
		r := rawExchange(t, addr, other)
		if r == nil || r.role != "nak" || !strings.Contains(r.result, "Previously seen") {
			t.Fatalf("reply %+v", r)
		}
	})
	naks := []struct {
		name, src, origin, reason string
	}{
		{"bad IVOID", strings.Replace(string(testEventBytes("x")), "ivo://test.local/sample#x", "not-an-ivoid", 1), "not-an-ivoid", "Invalid IVOID: not-an-ivoid"},
		{"no local ID", strings.Replace(string(testEventBytes("x")), "sample#x", "sample", 1), "ivo://test.local/sample", "No per-event local ID"},
		{"malformed XML with an ivorn", strings.Replace(string(testEventBytes("malformed")), "</Who>", "</Whom>", 1), "ivo://test.local/sample#malformed", "xml-syntax: line 3: element <Who> closed by </Whom>"},
		{"DOCTYPE", strings.Replace(string(testEventBytes("doctype")), "<voe:VOEvent", "<!DOCTYPE x [<!ENTITY e \"y\">]>\n<voe:VOEvent", 1), "ivo://test.local/sample#doctype", "DOCTYPE"},
		{"not a VOEvent role", strings.Replace(string(testEventBytes("role")), `role="observation"`, `role="bogus"`, 1), "ivo://test.local/sample#role", `not-voevent: root element voe:VOEvent has role "bogus"`},
	}
	for _, tc := range naks {
		t.Run(tc.name, func(t *testing.T) {
			r := rawExchange(t, addr, []byte(tc.src))
			if r == nil || r.role != "nak" || r.origin != tc.origin {
				t.Fatalf("reply %+v", r)
			}
			if !strings.HasPrefix(r.result, "Event rejected: ") || !strings.Contains(r.result, tc.reason) {
				t.Errorf("reason %q, want it to mention %q", r.result, tc.reason)
			}
		})
	}
	closes := []struct{ name, src string }{
		{"no ivorn", strings.Replace(string(testEventBytes("x")), `ivorn="ivo://test.local/sample#x" `, "", 1)},
		{"malformed with no ivorn", "<a><b></a>"},
		{"Transport message", string(newAck("ivo://a.b/c#d", "", time.Now()).marshal())},
	}
	for _, tc := range closes {
		t.Run(tc.name, func(t *testing.T) {
			if r := rawExchange(t, addr, []byte(tc.src)); r != nil {
				t.Fatalf("got a reply %+v, want the connection closed", r)
			}
		})
	}
	t.Run("rejected event not recorded", func(t *testing.T) {
		bad := strings.Replace(string(testEventBytes("again")), "ivo://test.local/sample#again", "ivo://x/bad#again", 1)
		for range 2 {
			r := rawExchange(t, addr, []byte(bad))
			if r == nil || !strings.Contains(r.result, "Invalid IVOID") {
				t.Fatalf("reply %+v", r)
			}
		}
	})
	if got := tb.m.accepted.Load(); got != 1 {
		t.Errorf("accepted = %d, want 1", got)
	}
}

func TestReceiverFrameFaults(t *testing.T) {
	cfg := receiveConfig(t)
	cfg.maxMessageSize = 1000
	cfg.receiverTimeout = 200 * time.Millisecond
	tb := startBroker(t, cfg)
	addr := tb.receiveAddr()
	expectClosed := func(t *testing.T, send []byte, within time.Duration) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if send != nil {
			c.Write(send)
		}
		c.SetReadDeadline(time.Now().Add(within))
		var b [1]byte
		if _, err := c.Read(b[:]); !errors.Is(err, io.EOF) && !isConnReset(err) {
			t.Fatalf("read: %v, want the connection closed by the broker", err)
		}
	}
	t.Run("oversize length", func(t *testing.T) { expectClosed(t, []byte{0, 0, 0x03, 0xE9, '<'}, time.Second) })
	t.Run("zero length", func(t *testing.T) { expectClosed(t, []byte{0, 0, 0, 0}, time.Second) })
	t.Run("silent author times out", func(t *testing.T) { expectClosed(t, nil, 2*time.Second) })
	t.Run("partial frame times out", func(t *testing.T) { expectClosed(t, []byte{0, 0, 0, 100, '<'}, 2*time.Second) })
	t.Run("at the limit", func(t *testing.T) {
		ev := testEventBytes("limit")
		pad := 1000 - len(ev)
		ev = append(ev, bytes.Repeat([]byte(" "), pad)...)
		if r := rawExchange(t, addr, ev); r == nil || r.role != "ack" {
			t.Fatalf("reply %+v", r)
		}
	})
}

func TestReceiverWhitelist(t *testing.T) {
	cfg := receiveConfig(t)
	cfg.authorWhitelist = []string{"127.0.0.2/32"}
	tb := startBroker(t, cfg)
	c, err := net.Dial("tcp", tb.receiveAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	writeFrame(c, testEventBytes("wl"))
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := readFrame(c, 1000); !errors.Is(err, io.EOF) && !isConnReset(err) {
		t.Fatalf("read %v, want the connection closed", err)
	}
	waitFor(t, "refusal log", func() bool { return strings.Contains(tb.logs.String(), "not in the whitelist") })
	if tb.m.connRefused.get("not-whitelisted") != 1 {
		t.Errorf("not-whitelisted count %d", tb.m.connRefused.get("not-whitelisted"))
	}
	// 127.0.0.2 is allowed.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	c2, err := d.Dial("tcp", tb.receiveAddr())
	if err != nil {
		t.Skipf("cannot bind 127.0.0.2: %v", err)
	}
	defer c2.Close()
	writeFrame(c2, testEventBytes("wl2"))
	c2.SetReadDeadline(time.Now().Add(2 * time.Second))
	msg, err := readFrame(c2, defaultMaxMessageSize)
	if err != nil || !bytes.Contains(msg, []byte(`role="ack"`)) {
		t.Fatalf("allowed peer: %v %s", err, msg)
	}
}

func isConnReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

func TestReceiverConnectionLimit(t *testing.T) {
	cfg := receiveConfig(t)
	cfg.maxConnections = 2
	cfg.receiverTimeout = 3 * time.Second
	tb := startBroker(t, cfg)
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", tb.receiveAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	waitFor(t, "two connections held", func() bool { return len(tb.receivers[0].sem) == 2 })
	c, err := net.Dial("tcp", tb.receiveAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	var b [1]byte
	if _, err := c.Read(b[:]); !errors.Is(err, io.EOF) && !isConnReset(err) {
		t.Fatalf("third connection: %v, want closed", err)
	}
	held[0].Close()
	waitFor(t, "a slot freed", func() bool { return len(tb.receivers[0].sem) < 2 })
	if r := rawExchange(t, tb.receiveAddr(), testEventBytes("limit-ok")); r == nil || r.role != "ack" {
		t.Fatalf("after a slot freed: %+v", r)
	}
}

func TestBroadcasterDeliversInOrder(t *testing.T) {
	tb := startBroker(t, receiveConfig(t))
	sub := dialSubscriber(t, tb.broadcastAddr(), nil)
	if !strings.HasPrefix(sub.softname, "comet/") {
		t.Errorf("authenticate software %q", sub.softname)
	}
	waitFor(t, "subscriber", func() bool { return subscriberCount(tb.broker) == 1 })
	var sent [][]byte
	for i := range 20 {
		ev := testEventBytes("order-" + string(rune('a'+i)))
		sent = append(sent, ev)
		if r := rawExchange(t, tb.receiveAddr(), ev); r == nil || r.role != "ack" {
			t.Fatalf("submit %d: %+v", i, r)
		}
	}
	for i, want := range sent {
		got := sub.nextEvent(2 * time.Second)
		if !bytes.Equal(got, want) {
			t.Fatalf("event %d: got %q", i, got)
		}
	}
	waitFor(t, "acks counted", func() bool {
		p := tb.broadcasters[0].peers()
		return len(p) == 1 && p[0].AcksOutstanding == 0 && p[0].Delivered == 20
	})
}

func TestBroadcasterIamaliveAndDrops(t *testing.T) {
	cfg := receiveConfig(t)
	cfg.iamaliveInterval = 100 * time.Millisecond
	tb := startBroker(t, cfg)

	healthy := dialSubscriber(t, tb.broadcastAddr(), nil)
	silent := dialSubscriber(t, tb.broadcastAddr(), nil, func(s *testSubscriber) { s.noAlive = true })
	noAcks := dialSubscriber(t, tb.broadcastAddr(), nil, func(s *testSubscriber) { s.noAck = true })
	waitFor(t, "three subscribers", func() bool { return subscriberCount(tb.broker) == 3 })

	// iamalive arrives, with our software named.
	select {
	case tr := <-healthy.others:
		if tr.role != "iamalive" || tr.origin != "ivo://test/comet" || !strings.HasPrefix(tr.param("Server"), "comet/") {
			t.Fatalf("got %+v", tr)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no iamalive")
	}
	for i := range 12 {
		if r := rawExchange(t, tb.receiveAddr(), testEventBytes("drop-"+string(rune('a'+i)))); r == nil || r.role != "ack" {
			t.Fatalf("submit: %+v", r)
		}
	}
	if !silent.waitClosed(2 * time.Second) {
		t.Error("subscriber that does not answer iamalive was not dropped")
	}
	if !noAcks.waitClosed(2 * time.Second) {
		t.Error("subscriber that does not ack was not dropped")
	}
	// The healthy one stays, through several more ticks.
	time.Sleep(350 * time.Millisecond)
	if healthy.waitClosed(0) {
		t.Fatalf("healthy subscriber dropped: %v", healthy.readErr)
	}
	logs := tb.logs.String()
	for _, want := range []string{"appears dead", "not acknowledging"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log does not mention %q", want)
		}
	}
}

func TestBroadcasterDropsOnNak(t *testing.T) {
	tb := startBroker(t, receiveConfig(t))
	s := dialSubscriber(t, tb.broadcastAddr(), nil)
	writeFrame(s.conn, newNak("ivo://a.b/c#d", "", "no", time.Now()).marshal())
	if !s.waitClosed(2 * time.Second) {
		t.Fatal("subscriber that naked was not dropped")
	}
}

func TestBroadcasterQueueOverflow(t *testing.T) {
	cfg := receiveConfig(t)
	cfg.subscriberQueue = 4
	tb := startBroker(t, cfg)
	// A subscriber that never reads: its socket buffers fill, then its queue.
	c, err := net.Dial("tcp", tb.broadcastAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fast := dialSubscriber(t, tb.broadcastAddr(), nil)
	waitFor(t, "two subscribers", func() bool { return subscriberCount(tb.broker) == 2 })
	big := testEventBytes("big")
	big = append(big, bytes.Repeat([]byte("\n"), 200000)...)
	dropped := false
	for i := 0; i < 200 && !dropped; i++ {
		ev := bytes.Replace(big, []byte("#big"), []byte("#big-"+strings.Repeat("x", i)), 1)
		tb.dispatch(&event{raw: ev, root: ev, ivorn: "x"})
		if fast.nextEvent(2*time.Second) == nil {
			t.Fatalf("fast subscriber starved at event %d", i)
		}
		dropped = strings.Contains(tb.logs.String(), "not keeping up")
	}
	if !dropped {
		t.Fatal("slow subscriber never dropped")
	}
	waitFor(t, "slow subscriber removed", func() bool { return subscriberCount(tb.broker) == 1 })
}

func TestBroadcasterTestEvent(t *testing.T) {
	cfg := receiveConfig(t)
	cfg.testInterval = 50 * time.Millisecond
	tb := startBroker(t, cfg)
	s := dialSubscriber(t, tb.broadcastAddr(), nil)
	ev := s.nextEvent(2 * time.Second)
	if ev == nil {
		t.Fatal("no test event")
	}
	doc, ivorn, rej := checkSubmission(ev)
	if rej != nil {
		t.Fatalf("test event rejected by our own receiver checks: %v\n%s", rej, ev)
	}
	if !strings.HasPrefix(ivorn, "ivo://test/comet#TestEvent-") || doc.elem.local != "VOEvent" {
		t.Errorf("ivorn %q", ivorn)
	}
	if role, _ := doc.elem.attr("role"); role != "test" {
		t.Errorf("role %q", role)
	}
	if !bytes.Contains(ev, []byte("(IVOA-test)")) {
		t.Error("test event does not name the software with IVOA-test")
	}
	if tb.db.len() != 0 {
		t.Error("test event recorded in the event database")
	}
}

// TestEndToEndRelay: author → A; B subscribes to A; a subscriber of B gets
// the event exactly once, byte for byte.
func TestEndToEndRelay(t *testing.T) {
	a, b := startRelayPair(t)
	sub := dialSubscriber(t, b.broadcastAddr(), nil)
	waitFor(t, "B subscribed to A", func() bool { return subscriberCount(a.broker) == 1 })

	ev := testEventBytes("e2e")
	if code := runSendvoTo(t, a.receiveAddr(), ev); code != exitOK {
		t.Fatalf("sendvo exit %d", code)
	}
	got := sub.nextEvent(3 * time.Second)
	if !bytes.Equal(got, ev) {
		t.Fatalf("subscriber of B got %q", got)
	}
	if extra := sub.nextEvent(300 * time.Millisecond); extra != nil {
		t.Fatalf("delivered twice: %q", extra)
	}
	// B acked A, and A's subscriber status shows B's software.
	waitFor(t, "B's ack", func() bool {
		p := a.broadcasters[0].peers()
		return len(p) == 1 && p[0].Delivered == 1 && p[0].AcksOutstanding == 0
	})
	st := b.status()
	var up *peerStatus
	for i := range st.Peers {
		if st.Peers[i].Role == "upstream" {
			up = &st.Peers[i]
		}
	}
	if up == nil || up.State != "connected" || up.Delivered != 1 || !strings.HasPrefix(up.Software, "comet/") {
		t.Errorf("upstream status %+v", up)
	}
}

// TestLoop: A subscribes to B and B to A. An event submitted to A reaches a
// subscriber of each exactly once and stops circulating.
func TestLoop(t *testing.T) {
	// Bind both first, so each knows the other's address.
	cfgA := receiveConfig(t)
	cfgA.localIVO = "ivo://test/loopA"
	cfgB := receiveConfig(t)
	cfgB.localIVO = "ivo://test/loopB"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	la, err := newBroker(cfgA, log)
	if err != nil {
		t.Fatal(err)
	}
	aAddr := la.broadcasters[0].l.addr()
	la.closeListeners()
	la.db.close()
	lb, err := newBroker(cfgB, log)
	if err != nil {
		t.Fatal(err)
	}
	bAddr := lb.broadcasters[0].l.addr()
	lb.closeListeners()
	lb.db.close()
	cfgA.broadcast = []endpoint{{"tcp", aAddr}}
	cfgA.remotes = []string{bAddr}
	cfgB.broadcast = []endpoint{{"tcp", bAddr}}
	cfgB.remotes = []string{aAddr}
	a := startBroker(t, cfgA)
	b := startBroker(t, cfgB)
	subA := dialSubscriber(t, aAddr, nil)
	subB := dialSubscriber(t, bAddr, nil)
	waitFor(t, "mutual subscription", func() bool { return subscriberCount(a.broker) == 2 && subscriberCount(b.broker) == 2 })

	ev := testEventBytes("loop")
	if r := rawExchange(t, a.receiveAddr(), ev); r == nil || r.role != "ack" {
		t.Fatalf("submit: %+v", r)
	}
	for name, s := range map[string]*testSubscriber{"A": subA, "B": subB} {
		if got := s.nextEvent(3 * time.Second); !bytes.Equal(got, ev) {
			t.Fatalf("subscriber of %s got %q", name, got)
		}
	}
	// It came back to A once, as a duplicate, and then stopped.
	waitFor(t, "A sees the echo as a duplicate", func() bool { return a.m.duplicates.Load() == 1 })
	time.Sleep(300 * time.Millisecond)
	for name, s := range map[string]*testSubscriber{"A": subA, "B": subB} {
		if extra := s.nextEvent(10 * time.Millisecond); extra != nil {
			t.Errorf("subscriber of %s got it twice", name)
		}
	}
	if a.m.accepted.Load() != 1 || b.m.accepted.Load() != 1 || a.m.duplicates.Load() != 1 || b.m.duplicates.Load() != 0 {
		t.Errorf("accepted A=%d B=%d duplicates A=%d B=%d", a.m.accepted.Load(), b.m.accepted.Load(), a.m.duplicates.Load(), b.m.duplicates.Load())
	}
}

func TestSubscriberAnswersAndFilters(t *testing.T) {
	// A fake upstream broker: sends authenticate and iamalive, then an event.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig(t)
	cfg.localIVO = "ivo://test/sub"
	cfg.remotes = []string{ln.Addr().String()}
	cfg.filters = []string{"//Param"}
	tb := startBroker(t, cfg)
	_ = tb
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	exchange := func(msg []byte) *transport {
		t.Helper()
		if err := writeFrame(c, msg); err != nil {
			t.Fatal(err)
		}
		reply, err := readFrame(c, defaultMaxMessageSize)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := parseTransport(reply)
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	auth := exchange(newBrokerMessage("authenticate", "ivo://test/up", time.Now()).marshal())
	if auth.role != "authenticate" || auth.origin != "ivo://test/up" || auth.response != "ivo://test/sub" ||
		len(auth.filters) != 1 || auth.filters[0] != "//Param" || !strings.Contains(auth.param("User-Agent"), "(IVOA-science)") {
		t.Errorf("authenticate response %+v", auth)
	}
	alive := exchange(newBrokerMessage("iamalive", "ivo://test/up", time.Now()).marshal())
	if alive.role != "iamalive" || alive.origin != "ivo://test/up" || alive.response != "ivo://test/sub" {
		t.Errorf("iamalive response %+v", alive)
	}
	for i, want := range []string{"ack", "ack"} { // new, then duplicate: both acked
		ack := exchange(testEventBytes("from-up"))
		if ack.role != want || ack.origin != "ivo://test.local/sample#from-up" {
			t.Errorf("event %d: %+v", i, ack)
		}
	}
	bad := exchange([]byte(strings.Replace(string(testEventBytes("x")), "ivo://test.local/sample#x", "ivo://x/y#z", 1)))
	if bad.role != "ack" {
		t.Errorf("invalid IVOID from upstream: %+v, want an ack", bad)
	}
	if tb.m.accepted.Load() != 1 || tb.m.duplicates.Load() != 1 {
		t.Errorf("accepted %d duplicates %d", tb.m.accepted.Load(), tb.m.duplicates.Load())
	}
}

func TestSubscriberTimeoutAndBackoff(t *testing.T) {
	// An upstream that accepts and says nothing, then closes at once.
	up := startFakeUpstream(t, func(n int, c net.Conn) {
		if n == 1 {
			// Keep the first one open and silent: the subscriber must
			// give up after subscriberTimeout.
			io.Copy(io.Discard, c)
		}
		c.Close()
	})
	cfg := testConfig(t)
	cfg.remotes = []string{up.ln.Addr().String()}
	cfg.subscriberTimeout = 150 * time.Millisecond
	cfg.backoffBase = 40 * time.Millisecond
	cfg.backoffMax = 10 * time.Second
	cfg.backoffReset = 10 * time.Second
	tb := startBroker(t, cfg)
	waitFor(t, "five connection attempts", func() bool { return len(up.times()) >= 5 })
	tb.stop()
	accepts := up.times()
	if d := accepts[1].Sub(accepts[0]); d < 150*time.Millisecond {
		t.Errorf("silent upstream dropped after %v, want at least the 150ms timeout", d)
	}
	// Attempts 2.. are drops at once: the waits must grow (jitter keeps
	// each in [d/2, d], so compare waits two apart, which double twice).
	for i := 3; i+2 < len(accepts); i++ {
		w1 := accepts[i].Sub(accepts[i-1])
		w2 := accepts[i+2].Sub(accepts[i+1])
		if w2 < w1 {
			t.Errorf("back-off did not grow: %v then %v", w1, w2)
		}
	}
	if !strings.Contains(tb.logs.String(), "no message for 150ms") {
		t.Error("timeout not logged")
	}
}

func TestBackoff(t *testing.T) {
	base, max := time.Second, time.Minute
	for n := 1; n < 20; n++ {
		d := min(base<<min(n-1, 30), max)
		for range 50 {
			got := backoff(n, base, max)
			if got < d/2 || got > d {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, got, d/2, d)
			}
		}
	}
}

func TestBrokerRefusesBusyPort(t *testing.T) {
	cfg := receiveConfig(t)
	tb := startBroker(t, cfg)
	cfg2 := testConfig(t)
	cfg2.receive = []endpoint{{"tcp", tb.receiveAddr()}}
	if _, err := newBroker(cfg2, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil || !strings.Contains(err.Error(), "cannot listen") {
		t.Fatalf("err = %v", err)
	}
}

func TestUnixSocketReceiver(t *testing.T) {
	dir, err := os.MkdirTemp("", "comet")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := testConfig(t)
	path := dir + "/recv.sock"
	cfg.receive = []endpoint{{"unix", path}}
	cfg.authorWhitelist = []string{"10.0.0.0/8"} // does not apply to Unix sockets
	startBroker(t, cfg)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	writeFrame(c, testEventBytes("unix"))
	msg, err := readFrame(c, defaultMaxMessageSize)
	if err != nil || !bytes.Contains(msg, []byte(`role="ack"`)) {
		t.Fatalf("%v %s", err, msg)
	}
}

func TestSendQueueLimit(t *testing.T) {
	q := newSendQueue(3, 0)
	for i := range 3 {
		if !q.push(outItem{msg: []byte{byte(i)}}) {
			t.Fatalf("push %d refused below the limit", i)
		}
	}
	if q.push(outItem{msg: []byte{9}}) {
		t.Fatal("push beyond the limit accepted")
	}
	select {
	case <-q.ready:
	default:
		t.Fatal("ready not signalled")
	}
	got := q.take(nil)
	if len(got) != 3 || got[0].msg[0] != 0 || got[2].msg[0] != 2 {
		t.Fatalf("take = %v", got)
	}
	if !q.push(outItem{msg: []byte{3}}) {
		t.Fatal("push after take refused")
	}
}

// TestReceiverSchemaInvalid: an author submitting a schema-invalid event
// gets a nak naming the rule; nothing is relayed or recorded, so the same
// bytes get the same answer again.
func TestReceiverSchemaInvalid(t *testing.T) {
	tb := startBroker(t, receiveConfig(t))
	sub := dialSubscriber(t, tb.broadcastAddr(), nil)
	waitFor(t, "subscriber", func() bool { return subscriberCount(tb.broker) == 1 })
	bad := bytes.Replace(testEventBytes("schema"), []byte("<Date>2026-11-22T02:14:27</Date>"), []byte("<Date>yesterday</Date>"), 1)
	for range 2 {
		r := rawExchange(t, tb.receiveAddr(), bad)
		if r == nil || r.role != "nak" || r.origin != "ivo://test.local/sample#schema" {
			t.Fatalf("reply %+v", r)
		}
		if !strings.HasPrefix(r.result, "Event rejected: schema: /VOEvent/Who/Date") || !strings.Contains(r.result, "xs:dateTime") {
			t.Errorf("reason %q does not name the rule", r.result)
		}
	}
	if ev := sub.nextEvent(200 * time.Millisecond); ev != nil {
		t.Fatalf("schema-invalid event relayed: %q", ev)
	}
	if tb.db.len() != 0 || tb.m.rejected.get("schema") != 2 || tb.m.accepted.Load() != 0 {
		t.Errorf("recorded %d, schema rejections %d, accepted %d", tb.db.len(), tb.m.rejected.get("schema"), tb.m.accepted.Load())
	}
}
