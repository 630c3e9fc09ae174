package main

// xmltree_bench_test.go measures parsing per input byte over the median event
// and the adversarial shapes of xmltree_cost_test.go (xmltreeShapes), about
// 1 MiB each: time, bytes allocated, and bytes the tree keeps alive.
//
//	go test -run XXX -bench 'ParseShape|TokenLoopShape' -benchtime 5x .

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"runtime"
	"strconv"
	"testing"
)

// xmltreeBenchSize is the size of each shape: 1 MiB, or
// XMLTREE_BENCH_SIZE bytes.
var xmltreeBenchSize = func() int {
	if n, err := strconv.Atoi(os.Getenv("XMLTREE_BENCH_SIZE")); err == nil && n > 0 {
		return n
	}
	return 1 << 20
}()

// xmltreeRetained returns the heap bytes a parsed tree of raw keeps alive
// (measured after a collection, raw itself excluded; a small document is
// parsed many times over and the trees held at once, for a steady figure),
// and the tree's own estimate of them (document.sizeBytes).
func xmltreeRetained(tb testing.TB, raw []byte) (measured, estimate int) {
	tb.Helper()
	docs := make([]*document, max(1, (1<<20)/max(len(raw), 1)))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range docs {
		doc, err := parseDocument(raw)
		if err != nil {
			tb.Fatal(err)
		}
		docs[i] = doc
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	measured = (int(after.HeapAlloc) - int(before.HeapAlloc)) / len(docs)
	estimate = docs[0].sizeBytes()
	runtime.KeepAlive(docs)
	return measured, estimate
}

func BenchmarkParseShape(b *testing.B) {
	for _, sh := range xmltreeShapes {
		raw := sh.build(xmltreeBenchSize)
		if sh.name == "median" {
			raw = medianEvent(b)
		}
		b.Run(sh.name, func(b *testing.B) {
			retained, estimate := xmltreeRetained(b, raw)
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			b.ResetTimer()
			for b.Loop() {
				if _, err := parseDocument(raw); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&m1)
			n := float64(b.N) * float64(len(raw))
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/byte")
			b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/n, "alloc-B/byte")
			b.ReportMetric(float64(retained)/float64(len(raw)), "retained-B/byte")
			b.ReportMetric(float64(estimate)/float64(len(raw)), "sizeBytes/byte")
			b.ReportMetric(float64(retained), "retained-B")
		})
	}
}

// BenchmarkTokenLoopShape is a bare encoding/xml loop over each shape, with
// namespace translation (Token) and without (RawToken, which the tree
// uses): it shows whether encoding/xml itself is linear on the shape.
func BenchmarkTokenLoopShape(b *testing.B) {
	for _, sh := range xmltreeShapes {
		raw := sh.build(xmltreeBenchSize)
		if sh.name == "median" {
			raw = medianEvent(b)
		}
		for _, mode := range []string{"Token", "RawToken"} {
			b.Run(sh.name+"/"+mode, func(b *testing.B) {
				for b.Loop() {
					xmltreeTokenLoop(b, raw, mode == "RawToken")
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(raw)), "ns/byte")
			})
		}
	}
}

func xmltreeTokenLoop(tb testing.TB, raw []byte, rawTokens bool) {
	d := xml.NewDecoder(bytes.NewReader(raw))
	for {
		var err error
		if rawTokens {
			_, err = d.RawToken()
		} else {
			_, err = d.Token()
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
}
