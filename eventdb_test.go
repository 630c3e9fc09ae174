package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock for expiry tests.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// testLogger collects log output so tests can check what was said.
type testLogger struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *testLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *testLogger) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *testLogger) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func openTestDB(t testing.TB, dir string, clk *fakeClock, opts eventDBOptions) *eventDB {
	t.Helper()
	if clk != nil {
		opts.now = clk.now
	}
	db, err := openEventDBWith(dir, defaultEventDBExpiry, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.close() })
	return db
}

func eventBytes(i int) []byte {
	return fmt.Appendf(nil, `<voe:VOEvent ivorn="ivo://test.example/db#%d" role="test"/>`, i)
}

func mustNew(t testing.TB, db *eventDB, root []byte, want bool) {
	t.Helper()
	got, err := db.checkAndRecord(root)
	if err != nil {
		t.Fatalf("checkAndRecord(%q): %v", root, err)
	}
	if got != want {
		t.Fatalf("checkAndRecord(%q) = %v, want %v", root, got, want)
	}
}

func logPath(dir string) string { return filepath.Join(dir, eventDBLogName) }

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestEventDBNewSeenAndPersistence(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	db := openTestDB(t, dir, clk, eventDBOptions{})
	for i := range 5 {
		mustNew(t, db, eventBytes(i), true)
	}
	for i := range 5 {
		mustNew(t, db, eventBytes(i), false)
	}
	if !db.seen(eventBytes(3)) || db.seen(eventBytes(99)) {
		t.Errorf("seen: wrong answer")
	}
	if db.seen(eventBytes(99)) {
		t.Errorf("seen recorded an event")
	}
	if got, want := db.len(), 5; got != want {
		t.Errorf("len = %d, want %d", got, want)
	}
	if got, want := db.sizeBytes(), int64(len(eventDBMagic)+5*eventSeenRecordLen); got != want {
		t.Errorf("sizeBytes = %d, want %d", got, want)
	}
	if err := db.close(); err != nil {
		t.Fatal(err)
	}
	if err := db.close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if _, err := db.checkAndRecord(eventBytes(7)); !errors.Is(err, errEventDBClosed) {
		t.Errorf("checkAndRecord after close: err = %v, want %v", err, errEventDBClosed)
	}

	db = openTestDB(t, dir, clk, eventDBOptions{})
	if got, want := db.len(), 5; got != want {
		t.Errorf("after reopen len = %d, want %d", got, want)
	}
	for i := range 5 {
		mustNew(t, db, eventBytes(i), false)
	}
	mustNew(t, db, eventBytes(5), true)
}

func TestEventDBKeyIsExactBytes(t *testing.T) {
	db := openTestDB(t, t.TempDir(), nil, eventDBOptions{})
	a := []byte(`<VOEvent ivorn="ivo://a/b#1"/>`)
	b := []byte(`<VOEvent  ivorn="ivo://a/b#1"/>`)
	mustNew(t, db, a, true)
	mustNew(t, db, b, true)
	mustNew(t, db, append([]byte(nil), a...), false)
}

// writeEvents opens a db in dir, records n events and closes it.
func writeEvents(t *testing.T, dir string, clk *fakeClock, n int) {
	t.Helper()
	db := openTestDB(t, dir, clk, eventDBOptions{})
	for i := range n {
		mustNew(t, db, eventBytes(i), true)
	}
	if err := db.close(); err != nil {
		t.Fatal(err)
	}
}

func TestEventDBTornTail(t *testing.T) {
	const n = 4
	clk := newFakeClock()
	src := t.TempDir()
	writeEvents(t, src, clk, n)
	whole, err := os.ReadFile(logPath(src))
	if err != nil {
		t.Fatal(err)
	}
	full := int64(len(whole))
	for cut := 1; cut < eventSeenRecordLen; cut++ {
		t.Run(fmt.Sprintf("cut%d", cut), func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(logPath(dir), whole[:full-int64(cut)], 0o600); err != nil {
				t.Fatal(err)
			}
			var lg testLogger
			db, err := openEventDBWith(dir, defaultEventDBExpiry, lg.logger(), eventDBOptions{now: clk.now})
			if err != nil {
				t.Fatal(err)
			}
			defer db.close()
			want := full - eventSeenRecordLen
			if got := fileSize(t, logPath(dir)); got != want {
				t.Errorf("log size after open = %d, want %d (torn record dropped)", got, want)
			}
			if !strings.Contains(lg.String(), "truncating torn") {
				t.Errorf("no truncation logged: %s", lg.String())
			}
			for i := range n - 1 {
				if !db.seen(eventBytes(i)) {
					t.Errorf("event %d forgotten", i)
				}
			}
			if db.seen(eventBytes(n - 1)) {
				t.Errorf("torn event remembered")
			}
			mustNew(t, db, eventBytes(n-1), true)
			mustNew(t, db, eventBytes(n), true)
			db.close()
			db2 := openTestDB(t, dir, clk, eventDBOptions{})
			if got := db2.len(); got != n+1 {
				t.Errorf("after append and reopen len = %d, want %d", got, n+1)
			}
		})
	}
}

