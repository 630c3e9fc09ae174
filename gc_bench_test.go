package main

import (
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkEventDBRecordParallel: unique median (4.3 KB) events recorded
// from 5 goroutines per core (the receive path with many authors): each
// op hashes its event (eventKeyOf, as the receiver does) and records the
// key, made unique by a counter in its first 8 bytes. Default options, so
// the background syncer runs as in the broker. records/write is how many
// records one write call carried.
func BenchmarkEventDBRecordParallel(b *testing.B) {
	db, err := openEventDBWith(b.TempDir(), defaultEventDBExpiry, nil, eventDBOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.close()
	raws := uniqueEvents(b, 1024)
	var ctr atomic.Uint64
	w0, r0 := gcDBWrites(db)
	b.ReportAllocs()
	b.SetParallelism(5)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := ctr.Add(1)
			k := eventKeyOf(raws[n%uint64(len(raws))])
			binary.LittleEndian.PutUint64(k[:8], n)
			isNew, err := db.checkAndRecordKey(k)
			if err != nil || !isNew {
				b.Errorf("checkAndRecordKey = %v, %v", isNew, err)
				return
			}
		}
	})
	b.StopTimer()
	w1, r1 := gcDBWrites(db)
	if w1 > w0 {
		b.ReportMetric(float64(r1-r0)/float64(w1-w0), "records/write")
	}
}

// BenchmarkSpoolAppendParallel: unique median (4.3 KB) events appended
// from 5 goroutines per core, default options, synced (and so pruned)
// every 200 ms by a background goroutine as the broker's syncer would.
func BenchmarkSpoolAppendParallel(b *testing.B) {
	s, err := openSpool(b.TempDir(), spoolOptions{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.close()
	raws := uniqueEvents(b, 1024)
	evs := make([]spoolEntry, len(raws))
	for i, raw := range raws {
		role, ivorn, err := rootAttrs(raw)
		if err != nil || role == "" {
			role = "observation"
		}
		evs[i] = spoolEntry{role: role, ivorn: ivorn, source: "author 127.0.0.1:4711", raw: raw}
	}
	stop := make(chan struct{})
	synced := make(chan struct{})
	go func() {
		defer close(synced)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				s.sync()
			}
		}
	}()
	defer func() { close(stop); <-synced }()
	var ctr atomic.Uint64
	w0, r0 := gcSpoolWrites(s)
	b.ReportAllocs()
	b.SetBytes(int64(len(raws[0])))
	b.SetParallelism(5)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.append(evs[ctr.Add(1)%uint64(len(evs))]); err != nil {
				b.Errorf("append: %v", err)
				return
			}
		}
	})
	b.StopTimer()
	w1, r1 := gcSpoolWrites(s)
	if w1 > w0 {
		b.ReportMetric(float64(r1-r0)/float64(w1-w0), "records/write")
	}
}
