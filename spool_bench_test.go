package main

import (
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// spoolMedianEvent is the median 4.3 KB event of benchdata/median.xml.
func spoolMedianEvent(b testing.TB) spoolEntry {
	b.Helper()
	raw, err := os.ReadFile("benchdata/median.xml")
	if err != nil {
		b.Fatal(err)
	}
	role, ivorn, err := rootAttrs(raw)
	if err != nil || role == "" {
		role = "observation"
	}
	return spoolEntry{role: role, ivorn: ivorn, source: "upstream voevent.example.org:8099", raw: raw}
}

// fillSpool appends n median events one second apart (syncing every 1000,
// as the broker's syncer would) and returns the first and last times.
func fillSpool(b testing.TB, s *spool, clk *fakeClock, n int) (first, last time.Time) {
	b.Helper()
	ev := spoolMedianEvent(b)
	first = clk.now().Add(time.Second)
	for i := range n {
		clk.advance(time.Second)
		if _, err := s.append(ev); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			if err := s.sync(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := s.sync(); err != nil {
		b.Fatal(err)
	}
	return first, clk.now()
}

// fill64MiB makes a full default-sized spool (64 MiB cap, 8 MiB segments)
// of median events in dir.
func fill64MiB(b *testing.B, dir string, clk *fakeClock) (*spool, time.Time, time.Time) {
	b.Helper()
	s, err := openSpool(dir, spoolOptions{now: clk.now, maxAge: 30 * 24 * time.Hour}, nil)
	if err != nil {
		b.Fatal(err)
	}
	// 64 MiB / (4289 + 97 bytes a record) is about 15,300 events; add
	// more so the cap is reached and pruning has run.
	first, last := fillSpool(b, s, clk, 17000)
	st := s.stats()
	b.Logf("spool: %d events, %d segments, %.1f MiB on disk", st.events, st.segments, float64(st.bytes)/(1<<20))
	if st.bytes < 56<<20 {
		b.Fatalf("spool holds only %d bytes", st.bytes)
	}
	return s, first, last
}

// BenchmarkSpoolAppend: append median events with the default options;
// reports what one event costs on disk (its record and its index entry).
func BenchmarkSpoolAppend(b *testing.B) {
	clk := newFakeClock()
	s, err := openSpool(b.TempDir(), spoolOptions{now: clk.now}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.close()
	ev := spoolMedianEvent(b)
	b.SetBytes(int64(len(ev.raw)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clk.advance(time.Millisecond)
		if _, err := s.append(ev); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			s.sync()
		}
	}
	b.StopTimer()
	s.mu.Lock()
	m := s.meta[len(s.meta)-1]
	s.mu.Unlock()
	rec := spoolFrameLen(&m)
	idx := spoolIndexSize([]spoolMeta{m}) - spoolIdxHeader
	b.ReportMetric(float64(rec+idx), "disk-B/event")
	b.ReportMetric(float64(rec+idx-int64(len(ev.raw))), "overhead-B/event")
}

// BenchmarkSpoolSeek64MiB: a time seek (since) in a full 64 MiB spool, and
// a seek plus reading the first event there from its sealed segment.
func BenchmarkSpoolSeek64MiB(b *testing.B) {
	clk := newFakeClock()
	s, first, last := fill64MiB(b, b.TempDir(), clk)
	defer s.close()
	oldest := s.stats().oldest
	if oldest.After(first) {
		first = oldest
	}
	span := last.Sub(first)
	rng := rand.New(rand.NewPCG(1, 2))
	b.Run("since", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			t := first.Add(time.Duration(rng.Int64N(int64(span))))
			if seq := s.since(t); seq == 0 {
				b.Fatal("no seq")
			}
		}
	})
	b.Run("since+first-read", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			t := first.Add(time.Duration(rng.Int64N(int64(span / 2)))) // on disk, not the tail
			r := s.reader(s.since(t))
			if _, ok, err := r.next(); !ok || err != nil {
				b.Fatalf("read: %v %v", ok, err)
			}
			r.close()
		}
	})
}

// BenchmarkSpoolOpen64MiB: start-up with a full 64 MiB spool (indexes read,
// the 8 MiB head scanned; warm page cache).
func BenchmarkSpoolOpen64MiB(b *testing.B) {
	clk := newFakeClock()
	dir := b.TempDir()
	s, _, _ := fill64MiB(b, dir, clk)
	want := s.stats()
	if err := s.close(); err != nil {
		b.Fatal(err)
	}
	b.Run("open", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			s, err := openSpool(dir, spoolOptions{now: clk.now, maxAge: 30 * 24 * time.Hour}, nil)
			if err != nil {
				b.Fatal(err)
			}
			if st := s.stats(); st.events != want.events {
				b.Fatalf("opened %d events, want %d", st.events, want.events)
			}
			s.close()
		}
	})
}

// BenchmarkSpoolReplay10k: read 10,000 median events from the oldest, most
// from sealed segments, the last 2 MiB from the in-memory tail.
func BenchmarkSpoolReplay10k(b *testing.B) {
	clk := newFakeClock()
	s, err := openSpool(b.TempDir(), spoolOptions{now: clk.now, maxAge: 30 * 24 * time.Hour}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.close()
	fillSpool(b, s, clk, 10000)
	size := int64(len(spoolMedianEvent(b).raw))
	b.Run("read", func(b *testing.B) {
		b.SetBytes(10000 * size)
		for i := 0; i < b.N; i++ {
			r := s.reader(1)
			n := 0
			for {
				_, ok, err := r.next()
				if err != nil {
					b.Fatal(err)
				}
				if !ok {
					break
				}
				n++
			}
			r.close()
			if n != 10000 {
				b.Fatalf("read %d events", n)
			}
		}
		b.ReportMetric(float64(b.N)*10000/b.Elapsed().Seconds(), "events/s")
	})
}
