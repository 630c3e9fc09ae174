package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"testing"
)

// BenchmarkJudgeSubmission is the receiver's whole per-event decision on a
// median event: parse, validate, IVOID, dedup record, ack bytes.
func BenchmarkJudgeSubmission(b *testing.B) {
	cfg := testConfig(b)
	cfg.receive = []endpoint{{"tcp", "127.0.0.1:0"}}
	br, err := newBroker(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer br.abandon()
	raw := medianEvent(b)
	ri, _ := scanRoot(raw)
	events := make([][]byte, 0, 1<<16)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if len(events) <= i {
			// Unique ivorns so every event is new.
			ev := []byte(fmt.Sprintf("%s%s#bench-%d%s", raw[:ri.start], raw[ri.start:ri.start+0], i, ""))
			_ = ev
			u := append([]byte{}, raw...)
			u = append(u[:len(u):len(u)], fmt.Sprintf("<!-- %d -->", i)...)
			events = append(events, u)
		}
		reply := br.judgeSubmission(events[i], "bench", "bench", br.log, nil, nil)
		reply.marshal()
		i++
	}
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
