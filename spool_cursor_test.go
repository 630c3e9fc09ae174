package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestCursorDurablePositions(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	c, err := openCursorDurable(dir, clk.now, nil)
	if err != nil {
		t.Fatal(err)
	}
	// First connection: the head, nothing old.
	if from := c.connect("alice", 100); from != 100 {
		t.Fatalf("first connect from %d, want the head 100", from)
	}
	if c.owed("alice", 99) || !c.owed("alice", 100) || c.owed("bob", 100) {
		t.Fatal("owed wrong after first connect")
	}
	// Acks out of order: the floor moves over what is done.
	c.done("alice", 102)
	c.done("alice", 101)
	if f, _ := c.floor("alice"); f != 100 {
		t.Fatalf("floor %d, want 100 while 100 is not done", f)
	}
	if c.owed("alice", 101) || !c.owed("alice", 100) || !c.owed("alice", 103) {
		t.Fatal("owed wrong with a gap")
	}
	c.done("alice", 100)
	if f, _ := c.floor("alice"); f != 103 {
		t.Fatalf("floor %d, want 103", f)
	}
	c.done("alice", 105)
	c.done("alice", 0)   // not spooled: ignored
	c.done("alice", 50)  // below the floor: ignored
	c.done("carol", 100) // unknown identity: ignored
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	// Reopen: the same position; reconnecting replays from the floor.
	c2, err := openCursorDurable(dir, clk.now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if from := c2.connect("alice", 200); from != 103 {
		t.Fatalf("reconnect from %d, want 103", from)
	}
	if c2.owed("alice", 105) || !c2.owed("alice", 104) {
		t.Fatal("done set not kept across reopen")
	}
	// A floor above the head (seqs reused after a crash) moves to the head.
	if from := c2.connect("alice", 90); from != 90 {
		t.Fatalf("connect with a lower head from %d, want 90", from)
	}
	if _, ok := c2.floor("carol"); ok {
		t.Fatal("an unknown identity got a position")
	}
}

func TestCursorDurableDoneSetBounded(t *testing.T) {
	c, err := openCursorDurable(t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.connect("x", 1)
	for s := uint64(2); s <= cursorMaxDone+2; s++ { // 1 never acked
		c.done("x", s)
	}
	if f, _ := c.floor("x"); f != cursorMaxDone+3 {
		t.Fatalf("floor %d: the done set was not bounded", f)
	}
	if n := len(c.ids["x"].done); n != 0 {
		t.Fatalf("%d done seqs kept", n)
	}
}

func TestCursorFlushRateAndAtomicity(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	c, err := openCursorDurable(dir, clk.now, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, cursorDurableName)
	if err := c.flush(false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("a file was written with nothing to say")
	}
	c.connect("a", 5)
	if err := c.flush(false); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c.done("a", 5)
	clk.advance(time.Second)
	c.flush(false) // too soon: not written
	if b, _ := os.ReadFile(path); string(b) != string(first) {
		t.Fatal("flush wrote again within the interval")
	}
	clk.advance(cursorWriteEvery)
	c.flush(false)
	if b, _ := os.ReadFile(path); string(b) == string(first) || !strings.Contains(string(b), `"floor": 6`) {
		t.Fatalf("flush after the interval did not write: %s", b)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Fatal("temporary file left behind")
	}
	if fi, _ := os.Stat(path); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	// close writes what changed, however soon.
	c.done("a", 6)
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), `"floor": 7`) {
		t.Fatalf("close did not write: %s", b)
	}
	// A leftover temporary file (a crash mid-write) does not matter.
	os.WriteFile(path+".tmp", []byte("junk"), 0o600)
	c2, err := openCursorDurable(dir, clk.now, nil)
	if err != nil {
		t.Fatal(err)
	}
	c2.done("a", 7)
	if err := c2.close(); err != nil {
		t.Fatal(err)
	}
}

func TestCursorCorruptRefused(t *testing.T) {
	for _, tc := range []struct {
		name, file, body string
	}{
		{"durable garbage", cursorDurableName, "not json"},
		{"durable truncated", cursorDurableName, `{"version":1,"identities":[{"name":"a","floor":3`},
		{"durable version", cursorDurableName, `{"version":2,"identities":[]}`},
		{"durable unknown field", cursorDurableName, `{"version":1,"identities":[],"x":1}`},
		{"durable done below floor", cursorDurableName, `{"version":1,"identities":[{"name":"a","floor":3,"done":[2]}]}`},
		{"durable duplicate", cursorDurableName, `{"version":1,"identities":[{"name":"a","floor":3},{"name":"a","floor":4}]}`},
		{"durable trailing", cursorDurableName, `{"version":1,"identities":[]} {}`},
		{"remote garbage", cursorRemoteName, "\x00\x01"},
		{"remote bad time", cursorRemoteName, `{"version":1,"upstreams":{"h:1":"yesterday"}}`},
		{"remote empty name", cursorRemoteName, `{"version":1,"upstreams":{"":"2026-01-01T00:00:00Z"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tc.file)
			os.WriteFile(path, []byte(tc.body), 0o600)
			var err error
			if tc.file == cursorDurableName {
				_, err = openCursorDurable(dir, nil, nil)
			} else {
				_, err = openCursorRemote(dir, nil)
			}
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "corrupt") {
				t.Fatalf("err %v, want one naming %s as corrupt", err, path)
			}
		})
	}
}

func TestCursorSymlinkRefused(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links need privileges on Windows")
	}
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	os.WriteFile(target, []byte(`{"version":1,"identities":[]}`), 0o600)
	if err := os.Symlink(target, filepath.Join(dir, cursorDurableName)); err != nil {
		t.Fatal(err)
	}
	if _, err := openCursorDurable(dir, nil, nil); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("symlink accepted: %v", err)
	}
	// A link planted as the temporary file is not followed either.
	dir2 := t.TempDir()
	victim := filepath.Join(dir2, "victim")
	os.WriteFile(victim, []byte("keep"), 0o600)
	os.Symlink(victim, filepath.Join(dir2, cursorRemoteName+".tmp"))
	c, err := openCursorRemote(dir2, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.noteEvent("h:1", time.Now())
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Fatal("the write followed a planted link")
	}
}

func TestCursorRemoteMemory(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	c, err := openCursorRemote(dir, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.lastEvent("voevent.example:8099"); ok {
		t.Fatal("memory of an upstream never heard")
	}
	if _, ok := c.replaySince("voevent.example:8099"); ok {
		t.Fatal("asks for replay with no memory")
	}
	t1 := time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.UTC)
	c.noteEvent("voevent.example:8099", t1)
	c.noteEvent("voevent.example:8099", t1.Add(-time.Minute)) // never backwards
	c.noteEvent("[2001:db8::1]:8099", t1.Add(time.Hour))
	if got, ok := c.lastEvent("voevent.example:8099"); !ok || !got.Equal(t1) {
		t.Fatalf("lastEvent = %v %v", got, ok)
	}
	if got, _ := c.replaySince("voevent.example:8099"); !got.Equal(t1.Add(-10 * time.Second)) {
		t.Fatalf("replaySince = %v", got)
	}
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	c2, err := openCursorRemote(dir, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := c2.lastEvent("voevent.example:8099"); !ok || !got.Equal(t1) {
		t.Fatalf("after reopen lastEvent = %v %v", got, ok)
	}
	if got, ok := c2.lastEvent("[2001:db8::1]:8099"); !ok || !got.Equal(t1.Add(time.Hour)) {
		t.Fatalf("after reopen second upstream = %v %v", got, ok)
	}
}
