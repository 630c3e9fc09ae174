package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// uniqueEvents makes n median-size events that differ in their ivorn (so
// each is new to the event DB), sharing nothing else.
func uniqueEvents(tb testing.TB, n int) [][]byte { return uniqueEventsFrom(tb, 0, n) }

// uniqueEventsFrom is uniqueEvents numbered from base.
func uniqueEventsFrom(tb testing.TB, base, n int) [][]byte {
	raw := medianEvent(tb)
	ri, err := scanRoot(raw)
	if err != nil {
		tb.Fatal(err)
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = bytes.Replace(raw, []byte(`ivorn="`+ri.ivorn+`"`), []byte(fmt.Sprintf(`ivorn="%s-%d"`, ri.ivorn, base+i)), 1)
	}
	return out
}

// BenchmarkJudgeSubmission (the receive path per event) is the receiver's
// whole per-event decision on a median event, without the network: parse,
// validate, IVOID, seen, record in the event DB, relay to a broadcaster with
// one subscriber's queue, ack bytes.
func BenchmarkJudgeSubmission(b *testing.B) {
	cfg := testConfig(b)
	cfg.receive = []endpoint{{"tcp", "127.0.0.1:0"}}
	benchReceivePath(b, cfg, nil)
}

// benchReceivePath runs judgeSubmission on unique median events against a
// broker made from cfg; every, when set, runs (untimed) every 1000 events.
func benchReceivePath(b *testing.B, cfg *config, every func(br *broker)) {
	br, err := newBroker(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer br.abandon()
	br.rl = newRateLog(br.log, peerLogBurst, peerLogWindow, time.Now)
	events := uniqueEvents(b, 1<<14)
	i := 0
	b.ReportAllocs()
	b.SetBytes(int64(len(events[0])))
	for b.Loop() {
		if i%len(events) == 0 && i > 0 {
			b.StopTimer()
			events = uniqueEventsFrom(b, i, len(events))
			b.StartTimer()
		}
		if every != nil && i%1000 == 999 {
			b.StopTimer()
			every(br)
			b.StartTimer()
		}
		reply := br.judgeSubmission(events[i%len(events)], "bench", "bench", br.log, nil, nil)
		if reply == nil || reply.role != "ack" {
			b.Fatalf("event %d: %+v", i, reply)
		}
		reply.marshal()
		i++
	}
}

// BenchmarkFanOut is the cost of one delivery: events relayed by a real
// broadcaster on loopback to 100 subscribers that read and ack them
// (cheaply: a precomputed ack per event); reported per subscriber per
// event (ns/delivery), acks read included.
func BenchmarkFanOut(b *testing.B) {
	const subs = 100
	cfg := receiveConfig(b)
	cfg.maxConnectionsPerHost = 1000
	tb := startBroker(b, cfg)
	tb.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	ack := newAck("ivo://x/y#z", "", time.Now()).marshal()
	var got atomic.Int64
	conns := make([]net.Conn, 0, subs)
	for range subs {
		c, err := net.Dial("tcp", tb.broadcastAddr())
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		go func() {
			br := bufio.NewReaderSize(c, 64<<10)
			var buf []byte
			var frame [4]byte
			for {
				msg, err := readFrameInto(br, buf, defaultMaxMessageSize)
				if err != nil {
					return
				}
				buf = msg[:0]
				if bytes.Contains(msg[:min(len(msg), 400)], []byte(`role="observation"`)) {
					got.Add(1)
					binary.BigEndian.PutUint32(frame[:], uint32(len(ack)))
					c.Write(append(frame[:], ack...))
				}
			}
		}()
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	waitFor(b, "subscribers", func() bool { return subscriberCount(tb.broker) == subs })
	events := uniqueEvents(b, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ev := newEvent(events[i%len(events)], rootInfo{start: 0, end: len(events[i%len(events)])}, sourceAuthor, "bench", time.Now())
		tb.broadcasters[0].relay(ev)
		if i%256 == 255 { // let the writers keep up: never overflow a queue
			want := int64(i+1) * subs
			for got.Load() < want-subs*128 {
				time.Sleep(50 * time.Microsecond)
			}
		}
	}
	for got.Load() < int64(b.N)*subs {
		time.Sleep(50 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(int64(b.N)*subs), "ns/delivery")
}

// BenchmarkLoopbackSubmit is one author connection per event against a
// real broker on loopback with one subscriber: connect, submit, ack, relay.
func BenchmarkLoopbackSubmit(b *testing.B) {
	cfg := receiveConfig(b)
	tb := startBroker(b, cfg)
	tb.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	sub := dialSubscriber(b, tb.broadcastAddr(), nil)
	go func() {
		for range sub.events {
		}
	}()
	raw := medianEvent(b)
	ri, _ := scanRoot(raw)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		ev := make([]byte, 0, len(raw)+16)
		ev = append(ev, raw[:ri.end]...)
		ev = append(ev, fmt.Sprintf("<!-- %d -->", i)...)
		ev = fmt.Appendf(ev[:0], "%s", bytes.Replace(ev, []byte(ri.ivorn), []byte(fmt.Sprintf("%s-%d", ri.ivorn, i)), 1))
		if role := submitOnce(tb.receiveAddr(), ev); role != "ack" {
			b.Fatalf("event %d: %q", i, role)
		}
		i++
	}
}
