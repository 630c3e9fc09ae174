// spoolwire_bench_test.go measures the spool's budgets: a replay of 10,000
// events to one subscriber, and the receive path with and without the spool.
package main

import (
	"bufio"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// BenchmarkSpoolwReplay10k: one subscriber asks for replay-since the
// epoch and reads and acks 10,000 spooled median events (budget: under
// 2 s). Reported per replay.
func BenchmarkSpoolwReplay10k(b *testing.B) {
	const n = 10000
	cfg := receiveConfig(b)
	tb := startBroker(b, cfg)
	tb.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	for i, raw := range uniqueEvents(b, n) {
		ri, _ := scanRoot(raw)
		if _, err := tb.spoolw.sp.append(spoolEntry{role: ri.role, source: "author bench", ivorn: ri.ivorn, raw: raw}); err != nil {
			b.Fatalf("append %d: %v", i, err)
		}
	}
	if err := tb.spoolw.sp.sync(); err != nil {
		b.Fatal(err)
	}
	ack := newAck("ivo://bench/x#y", "", time.Now()).marshal()
	ackFrame := binary.BigEndian.AppendUint32(nil, uint32(len(ack)))
	ackFrame = append(ackFrame, ack...)
	b.ResetTimer()
	for b.Loop() {
		c, err := net.Dial("tcp", tb.broadcastAddr())
		if err != nil {
			b.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReaderSize(c, 64<<10)
		msg, err := readFrame(br, defaultMaxMessageSize)
		if err != nil {
			b.Fatal(err)
		}
		tr, _ := parseTransport(msg)
		resp := newAuthenticateResponse(tr.origin, "", purposeTest, nil, time.Now(), param{spoolwParamReplaySince, "1970-01-01T00:00:00Z"})
		writeFrame(c, resp.marshal())
		got := 0
		for got < n {
			msg, err := readFrame(br, defaultMaxMessageSize)
			if err != nil {
				b.Fatalf("after %d events: %v", got, err)
			}
			ri, err := scanRoot(msg)
			if err != nil || !isVOEventRole(ri.role) {
				continue
			}
			got++
			if _, err := c.Write(ackFrame); err != nil {
				b.Fatal(err)
			}
		}
		c.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/replay")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkSpoolwReceivePath is BenchmarkJudgeSubmission (the receive
// path per event: parse, validate, seen, event DB, relay, ack) with the
// spool on (its append included; its syncer's fsync, off the path, runs
// every 1000 events outside the timer) and off.
func BenchmarkSpoolwReceivePath(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "spool-off"
		if on {
			name = "spool-on"
		}
		b.Run(name, func(b *testing.B) {
			cfg := testConfig(b)
			cfg.receive = []endpoint{{"tcp", "127.0.0.1:0"}}
			if !on {
				cfg.spool.maxAge = 0
			}
			benchReceivePath(b, cfg, func(br *broker) {
				if sp := br.spoolw.spool(); sp != nil {
					sp.sync()
				}
			})
		})
	}
}
