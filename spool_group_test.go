package main

import (
	"bytes"
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

// gcSpoolCheck reads the whole spool and checks that it holds exactly the
// events of want (seq -> event), seqs contiguous from 1, and that no
// segment of more than one record exceeds the segment size.
func gcSpoolCheck(t *testing.T, s *spool, want map[uint64]spoolEntry) {
	t.Helper()
	got := readAll(t, s, 0)
	if len(got) != len(want) {
		t.Fatalf("spool holds %d events, want %d", len(got), len(want))
	}
	for i, e := range got {
		w, ok := want[e.seq]
		if e.seq != uint64(i+1) || !ok {
			t.Fatalf("event %d has seq %d (known %v), want %d", i, e.seq, ok, i+1)
		}
		if !bytes.Equal(e.raw, w.raw) || e.ivorn != w.ivorn || e.source != w.source || e.role != w.role {
			t.Fatalf("seq %d: got ivorn %q, want %q", e.seq, e.ivorn, w.ivorn)
		}
		if i > 0 && e.received.Before(got[i-1].received) {
			t.Fatalf("seq %d received before seq %d", e.seq, e.seq-1)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.segs {
		if g.end-g.first > 1 && g.bytes > s.segBytes {
			t.Errorf("segment %d: %d records, %d bytes, over the segment size %d", g.first, g.end-g.first, g.bytes, s.segBytes)
		}
	}
}

// TestSpoolGroupCommitConcurrent: 32 goroutines append 200 events each
// (small segments, so batches meet rolls). Every event is spooled once,
// seqs are 1..6400 in file order (a reopen replays them all), each
// goroutine's seqs increase, and fewer write calls than records were made.
func TestSpoolGroupCommitConcurrent(t *testing.T) {
	const G, N = 32, 200
	dir := t.TempDir()
	opts := spoolOptions{segmentBytes: 64 << 10, maxBytes: 256 << 20}
	s := openTestSpool(t, dir, nil, opts)
	w0, r0 := gcSpoolWrites(s)
	var mu sync.Mutex
	want := make(map[uint64]spoolEntry)
	var wg sync.WaitGroup
	for g := range G {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last uint64
			for i := range N {
				ev := spoolTestEvent(g*N+i, 200+(g*N+i)%700)
				seq, err := s.append(ev)
				if err != nil || seq <= last {
					t.Errorf("append %d/%d: seq %d (last %d), %v", g, i, seq, last, err)
					return
				}
				last = seq
				mu.Lock()
				if _, dup := want[seq]; dup {
					t.Errorf("seq %d given twice", seq)
				}
				want[seq] = ev
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	w1, r1 := gcSpoolWrites(s)
	t.Logf("%d records in %d write calls, %d segments", r1-r0, w1-w0, len(s.segs))
	if r1-r0 != G*N {
		t.Errorf("%d records, want %d", r1-r0, G*N)
	}
	if w1-w0 >= r1-r0 {
		t.Errorf("%d write calls for %d records: no batch carried more than one", w1-w0, r1-r0)
	}
	gcSpoolCheck(t, s, want)
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	gcSpoolCheck(t, openTestSpool(t, dir, nil, opts), want)
}

// TestSpoolGroupCommitSequential: a lone caller writes its own record at
// once, one write call per record.
func TestSpoolGroupCommitSequential(t *testing.T) {
	s := openTestSpool(t, t.TempDir(), nil, spoolOptions{segmentBytes: 16 << 10})
	w0, r0 := gcSpoolWrites(s)
	for i := range 100 {
		start := time.Now()
		if seq := mustAppend(t, s, spoolTestEvent(i, 500)); seq != uint64(i+1) {
			t.Fatalf("append %d: seq %d", i, seq)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("a lone append took %v", d)
		}
	}
	if w1, r1 := gcSpoolWrites(s); w1-w0 != 100 || r1-r0 != 100 {
		t.Errorf("%d write calls for %d records, want 100 for 100", w1-w0, r1-r0)
	}
}

// gcBlockedHead swaps the head's file for a pipe whose writes block until
// the test reads it (a 1 MiB filler write is in progress on it).
func gcBlockedHead(t *testing.T, s *spool) (r *os.File, filler int, restore func()) {
	r, w, filler := gcFilledPipe(t)
	s.mu.Lock()
	g := s.segs[len(s.segs)-1]
	good := g.f
	g.f = w
	s.mu.Unlock()
	return r, filler, func() {
		s.mu.Lock()
		g.f = good
		s.mu.Unlock()
		w.Close()
		r.Close()
	}
}

type gcSpoolResult struct {
	i   int
	seq uint64
	err error
}

// gcSpoolQueue starts n appends of events base.. and waits until one write
// is in progress and the other n-1 are queued behind it.
func gcSpoolQueue(t *testing.T, s *spool, base, n int) chan gcSpoolResult {
	t.Helper()
	results := make(chan gcSpoolResult, n)
	for i := range n {
		go func() {
			seq, err := s.append(spoolTestEvent(base+i, 300))
			results <- gcSpoolResult{i, seq, err}
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		ok := s.writing && len(s.pend) == n-1
		s.mu.Unlock()
		if ok {
			return results
		}
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for a write in progress and the rest queued")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSpoolGroupCommitBatch: while one write is in progress, 25 other
// appends queue and go out in the next write call, with the next seqs in
// file order; nobody returns before the write carrying its record, and
// readers see nothing of a record before its write returned.
func TestSpoolGroupCommitBatch(t *testing.T) {
	const n = 26
	s := openTestSpool(t, t.TempDir(), nil, spoolOptions{})
	w0, _ := gcSpoolWrites(s)
	r, filler, restore := gcBlockedHead(t, s)
	defer restore()
	results := gcSpoolQueue(t, s, 0, n)
	select {
	case res := <-results:
		t.Fatalf("an append returned before its record was written: %+v", res)
	case <-time.After(20 * time.Millisecond):
	}
	if h, st := s.head(), s.stats(); h != 1 || st.events != 0 {
		t.Errorf("before any write returned: head %d, %d events; want 1, 0", h, st.events)
	}
	var frames []byte
	{
		b := make([]byte, filler)
		if _, err := io.ReadFull(r, b); err != nil {
			t.Fatal(err)
		}
	}
	seqOf := make(map[uint64]int)
	for range n {
		// Read one frame at a time: the batch arrives in one write.
		hdr := make([]byte, spoolFrameHeader)
		if _, err := io.ReadFull(r, hdr); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr))
		if _, err := io.ReadFull(r, body); err != nil {
			t.Fatal(err)
		}
		frames = append(append(frames, hdr...), body...)
	}
	var fileSeqs []uint64
	for b := frames; len(b) > 0; {
		l := spoolFrameHeader + int(binary.BigEndian.Uint32(b))
		m, _, err := checkSpoolFrame(b[:l])
		if err != nil {
			t.Fatal(err)
		}
		fileSeqs = append(fileSeqs, m.seq)
		b = b[l:]
	}
	for i, seq := range fileSeqs {
		if seq != uint64(i+1) {
			t.Fatalf("file order of seqs: %v", fileSeqs)
		}
	}
	for range n {
		res := <-results
		if res.err != nil || res.seq < 1 || res.seq > n {
			t.Errorf("append %d: seq %d, %v", res.i, res.seq, res.err)
		}
		seqOf[res.seq] = res.i
	}
	if len(seqOf) != n {
		t.Errorf("%d distinct seqs for %d appends", len(seqOf), n)
	}
	if w1, _ := gcSpoolWrites(s); w1-w0 != 2 {
		t.Errorf("%d write calls for %d records, want 2 (one, then the batch queued behind it)", w1-w0, n)
	}
	if h := s.head(); h != n+1 {
		t.Errorf("head %d, want %d", h, n+1)
	}
}

// TestSpoolGroupCommitFailure: a failed batch write reports the error to
// every append in it, gives out no seq (the next append takes the next
// one, no gap), and the spool reopens cleanly with what was written.
func TestSpoolGroupCommitFailure(t *testing.T) {
	const n = 26
	dir := t.TempDir()
	s := openTestSpool(t, dir, nil, spoolOptions{})
	want := map[uint64]spoolEntry{1: spoolTestEvent(1000, 300)}
	mustAppend(t, s, want[1])
	r, _, restore := gcBlockedHead(t, s)
	results := gcSpoolQueue(t, s, 0, n)
	r.Close() // every write on the pipe now fails
	for range n {
		res := <-results
		if res.err == nil || res.seq != 0 || !strings.Contains(res.err.Error(), "append to") {
			t.Errorf("append %d in a failed batch: seq %d, err %v; want 0 and a write error", res.i, res.seq, res.err)
		}
	}
	restore()
	if h, st := s.head(), s.stats(); h != 2 || st.events != 1 {
		t.Errorf("after the failed batch: head %d, %d events; want 2, 1", h, st.events)
	}
	want[2] = spoolTestEvent(1001, 300)
	if seq := mustAppend(t, s, want[2]); seq != 2 {
		t.Errorf("append after the failure: seq %d, want 2", seq)
	}
	gcSpoolCheck(t, s, want)
	s.close()
	gcSpoolCheck(t, openTestSpool(t, dir, nil, spoolOptions{}), want)
}

// TestSpoolGroupCommitTornRepair: bytes a failed write left past the
// head's last whole record are cut before the next batch, so concurrent
// appends after a torn write reopen cleanly, all of them.
func TestSpoolGroupCommitTornRepair(t *testing.T) {
	const G, N = 16, 40
	dir := t.TempDir()
	opts := spoolOptions{segmentBytes: 32 << 10}
	s := openTestSpool(t, dir, nil, opts)
	want := map[uint64]spoolEntry{1: spoolTestEvent(5000, 300)}
	mustAppend(t, s, want[1])
	s.mu.Lock()
	if _, err := s.segs[len(s.segs)-1].f.Write(bytes.Repeat([]byte{0xee}, 50)); err != nil {
		t.Fatal(err)
	}
	s.torn = true
	s.mu.Unlock()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range G {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range N {
				ev := spoolTestEvent(g*N+i, 300)
				seq, err := s.append(ev)
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				mu.Lock()
				want[seq] = ev
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	s.close()
	gcSpoolCheck(t, openTestSpool(t, dir, nil, opts), want)
}

// TestSpoolGroupCommitClose: close while appends run concurrently (close
// seals the rolled segments): every append that returned a seq is in the
// reopened spool, the rest got errSpoolClosed.
func TestSpoolGroupCommitClose(t *testing.T) {
	const G, N = 8, 3000
	dir := t.TempDir()
	opts := spoolOptions{segmentBytes: 16 << 10, maxBytes: 256 << 20}
	s := openTestSpool(t, dir, nil, opts)
	var mu sync.Mutex
	want := make(map[uint64]spoolEntry)
	var wg sync.WaitGroup
	for g := range G {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range N {
				ev := spoolTestEvent(g*N+i, 400)
				seq, err := s.append(ev)
				if errors.Is(err, errSpoolClosed) {
					return
				}
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				mu.Lock()
				want[seq] = ev
				mu.Unlock()
			}
		}()
	}
	for s.head() < 2000 {
		time.Sleep(time.Millisecond)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	t.Logf("%d appends acknowledged before close", len(want))
	gcSpoolCheck(t, openTestSpool(t, dir, nil, opts), want)
}

// gcSpoolWrites is the spool's write calls (batches) and the next seq.
func gcSpoolWrites(s *spool) (writes, records uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes, s.next
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
