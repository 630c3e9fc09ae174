// testharness_test.go is the shared harness of the broker's tests: a real
// in-process broker on loopback (startBroker, with a goroutine leak check
// when it stops), VTP peers driven by a test (dialSubscriber, rawExchange,
// runSendvoTo, fakeUpstream), and waitFor.
package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testLogWriter sends broker logs to t.Log, so a failing test shows them.
type testLogWriter struct {
	mu sync.Mutex
	t  testing.TB
	b  bytes.Buffer
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	return len(p), nil
}

func (w *testLogWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// newTestBrokerLogger logs at debug level to w.
func newTestBrokerLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newDiscardLogger logs nothing.
func newDiscardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testConfig is a broker on loopback with short timings.
func testConfig(t testing.TB) *config {
	cfg := defaultConfig()
	cfg.eventDB = t.TempDir()
	cfg.localIVO = "ivo://test/comet"
	cfg.testInterval = 0
	cfg.dialTimeout = 2 * time.Second
	cfg.backoffBase = 20 * time.Millisecond
	cfg.backoffMax = 200 * time.Millisecond
	cfg.backoffReset = time.Second
	cfg.writeTimeout = 2 * time.Second
	return cfg
}

type testBroker struct {
	*broker
	logs *testLogWriter
	stop func()
}

func (tb *testBroker) receiveAddr() string   { return tb.receivers[0].addr() }
func (tb *testBroker) broadcastAddr() string { return tb.broadcasters[0].l.addr() }

// startBroker runs a broker until the test ends.
func startBroker(t testing.TB, cfg *config) *testBroker {
	t.Helper()
	logs := &testLogWriter{t: t}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, err := newBroker(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("broker run: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("broker did not stop within 5 s")
			}
		})
	}
	liveBrokers.Add(1)
	var stopped sync.Once
	t.Cleanup(func() {
		stop()
		stopped.Do(func() {
			if liveBrokers.Add(-1) == 0 {
				checkNoBrokerGoroutines(t)
			}
		})
		if t.Failed() {
			t.Logf("broker log:\n%s", logs.String())
		}
	})
	return &testBroker{broker: b, logs: logs, stop: stop}
}

// liveBrokers counts the test brokers not yet stopped; when the last one
// stops, none of the broker's goroutines may remain.
var liveBrokers atomic.Int32

// brokerFrames name the functions of goroutines the broker starts.
var brokerFrames = []string{"main.(*broker).", "main.(*subConn).", "main.(*upstream).", "main.(*broadcaster).",
	"main.(*handlerQueue).", "main.(*eventDB).", "main.(*statusServer).",
	"main.(*kafkaBridge).", "main.(*kafkaConsumer).", "main.(*kafkaProducer)."}

// checkNoBrokerGoroutines fails the test if a goroutine started by a broker
// is still running (given a moment to finish exiting).
func checkNoBrokerGoroutines(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		var leaked []string
		for _, g := range strings.Split(stacks, "\n\n") {
			for _, f := range brokerFrames {
				if strings.Contains(g, f) && !strings.Contains(g, "checkNoBrokerGoroutines") {
					leaked = append(leaked, g)
					break
				}
			}
		}
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d broker goroutines still running after the broker stopped:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func receiveConfig(t testing.TB) *config {
	cfg := testConfig(t)
	cfg.receive = []endpoint{{"tcp", "127.0.0.1:0"}}
	cfg.broadcast = []endpoint{{"tcp", "127.0.0.1:0"}}
	return cfg
}

// testEvent makes a small schema-valid event with the given local ID.
func testEventBytes(local string) []byte {
	return []byte(`<?xml version='1.0' encoding='UTF-8'?>
<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" ivorn="ivo://test.local/sample#` + local + `" role="observation" version="2.0">
  <Who><AuthorIVORN>ivo://test.local/sample</AuthorIVORN><Date>2026-11-22T02:14:27</Date></Who>
  <What><Param name="magnitude" value="18"/></What>
</voe:VOEvent>
`)
}

// rawExchange sends one frame to addr and returns the reply (nil if the
// connection was closed without one).
func rawExchange(t testing.TB, addr string, payload []byte) *transport {
	t.Helper()
	return rawExchangeVia(t, &net.Dialer{}, addr, payload)
}

// rawExchangeVia is rawExchange through a dialer (from another source
// address, say).
func rawExchangeVia(t testing.TB, d *net.Dialer, addr string, payload []byte) *transport {
	t.Helper()
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := writeFrame(c, payload); err != nil {
		t.Fatal(err)
	}
	msg, err := readFrame(c, defaultMaxMessageSize)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		t.Fatalf("reading reply: %v", err)
	}
	tr, err := parseTransport(msg)
	if err != nil {
		t.Fatalf("reply: %v\n%s", err, msg)
	}
	// The receiver closes after replying.
	if _, err := readFrame(c, defaultMaxMessageSize); !errors.Is(err, io.EOF) {
		t.Errorf("after the reply: %v, want EOF", err)
	}
	return tr
}

