package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// openTestSpool opens a spool in dir with clk as its clock; it is closed at
// the end of the test.
func openTestSpool(t testing.TB, dir string, clk *fakeClock, opts spoolOptions) *spool {
	t.Helper()
	if clk != nil {
		opts.now = clk.now
	}
	s, err := openSpool(dir, opts, nil)
	if err != nil {
		t.Fatalf("openSpool: %v", err)
	}
	t.Cleanup(func() { s.close() })
	return s
}

var spoolTestRoles = []string{"observation", "prediction", "utility", "test"}

// spoolTestEvent is event i: about size bytes, with varied role and source.
func spoolTestEvent(i, size int) spoolEntry {
	head := fmt.Sprintf(`<voe:VOEvent ivorn="ivo://test/spool#%d" role="%s">`, i, spoolTestRoles[i%4])
	body := strings.Repeat(string(rune('a'+i%26)), max(0, size-len(head)-14))
	return spoolEntry{
		role:   spoolTestRoles[i%4],
		source: []string{"author 127.0.0.1:4711", "upstream host.example:8099", fmt.Sprintf("kafka gcn.notices/0@%d", i)}[i%3],
		ivorn:  fmt.Sprintf("ivo://test/spool#%d", i),
		raw:    []byte(head + body + "</voe:VOEvent>"),
	}
}

func mustAppend(t testing.TB, s *spool, ev spoolEntry) uint64 {
	t.Helper()
	seq, err := s.append(ev)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return seq
}

// readAll reads from seq from to the head.
func readAll(t testing.TB, s *spool, from uint64) []spoolEntry {
	t.Helper()
	r := s.reader(from)
	defer r.close()
	var out []spoolEntry
	for {
		e, ok, err := r.next()
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		if !ok {
			if r.position() != s.head() {
				t.Fatalf("caught up at %d, head is %d", r.position(), s.head())
			}
			return out
		}
		out = append(out, e)
	}
}

// checkEntry compares a read entry with what was appended as seq at recv.
func checkEntry(t testing.TB, got spoolEntry, want spoolEntry, seq uint64, recv time.Time) {
	t.Helper()
	if got.seq != seq || !bytes.Equal(got.raw, want.raw) || got.role != want.role ||
		got.source != want.source || got.ivorn != want.ivorn || got.size != len(want.raw) ||
		!got.received.Equal(recv) {
		t.Fatalf("entry %d: got seq %d role %q source %q ivorn %q size %d received %v (%d bytes), want role %q source %q ivorn %q received %v (%d bytes)",
			seq, got.seq, got.role, got.source, got.ivorn, got.size, got.received, len(got.raw),
			want.role, want.source, want.ivorn, recv, len(want.raw))
	}
}

func TestSpoolAppendReadBack(t *testing.T) {
	for _, tc := range []struct {
		name      string
		tailBytes int64
	}{{"memory", 0}, {"disk", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			clk := newFakeClock()
			s := openTestSpool(t, dir, clk, spoolOptions{segmentBytes: 16 << 10, tailBytes: tc.tailBytes})
			var want []spoolEntry
			var times []time.Time
			for i := range 60 {
				ev := spoolTestEvent(i, 100+i*37)
				clk.advance(time.Second + 123456789*time.Nanosecond)
				if seq := mustAppend(t, s, ev); seq != uint64(i+1) {
					t.Fatalf("append %d: seq %d", i, seq)
				}
				want, times = append(want, ev), append(times, clk.now())
			}
			check := func(s *spool) {
				t.Helper()
				got := readAll(t, s, 0)
				if len(got) != len(want) {
					t.Fatalf("read %d entries, want %d", len(got), len(want))
				}
				for i := range got {
					checkEntry(t, got[i], want[i], uint64(i+1), times[i])
				}
				if h := s.head(); h != uint64(len(want)+1) {
					t.Fatalf("head %d, want %d", h, len(want)+1)
				}
			}
			check(s)
			if err := s.sync(); err != nil {
				t.Fatal(err)
			}
			check(s)
			if err := s.close(); err != nil {
				t.Fatal(err)
			}
			s2 := openTestSpool(t, dir, clk, spoolOptions{segmentBytes: 16 << 10, tailBytes: tc.tailBytes})
			check(s2)
			if seq := mustAppend(t, s2, spoolTestEvent(99, 300)); seq != uint64(len(want)+1) {
				t.Fatalf("append after reopen: seq %d", seq)
			}
		})
	}
}

