package main

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gcKey is a distinct key for (g, i).
func gcKey(g, i int) eventKey {
	var k eventKey
	binary.BigEndian.PutUint64(k[:8], uint64(g)<<32|uint64(i))
	copy(k[8:], "groupcmt")
	return k
}

// gcLogKeys replays the log file at path and returns every key in it, in
// file order, and whether the scan ended cleanly.
func gcLogKeys(t *testing.T, path string) ([]eventKey, eventLogScan) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	var keys []eventKey
	res, err := scanEventLog(f, fi.Size(), func(p []byte) {
		var k eventKey
		copy(k[:], p[1:17])
		keys = append(keys, k)
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys, res
}

// gcWaitFor polls cond under db.mu until it holds (5 s at most).
func gcWaitFor(t *testing.T, db *eventDB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		db.mu.Lock()
		ok := cond()
		db.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestEventDBGroupCommitConcurrent: 32 goroutines record 200 keys each
// of their own and race on 50 shared keys. Every key is new exactly once,
// the log holds each exactly once, a reopened DB has them all, and the
// records went out in fewer write calls than there are records.
func TestEventDBGroupCommitConcurrent(t *testing.T) {
	const G, N, shared = 32, 200, 50
	dir := t.TempDir()
	db := openTestDB(t, dir, nil, eventDBOptions{syncEvery: 500})
	w0, r0 := gcDBWrites(db)
	var mu sync.Mutex
	newShared := make(map[eventKey]int)
	var wg sync.WaitGroup
	for g := range G {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range N {
				isNew, err := db.checkAndRecordKey(gcKey(g+1, i))
				if err != nil || !isNew {
					t.Errorf("key %d/%d: %v, %v; want new", g, i, isNew, err)
					return
				}
				sk := gcKey(0, (g+i)%shared)
				isNew, err = db.checkAndRecordKey(sk)
				if err != nil {
					t.Errorf("shared key: %v", err)
					return
				}
				if isNew {
					mu.Lock()
					newShared[sk]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(newShared) != shared {
		t.Errorf("%d shared keys reported new, want %d", len(newShared), shared)
	}
	for k, n := range newShared {
		if n != 1 {
			t.Errorf("shared key %x reported new %d times", k[:8], n)
		}
	}
	w1, r1 := gcDBWrites(db)
	records := r1 - r0
	if want := G*N + shared; records != want {
		t.Errorf("records = %d, want %d", records, want)
	}
	t.Logf("%d records in %d write calls", records, w1-w0)
	if w1-w0 >= records {
		t.Errorf("%d write calls for %d records: no batch carried more than one", w1-w0, records)
	}
	if err := db.close(); err != nil {
		t.Fatal(err)
	}
	keys, res := gcLogKeys(t, logPath(dir))
	if res.reason != "" || res.corrupt != 0 || len(keys) != G*N+shared {
		t.Fatalf("log: %d records, reason %q, corrupt %d; want %d clean", len(keys), res.reason, res.corrupt, G*N+shared)
	}
	inLog := make(map[eventKey]bool, len(keys))
	for _, k := range keys {
		if inLog[k] {
			t.Fatalf("key %x twice in the log", k[:8])
		}
		inLog[k] = true
	}
	db = openTestDB(t, dir, nil, eventDBOptions{})
	if db.len() != G*N+shared {
		t.Errorf("after reopen len = %d, want %d", db.len(), G*N+shared)
	}
	for g := range G {
		for i := range N {
			if !db.seenKey(gcKey(g+1, i)) {
				t.Fatalf("after reopen key %d/%d forgotten", g, i)
			}
		}
	}
	for i := range shared {
		if !db.seenKey(gcKey(0, i)) {
			t.Fatalf("after reopen shared key %d forgotten", i)
		}
	}
}

// TestEventDBGroupCommitSequential: a lone caller writes its own record
// at once, one write call per record.
func TestEventDBGroupCommitSequential(t *testing.T) {
	db := openTestDB(t, t.TempDir(), nil, eventDBOptions{})
	w0, r0 := gcDBWrites(db)
	for i := range 100 {
		start := time.Now()
		if isNew, err := db.checkAndRecordKey(gcKey(1, i)); !isNew || err != nil {
			t.Fatalf("key %d: %v, %v", i, isNew, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("a lone record took %v", d)
		}
	}
	w1, r1 := gcDBWrites(db)
	if w1-w0 != 100 || r1-r0 != 100 {
		t.Errorf("%d write calls for %d records, want 100 for 100", w1-w0, r1-r0)
	}
}

// gcBlockedLog swaps the DB's log for a pipe whose writes block until the
// test reads it: a 1 MiB filler write is in progress on it, so the next
// write waits behind it (one write at a time per file). It returns the
// reader and a function restoring the real log.
func gcBlockedLog(t *testing.T, db *eventDB) (r *os.File, filler int, restore func()) {
	r, w, filler := gcFilledPipe(t)
	db.mu.Lock()
	good := db.f
	db.f = w
	db.mu.Unlock()
	return r, filler, func() {
		db.mu.Lock()
		db.f = good
		db.mu.Unlock()
		w.Close()
		r.Close()
	}
}

// gcFilledPipe returns a pipe with a 1 MiB write in progress on it, so that
// the next write to w waits until the test reads r (one write at a time).
func gcFilledPipe(t *testing.T) (r, w *os.File, filler int) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	filler = 1 << 20
	go w.Write(make([]byte, filler))
	time.Sleep(20 * time.Millisecond) // let the filler take the pipe
	return r, w, filler
}

// gcResult is what one checkAndRecordKey call returned.
type gcResult struct {
	isNew bool
	err   error
}

// gcQueue starts n callers recording keys (9, 0..n-1) and waits until one
// write is in progress and the other n-1 records are queued behind it.
func gcQueue(t *testing.T, db *eventDB, n int) (results chan gcResult) {
	t.Helper()
	results = make(chan gcResult, n)
	for i := range n {
		go func() {
			isNew, err := db.checkAndRecordKey(gcKey(9, i))
			results <- gcResult{isNew, err}
		}()
	}
	gcWaitFor(t, db, "a write in progress and the rest queued", func() bool {
		return db.writing && db.pend.n == n-1
	})
	return results
}

// TestEventDBGroupCommitBatch: while one write is in progress, the
// records of 25 other callers queue and go out together in the next write
// call; nobody returns before the write carrying its record.
func TestEventDBGroupCommitBatch(t *testing.T) {
	const n = 26
	db := openTestDB(t, t.TempDir(), nil, eventDBOptions{})
	w0, _ := gcDBWrites(db)
	r, filler, restore := gcBlockedLog(t, db)
	defer restore()
	results := gcQueue(t, db, n)
	select {
	case res := <-results:
		t.Fatalf("a caller returned before its record was written: %+v", res)
	case <-time.After(20 * time.Millisecond):
	}
	got := make([]byte, filler+n*eventSeenRecordLen)
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatal(err)
	}
	for range n {
		if res := <-results; !res.isNew || res.err != nil {
			t.Errorf("caller: %v, %v; want new", res.isNew, res.err)
		}
	}
	if w1, _ := gcDBWrites(db); w1-w0 != 2 {
		t.Errorf("%d write calls for %d records, want 2 (one, then the batch queued behind it)", w1-w0, n)
	}
	keys := make(map[eventKey]bool)
	recs := got[filler:]
	for i := 0; i < len(recs); i += eventSeenRecordLen {
		var k eventKey
		copy(k[:], recs[i+9:i+25])
		keys[k] = true
	}
	for i := range n {
		if !keys[gcKey(9, i)] {
			t.Errorf("record of caller %d not written", i)
		}
	}
}

// TestEventDBGroupCommitFailure: a failed batch write reports the error to
// every caller in it (the events stay remembered in memory), counts no
// record, and the next append works; the log replays cleanly.
func TestEventDBGroupCommitFailure(t *testing.T) {
	const n = 26
	dir := t.TempDir()
	db := openTestDB(t, dir, nil, eventDBOptions{})
	if isNew, err := db.checkAndRecordKey(gcKey(1, 1)); !isNew || err != nil {
		t.Fatal(isNew, err)
	}
	size0 := db.sizeBytes()
	_, r0 := gcDBWrites(db)
	r, _, restore := gcBlockedLog(t, db)
	results := gcQueue(t, db, n)
	r.Close() // every write on the pipe now fails
	for range n {
		if res := <-results; !res.isNew || res.err == nil || !strings.Contains(res.err.Error(), "append to") {
			t.Errorf("caller in a failed batch: %v, %v; want new and a write error", res.isNew, res.err)
		}
	}
	restore()
	if _, r1 := gcDBWrites(db); r1 != r0 || db.sizeBytes() != size0 {
		t.Errorf("after the failed batch records %d (was %d), size %d (was %d)", r1, r0, db.sizeBytes(), size0)
	}
	for i := range n {
		if !db.seenKey(gcKey(9, i)) {
			t.Errorf("key %d of the failed batch not remembered in memory", i)
		}
	}
	if isNew, err := db.checkAndRecordKey(gcKey(1, 2)); !isNew || err != nil {
		t.Fatalf("append after the failure: %v, %v", isNew, err)
	}
	db.close()
	keys, res := gcLogKeys(t, logPath(dir))
	if res.reason != "" || res.corrupt != 0 || len(keys) != 2 || keys[0] != gcKey(1, 1) || keys[1] != gcKey(1, 2) {
		t.Errorf("log: %d records, reason %q, corrupt %d; want the 2 written, clean", len(keys), res.reason, res.corrupt)
	}
}

// TestEventDBGroupCommitTornRepair: bytes a failed write left past the
// last whole record are cut before the next batch goes out, so a batch
// written after a torn write replays cleanly.
func TestEventDBGroupCommitTornRepair(t *testing.T) {
	const G = 16
	dir := t.TempDir()
	db := openTestDB(t, dir, nil, eventDBOptions{})
	mustNew(t, db, eventBytes(1), true)
	// What a short write leaves: part of a record past size, torn set.
	db.mu.Lock()
	if _, err := db.f.Write(make([]byte, 20)); err != nil {
		t.Fatal(err)
	}
	db.torn = true
	db.mu.Unlock()
	var wg sync.WaitGroup
	for g := range G {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				if isNew, err := db.checkAndRecordKey(gcKey(g+1, i)); !isNew || err != nil {
					t.Errorf("key %d/%d: %v, %v", g, i, isNew, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	db.close()
	keys, res := gcLogKeys(t, logPath(dir))
	if res.reason != "" || res.corrupt != 0 || len(keys) != 1+G*50 {
		t.Errorf("log: %d records, reason %q, corrupt %d; want %d clean", len(keys), res.reason, res.corrupt, 1+G*50)
	}
}

// TestEventDBGroupCommitCompactAndClose: compaction and close run while
// many goroutines append; nothing acknowledged is lost, nothing written
// twice, and the log replays cleanly.
func TestEventDBGroupCommitCompactAndClose(t *testing.T) {
	const G, N = 8, 300
	dir := t.TempDir()
	db := openTestDB(t, dir, nil, eventDBOptions{compactMinBytes: 1})
	var mu sync.Mutex
	acked := make(map[eventKey]bool)
	var wg sync.WaitGroup
	for g := range G {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range N {
				k := gcKey(g+1, i)
				isNew, err := db.checkAndRecordKey(k)
				if errors.Is(err, errEventDBClosed) {
					return
				}
				if err != nil || !isNew {
					t.Errorf("key %d/%d: %v, %v", g, i, isNew, err)
					return
				}
				mu.Lock()
				acked[k] = true
				mu.Unlock()
			}
		}()
	}
	for range 5 {
		if err := db.compact(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	if err := db.close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	keys, res := gcLogKeys(t, logPath(dir))
	if res.reason != "" || res.corrupt != 0 {
		t.Errorf("log: reason %q, corrupt %d", res.reason, res.corrupt)
	}
	inLog := make(map[eventKey]bool, len(keys))
	for _, k := range keys {
		if inLog[k] {
			t.Fatalf("key %x twice in the log", k[:8])
		}
		inLog[k] = true
	}
	for k := range acked {
		if !inLog[k] {
			t.Fatalf("acknowledged key %x not in the log", k[:8])
		}
	}
	t.Logf("%d acknowledged before close, %d in the log", len(acked), len(keys))
}

// gcDBWrites is the event DB's write calls (batches) and records so far.
func gcDBWrites(db *eventDB) (writes, records int) {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.writes, db.records
}

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
