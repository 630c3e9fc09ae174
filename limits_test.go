package main

// Tests at the edges of the limits against untrusted peers (contract
// section 10), and of what the network carries.

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestByteBudget: a reader waits for room; a small request that fits is
// never kept behind a large one that does not; a request larger than the
// whole budget goes alone.
func TestByteBudget(t *testing.T) {
	b := newByteBudget(100)
	ctx := context.Background()
	if err := b.acquire(ctx, 60); err != nil {
		t.Fatal(err)
	}
	big := make(chan error, 1)
	go func() { big <- b.acquire(ctx, 80) }() // must wait
	time.Sleep(10 * time.Millisecond)
	select {
	case err := <-big:
		t.Fatalf("80 bytes granted with 60 of 100 held: %v", err)
	default:
	}
	// A small one fits and is not kept behind the big one.
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := b.acquire(sctx, 30); err != nil {
		t.Fatalf("small request waited behind a large one: %v", err)
	}
	b.release(60)
	b.release(30)
	if err := <-big; err != nil {
		t.Fatal(err)
	}
	if got := b.inUse(); got != 80 {
		t.Errorf("in use %d, want 80", got)
	}
	// A waiter gives up at its deadline and holds nothing.
	tctx, tcancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer tcancel()
	if err := b.acquire(tctx, 50); err == nil {
		t.Fatal("granted over the budget")
	}
	b.release(80)
	if err := b.acquire(ctx, 500); err != nil || b.inUse() != 500 {
		t.Fatalf("an oversize request with nothing held: %v, in use %d", err, b.inUse())
	}
	b.release(500)
	if b.inUse() != 0 || b.waits.Load() < 2 {
		t.Errorf("in use %d, waits %d", b.inUse(), b.waits.Load())
	}
}

