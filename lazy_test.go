package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestLazyWithSameOutput: a lazyWith logger writes exactly what log.With's
// would, and formats nothing when nothing is written.
func TestLazyWithSameOutput(t *testing.T) {
	var a, b bytes.Buffer
	opts := &slog.HandlerOptions{Level: slog.LevelInfo, ReplaceAttr: func(_ []string, at slog.Attr) slog.Attr {
		if at.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return at
	}}
	la := slog.New(slog.NewTextHandler(&a, opts)).With("role", "receiver", "peer", "192.0.2.1:4000")
	lb := lazyWith(slog.New(slog.NewTextHandler(&b, opts)), "role", "receiver", "peer", "192.0.2.1:4000")
	for _, l := range []*slog.Logger{la, lb} {
		l.Debug("not written", "x", 1)
		l.Info("accepted event", "ivorn", "ivo://x/y#1")
		l.With("identity", "site-a").Warn("w", "n", 2)
		l.WithGroup("g").Error("e", "k", "v")
	}
	if a.String() != b.String() || !strings.Contains(b.String(), `role=receiver peer=192.0.2.1:4000 ivorn=ivo://x/y#1`) {
		t.Fatalf("lazy logger wrote\n%s\nwant\n%s", b.String(), a.String())
	}
	quiet := lazyWith(slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelWarn})), "role", "r")
	quiet.Info("dropped")
	if h := quiet.Handler().(*lazyHandler); h.h != nil {
		t.Fatal("a logger that wrote nothing formatted its attributes")
	}
	if n := testing.AllocsPerRun(100, func() { lazyWith(slog.Default(), "role", "r").Debug("x") }); n > 4 {
		t.Errorf("lazyWith costs %v allocations when nothing is written, want at most 4", n)
	}
}

// TestLazyDeadline: the context ends at its deadline and with its parent,
// like context.WithDeadline, and makes no timer until something waits.
func TestLazyDeadline(t *testing.T) {
	c := &lazyDeadline{Context: context.Background(), at: time.Now().Add(20 * time.Millisecond)}
	if c.ctx != nil {
		t.Fatal("made a context before anything waited")
	}
	if d, ok := c.Deadline(); !ok || !d.Equal(c.at) {
		t.Fatalf("deadline %v %v", d, ok)
	}
	select {
	case <-c.Done():
		if c.Err() != context.DeadlineExceeded {
			t.Fatalf("err %v", c.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("did not end at its deadline")
	}
	c.stop()

	parent, cancel := context.WithCancel(context.Background())
	p := &lazyDeadline{Context: parent, at: time.Now().Add(time.Hour)}
	cancel()
	select {
	case <-p.Done():
		if p.Err() != context.Canceled {
			t.Fatalf("err %v", p.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("did not end with its parent")
	}
	p.stop()

	unused := &lazyDeadline{Context: context.Background(), at: time.Now().Add(time.Hour)}
	unused.stop()
	if unused.cancel != nil || unused.Err() != nil {
		t.Fatal("a stopped, unused context made a timer or ended")
	}
}