func TestSpoolSinceInclusive(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	base := clk.now()
	s := openTestSpool(t, dir, clk, spoolOptions{segmentBytes: 2 << 10, tailBytes: 1})
	var times []time.Time
	for i := range 40 {
		// 1.25 s apart, so fractions matter.
		at := base.Add(time.Duration(i) * 1250 * time.Millisecond)
		ev := spoolTestEvent(i, 200)
		ev.received = at
		mustAppend(t, s, ev)
		times = append(times, at)
	}
	clk.ns.Store(times[len(times)-1].UnixNano())
	check := func(s *spool) {
		t.Helper()
		for i, at := range times {
			if got := s.since(at); got != uint64(i+1) {
				t.Fatalf("since(exact time of %d) = %d, want %d", i+1, got, i+1)
			}
			if got := s.since(at.Add(-time.Nanosecond)); got != uint64(i+1) {
				t.Fatalf("since(just before %d) = %d", i+1, got)
			}
			if got := s.since(at.Add(time.Nanosecond)); got != uint64(i+2) {
				t.Fatalf("since(just after %d) = %d, want %d", i+1, got, i+2)
			}
		}
		// RFC 3339 with a fraction and an offset: event 3 is at base+2.5 s.
		str := times[2].In(time.FixedZone("", 90*60)).Format("2006-01-02T15:04:05.000-07:00")
		pt, err := time.Parse(time.RFC3339Nano, str)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.since(pt); got != 3 {
			t.Fatalf("since(%s) = %d, want 3", str, got)
		}
		if got := s.since(time.Time{}); got != 1 {
			t.Fatalf("since(zero) = %d, want 1", got)
		}
		if got := s.since(times[len(times)-1].Add(time.Millisecond)); got != s.head() {
			t.Fatalf("since(after all) = %d, want head %d", got, s.head())
		}
		got := readAll(t, s, s.since(times[10]))
		if len(got) != 30 || got[0].seq != 11 {
			t.Fatalf("replay from since: %d entries from %d", len(got), got[0].seq)
		}
	}
	check(s)
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	check(openTestSpool(t, dir, clk, spoolOptions{segmentBytes: 2 << 10, tailBytes: 1}))
}

func TestSpoolReceivedNeverGoesBack(t *testing.T) {
	clk := newFakeClock()
	s := openTestSpool(t, t.TempDir(), clk, spoolOptions{})
	ev := spoolTestEvent(1, 100)
	ev.received = clk.now()
	mustAppend(t, s, ev)
	ev.received = clk.now().Add(-time.Hour) // the clock stepped back
	mustAppend(t, s, ev)
	got := readAll(t, s, 1)
	if !got[1].received.Equal(got[0].received) {
		t.Fatalf("second event received %v, first %v", got[1].received, got[0].received)
	}
}