// TestInflightBudgetBoundsReads: connections each sending a large frame
// hold at most --max-inflight-bytes between them; an honest small
// submission still gets its ack meanwhile.
func TestInflightBudgetBoundsReads(t *testing.T) {
	cfg := receiveConfig(t)
	cfg.maxMessageSize = 64 << 10
	cfg.maxInflightBytes = 4 * frameCharge(64<<10) // four large frames at once
	tb := startBroker(t, cfg)
	var conns []net.Conn
	for range 20 {
		c, err := net.Dial("tcp", tb.receiveAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Announce a 64 KiB frame and send only part of it: each holds
		// its charge while it waits for the rest.
		c.Write([]byte{0, 1, 0, 0})
		c.Write(bytes.Repeat([]byte("x"), 1000))
		conns = append(conns, c)
	}
	large := frameCharge(64 << 10)
	waitFor(t, "budget taken by large frames", func() bool { return tb.inflight.inUse() >= 3*large })
	time.Sleep(50 * time.Millisecond)
	if used := tb.inflight.inUse(); used > cfg.maxInflightBytes {
		t.Fatalf("in flight %d bytes, over the budget %d", used, cfg.maxInflightBytes)
	}
	// An honest small submission is not kept behind them.
	r := rawExchange(t, tb.receiveAddr(), testEventBytes("inflight"))
	if r == nil || r.role != "ack" {
		t.Fatalf("honest author: %+v", r)
	}
	_ = conns
}

// TestSubscriberQueueBytes: a subscriber that does not read is dropped
// when its queue passes --subscriber-queue-bytes, and counted; another
// subscriber keeps receiving.
func TestSubscriberQueueBytes(t *testing.T) {
	cfg := receiveConfig(t)
	ev := testEventBytes("qb-0")
	cfg.subscriberQueueBytes = int64(len(ev)) * 5
	tb := startBroker(t, cfg)
	stuck := make([]outItem, 0)
	_ = stuck
	q := newSendQueue(100, int64(len(ev))*5)
	for i := range 5 {
		if !q.push(outItem{ev: &event{raw: ev}}) {
			t.Fatalf("push %d refused within the byte limit", i)
		}
	}
	if q.push(outItem{ev: &event{raw: ev}}) {
		t.Fatal("push over the byte limit accepted")
	}
	good := dialSubscriber(t, tb.broadcastAddr(), nil)
	bad := dialSubscriber(t, tb.broadcastAddr(), nil, func(s *testSubscriber) { s.noAck = true })
	_ = bad
	waitFor(t, "subscribers", func() bool { return subscriberCount(tb.broker) == 2 })
	// Fill the bad subscriber's queue directly, as a burst would.
	tb.broadcasters[0].mu.Lock()
	for s := range tb.broadcasters[0].subs {
		if s.peer == bad.conn.LocalAddr().String() {
			s.out.mu.Lock()
			s.out.bytes = s.out.limitBytes
			s.out.items = append(s.out.items, outItem{msg: []byte("x")})
			s.out.mu.Unlock()
		}
	}
	tb.broadcasters[0].mu.Unlock()
	if r := rawExchange(t, tb.receiveAddr(), testEventBytes("qb-1")); r == nil || r.role != "ack" {
		t.Fatalf("submit %+v", r)
	}
	if good.nextEvent(3*time.Second) == nil {
		t.Fatal("the good subscriber got nothing")
	}
	waitFor(t, "bad subscriber dropped", func() bool { return subscriberCount(tb.broker) == 1 })
	if tb.m.limitHits.get("subscriber-queue") != 1 {
		t.Errorf("limit hits %d, want 1", tb.m.limitHits.get("subscriber-queue"))
	}
}

// TestFilterBudget: a subscriber whose filters cost more than
// --filter-budget per event gets nothing for those events, the overrun is
// counted, and three in a row drop it; a cheap subscriber is unaffected.
func TestFilterBudget(t *testing.T) {
	cfg := receiveConfig(t)
	cfg.filterBudget = time.Millisecond
	tb := startBroker(t, cfg)
	// Quadratic over a few hundred nodes: far more than 1 ms.
	heavy := dialSubscriber(t, tb.broadcastAddr(), []string{`count(//*[count(//*[count(//*) > 0]) > 0]) < 0`})
	cheap := dialSubscriber(t, tb.broadcastAddr(), []string{`//Param`})
	waitFor(t, "filters installed", func() bool { return tb.broadcasters[0].filtering.Load() == 2 })
	var params strings.Builder
	for i := range 300 {
		params.WriteString(`<Param name="p" value="` + string(rune('a'+i%26)) + `"/>`)
	}
	for i := range 3 {
		ev := strings.Replace(string(testEventBytes("fb-"+string(rune('a'+i)))), `<Param name="magnitude" value="18"/>`, params.String(), 1)
		if r := rawExchange(t, tb.receiveAddr(), []byte(ev)); r == nil || r.role != "ack" {
			t.Fatalf("submit %d: %+v", i, r)
		}
		if cheap.nextEvent(3*time.Second) == nil {
			t.Fatalf("cheap subscriber missed event %d", i)
		}
	}
	if !heavy.waitClosed(3 * time.Second) {
		t.Fatal("the heavy subscriber was not dropped after three overruns")
	}
	if e := heavy.nextEvent(10 * time.Millisecond); e != nil {
		t.Errorf("heavy subscriber got an event: %.80s", e)
	}
	if n := tb.m.limitHits.get("filter-budget"); n != 3 {
		t.Errorf("filter-budget hits %d, want 3", n)
	}
}

// TestStuckHandlerDelaysNoOther: one handler that never returns does not
// stop another from handling every event.
func TestStuckHandlerDelaysNoOther(t *testing.T) {
	log, _ := newTestLogger()
	var m metrics
	var ran atomic.Int64
	stuck := &funcHandler{"stuck", func(ctx context.Context, _ *event) error { <-ctx.Done(); return ctx.Err() }}
	ok := &funcHandler{"ok", func(context.Context, *event) error { ran.Add(1); return nil }}
	q := newHandlerQueue([]handler{stuck, ok}, 8, 1, &m, log)
	for i := range 50 {
		q.submit(testEvent("ivo://x/y#z", "<e/>"))
		waitFor(t, "the other handler", func() bool { return ran.Load() == int64(i+1) })
	}
	st := q.status()
	if st[0].Name != "stuck" || st[0].Overflows != 50-9 || st[1].Overflows != 0 {
		t.Errorf("lanes %+v: the stuck lane should overflow, the other not", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	q.close(ctx)
}

// TestUpstreamNotXMLNotRelayed: what an upstream sends that is not
// well-formed XML is acked (the link stays up) but never relayed or
// recorded: mismatched tags, invalid UTF-8, a NUL byte, an unbound prefix.
func TestUpstreamNotXMLNotRelayed(t *testing.T) {
	good := testEventBytes("up-good")
	bad := [][]byte{
		[]byte(strings.Replace(string(testEventBytes("up-1")), "</Who>", "</Whom>", 1)),
		[]byte(strings.Replace(string(testEventBytes("up-2")), "18", "1\xff8", 1)),
		[]byte(strings.Replace(string(testEventBytes("up-3")), "18", "1\x008", 1)),
		[]byte(strings.Replace(string(testEventBytes("up-4")), "<Who>", "<x:Who>", 1)),
	}
	acks := make(chan string, 10)
	up := startFakeUpstream(t, func(_ int, c net.Conn) {
		defer c.Close()
		writeFrame(c, newBrokerMessage("authenticate", "ivo://fake/up", time.Now()).marshal())
		for _, ev := range append(bad, good) {
			writeFrame(c, ev)
		}
		for {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			msg, err := readFrame(c, defaultMaxMessageSize)
			if err != nil {
				return
			}
			if tr, err := parseTransport(msg); err == nil && tr.role == "ack" {
				acks <- tr.origin
			}
		}
	})
	cfg := testConfig(t)
	cfg.broadcast = []endpoint{{"tcp", "127.0.0.1:0"}}
	tb := startBroker(t, cfg)
	sub := dialSubscriber(t, tb.broadcastAddr(), nil)
	waitFor(t, "subscriber", func() bool { return subscriberCount(tb.broker) == 1 })
	u := newUpstream(tb.broker, up.ln.Addr().String())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { u.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	got := sub.nextEvent(5 * time.Second)
	if !bytes.Equal(got, good) {
		t.Fatalf("subscriber got %.100q, want the good event", got)
	}
	if extra := sub.nextEvent(200 * time.Millisecond); extra != nil {
		t.Fatalf("relayed a bad event: %.100q", extra)
	}
	for range len(bad) + 1 {
		select {
		case <-acks:
		case <-time.After(3 * time.Second):
			t.Fatal("not every event was acked")
		}
	}
	if n := tb.m.rejected.get(classXMLSyntax); n != int64(len(bad)) {
		t.Errorf("xml-syntax rejections %d, want %d", n, len(bad))
	}
}

// TestUTF16CarriedIntact: a UTF-16 event accepted by A's receiver reaches a
// subscriber of B (which subscribes to A) byte for byte, and B acks it.
func TestUTF16CarriedIntact(t *testing.T) {
	a, b := startRelayPair(t)
	sub := dialSubscriber(t, b.broadcastAddr(), nil)
	waitFor(t, "B subscribed to A", func() bool { return subscriberCount(a.broker) == 1 })
	ev := utf16LE(strings.Replace(string(testEventBytes("utf16")), "UTF-8", "UTF-16", 1))
	if r := rawExchange(t, a.receiveAddr(), ev); r == nil || r.role != "ack" {
		t.Fatalf("A's receiver: %+v", r)
	}
	got := sub.nextEvent(3 * time.Second)
	if !bytes.Equal(got, ev) {
		t.Fatalf("subscriber of B got %d bytes, want the %d sent", len(got), len(ev))
	}
	waitFor(t, "B's ack to A", func() bool {
		p := a.broadcasters[0].peers()
		return len(p) == 1 && p[0].Delivered == 1 && p[0].AcksOutstanding == 0
	})
	// The identity is the root element in the message's own bytes.
	ri, err := scanRoot(ev)
	if err != nil || ri.ivorn != "ivo://test.local/sample#utf16" || !bytes.HasPrefix(ev[ri.start:], utf16LE("<voe:VOEvent")[2:]) || !bytes.HasSuffix(ev[:ri.end], utf16LE(">")[2:]) {
		t.Errorf("UTF-16 root span %d..%d (%q) %v", ri.start, ri.end, ri.ivorn, err)
	}
}

// TestPerHostConnectionLimit: --max-connections-per-host connections from
// one address are served, the next is closed at once and counted as a
// refused connection (not a rejected event); others' slots are untouched.
func TestPerHostConnectionLimit(t *testing.T) {
	cfg := receiveConfig(t)
	cfg.maxConnectionsPerHost = 8
	tb := startBroker(t, cfg)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 8 {
		c, err := net.Dial("tcp", tb.receiveAddr())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	waitFor(t, "eight held", func() bool { return tb.receivers[0].perHost.count("127.0.0.1") == 8 })
	c, err := net.Dial("tcp", tb.receiveAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the ninth connection was served")
	}
	if n := tb.m.connRefused.get("host-limit"); n != 1 {
		t.Errorf("host-limit refusals %d, want 1", n)
	}
	if tb.m.rejected.get("host-limit") != 0 {
		t.Error("a connection refusal counted as a rejected event")
	}
	// From another loopback address: its own cap.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	c2, err := d.Dial("tcp", tb.receiveAddr())
	if err != nil {
		t.Skipf("cannot dial from 127.0.0.2: %v", err)
	}
	defer c2.Close()
	held[0].Close()
	r := rawExchangeVia(t, &d, tb.receiveAddr(), testEventBytes("perhost"))
	if r == nil || r.role != "ack" {
		t.Fatalf("another host: %+v", r)
	}
}

// TestGarbagePenaltyAndLogFlood: a host that keeps sending bad frames is
// put in the penalty box after garbageStrikesMax of them (then refused at
// accept), and its log lines are rate-limited with a count of the rest.
func TestGarbagePenaltyAndLogFlood(t *testing.T) {
	cfg := receiveConfig(t)
	tb := startBroker(t, cfg)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}}
	for range 200 {
		c, err := d.Dial("tcp", tb.receiveAddr())
		if err != nil {
			t.Skipf("cannot dial from 127.0.0.3: %v", err)
		}
		c.Write([]byte{0, 0, 0, 0}) // a zero-length frame
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		c.Read(make([]byte, 1))
		c.Close()
	}
	if tb.m.connRefused.get("penalty") == 0 {
		t.Error("the host was never refused for its garbage")
	}
	if n := strings.Count(tb.logs.String(), "author connection ended without an event"); n > peerLogBurst {
		t.Errorf("%d lines about the bad frames, want at most %d", n, peerLogBurst)
	}
	// An honest host is unaffected.
	if r := rawExchange(t, tb.receiveAddr(), testEventBytes("honest")); r == nil || r.role != "ack" {
		t.Fatalf("honest author: %+v", r)
	}
}

// TestQueuedItemsAccounted: the broadcaster's count of queued items (its
// bound on all queues together) returns to zero once subscribers are gone.
func TestQueuedItemsAccounted(t *testing.T) {
	tb := startBroker(t, receiveConfig(t))
	var subs []*testSubscriber
	for range 3 {
		subs = append(subs, dialSubscriber(t, tb.broadcastAddr(), nil, func(s *testSubscriber) { s.noAck = true }))
	}
	waitFor(t, "subscribers", func() bool { return subscriberCount(tb.broker) == 3 })
	for i := range 5 {
		rawExchange(t, tb.receiveAddr(), testEventBytes("acct-"+string(rune('a'+i))))
	}
	for _, s := range subs {
		s.conn.Close()
	}
	waitFor(t, "subscribers gone", func() bool { return subscriberCount(tb.broker) == 0 })
	if n := tb.broadcasters[0].queued.Load(); n != 0 {
		t.Errorf("queued items %d after every subscriber left, want 0", n)
	}
}

// TestHandledCallback: ev.handled runs once, after every handler finished
// (or at once with no handlers), and also when a lane skipped the event.
func TestHandledCallback(t *testing.T) {
	log, _ := newTestLogger()
	release := make(chan struct{})
	slow := &funcHandler{"slow", func(context.Context, *event) error { <-release; return nil }}
	fast := &funcHandler{"fast", func(context.Context, *event) error { return nil }}
	q := newHandlerQueue([]handler{slow, fast}, 4, 1, nil, log)
	var calls atomic.Int32
	ev := testEvent("ivo://x/y#h", "<e/>")
	ev.handled = func() { calls.Add(1) }
	q.submit(ev)
	time.Sleep(20 * time.Millisecond)
	if calls.Load() != 0 {
		t.Fatal("handled before the slow handler finished")
	}
	close(release)
	waitFor(t, "handled", func() bool { return calls.Load() == 1 })
	q.close(context.Background())
	none := newHandlerQueue(nil, 4, 1, nil, log)
	ev2 := testEvent("ivo://x/y#h2", "<e/>")
	ev2.handled = func() { calls.Add(1) }
	none.submit(ev2)
	if calls.Load() != 2 {
		t.Error("handled not called at once with no handlers")
	}
}

// TestWhitelistFileDeleted: a whitelist file that disappears before a
// reload is reported as a missing file, not as a bad network.
func TestWhitelistFileDeleted(t *testing.T) {
	path := t.TempDir() + "/authors"
	writeFile(t, path, "127.0.0.0/8\n")
	if _, err := loadWhitelist([]string{path}); err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	_, err := loadWhitelist([]string{path})
	if err == nil || !strings.Contains(err.Error(), "no such file") || strings.Contains(err.Error(), "not an IPv4") {
		t.Errorf("err = %v, want it to say the file is missing", err)
	}
	if _, err := loadWhitelist([]string{"10.0.0.300/8"}); err == nil || !strings.Contains(err.Error(), "10.0.0.300") {
		t.Errorf("a mistyped network: %v", err)
	}
}

// TestCmdTimeoutDefault: --cmd-timeout is 60 s unless given.
func TestCmdTimeoutDefault(t *testing.T) {
	cfg, err := parseBrokerArgs([]string{"--receive", "--local-ivo=ivo://test/comet", "--eventdb", t.TempDir(), "--cmd", "/bin/true"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := buildHandlers(cfg.handlers, nil)
	if err != nil || len(hs) != 1 {
		t.Fatalf("%v %v", hs, err)
	}
	if got := hs[0].(*cmdHandler).timeout; got != 60*time.Second {
		t.Errorf("default --cmd-timeout %v, want 60s", got)
	}
}