// testSubscriber is a VTP subscriber client driven by a test.
type testSubscriber struct {
	t    testing.TB
	conn net.Conn
	// answer iamalive automatically, ack events automatically
	mu       sync.Mutex
	events   chan []byte
	others   chan *transport
	noAck    bool
	noAlive  bool
	closed   chan struct{}
	readErr  error
	softname string
}

func dialSubscriber(t testing.TB, addr string, filters []string, opts ...func(*testSubscriber)) *testSubscriber {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &testSubscriber{t: t, conn: c, events: make(chan []byte, 1000), others: make(chan *transport, 100), closed: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	// The broker speaks first: authenticate.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	msg, err := readFrame(c, defaultMaxMessageSize)
	if err != nil {
		t.Fatalf("waiting for authenticate: %v", err)
	}
	tr, err := parseTransport(msg)
	if err != nil || tr.role != "authenticate" {
		t.Fatalf("first message: %v %s", err, msg)
	}
	s.softname = tr.software()
	c.SetReadDeadline(time.Time{})
	if filters != nil {
		resp := newAuthenticateResponse(tr.origin, "", purposeTest, filters, time.Now())
		if err := writeFrame(c, resp.marshal()); err != nil {
			t.Fatal(err)
		}
	}
	go s.loop()
	t.Cleanup(func() { c.Close() })
	return s
}

func (s *testSubscriber) loop() {
	defer close(s.closed)
	for {
		msg, err := readFrame(s.conn, defaultMaxMessageSize)
		if err != nil {
			s.readErr = err
			return
		}
		ri, err := scanRoot(msg)
		if err != nil {
			continue
		}
		if isVOEventRole(ri.role) {
			s.events <- msg
			if !s.noAck {
				s.mu.Lock()
				writeFrame(s.conn, newAck(ri.ivorn, "", time.Now()).marshal())
				s.mu.Unlock()
			}
			continue
		}
		tr, err := parseTransport(msg)
		if err != nil {
			continue
		}
		if tr.role == "iamalive" && !s.noAlive {
			s.mu.Lock()
			writeFrame(s.conn, newIamaliveResponse(tr.origin, "", purposeTest, time.Now()).marshal())
			s.mu.Unlock()
		}
		select {
		case s.others <- tr:
		default:
		}
	}
}

func (s *testSubscriber) nextEvent(timeout time.Duration) []byte {
	select {
	case e := <-s.events:
		return e
	case <-time.After(timeout):
		return nil
	}
}

func (s *testSubscriber) waitClosed(timeout time.Duration) bool {
	select {
	case <-s.closed:
		return true
	case <-time.After(timeout):
		return false
	}
}

// waitSubscribers waits until the broadcaster has n subscribers with filters installed as given.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func subscriberCount(b *broker) int {
	n := 0
	for _, bc := range b.broadcasters {
		bc.mu.Lock()
		n += len(bc.subs)
		bc.mu.Unlock()
	}
	return n
}

// startRelayPair starts broker A (receiver and broadcaster) and broker B,
// which subscribes to A and broadcasts.
func startRelayPair(t *testing.T) (a, b *testBroker) {
	t.Helper()
	a = startBroker(t, receiveConfig(t))
	cfgB := testConfig(t)
	cfgB.localIVO = "ivo://test/brokerB"
	cfgB.broadcast = []endpoint{{"tcp", "127.0.0.1:0"}}
	cfgB.remotes = []string{a.broadcastAddr()}
	return a, startBroker(t, cfgB)
}

func runSendvoTo(t testing.TB, addr string, ev []byte) int {
	host, port, _ := net.SplitHostPort(addr)
	var out, errb bytes.Buffer
	code := runSendvo([]string{"-h", host, "-p", port, "--timeout", "5s"}, bytes.NewReader(ev), &out, &errb)
	if code != exitOK {
		t.Logf("sendvo: %s %s", out.String(), errb.String())
	}
	return code
}

// fakeUpstream accepts connections, records when each arrived, and hands
// each to serve (with its number, from 1) in a goroutine of its own.
type fakeUpstream struct {
	ln      net.Listener
	mu      sync.Mutex
	accepts []time.Time
}

func startFakeUpstream(t *testing.T, serve func(n int, c net.Conn)) *fakeUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeUpstream{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.accepts = append(f.accepts, time.Now())
			n := len(f.accepts)
			f.mu.Unlock()
			go serve(n, c)
		}
	}()
	return f
}

func (f *fakeUpstream) times() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.accepts...)
}