func TestEventDBDamagedLog(t *testing.T) {
	const n = 5
	rec := func(i int) int64 { return int64(len(eventDBMagic) + i*eventSeenRecordLen) }
	tests := []struct {
		name     string
		damage   func(b []byte) []byte
		wantSeen []int // events still remembered
		wantSize int64 // log size after open
	}{
		{"zeros appended", func(b []byte) []byte { return append(b, make([]byte, 100)...) },
			[]int{0, 1, 2, 3, 4}, rec(5)},
		{"junk appended", func(b []byte) []byte { return append(b, "garbage after the last record"...) },
			[]int{0, 1, 2, 3, 4}, rec(5)},
		{"huge length appended", func(b []byte) []byte { return append(b, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0) },
			[]int{0, 1, 2, 3, 4}, rec(5)},
		{"bit flipped in last record", func(b []byte) []byte { b[rec(4)+20] ^= 1; return b },
			[]int{0, 1, 2, 3}, rec(4)},
		{"bit flipped in middle record", func(b []byte) []byte { b[rec(2)+20] ^= 1; return b },
			[]int{0, 1, 3, 4}, rec(5)},
		{"crc flipped in first record", func(b []byte) []byte { b[rec(0)+5] ^= 0x80; return b },
			[]int{1, 2, 3, 4}, rec(5)},
		{"length zeroed in middle record", func(b []byte) []byte { clear(b[rec(2) : rec(2)+4]); return b },
			[]int{0, 1}, rec(2)},
		{"torn magic", func(b []byte) []byte { return b[:3] },
			nil, int64(len(eventDBMagic))},
		{"empty file", func(b []byte) []byte { return b[:0] },
			nil, int64(len(eventDBMagic))},
	}
	clk := newFakeClock()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeEvents(t, dir, clk, n)
			b, err := os.ReadFile(logPath(dir))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(logPath(dir), tc.damage(b), 0o600); err != nil {
				t.Fatal(err)
			}
			db := openTestDB(t, dir, clk, eventDBOptions{})
			if got := fileSize(t, logPath(dir)); got != tc.wantSize {
				t.Errorf("log size = %d, want %d", got, tc.wantSize)
			}
			want := map[int]bool{}
			for _, i := range tc.wantSeen {
				want[i] = true
			}
			for i := range n {
				if got := db.seen(eventBytes(i)); got != want[i] {
					t.Errorf("seen(event %d) = %v, want %v", i, got, want[i])
				}
			}
			mustNew(t, db, eventBytes(100), true)
			db.close()
			db = openTestDB(t, dir, clk, eventDBOptions{})
			if !db.seen(eventBytes(100)) {
				t.Errorf("event appended after repair forgotten on reopen")
			}
			if got := db.len(); got != len(tc.wantSeen)+1 {
				t.Errorf("len after reopen = %d, want %d", got, len(tc.wantSeen)+1)
			}
		})
	}
}

func TestEventDBExpiry(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	db := openTestDB(t, dir, clk, eventDBOptions{})
	mustNew(t, db, eventBytes(1), true)
	clk.advance(defaultEventDBExpiry - time.Second)
	mustNew(t, db, eventBytes(1), false)
	mustNew(t, db, eventBytes(2), true)
	clk.advance(time.Second) // event 1 is now exactly 30 days old
	if db.seen(eventBytes(1)) {
		t.Errorf("event 1 still seen at 30 days")
	}
	if !db.seen(eventBytes(2)) {
		t.Errorf("event 2 forgotten after one second")
	}
	expired, err := db.prune()
	if err != nil {
		t.Fatal(err)
	}
	if expired != 1 {
		t.Errorf("prune expired %d, want 1", expired)
	}
	if got := db.len(); got != 1 {
		t.Errorf("len after prune = %d, want 1", got)
	}
	mustNew(t, db, eventBytes(1), true)
	db.close()

	// Expired records are dropped at open as well.
	clk.advance(defaultEventDBExpiry - time.Second)
	db = openTestDB(t, dir, clk, eventDBOptions{})
	if db.seen(eventBytes(2)) || !db.seen(eventBytes(1)) {
		t.Errorf("after reopen: seen(2) = %v, seen(1) = %v; want false, true", db.seen(eventBytes(2)), db.seen(eventBytes(1)))
	}
	if got := db.len(); got != 1 {
		t.Errorf("len after reopen = %d, want 1", got)
	}
}

func TestEventDBExpiredButNotPrunedIsNew(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	db := openTestDB(t, dir, clk, eventDBOptions{})
	mustNew(t, db, eventBytes(1), true)
	clk.advance(defaultEventDBExpiry)
	mustNew(t, db, eventBytes(1), true)
	mustNew(t, db, eventBytes(1), false)
	db.close()
	// Two records for one key: the later time wins on replay.
	clk.advance(time.Hour)
	db = openTestDB(t, dir, clk, eventDBOptions{})
	if !db.seen(eventBytes(1)) {
		t.Errorf("re-recorded event forgotten on reopen")
	}
}

