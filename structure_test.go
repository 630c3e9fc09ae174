package main

// Tests of the broker's shape: one configuration value per parse, one
// admission order for every ingest path, one bounded shutdown, and one
// identity for dedup and signatures.

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestParseTwiceEqual: parsing the same arguments twice gives equal
// configurations (handlers included), and a later parse without --cmd has
// none: parsing keeps no state.
func TestParseTwiceEqual(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--receive", "--broadcast", "--local-ivo=ivo://test/comet", "--eventdb", dir,
		"--cmd", "/bin/true", "--cmd-timeout", "5s", "--print-event", "--save-event", "--save-event-directory", dir,
		"--remote", "upstream.example:8099", "--filter", "//Who", "--author-whitelist", "127.0.0.0/8", "-v"}
	a, err := parseBrokerArgs(args, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseBrokerArgs(args, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("two parses differ:\n%+v\n%+v", a, b)
	}
	hs, err := buildHandlers(a.handlers, nil)
	if err != nil || len(hs) != 3 {
		t.Fatalf("handlers %v %v, want cmd, print-event, save-event", hs, err)
	}
	c, err := parseBrokerArgs([]string{"--receive", "--local-ivo=ivo://test/comet", "--eventdb", dir}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if hs, _ := buildHandlers(c.handlers, nil); len(hs) != 0 {
		t.Errorf("a parse without handler options gave %d handlers", len(hs))
	}
}

// pendingFor reports how many events were queued for the broadcaster's
// only subscriber.
func pendingFor(b *broker) int {
	bc := b.broadcasters[0]
	bc.mu.Lock()
	defer bc.mu.Unlock()
	n := 0
	for s := range bc.subs {
		s.out.mu.Lock()
		n += int(s.out.events)
		s.out.mu.Unlock()
	}
	return n
}

// TestRelayBeforeReply: on both ingest paths the event is relayed before
// the sender gets its reply (admission.go states the rule), so by the time
// an author reads its ack, or an upstream reads our ack, the event is
// already with the subscriber.
func TestRelayBeforeReply(t *testing.T) {
	t.Run("author", func(t *testing.T) {
		tb := startBroker(t, receiveConfig(t))
		sub := dialSubscriber(t, tb.broadcastAddr(), nil, func(s *testSubscriber) { s.noAck = true })
		_ = sub
		waitFor(t, "subscriber", func() bool { return subscriberCount(tb.broker) == 1 })
		for i := range 20 {
			r := rawExchange(t, tb.receiveAddr(), testEventBytes("order-"+string(rune('a'+i))))
			if r == nil || r.role != "ack" {
				t.Fatalf("reply %+v", r)
			}
			if n := pendingFor(tb.broker); n != i+1 {
				t.Fatalf("after ack %d the subscriber had %d events, want %d", i+1, n, i+1)
			}
		}
	})
	t.Run("upstream", func(t *testing.T) {
		events := make(chan []byte)
		acks := make(chan *transport, 10)
		up := startFakeUpstream(t, func(_ int, c net.Conn) {
			defer c.Close()
			writeFrame(c, newBrokerMessage("authenticate", "ivo://fake/up", time.Now()).marshal())
			for ev := range events {
				writeFrame(c, ev)
				for {
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					msg, err := readFrame(c, defaultMaxMessageSize)
					if err != nil {
						return
					}
					if tr, err := parseTransport(msg); err == nil && tr.role == "ack" {
						acks <- tr
						break
					}
				}
			}
		})
		cfg := testConfig(t)
		cfg.broadcast = []endpoint{{"tcp", "127.0.0.1:0"}}
		cfg.remotes = []string{up.ln.Addr().String()}
		tb := startBroker(t, cfg)
		dialSubscriber(t, tb.broadcastAddr(), nil, func(s *testSubscriber) { s.noAck = true })
		waitFor(t, "subscriber", func() bool { return subscriberCount(tb.broker) == 1 })
		defer close(events)
		for i := range 20 {
			events <- testEventBytes("up-order-" + string(rune('a'+i)))
			select {
			case <-acks:
			case <-time.After(5 * time.Second):
				t.Fatal("no ack from the broker")
			}
			if n := pendingFor(tb.broker); n != i+1 {
				t.Fatalf("after ack %d the subscriber had %d events, want %d", i+1, n, i+1)
			}
		}
	})
}

// TestUpstreamGarbage: an upstream that sends garbage is dropped and
// reconnected with a growing back-off, never in a tight loop. The waits are
// recorded through the broker's injected wait instead of slept.
func TestUpstreamGarbage(t *testing.T) {
	up := startFakeUpstream(t, func(_ int, c net.Conn) {
		// A little-endian length prefix and text: an oversize frame.
		c.Write([]byte("\x10\x27\x00\x00hello, this is not VTP"))
		c.Close()
	})
	cfg := testConfig(t)
	cfg.remotes = []string{up.ln.Addr().String()}
	cfg.maxMessageSize = 1000
	cfg.backoffBase = 50 * time.Millisecond
	cfg.backoffMax = time.Second
	b, err := newBroker(cfg, newDiscardLogger())
	if err != nil {
		t.Fatal(err)
	}
	logs := &testLogWriter{t: t}
	b.log = newTestBrokerLogger(logs)
	b.upstreams = []*upstream{newUpstream(b, cfg.remotes[0])}
	var mu sync.Mutex
	var waits []time.Duration
	b.wait = func(ctx context.Context, d time.Duration) bool {
		mu.Lock()
		defer mu.Unlock()
		waits = append(waits, d)
		return len(waits) < 7
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { b.upstreams[0].run(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("subscriber did not stop")
	}
	cancel()
	b.abandon()
	// 50, 100, 200, 400, 800 ms, then the 1 s cap, each with jitter down
	// to half.
	want := []time.Duration{50, 100, 200, 400, 800, 1000, 1000}
	if len(waits) != len(want) {
		t.Fatalf("%d waits, want %d", len(waits), len(want))
	}
	for i, w := range want {
		d := w * time.Millisecond
		if waits[i] < d/2 || waits[i] > d {
			t.Errorf("wait %d = %v, want in [%v, %v]", i+1, waits[i], d/2, d)
		}
	}
	if n := len(up.times()); n != len(want) {
		t.Errorf("%d connections, want one per attempt (%d)", n, len(want))
	}
	if !strings.Contains(logs.String(), "exceeds the limit") {
		t.Error("oversize frame from upstream not logged")
	}
}

// TestSIGTERMBoundedShutdown: the real binary, with a connected
// subscriber, a live upstream and a handler still running, exits within
// the shutdown deadline after SIGTERM.
func TestSIGTERMBoundedShutdown(t *testing.T) {
	// The upstream: speaks authenticate, then (once our subscriber is
	// connected) sends one event and keeps the connection open.
	subscribed := make(chan struct{})
	up := startFakeUpstream(t, func(_ int, c net.Conn) {
		defer c.Close()
		writeFrame(c, newBrokerMessage("authenticate", "ivo://fake/up", time.Now()).marshal())
		select {
		case <-subscribed:
		case <-time.After(10 * time.Second):
		}
		writeFrame(c, testEventBytes("sigterm-up"))
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		for {
			if _, err := readFrame(c, defaultMaxMessageSize); err != nil {
				return
			}
		}
	})
	dir := t.TempDir()
	slow := filepath.Join(dir, "slow.sh")
	started := filepath.Join(dir, "started")
	writeFile(t, slow, "#!/bin/sh\ntouch "+started+"\nexec sleep 30\n")
	os.Chmod(slow, 0o755)
	port := freePort(t)
	p := startProcess(t, "--broadcast=tcp:"+port+":interface=127.0.0.1", "--local-ivo=ivo://test/proc",
		"--eventdb", filepath.Join(dir, "db"), "--remote", up.ln.Addr().String(), "--cmd", slow, "-n")
	addr := "127.0.0.1:" + port
	waitListening(t, addr)
	sub := dialSubscriber(t, addr, nil)
	close(subscribed)
	if ev := sub.nextEvent(5 * time.Second); ev == nil {
		t.Fatal("the upstream's event did not reach the subscriber")
	}
	waitFor(t, "handler running", func() bool { _, err := os.Stat(started); return err == nil })
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Fatal("did not stop within 5 s of SIGTERM")
	}
	if d := time.Since(start); d > shutdownTimeout+300*time.Millisecond {
		t.Errorf("stopping took %v, want within the %v deadline", d, shutdownTimeout)
	}
	if p.err != nil {
		t.Errorf("exit: %v", p.err)
	}
	if !sub.waitClosed(time.Second) {
		t.Error("subscriber connection not closed")
	}
}

// FuzzEventIdentity: for any input the receiver accepts, the bytes the
// event is deduplicated by and the bytes a signature is checked over are
// the same span of the message.
func FuzzEventIdentity(f *testing.F) {
	f.Add(testEventBytes("fuzz"))
	f.Add(medianEvent(f))
	f.Add([]byte(strings.Replace(string(testEventBytes("c")), "<Who>", "<!-- x --><Who><![CDATA[</voe:VOEvent>]]>", 1)))
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, ivorn, rej := checkSubmission(raw)
		if rej != nil {
			return
		}
		b := &broker{cfg: &config{localIVO: "ivo://x/y"}, log: newDiscardLogger(), m: &metrics{}, now: time.Now}
		ev := b.submissionEvent(raw, ivorn, "fuzz", nil)
		start, end, err := rootElementSpan(raw)
		if err != nil {
			t.Fatalf("accepted, but verify finds no root: %v", err)
		}
		if ev.rootStart != start || ev.rootEnd != end || !bytes.Equal(ev.root, raw[start:end]) {
			t.Fatalf("identity %d..%d, signed bytes %d..%d", ev.rootStart, ev.rootEnd, start, end)
		}
		if ev.key != eventKeyOf(raw[start:end]) {
			t.Fatal("dedup key is not the key of the signed bytes")
		}
	})
}

// TestHelpCommand: "comet help" prints the broker's options; "comet help
// CMD" that command's help; an unknown one is a usage error.
func TestHelpCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := dispatch("comet", []string{"help"}, nil, &out, &errb); code != exitOK || !strings.Contains(out.String(), "--local-ivo") {
		t.Errorf("comet help: %d %q", code, out.String())
	}
	out.Reset()
	if code := dispatch("comet", []string{"help", "sendvo"}, nil, &out, &errb); code != exitOK || !strings.Contains(out.String()+errb.String(), "sendvo") {
		t.Errorf("comet help sendvo: %d %q", code, out.String())
	}
	if code := dispatch("comet", []string{"help", "nonesuch"}, nil, &out, &errb); code != exitUsage {
		t.Errorf("comet help nonesuch: %d", code)
	}
}