func spoolFiles(t testing.TB, dir, suffix string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, spoolDirName, "*"+suffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSpoolReplayAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	opts := spoolOptions{segmentBytes: 4 << 10, tailBytes: 8 << 10}
	s := openTestSpool(t, dir, clk, opts)
	var want []spoolEntry
	var times []time.Time
	add := func(n int) {
		for range n {
			i := len(want)
			clk.advance(time.Second)
			ev := spoolTestEvent(i, 300+i%200)
			mustAppend(t, s, ev)
			want, times = append(want, ev), append(times, clk.now())
		}
	}
	add(200)
	if err := s.sync(); err != nil {
		t.Fatal(err)
	}
	segs, idxs := spoolFiles(t, dir, spoolSegSuffix), spoolFiles(t, dir, spoolIdxSuffix)
	if len(segs) < 10 || len(idxs) != len(segs)-1 {
		t.Fatalf("%d segments and %d indexes", len(segs), len(idxs))
	}
	for _, p := range segs {
		if fi, _ := os.Stat(p); fi.Size() > opts.segmentBytes {
			t.Fatalf("%s has %d bytes, more than the segment size", p, fi.Size())
		}
	}
	// A replay from the middle of a sealed segment reads on into the tail,
	// then says it caught up, then sees what comes next.
	r := s.reader(s.since(times[7]))
	defer r.close()
	for i := 7; i < len(want); i++ {
		e, ok, err := r.next()
		if err != nil || !ok {
			t.Fatalf("next at %d: ok %v err %v", i, ok, err)
		}
		checkEntry(t, e, want[i], uint64(i+1), times[i])
	}
	if _, ok, err := r.next(); ok || err != nil {
		t.Fatalf("not caught up at the head: ok %v err %v", ok, err)
	}
	if r.position() != s.head() {
		t.Fatalf("position %d, head %d", r.position(), s.head())
	}
	add(3)
	for i := len(want) - 3; i < len(want); i++ {
		e, ok, err := r.next()
		if err != nil || !ok {
			t.Fatalf("next after new appends: ok %v err %v", ok, err)
		}
		checkEntry(t, e, want[i], uint64(i+1), times[i])
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.next(); !errors.Is(err, errSpoolClosed) {
		t.Fatalf("next after close: %v", err)
	}
	s2 := openTestSpool(t, dir, clk, opts)
	got := readAll(t, s2, 1)
	if len(got) != len(want) {
		t.Fatalf("after reopen %d entries, want %d", len(got), len(want))
	}
	for i := range got {
		checkEntry(t, got[i], want[i], uint64(i+1), times[i])
	}
}

// writeTestSpool appends n events to a fresh spool in dir and closes it,
// returning the events.
func writeTestSpool(t testing.TB, dir string, clk *fakeClock, opts spoolOptions, n int) []spoolEntry {
	t.Helper()
	opts.now = clk.now
	s, err := openSpool(dir, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	var evs []spoolEntry
	for i := range n {
		clk.advance(time.Second)
		ev := spoolTestEvent(i, 150+i*7)
		mustAppend(t, s, ev)
		evs = append(evs, ev)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	return evs
}

func copySpoolDir(t testing.TB, from, to string) {
	t.Helper()
	os.MkdirAll(filepath.Join(to, spoolDirName), 0o750)
	ents, err := os.ReadDir(filepath.Join(from, spoolDirName))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, spoolDirName, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, spoolDirName, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSpoolTornTail(t *testing.T) {
	src := t.TempDir()
	clk := newFakeClock()
	opts := spoolOptions{segmentBytes: 4 << 10}
	evs := writeTestSpool(t, src, clk, opts, 30)
	segs := spoolFiles(t, src, spoolSegSuffix)
	if len(segs) < 2 {
		t.Fatalf("want several segments, have %d", len(segs))
	}
	head := segs[len(segs)-1]
	full, _ := os.ReadFile(head)
	last := evs[len(evs)-1]
	recLen := spoolFrameHeader + spoolMinPayload - 1 + len(last.source) + len(last.ivorn) + len(last.raw)
	start := len(full) - recLen
	for cut := start; cut < len(full); cut++ {
		dir := t.TempDir()
		copySpoolDir(t, src, dir)
		if err := os.Truncate(filepath.Join(dir, spoolDirName, filepath.Base(head)), int64(cut)); err != nil {
			t.Fatal(err)
		}
		lg := &testLogger{}
		o := opts
		o.now = clk.now
		s, err := openSpool(dir, o, lg.logger())
		if err != nil {
			t.Fatalf("cut at %d: open: %v", cut, err)
		}
		if h := s.head(); h != uint64(len(evs)) {
			t.Fatalf("cut at %d: head %d, want %d", cut, h, len(evs))
		}
		if cut > start && !strings.Contains(lg.String(), "truncating torn or corrupt end of segment") {
			t.Fatalf("cut at %d: no log line: %s", cut, lg.String())
		}
		got := readAll(t, s, 1)
		if len(got) != len(evs)-1 || !bytes.Equal(got[len(got)-1].raw, evs[len(evs)-2].raw) {
			t.Fatalf("cut at %d: read %d entries", cut, len(got))
		}
		if seq := mustAppend(t, s, last); seq != uint64(len(evs)) {
			t.Fatalf("cut at %d: append got seq %d", cut, seq)
		}
		s.close()
		if fi, _ := os.Stat(filepath.Join(dir, spoolDirName, filepath.Base(head))); fi.Size() != int64(len(full)) {
			t.Fatalf("cut at %d: head has %d bytes after re-append, want %d", cut, fi.Size(), len(full))
		}
	}
}

func TestSpoolBadCRCInHead(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	evs := writeTestSpool(t, dir, clk, spoolOptions{}, 10)
	segs := spoolFiles(t, dir, spoolSegSuffix)
	if len(segs) != 1 {
		t.Fatalf("%d segments", len(segs))
	}
	b, _ := os.ReadFile(segs[0])
	// Find record 5 and flip a byte of its event.
	off := len(spoolSegMagic)
	for i := range 4 {
		off += spoolFrameHeader + spoolMinPayload - 1 + len(evs[i].source) + len(evs[i].ivorn) + len(evs[i].raw)
	}
	b[off+spoolFrameHeader+40] ^= 0x20
	os.WriteFile(segs[0], b, 0o600)
	lg := &testLogger{}
	s, err := openSpool(dir, spoolOptions{now: clk.now}, lg.logger())
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if !strings.Contains(lg.String(), "bad CRC") {
		t.Fatalf("log does not say why: %s", lg.String())
	}
	got := readAll(t, s, 1)
	if len(got) != 4 || s.head() != 5 {
		t.Fatalf("kept %d records, head %d; want 4 and 5", len(got), s.head())
	}
	if fi, _ := os.Stat(segs[0]); fi.Size() != int64(off) {
		t.Fatalf("segment is %d bytes, want it cut at %d", fi.Size(), off)
	}
}

func TestSpoolDamagedSealedRecordSkipped(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	opts := spoolOptions{segmentBytes: 4 << 10, tailBytes: 1}
	evs := writeTestSpool(t, dir, clk, opts, 30)
	segs := spoolFiles(t, dir, spoolSegSuffix)
	b, _ := os.ReadFile(segs[0])
	first := len(spoolSegMagic)
	second := first + spoolFrameHeader + spoolMinPayload - 1 + len(evs[0].source) + len(evs[0].ivorn) + len(evs[0].raw)
	b[second+spoolFrameHeader+30] ^= 1 // record 2, in a sealed segment with a good index
	os.WriteFile(segs[0], b, 0o600)
	lg := &testLogger{}
	opts.now = clk.now
	s, err := openSpool(dir, opts, lg.logger())
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	got := readAll(t, s, 1)
	if len(got) != len(evs)-1 || got[0].seq != 1 || got[1].seq != 3 {
		t.Fatalf("read %d entries, first seqs %d %d", len(got), got[0].seq, got[1].seq)
	}
	if !strings.Contains(lg.String(), "skipping damaged record") {
		t.Fatalf("no log line: %s", lg.String())
	}
	if _, ok := s.get(evs[1].ivorn); ok {
		t.Fatal("get returned a damaged record")
	}
}

func TestSpoolIndexRebuilt(t *testing.T) {
	for _, damage := range []string{"missing", "bad CRC", "truncated", "wrong segment size"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			clk := newFakeClock()
			opts := spoolOptions{segmentBytes: 4 << 10, tailBytes: 1}
			evs := writeTestSpool(t, dir, clk, opts, 40)
			idxs := spoolFiles(t, dir, spoolIdxSuffix)
			seg := strings.TrimSuffix(idxs[1], spoolIdxSuffix) + spoolSegSuffix
			want, _ := os.ReadFile(idxs[1])
			switch damage {
			case "missing":
				os.Remove(idxs[1])
			case "bad CRC":
				b := bytes.Clone(want)
				b[len(b)-1] ^= 1
				os.WriteFile(idxs[1], b, 0o600)
			case "truncated":
				os.Truncate(idxs[1], int64(len(want)-5))
			case "wrong segment size":
				f, _ := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
				f.Write([]byte("junk after the last record"))
				f.Close()
			}
			lg := &testLogger{}
			opts.now = clk.now
			s, err := openSpool(dir, opts, lg.logger())
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			if got, _ := os.ReadFile(idxs[1]); !bytes.Equal(got, want) {
				t.Fatalf("index not rebuilt identically (%d bytes, want %d); log: %s", len(got), len(want), lg.String())
			}
			got := readAll(t, s, 1)
			if len(got) != len(evs) {
				t.Fatalf("read %d entries, want %d", len(got), len(evs))
			}
		})
	}
}

// spoolDiskBytes is the size of every file in the spool directory.
func spoolDiskBytes(t testing.TB, dir string) int64 {
	t.Helper()
	var n int64
	ents, _ := os.ReadDir(filepath.Join(dir, spoolDirName))
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

func TestSpoolRetentionByAge(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	s := openTestSpool(t, dir, clk, spoolOptions{maxAge: time.Hour, maxBytes: 64 << 20})
	// One event a minute for three hours; the head rolls every 7.5 minutes.
	for i := range 180 {
		clk.advance(time.Minute)
		mustAppend(t, s, spoolTestEvent(i, 500))
		if err := s.sync(); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := s.prune(clk.now())
	if err != nil {
		t.Fatal(err)
	}
	st := s.stats()
	age := clk.now().Sub(st.oldest)
	if age > time.Hour+s.window/8+time.Minute || age < time.Hour-s.window/8 {
		t.Fatalf("oldest kept event is %v old (removed %d now)", age, removed)
	}
	// Nothing older than the window is served even before it is deleted.
	got := readAll(t, s, 1)
	for _, e := range got {
		if clk.now().Sub(e.received) > time.Hour {
			t.Fatalf("served an event %v old", clk.now().Sub(e.received))
		}
	}
	if len(got) < 59 || len(got) > 61 {
		t.Fatalf("served %d events of the last hour", len(got))
	}
	if s.since(time.Time{}) != got[0].seq {
		t.Fatalf("since(zero) = %d, first served %d", s.since(time.Time{}), got[0].seq)
	}
	// An idle spool empties: its head is rolled and deleted.
	clk.advance(2 * time.Hour)
	if _, err := s.prune(clk.now()); err != nil {
		t.Fatal(err)
	}
	if st := s.stats(); st.events != 0 || st.segments != 1 {
		t.Fatalf("idle spool keeps %d events in %d segments", st.events, st.segments)
	}
	if seq := mustAppend(t, s, spoolTestEvent(1000, 300)); seq != 181 {
		t.Fatalf("seq after emptying %d, want 181", seq)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTestSpool(t, dir, clk, spoolOptions{maxAge: time.Hour})
	if got := readAll(t, s2, 0); len(got) != 1 || got[0].seq != 181 {
		t.Fatalf("after reopen: %d entries", len(got))
	}
}

func TestSpoolRetentionByBytes(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	const maxBytes = 256 << 10
	s := openTestSpool(t, dir, clk, spoolOptions{maxBytes: maxBytes})
	seg := s.segBytes
	if seg != maxBytes/8 {
		t.Fatalf("segment size %d, want %d", seg, maxBytes/8)
	}
	peak := int64(0)
	for i := range 2000 {
		clk.advance(time.Millisecond)
		mustAppend(t, s, spoolTestEvent(i, 1000+i%500))
		if i%10 == 0 {
			if err := s.sync(); err != nil {
				t.Fatal(err)
			}
		}
		if i%50 == 0 {
			peak = max(peak, spoolDiskBytes(t, dir))
		}
	}
	if err := s.sync(); err != nil {
		t.Fatal(err)
	}
	disk := spoolDiskBytes(t, dir)
	if st := s.stats(); st.bytes != disk {
		t.Fatalf("stats say %d bytes, the directory holds %d", st.bytes, disk)
	}
	if disk > maxBytes || peak > maxBytes+seg+seg/4 {
		t.Fatalf("on disk %d bytes (peak %d) for a cap of %d and segments of %d", disk, peak, maxBytes, seg)
	}
	if disk < maxBytes-seg-seg/4 {
		t.Fatalf("on disk %d bytes: more was deleted than needed for a cap of %d", disk, maxBytes)
	}
	got := readAll(t, s, 0)
	if len(got) == 0 || got[len(got)-1].seq != 2000 {
		t.Fatal("newest events not kept")
	}
	for i := 1; i < len(got); i++ {
		if got[i].seq != got[i-1].seq+1 {
			t.Fatalf("gap at %d", got[i].seq)
		}
	}
}

func TestSpoolExpiryCap(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	s := openTestSpool(t, dir, clk, spoolOptions{maxAge: 24 * time.Hour, expiry: time.Hour, segmentBytes: 4 << 10})
	old := spoolTestEvent(1, 300)
	mustAppend(t, s, old)
	clk.advance(90 * time.Minute)
	mustAppend(t, s, spoolTestEvent(2, 300))
	if got := readAll(t, s, 1); len(got) != 1 || got[0].seq != 2 {
		t.Fatalf("read %d entries past the expiry cap", len(got))
	}
	if _, ok := s.get(old.ivorn); ok {
		t.Fatal("get returned an event older than the expiry")
	}
	if got := s.recent(10, time.Time{}); len(got) != 1 {
		t.Fatalf("recent returned %d", len(got))
	}
	if got := s.since(clk.now().Add(-48 * time.Hour)); got != 2 {
		t.Fatalf("since(two days ago) = %d, want 2", got)
	}
	// The roll age follows the cap: an hour's window rolls every 7.5 min,
	// so the old event's segment is sealed and deleted.
	if err := s.sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.prune(clk.now()); err != nil {
		t.Fatal(err)
	}
	if st := s.stats(); st.events != 1 {
		t.Fatalf("%d events on disk after prune, want 1", st.events)
	}
}

func TestSpoolGetAndRecent(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	s := openTestSpool(t, dir, clk, spoolOptions{segmentBytes: 4 << 10, tailBytes: 2 << 10})
	var evs []spoolEntry
	var times []time.Time
	for i := range 50 {
		clk.advance(time.Second)
		ev := spoolTestEvent(i, 200+i)
		mustAppend(t, s, ev)
		evs, times = append(evs, ev), append(times, clk.now())
	}
	// A second event with the ivorn of event 3: get returns the newer.
	dup := spoolTestEvent(3, 260)
	dup.raw = append([]byte("<!-- again -->"), dup.raw...)
	clk.advance(time.Second)
	mustAppend(t, s, dup)
	s.sync()
	for _, i := range []int{0, 10, 48, 49} { // disk and memory
		e, ok := s.get(evs[i].ivorn)
		if !ok {
			t.Fatalf("get(%s) not found", evs[i].ivorn)
		}
		checkEntry(t, e, evs[i], uint64(i+1), times[i])
	}
	if e, ok := s.get(dup.ivorn); !ok || !bytes.Equal(e.raw, dup.raw) || e.seq != 51 {
		t.Fatalf("get(duplicate ivorn) = seq %d ok %v", e.seq, ok)
	}
	if _, ok := s.get("ivo://test/spool#nope"); ok {
		t.Fatal("get of an unknown ivorn succeeded")
	}
	rec := s.recent(5, time.Time{})
	if len(rec) != 5 || rec[0].seq != 51 || rec[4].seq != 47 {
		t.Fatalf("recent(5): %d entries from %d", len(rec), rec[0].seq)
	}
	for _, e := range rec {
		if e.raw != nil || e.size == 0 || e.ivorn == "" || e.source == "" || e.role == "" || e.received.IsZero() {
			t.Fatalf("recent entry %+v", e)
		}
	}
	if rec := s.recent(100, times[44]); len(rec) != 7 || rec[6].seq != 45 {
		t.Fatalf("recent(100, since 45): %d entries", len(rec))
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.get(evs[0].ivorn); ok {
		t.Fatal("get after close succeeded")
	}
	s2 := openTestSpool(t, dir, clk, spoolOptions{segmentBytes: 4 << 10, tailBytes: 2 << 10})
	if e, ok := s2.get(evs[5].ivorn); !ok || !bytes.Equal(e.raw, evs[5].raw) {
		t.Fatal("get after reopen failed")
	}
	if rec := s2.recent(1000, time.Time{}); len(rec) != 51 {
		t.Fatalf("recent after reopen: %d", len(rec))
	}
}

func TestSpoolKillKeepsAppended(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	opts := spoolOptions{segmentBytes: 4 << 10, now: clk.now}
	s, err := openSpool(dir, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	var evs []spoolEntry
	for i := range 100 {
		clk.advance(time.Second)
		ev := spoolTestEvent(i, 250)
		mustAppend(t, s, ev)
		evs = append(evs, ev)
	}
	// No sync, no close: rolled segments are unsealed and have no index.
	s2, err := openSpool(dir, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.close()
	got := readAll(t, s2, 1)
	if len(got) != len(evs) {
		t.Fatalf("after a kill %d of %d events", len(got), len(evs))
	}
	for i := range got {
		if !bytes.Equal(got[i].raw, evs[i].raw) {
			t.Fatalf("event %d differs", i+1)
		}
	}
	if len(spoolFiles(t, dir, spoolIdxSuffix)) != len(spoolFiles(t, dir, spoolSegSuffix))-1 {
		t.Fatal("indexes of unsealed segments were not rebuilt")
	}
	s.closeFiles() // the "killed" process's descriptors
}

func TestSpoolAppendErrors(t *testing.T) {
	s := openTestSpool(t, t.TempDir(), nil, spoolOptions{})
	for _, tc := range []struct {
		name string
		ev   spoolEntry
		want string
	}{
		{"role", spoolEntry{role: "weird", raw: []byte("x")}, `unknown role "weird"`},
		{"empty", spoolEntry{role: "test"}, "empty event"},
		{"ivorn", spoolEntry{role: "test", raw: []byte("x"), ivorn: strings.Repeat("i", 70000)}, "ivorn is 70000 bytes"},
		{"source", spoolEntry{role: "test", raw: []byte("x"), source: strings.Repeat("s", 70000)}, "source is 70000 bytes"},
	} {
		if _, err := s.append(tc.ev); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
	if s.head() != 1 {
		t.Fatalf("head moved to %d", s.head())
	}
	s.close()
	if _, err := s.append(spoolTestEvent(1, 100)); !errors.Is(err, errSpoolClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if err := s.sync(); !errors.Is(err, errSpoolClosed) {
		t.Fatalf("sync after close: %v", err)
	}
}

func TestSpoolOptions(t *testing.T) {
	dir := t.TempDir()
	if _, err := openSpool(dir, spoolOptions{maxBytes: 1000}, nil); err == nil || !strings.Contains(err.Error(), "1000") {
		t.Fatalf("tiny max-bytes: %v", err)
	}
	if _, err := openSpool(dir, spoolOptions{maxAge: time.Millisecond}, nil); err == nil {
		t.Fatal("max-age of 1ms accepted")
	}
	s := openTestSpool(t, dir, nil, spoolOptions{})
	if s.segBytes != 8<<20 || s.opts.maxBytes != 64<<20 || s.window != 24*time.Hour || s.opts.tailBytes != defaultSpoolTailBytes {
		t.Fatalf("defaults: segment %d, max bytes %d, window %v, tail %d", s.segBytes, s.opts.maxBytes, s.window, s.opts.tailBytes)
	}
}

func TestSpoolSyncFsyncsAndSeals(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	s := openTestSpool(t, dir, clk, spoolOptions{segmentBytes: 2 << 10})
	for i := range 20 {
		mustAppend(t, s, spoolTestEvent(i, 400))
	}
	if n := len(spoolFiles(t, dir, spoolIdxSuffix)); n != 0 {
		t.Fatalf("%d indexes before sync: sealing must not run on the append path", n)
	}
	if err := s.sync(); err != nil {
		t.Fatal(err)
	}
	if n, m := len(spoolFiles(t, dir, spoolIdxSuffix)), len(spoolFiles(t, dir, spoolSegSuffix)); n != m-1 {
		t.Fatalf("%d indexes for %d segments after sync", n, m)
	}
	s.mu.Lock()
	for _, g := range s.segs[:len(s.segs)-1] {
		if !g.sealed || g.f != nil {
			t.Errorf("segment %d: sealed %v, file open %v", g.first, g.sealed, g.f != nil)
		}
	}
	s.mu.Unlock()
}

func TestSpoolConcurrentReadersAndWriter(t *testing.T) {
	dir := t.TempDir()
	s := openTestSpool(t, dir, nil, spoolOptions{maxBytes: 1 << 20, tailBytes: 4 << 10})
	const n = 2000
	done := make(chan error, 3)
	go func() {
		for i := range n {
			if _, err := s.append(spoolTestEvent(i, 300)); err != nil {
				done <- err
				return
			}
			if i%100 == 0 {
				s.sync()
			}
		}
		done <- nil
	}()
	for range 2 {
		go func() {
			r := s.reader(1)
			defer r.close()
			last := uint64(0)
			deadline := time.Now().Add(20 * time.Second)
			for last < n && time.Now().Before(deadline) {
				e, ok, err := r.next()
				if err != nil {
					done <- err
					return
				}
				if !ok {
					time.Sleep(time.Millisecond)
					continue
				}
				if e.seq <= last {
					done <- fmt.Errorf("seq %d after %d", e.seq, last)
					return
				}
				if want := spoolTestEvent(int(e.seq-1), 300); !bytes.Equal(e.raw, want.raw) {
					done <- fmt.Errorf("seq %d: wrong bytes", e.seq)
					return
				}
				last = e.seq
			}
			if last != n {
				done <- fmt.Errorf("reader stopped at %d", last)
				return
			}
			done <- nil
		}()
	}
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{"0", 0, ""},
		{"12345", 12345, ""},
		{"64MiB", 64 << 20, ""},
		{"64 MiB", 64 << 20, ""},
		{"1KiB", 1024, ""},
		{"2GiB", 2 << 30, ""},
		{"5KB", 5000, ""},
		{"3MB", 3000000, ""},
		{"1GB", 1000000000, ""},
		{"100B", 100, ""},
		{"64mib", 64 << 20, ""},
		{"", 0, `byte size ""`},
		{"MiB", 0, `byte size "MiB"`},
		{"-1", 0, `byte size "-1"`},
		{"1.5MiB", 0, `byte size "1.5MiB": unknown unit ".5MiB"`},
		{"64XB", 0, `byte size "64XB": unknown unit "XB"`},
		{"99999999999GiB", 0, "too large"},
		{"99999999999999999999", 0, "too large"},
	} {
		got, err := parseByteSize(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("parseByteSize(%q) error %v; want one containing %q", tc.in, err, tc.err)
		}
	}
}

// FuzzSpoolReplay: any bytes as the head segment open without panic; what
// is recovered is the file's longest prefix of valid frames; appending
// after recovery works.
func FuzzSpoolReplay(f *testing.F) {
	good := spoolSegMagic
	var b []byte
	b = append(b, good...)
	for i := range 3 {
		ev := spoolTestEvent(i, 60)
		b = encodeSpoolRecord(b, uint64(i+1), int64(i+1)*1e9, uint8(1+i%4), ev.source, ev.ivorn, ev.raw)
	}
	f.Add(b)
	f.Add(b[:len(b)-3])
	f.Add([]byte{})
	f.Add([]byte(spoolSegMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, spoolDirName), 0o750)
		path := filepath.Join(dir, spoolDirName, spoolSegName(1))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		clk := newFakeClock()
		s, err := openSpool(dir, spoolOptions{now: clk.now, maxAge: 1 << 62}, nil)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer s.close()
		after, _ := os.ReadFile(path)
		// The file kept is a prefix of the input (or a fresh magic).
		if !bytes.HasPrefix(data, after) && string(after) != spoolSegMagic {
			t.Fatalf("kept %d bytes that are not a prefix of the input", len(after))
		}
		// Every kept record frames and checks, with consecutive seqs.
		// Those older than the retention window are not served.
		var n, served uint64
		horizon, prev := s.horizonLocked(), int64(math.MinInt64)
		_, err = scanSpoolSegment(bytes.NewReader(after), int64(len(after)), 1, func(m spoolMeta, raw []byte) {
			n++
			prev = max(prev, m.recv)
			if prev >= horizon {
				served++
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if s.head() != n+1 {
			t.Fatalf("head %d for %d kept records", s.head(), n)
		}
		got := readAll(t, s, 0)
		if uint64(len(got)) != served {
			t.Fatalf("read %d of %d records", len(got), served)
		}
		ev := spoolTestEvent(7, 100)
		seq, err := s.append(ev)
		if err != nil || seq != n+1 {
			t.Fatalf("append after recovery: seq %d, %v", seq, err)
		}
		e, ok, err := s.reader(seq).next()
		if err != nil || !ok || !bytes.Equal(e.raw, ev.raw) {
			t.Fatalf("read back after recovery: ok %v err %v", ok, err)
		}
		if err := s.close(); err != nil {
			t.Fatal(err)
		}
		s2, err := openSpool(dir, spoolOptions{now: clk.now, maxAge: 1 << 62}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s2.close()
		if s2.head() != seq+1 {
			t.Fatalf("reopened head %d, want %d", s2.head(), seq+1)
		}
	})
}

// TestSpoolHandOffNoGap follows the hand-off protocol of notes/spool.md
// while events keep arriving: replay to the head, register for live, drain
// the reader again, then take live events dropping seq < end. Every event
// must arrive exactly once, in order.
func TestSpoolHandOffNoGap(t *testing.T) {
	s := openTestSpool(t, t.TempDir(), nil, spoolOptions{maxBytes: 4 << 20, tailBytes: 16 << 10})
	const n = 3000
	var mu sync.Mutex
	var live []chan uint64
	appended := make(chan error, 1)
	go func() {
		for i := range n {
			seq, err := s.append(spoolTestEvent(i, 200))
			if err != nil {
				appended <- err
				return
			}
			// The order rule: fan out after the append, to the list as it is now.
			mu.Lock()
			for _, c := range live {
				c <- seq
			}
			mu.Unlock()
			if i == n/3 {
				s.sync()
			}
		}
		appended <- nil
	}()
	// Let some events be spooled before the subscriber arrives.
	for s.head() < n/10 {
		time.Sleep(time.Millisecond)
	}
	var got []uint64
	r := s.reader(1)
	drain := func() {
		for {
			e, ok, err := r.next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				return
			}
			got = append(got, e.seq)
		}
	}
	drain()
	c := make(chan uint64, n)
	mu.Lock()
	live = append(live, c)
	mu.Unlock()
	drain()
	end := r.position()
	r.close()
	timeout := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case seq := <-c:
			if seq < end {
				continue
			}
			got = append(got, seq)
		case <-timeout:
			t.Fatalf("only %d of %d events arrived", len(got), n)
		}
	}
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
	for i, seq := range got {
		if seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d: a gap or a duplicate (hand-off at %d)", i+1, seq, end)
		}
	}
}

func TestSpoolOverlappingSegmentSetAside(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	opts := spoolOptions{segmentBytes: 4 << 10}
	evs := writeTestSpool(t, dir, clk, opts, 40)
	segs := spoolFiles(t, dir, spoolSegSuffix)
	b, _ := os.ReadFile(segs[0])
	odd := filepath.Join(dir, spoolDirName, spoolSegName(3)) // inside the first segment's seqs
	os.WriteFile(odd, b, 0o600)
	lg := &testLogger{}
	opts.now = clk.now
	s, err := openSpool(dir, opts, lg.logger())
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if _, err := os.Stat(odd + spoolBadSuffix); err != nil || !strings.Contains(lg.String(), "overlaps") {
		t.Fatalf("overlapping segment not set aside: %v; log: %s", err, lg.String())
	}
	if got := readAll(t, s, 1); len(got) != len(evs) {
		t.Fatalf("read %d of %d", len(got), len(evs))
	}
}