func TestEventDBCompaction(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	var lg testLogger
	db, err := openEventDBWith(dir, defaultEventDBExpiry, lg.logger(), eventDBOptions{now: clk.now, compactMinBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer db.close()
	for i := range 100 {
		mustNew(t, db, eventBytes(i), true)
	}
	clk.advance(20 * 24 * time.Hour)
	for i := 100; i < 110; i++ {
		mustNew(t, db, eventBytes(i), true)
	}
	before := db.sizeBytes()
	clk.advance(11 * 24 * time.Hour)
	expired, err := db.prune()
	if err != nil {
		t.Fatal(err)
	}
	if expired != 100 {
		t.Errorf("expired = %d, want 100", expired)
	}
	want := int64(len(eventDBMagic) + 10*eventSeenRecordLen)
	if got := db.sizeBytes(); got != want {
		t.Errorf("size after compaction = %d, want %d (before %d)", got, want, before)
	}
	if got := fileSize(t, logPath(dir)); got != want {
		t.Errorf("file size after compaction = %d, want %d", got, want)
	}
	if !strings.Contains(lg.String(), "compacted") {
		t.Errorf("compaction not logged: %s", lg.String())
	}
	if _, err := os.Stat(filepath.Join(dir, eventDBTmpName)); err == nil {
		t.Errorf("temporary file left behind")
	}
	// Appends after compaction go to the new file.
	mustNew(t, db, eventBytes(200), true)
	if err := db.close(); err != nil {
		t.Fatal(err)
	}
	db = openTestDB(t, dir, clk, eventDBOptions{})
	for i := 0; i < 110; i++ {
		if got, want := db.seen(eventBytes(i)), i >= 100; got != want {
			t.Errorf("after compaction and reopen: seen(%d) = %v, want %v", i, got, want)
		}
	}
	if !db.seen(eventBytes(200)) {
		t.Errorf("event recorded after compaction forgotten")
	}
}

func TestEventDBCompactionBelowMinimumSize(t *testing.T) {
	clk := newFakeClock()
	db := openTestDB(t, t.TempDir(), clk, eventDBOptions{compactMinBytes: 1 << 20})
	for i := range 10 {
		mustNew(t, db, eventBytes(i), true)
	}
	clk.advance(defaultEventDBExpiry)
	size := db.sizeBytes()
	if _, err := db.prune(); err != nil {
		t.Fatal(err)
	}
	if got := db.sizeBytes(); got != size {
		t.Errorf("small log compacted: size %d, want %d", got, size)
	}
}

func TestEventDBCompactionAtOpen(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	writeEvents(t, dir, clk, 50)
	clk.advance(defaultEventDBExpiry)
	db := openTestDB(t, dir, clk, eventDBOptions{compactMinBytes: 100})
	if got, want := fileSize(t, logPath(dir)), int64(len(eventDBMagic)); got != want {
		t.Errorf("log size after open = %d, want %d", got, want)
	}
	if db.len() != 0 {
		t.Errorf("len = %d, want 0", db.len())
	}
}

// TestEventDBCompactionKeepsConcurrentAppends records events while
// compactions run, then checks every one survives a reopen.
func TestEventDBCompactionKeepsConcurrentAppends(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	db := openTestDB(t, dir, clk, eventDBOptions{compactMinBytes: 1})
	for i := range 2000 {
		mustNew(t, db, eventBytes(i), true)
	}
	clk.advance(defaultEventDBExpiry)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 10000; i < 12000; i++ {
			mustNew(t, db, eventBytes(i), true)
		}
	})
	for range 20 {
		if _, err := db.prune(); err != nil {
			t.Error(err)
		}
		if err := db.compact(); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
	db.close()
	db = openTestDB(t, dir, clk, eventDBOptions{})
	if got := db.len(); got != 2000 {
		t.Errorf("len after reopen = %d, want 2000", got)
	}
	for i := 10000; i < 12000; i++ {
		if !db.seen(eventBytes(i)) {
			t.Fatalf("event %d recorded during compaction was lost", i)
		}
	}
}

func TestEventDBPeriodicPrune(t *testing.T) {
	clk := newFakeClock()
	db := openTestDB(t, t.TempDir(), clk, eventDBOptions{pruneInterval: 2 * time.Millisecond})
	mustNew(t, db, eventBytes(1), true)
	clk.advance(defaultEventDBExpiry)
	deadline := time.Now().Add(5 * time.Second)
	for db.len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("periodic prune never removed the expired event")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestEventDBBackgroundSync(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts eventDBOptions
	}{
		{"interval", eventDBOptions{syncInterval: time.Millisecond}},
		{"count", eventDBOptions{syncInterval: time.Hour, syncEvery: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openTestDB(t, t.TempDir(), nil, tc.opts)
			for i := range 3 {
				mustNew(t, db, eventBytes(i), true)
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				db.mu.Lock()
				pending := db.unsynced
				db.mu.Unlock()
				if pending == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d records never synced", pending)
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}

func TestEventDBConcurrentSameKey(t *testing.T) {
	db := openTestDB(t, t.TempDir(), nil, eventDBOptions{})
	ev := eventBytes(42)
	var news atomic.Int32
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			for range 100 {
				isNew, err := db.checkAndRecord(ev)
				if err != nil {
					t.Error(err)
				}
				if isNew {
					news.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := news.Load(); got != 1 {
		t.Errorf("%d of 1000 concurrent checks said new, want exactly 1", got)
	}
}

func TestEventDBConcurrentManyKeys(t *testing.T) {
	db := openTestDB(t, t.TempDir(), nil, eventDBOptions{syncInterval: time.Millisecond})
	var news atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 2000 {
				isNew, err := db.checkAndRecord(eventBytes(i))
				if err != nil {
					t.Error(err)
				}
				if isNew {
					news.Add(1)
				}
				db.seen(eventBytes(i + 1))
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			db.prune()
			db.sync()
			db.len()
			db.sizeBytes()
		}
	})
	wg.Wait()
	if got := news.Load(); got != 2000 {
		t.Errorf("%d checks said new, want 2000", got)
	}
}

func TestEventDBLockConflict(t *testing.T) {
	dir := t.TempDir()
	db := openTestDB(t, dir, nil, eventDBOptions{})
	_, err := openEventDB(dir, defaultEventDBExpiry, nil)
	if err == nil {
		t.Fatal("second open of the same directory succeeded")
	}
	for _, want := range []string{dir, "another comet", eventDBLockName} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if err := db.close(); err != nil {
		t.Fatal(err)
	}
	db2, err := openEventDB(dir, defaultEventDBExpiry, nil)
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	db2.close()
}

func TestEventDBDirectory(t *testing.T) {
	base := t.TempDir()
	t.Run("created", func(t *testing.T) {
		dir := filepath.Join(base, "a", "b", "c")
		db := openTestDB(t, dir, nil, eventDBOptions{})
		mustNew(t, db, eventBytes(1), true)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Errorf("directory not created: %v", err)
		}
	})
	t.Run("file in place", func(t *testing.T) {
		path := filepath.Join(base, "file")
		if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := openEventDB(path, defaultEventDBExpiry, nil)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("err = %v, want one naming %s as not a directory", err, path)
		}
	})
	t.Run("empty name", func(t *testing.T) {
		if _, err := openEventDB("", defaultEventDBExpiry, nil); err == nil {
			t.Error("empty directory name accepted")
		}
	})
	t.Run("bad expiry", func(t *testing.T) {
		if _, err := openEventDB(filepath.Join(base, "x"), 0, nil); err == nil {
			t.Error("zero expiry accepted")
		}
	})
	t.Run("unusable", func(t *testing.T) {
		if runtime.GOOS == "windows" || os.Geteuid() == 0 {
			t.Skip("permissions are not enforced for root or on windows")
		}
		for _, mode := range []os.FileMode{0o300, 0o500, 0o600} {
			dir := filepath.Join(base, fmt.Sprintf("mode%o", mode))
			if err := os.Mkdir(dir, mode); err != nil {
				t.Fatal(err)
			}
			_, err := openEventDB(dir, defaultEventDBExpiry, nil)
			t.Logf("mode %o: %v", mode, err)
			if err == nil || !strings.Contains(err.Error(), dir) {
				t.Errorf("mode %o: err = %v, want one naming %s", mode, err, dir)
			}
			os.Chmod(dir, 0o700)
		}
	})
}

// TestEventDBWriteFailure makes every write fail as on a full disk: the
// event is still remembered in memory, the error is reported, and the log
// is whole again once writes work.
func TestEventDBWriteFailure(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full here")
	}
	dir := t.TempDir()
	db := openTestDB(t, dir, nil, eventDBOptions{})
	mustNew(t, db, eventBytes(1), true)
	db.mu.Lock()
	good := db.f
	db.f = full
	db.mu.Unlock()

	isNew, err := db.checkAndRecord(eventBytes(2))
	if !isNew || err == nil {
		t.Fatalf("checkAndRecord on a full disk = %v, %v; want true and an error", isNew, err)
	}
	if !strings.Contains(err.Error(), logPath(dir)) {
		t.Errorf("error %q does not name the log", err)
	}
	isNew, err = db.checkAndRecord(eventBytes(2))
	if isNew || err != nil {
		t.Errorf("second check on a full disk = %v, %v; want false, nil (remembered in memory)", isNew, err)
	}

	db.mu.Lock()
	db.f = good
	db.mu.Unlock()
	full.Close()
	mustNew(t, db, eventBytes(3), true)
	db.close()
	db = openTestDB(t, dir, nil, eventDBOptions{})
	for i, want := range map[int]bool{1: true, 2: false, 3: true} {
		if got := db.seen(eventBytes(i)); got != want {
			t.Errorf("after reopen seen(%d) = %v, want %v", i, got, want)
		}
	}
}

func TestEventDBNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 5 {
		db, err := openEventDBWith(t.TempDir(), time.Hour, nil, eventDBOptions{syncInterval: time.Millisecond, pruneInterval: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		db.checkAndRecord(eventBytes(1))
		if err := db.close(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d before, %d after close", before, runtime.NumGoroutine())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestKeyTableModel checks the table against a map through random inserts,
// lookups and deletions, in tables small enough that clusters wrap around.
func TestKeyTableModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		var kt keyTable
		kt.seed = rng.Uint64()
		kt.slots = make([]keySlot, 7+round%13)
		model := map[eventKey]uint32{}
		for step := range 400 {
			var k eventKey
			binary.LittleEndian.PutUint64(k[:], uint64(rng.IntN(60)))
			switch {
			case step%50 == 49:
				cut := uint32(rng.IntN(100) + 1)
				removed := kt.deleteIf(func(t uint32) bool { return t < cut })
				want := 0
				for mk, mt := range model {
					if mt < cut {
						delete(model, mk)
						want++
					}
				}
				if removed != want {
					t.Fatalf("round %d: deleteIf removed %d, want %d", round, removed, want)
				}
			default:
				i, found := kt.find(&k)
				_, inModel := model[k]
				if found != inModel {
					t.Fatalf("round %d step %d: find = %v, model %v", round, step, found, inModel)
				}
				if !found {
					tm := uint32(rng.IntN(100) + 1)
					kt.insertAt(i, k, tm)
					model[k] = tm
				}
			}
			if kt.n != len(model) {
				t.Fatalf("round %d step %d: n = %d, model %d", round, step, kt.n, len(model))
			}
		}
		for mk, mt := range model {
			i, found := kt.find(&mk)
			if !found || kt.slots[i].t != mt {
				t.Fatalf("round %d: key %x lost", round, mk[:8])
			}
		}
	}
}

// TestKeyTableBytesPerEntry checks the contract's budget of at most 48 bytes
// of memory per remembered event at one million events.
func TestKeyTableBytesPerEntry(t *testing.T) {
	if testing.Short() || eventDBRaceEnabled {
		t.Skip("allocates about 40 MB; too slow under the race detector")
	}
	perEntry := measureTableBytesPerEntry(1_000_000)
	t.Logf("%.1f bytes per entry at 1M entries", perEntry)
	if perEntry > 48 {
		t.Errorf("%.1f bytes per entry, budget 48", perEntry)
	}
}

func measureTableBytesPerEntry(n int) float64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	kt := new(keyTable)
	kt.init(0)
	for i := range n {
		k := testKey(uint64(i))
		j, _ := kt.find(&k)
		kt.insertAt(j, k, 1)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	after := ms.HeapAlloc
	runtime.KeepAlive(kt)
	return float64(after-before) / float64(n)
}

// testKey is a well-mixed key for counter i (splitmix64).
func testKey(i uint64) eventKey {
	var k eventKey
	for h := range 2 {
		z := i*2 + uint64(h) + 0x9e3779b97f4a7c15
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		binary.LittleEndian.PutUint64(k[h*8:], z^(z>>31))
	}
	return k
}

// FuzzEventDBReplay opens arbitrary bytes as a log: it must open, keep a
// valid prefix, and then record, remember and reopen normally.
func FuzzEventDBReplay(f *testing.F) {
	clk := newFakeClock()
	var good []byte
	good = append(good, eventDBMagic...)
	var rec [eventSeenRecordLen]byte
	for i := range 3 {
		k := eventKeyOf(eventBytes(i))
		encodeSeenRecord(&rec, &k, unixSeconds(clk.now()))
		good = append(good, rec[:]...)
	}
	f.Add([]byte{})
	f.Add(good)
	f.Add(good[:len(good)-5])
	f.Add(append(append([]byte(nil), good...), 0, 0, 0, 0, 0, 0, 0, 0, 1))
	f.Add([]byte(eventDBMagic + "\x00\x00\x10\x01"))
	f.Add([]byte("not a log at all"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(logPath(dir), data, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := openEventDBWith(dir, defaultEventDBExpiry, nil, eventDBOptions{now: clk.now, compactMinBytes: 64})
		n := min(len(data), len(eventDBMagic))
		if foreign := len(data) > 0 && string(data[:n]) != eventDBMagic[:n]; foreign {
			// Not an event log: refused and left as it was.
			if err == nil {
				db.close()
				t.Fatal("a file that is not an event log was opened")
			}
			if b, _ := os.ReadFile(logPath(dir)); !bytes.Equal(b, data) {
				t.Error("a refused file was changed")
			}
			return
		}
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		size := fileSize(t, logPath(dir))
		if size > int64(len(data)) && size != int64(len(eventDBMagic)) {
			t.Errorf("log grew from %d to %d bytes at open", len(data), size)
		}
		remembered := db.len()
		ev := []byte("<VOEvent ivorn='ivo://fuzz/x#1'/>")
		isNew, err := db.checkAndRecord(ev)
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := db.checkAndRecord(ev); again {
			t.Error("event new twice")
		}
		if err := db.close(); err != nil {
			t.Fatal(err)
		}
		db, err = openEventDBWith(dir, defaultEventDBExpiry, nil, eventDBOptions{now: clk.now})
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer db.close()
		if !db.seen(ev) {
			t.Error("recorded event forgotten on reopen")
		}
		want := remembered
		if isNew {
			want++
		}
		if got := db.len(); got != want {
			t.Errorf("len after reopen = %d, want %d", got, want)
		}
	})
}

// Benchmarks: go test -run XXX -bench EventDB -benchmem
//
// CheckNew and CheckSeen time the store alone (key already hashed);
// CheckMedianEvent adds the SHA-256 of a median-size event's bytes.

func BenchmarkEventDBCheckNew(b *testing.B) {
	db := openTestDB(b, b.TempDir(), nil, eventDBOptions{})
	i := uint64(0)
	for b.Loop() {
		if isNew, err := db.checkAndRecordKey(testKey(i)); !isNew || err != nil {
			b.Fatal(isNew, err)
		}
		i++
	}
}

// BenchmarkEventDBWriteFloor is the write(2) that CheckNew cannot avoid: a
// bare 33-byte append to a file, for comparison on the same machine.
func BenchmarkEventDBWriteFloor(b *testing.B) {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "floor"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var rec [eventSeenRecordLen]byte
	for b.Loop() {
		if _, err := f.Write(rec[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEventDBCheckSeen(b *testing.B) {
	db := openTestDB(b, b.TempDir(), nil, eventDBOptions{})
	const n = 100_000
	for i := range uint64(n) {
		db.checkAndRecordKey(testKey(i))
	}
	i := uint64(0)
	for b.Loop() {
		if isNew, err := db.checkAndRecordKey(testKey(i % n)); isNew || err != nil {
			b.Fatal(isNew, err)
		}
		i++
	}
}

func BenchmarkEventDBCheckMedianEvent(b *testing.B) {
	db := openTestDB(b, b.TempDir(), nil, eventDBOptions{})
	ev := medianEvent(b)
	db.checkAndRecord(ev)
	b.SetBytes(int64(len(ev)))
	for b.Loop() {
		if isNew, err := db.checkAndRecord(ev); isNew || err != nil {
			b.Fatal(isNew, err)
		}
	}
}

// BenchmarkEventDBBytesPerEntry reports the table's heap per event at one
// million events.
func BenchmarkEventDBBytesPerEntry(b *testing.B) {
	var per float64
	for b.Loop() {
		per = measureTableBytesPerEntry(1_000_000)
	}
	b.ReportMetric(per, "bytes/entry")
}

// BenchmarkEventDBReplay1M opens a log of one million live records.
func BenchmarkEventDBReplay1M(b *testing.B) {
	const n = 1_000_000
	dir := b.TempDir()
	clk := newFakeClock()
	buf := make([]byte, 0, len(eventDBMagic)+n*eventSeenRecordLen)
	buf = append(buf, eventDBMagic...)
	var rec [eventSeenRecordLen]byte
	for i := range uint64(n) {
		k := testKey(i)
		encodeSeenRecord(&rec, &k, unixSeconds(clk.now()))
		buf = append(buf, rec[:]...)
	}
	if err := os.WriteFile(logPath(dir), buf, 0o600); err != nil {
		b.Fatal(err)
	}
	buf = nil
	var ms runtime.MemStats
	var perEntry float64
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		db, err := openEventDBWith(dir, defaultEventDBExpiry, nil, eventDBOptions{now: clk.now})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		perEntry = float64(ms.HeapAlloc-before) / n
		if db.len() != n {
			b.Fatalf("len = %d, want %d", db.len(), n)
		}
		db.close()
		b.StartTimer()
	}
	b.ReportMetric(perEntry, "bytes/entry")
}

func TestEventDBRemovesLeftoverTempFile(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, eventDBTmpName)
	if err := os.WriteFile(tmp, []byte("half a compaction"), 0o600); err != nil {
		t.Fatal(err)
	}
	openTestDB(t, dir, nil, eventDBOptions{})
	if _, err := os.Stat(tmp); err == nil {
		t.Error("leftover temporary file kept")
	}
}

// TestEventDBFutureRecords: records stamped in the future (the clock was
// stepped back since) count from the time of opening, so they still expire.
func TestEventDBFutureRecords(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	clk.advance(400 * 24 * time.Hour)
	writeEvents(t, dir, clk, 3)
	clk.advance(-400 * 24 * time.Hour)
	db := openTestDB(t, dir, clk, eventDBOptions{})
	if got := db.len(); got != 3 {
		t.Fatalf("len = %d, want 3", got)
	}
	clk.advance(defaultEventDBExpiry)
	if expired, err := db.prune(); err != nil || expired != 3 {
		t.Errorf("prune = %d, %v; want 3, nil", expired, err)
	}
}

func TestDefaultEventDBDir(t *testing.T) {
	home := t.TempDir()
	tmp := t.TempDir()
	const private = "(private)" // eventDBPrivateTempDir(), checked below
	tests := []struct {
		name                   string
		state, xdg, home, want string
	}{
		{"state directory", "/var/lib/comet", "/xdg", home, "/var/lib/comet"},
		{"first of several", "/var/lib/comet:/var/lib/other", "", "", "/var/lib/comet"},
		{"xdg", "", "/xdg/state", home, filepath.Join("/xdg/state", "comet")},
		{"relative xdg ignored", "", "xdg/state", home, filepath.Join(home, ".local", "state", "comet")},
		{"home", "", "", home, filepath.Join(home, ".local", "state", "comet")},
		{"missing home", "", "", filepath.Join(home, "nonexistent"), private},
		{"no home", "", "", "", private},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("STATE_DIRECTORY", tc.state)
			t.Setenv("XDG_STATE_HOME", tc.xdg)
			t.Setenv("HOME", tc.home)
			t.Setenv("USERPROFILE", tc.home) // windows
			t.Setenv("TMPDIR", tmp)
			if runtime.GOOS == "windows" && tc.home == "" {
				t.Skip("windows has a home directory without the variables")
			}
			got := defaultEventDBDir()
			if tc.want == private {
				tc.want = eventDBPrivateTempDir()
				if runtime.GOOS != "windows" && tc.want != filepath.Join(tmp, "comet-"+strconv.Itoa(os.Geteuid())) {
					t.Errorf("eventDBPrivateTempDir() = %q, not comet-UID in $TMPDIR", tc.want)
				}
			}
			if got != filepath.FromSlash(tc.want) && got != tc.want {
				t.Errorf("defaultEventDBDir() = %q, want %q", got, tc.want)
			}
			if got == os.TempDir() || got == filepath.Clean(tmp) {
				t.Errorf("defaultEventDBDir() = %q, the shared temporary directory itself", got)
			}
		})
	}
}

// TestEventDBPrivateTempDir: the last-resort default is created 0700 and
// refused when it is wider, someone else's, or a symbolic link.
func TestEventDBPrivateTempDir(t *testing.T) {
	if !eventDBUnixModes || runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits here")
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv("STATE_DIRECTORY", "")
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "")
	dir := defaultEventDBDir()
	if want := filepath.Join(tmp, "comet-"+strconv.Itoa(os.Geteuid())); dir != want {
		t.Fatalf("defaultEventDBDir() = %q, want %q", dir, want)
	}
	db, err := openEventDB(dir, defaultEventDBExpiry, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustNew(t, db, eventBytes(1), true)
	db.close()
	fi, err := os.Lstat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("private directory mode %v, want a directory with 0700", fi.Mode())
	}
	refused := func(what string, wants ...string) {
		t.Helper()
		db, err := openEventDB(dir, defaultEventDBExpiry, nil)
		if err == nil {
			db.close()
			t.Fatalf("%s: opened", what)
		}
		t.Logf("%s: %v", what, err)
		for _, w := range append(wants, dir) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", what, err, w)
			}
		}
	}
	for _, mode := range []os.FileMode{0o750, 0o705, 0o770} {
		os.Chmod(dir, mode)
		refused(fmt.Sprintf("mode %#o", mode), "0700")
	}
	os.Chmod(dir, 0o700)
	if os.Geteuid() == 0 {
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		refused("owned by uid 65534", "another user", "65534")
		os.Chown(dir, 0, 0)
	}
	// A symbolic link planted under the private name, even to a private
	// directory of this user's, is refused and its target left alone.
	if err := os.Rename(dir, dir+".real"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir+".real", dir); err != nil {
		t.Fatal(err)
	}
	refused("symbolic link", "symbolic link")
	if _, err := os.Stat(filepath.Join(dir+".real", eventDBLogName)); err != nil {
		t.Errorf("target of the link changed: %v", err)
	}
	os.Remove(dir)
	// Planted as a file.
	if err := os.WriteFile(dir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	refused("file", "not a directory")
}

// TestEventDBSharedDirRefused: a world-writable directory such as /tmp is
// never the event database's directory itself.
func TestEventDBSharedDirRefused(t *testing.T) {
	if !eventDBUnixModes || runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits here")
	}
	for _, mode := range []os.FileMode{0o777 | os.ModeSticky, 0o777, 0o733} {
		dir := filepath.Join(t.TempDir(), "shared")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		_, err := openEventDB(dir, defaultEventDBExpiry, nil)
		if err == nil {
			t.Fatalf("mode %v: opened", mode)
		}
		for _, w := range []string{dir, "world-writable", "subdirectory"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("mode %v: error %q does not mention %q", mode, err, w)
			}
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("mode %v: files created in a refused directory: %v", mode, ents)
		}
	}
	if fi, err := os.Stat(os.TempDir()); err == nil && fi.Mode().Perm()&0o002 != 0 {
		if _, err := openEventDB(os.TempDir(), defaultEventDBExpiry, nil); err == nil || !strings.Contains(err.Error(), "shared") {
			t.Errorf("--eventdb %s: err = %v, want a refusal naming it shared", os.TempDir(), err)
		}
	}
}

// plantSymlink makes name in dir a symbolic link to a new file holding
// "precious", and returns the target's path.
func plantSymlink(t *testing.T, dir, name string) string {
	t.Helper()
	target := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(target, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	return target
}

func checkUntouched(t *testing.T, path, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Errorf("%s changed to %q", path, b)
	}
}

// TestEventDBRefusesSymlinks: a symbolic link planted under the log's or the
// lock's name is refused, naming it; one under the compaction temp file's
// name is removed. No target is ever written.
func TestEventDBRefusesSymlinks(t *testing.T) {
	for _, name := range []string{eventDBLogName, eventDBLockName} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			target := plantSymlink(t, dir, name)
			_, err := openEventDB(dir, defaultEventDBExpiry, nil)
			if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, name)) || !strings.Contains(err.Error(), "symbolic link") {
				t.Errorf("err = %v, want a refusal naming the link", err)
			}
			checkUntouched(t, target, "precious")
		})
	}
	t.Run("temp file at open", func(t *testing.T) {
		dir := t.TempDir()
		target := plantSymlink(t, dir, eventDBTmpName)
		db := openTestDB(t, dir, nil, eventDBOptions{})
		mustNew(t, db, eventBytes(1), true)
		checkUntouched(t, target, "precious")
		if _, err := os.Lstat(filepath.Join(dir, eventDBTmpName)); err == nil {
			t.Error("planted link kept")
		}
	})
	t.Run("temp file at compaction", func(t *testing.T) {
		dir := t.TempDir()
		db := openTestDB(t, dir, nil, eventDBOptions{})
		for i := range 10 {
			mustNew(t, db, eventBytes(i), true)
		}
		target := plantSymlink(t, dir, eventDBTmpName)
		if err := db.compact(); err != nil {
			t.Fatal(err)
		}
		checkUntouched(t, target, "precious")
		mustNew(t, db, eventBytes(10), true)
		db.close()
		db = openTestDB(t, dir, nil, eventDBOptions{})
		if db.len() != 11 {
			t.Errorf("after compaction and reopen len = %d, want 11", db.len())
		}
	})
	t.Run("log swapped for a link while open", func(t *testing.T) {
		dir := t.TempDir()
		db := openTestDB(t, dir, nil, eventDBOptions{})
		mustNew(t, db, eventBytes(1), true)
		db.mu.Lock()
		db.f.Close()
		db.f = nil // forces a reopen at the next append
		db.mu.Unlock()
		os.Remove(logPath(dir))
		target := plantSymlink(t, dir, eventDBLogName)
		if _, err := db.checkAndRecord(eventBytes(2)); err == nil || !strings.Contains(err.Error(), "symbolic link") {
			t.Errorf("append through a planted link: err = %v", err)
		}
		checkUntouched(t, target, "precious")
	})
}

