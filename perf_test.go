package main

import (
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
		reply, _ := br.judgeSubmission(events[i], "bench")
		reply.marshal()
		i++
	}
}