// TestEventDBRefusesNonRegularLog: a directory (and, on Unix, a FIFO; see
// eventdb_lock_unix_test.go) in place of the log is refused, naming it.
func TestEventDBRefusesNonRegularLog(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(logPath(dir), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := openEventDB(dir, defaultEventDBExpiry, nil)
	if err == nil || !strings.Contains(err.Error(), logPath(dir)) || !strings.Contains(err.Error(), "a directory") {
		t.Errorf("err = %v, want a refusal naming the log a directory", err)
	}
}

// TestEventDBRefusesForeignFile: a non-empty file that does not begin as an
// event log is refused, named, and left exactly as it was; an empty one is a
// new log, and a torn header is cut as a torn tail is.
func TestEventDBRefusesForeignFile(t *testing.T) {
	for _, content := range []string{"X" + eventDBMagic[1:] + strings.Repeat("\x00", 33), "root:x:0:0:root:/root:/bin/sh\n", "\x00", "CMTEVDB2"} {
		dir := t.TempDir()
		if err := os.WriteFile(logPath(dir), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := openEventDB(dir, defaultEventDBExpiry, nil)
		if err == nil || !strings.Contains(err.Error(), logPath(dir)) || !strings.Contains(err.Error(), "not a comet event log") {
			t.Errorf("%q: err = %v, want a refusal naming the file", content, err)
		}
		checkUntouched(t, logPath(dir), content)
		if _, err := os.Stat(filepath.Join(dir, eventDBTmpName)); err == nil {
			t.Errorf("%q: temporary file left", content)
		}
	}
	for _, content := range []string{"", "C", eventDBMagic[:7]} {
		dir := t.TempDir()
		if err := os.WriteFile(logPath(dir), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		db := openTestDB(t, dir, nil, eventDBOptions{})
		mustNew(t, db, eventBytes(1), true)
		db.close()
		b, _ := os.ReadFile(logPath(dir))
		if !bytes.HasPrefix(b, []byte(eventDBMagic)) || len(b) != len(eventDBMagic)+eventSeenRecordLen {
			t.Errorf("%q: log is %q after one event", content, b)
		}
	}
}

// TestEventDBLockOtherUser: a lock file of another user's is refused with a
// message that says so (run as root, which can give a file away).
func TestEventDBLockOtherUser(t *testing.T) {
	err := errLockOtherUser("/d", "/d/"+eventDBLockName, 1234)
	for _, w := range []string{"another user", "uid 1234", "/d/" + eventDBLockName} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("message %q does not mention %q", err, w)
		}
	}
	if os.Geteuid() != 0 || runtime.GOOS == "windows" {
		t.Skip("giving a file to another user needs root")
	}
	dir := t.TempDir()
	lock := filepath.Join(dir, eventDBLockName)
	if err := os.WriteFile(lock, []byte("4242\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(lock, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err = openEventDB(dir, defaultEventDBExpiry, nil)
	if err == nil || !strings.Contains(err.Error(), "another user") || !strings.Contains(err.Error(), "65534") {
		t.Errorf("err = %v, want one saying another user (uid 65534) holds the lock file", err)
	}
	if _, err := os.Stat(logPath(dir)); err == nil {
		t.Error("log created beside another user's lock")
	}
}

// TestEventDBKillHelper is the child process of TestEventDBSurvivesKill: it
// records events until killed, printing each index once checkAndRecord has
// returned, the moment a broker would ack.
func TestEventDBKillHelper(t *testing.T) {
	dir := os.Getenv("COMET_EVENTDB_KILL_HELPER")
	if dir == "" {
		t.Skip("helper process for TestEventDBSurvivesKill")
	}
	db, err := openEventDBWith(dir, defaultEventDBExpiry, nil, eventDBOptions{syncInterval: time.Hour})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	for i := 0; ; i++ {
		if isNew, err := db.checkAndRecord(eventBytes(i)); !isNew || err != nil {
			fmt.Println("error:", isNew, err)
			os.Exit(1)
		}
		fmt.Println(i)
	}
}

// TestEventDBSurvivesKill kills a process that is recording events with
// SIGKILL and checks that every event it reported as recorded is remembered.
func TestEventDBSurvivesKill(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("needs a killable child process")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(exe, "-test.run=^TestEventDBKillHelper$")
	cmd.Env = append(os.Environ(), "COMET_EVENTDB_KILL_HELPER="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	last := -1
	for sc.Scan() && last < 300 {
		n, err := strconv.Atoi(sc.Text())
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("helper said %q", sc.Text())
		}
		last = n
	}
	cmd.Process.Kill() // SIGKILL: no close, no sync
	cmd.Wait()
	if last < 300 {
		t.Fatalf("helper stopped after event %d", last)
	}
	db := openTestDB(t, dir, nil, eventDBOptions{})
	for i := 0; i <= last; i++ {
		if !db.seen(eventBytes(i)) {
			t.Fatalf("event %d was reported recorded but forgotten after kill -9", i)
		}
	}
	if db.len() < last+1 {
		t.Errorf("len = %d, want at least %d", db.len(), last+1)
	}
}

func TestEventDBPruneIntervalFollowsExpiry(t *testing.T) {
	for _, tc := range []struct{ expiry, want time.Duration }{
		{30 * 24 * time.Hour, 6 * time.Hour},
		{time.Hour, 15 * time.Minute},
		{2 * time.Second, time.Second},
	} {
		db, err := openEventDB(t.TempDir(), tc.expiry, nil)
		if err != nil {
			t.Fatal(err)
		}
		if db.opts.pruneInterval != tc.want {
			t.Errorf("expiry %v: prune every %v, want %v", tc.expiry, db.opts.pruneInterval, tc.want)
		}
		db.close()
	}
}
