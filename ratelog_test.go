package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// rateRecord is one line a rateCounter saw.
type rateRecord struct {
	at         time.Time // the injected clock when logged
	msg, peer  string
	suppressed int64
}

// rateCounter is a slog.Handler that keeps what it is given.
type rateCounter struct {
	mu    sync.Mutex
	clock *fakeClock
	recs  []rateRecord
}

func (h *rateCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *rateCounter) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *rateCounter) WithGroup(string) slog.Handler            { return h }
func (h *rateCounter) Handle(_ context.Context, r slog.Record) error {
	rec := rateRecord{at: h.clock.now(), msg: r.Message}
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "peer":
			rec.peer = a.Value.String()
		case "suppressed":
			rec.suppressed = a.Value.Int64()
		}
		return true
	})
	h.mu.Lock()
	h.recs = append(h.recs, rec)
	h.mu.Unlock()
	return nil
}

// TestRateLogBadFrameFlood: 2.2 million bad-frame lines from one peer, a
// millisecond apart, log at most burst lines per window, and the counts
// reported add up exactly to what was suppressed.
func TestRateLogBadFrameFlood(t *testing.T) {
	clk := newFakeClock()
	h := &rateCounter{clock: clk}
	const burst, lines = 5, 2_200_000
	every := time.Second
	rl := newRateLog(slog.New(h), burst, every, clk.now)
	start := clk.now()
	for i := range lines {
		rl.log(slog.LevelWarn, "192.0.2.1:4000", "bad frame", "bad frame", "len", i)
		clk.advance(time.Millisecond)
	}
	clk.advance(every)
	rl.flush()
	perWindow := map[int64]int{}
	var logged, reported int64
	for _, r := range h.recs {
		reported += r.suppressed
		if r.msg == "bad frame" {
			logged++
			perWindow[int64(r.at.Sub(start)/every)]++
		}
	}
	for w, n := range perWindow {
		if n > burst {
			t.Fatalf("window %d: %d lines, want at most %d", w, n, burst)
		}
	}
	windows := int64(lines * time.Millisecond / every)
	if want := windows * burst; logged != want {
		t.Errorf("logged %d lines, want %d (burst %d in each of %d windows)", logged, want, burst, windows)
	}
	if logged+reported != lines {
		t.Errorf("logged %d + reported suppressed %d = %d, want %d", logged, reported, logged+reported, lines)
	}
	// Each line after the first window says what the window before hid.
	for _, r := range h.recs[burst : burst+1] {
		if r.suppressed != 1000-burst {
			t.Errorf("first line of window 2 says suppressed=%d, want %d", r.suppressed, 1000-burst)
		}
	}
}

// TestRateLogPerPeerAndReason: limits are per (peer, reason).
func TestRateLogPerPeerAndReason(t *testing.T) {
	clk := newFakeClock()
	h := &rateCounter{clock: clk}
	rl := newRateLog(slog.New(h), 2, time.Minute, clk.now)
	for range 10 {
		for _, p := range []string{"a", "b"} {
			for _, r := range []string{"x", "y"} {
				rl.log(slog.LevelInfo, p, r, p+r)
			}
		}
	}
	if len(h.recs) != 8 {
		t.Errorf("%d lines, want 2 for each of 4 keys", len(h.recs))
	}
	// Below the logger's level nothing is counted or kept.
	quiet := newRateLog(slog.New(slog.NewTextHandler(nilWriter{}, &slog.HandlerOptions{Level: slog.LevelError})), 1, time.Minute, clk.now)
	quiet.log(slog.LevelDebug, "a", "x", "m")
	if quiet.size() != 0 {
		t.Error("a disabled level made an entry")
	}
}

type nilWriter struct{}

func (nilWriter) Write(p []byte) (int, error) { return len(p), nil }

// TestRateLogBoundedMemory: 100,000 distinct peers keep the table at its
// cap, and every line is either logged or counted.
func TestRateLogBoundedMemory(t *testing.T) {
	for _, step := range []time.Duration{0, time.Millisecond, time.Second} {
		t.Run(step.String(), func(t *testing.T) {
			clk := newFakeClock()
			h := &rateCounter{clock: clk}
			rl := newRateLog(slog.New(h), 3, time.Second, clk.now)
			const peers = 100_000
			for i := range peers {
				rl.log(slog.LevelWarn, fmt.Sprintf("198.51.%d.%d:1", i/256, i%256), "connect", "connect")
				if n := rl.size(); n > rateMaxKeys+rateMaxReasons {
					t.Fatalf("after %d peers %d entries", i+1, n)
				}
				clk.advance(step)
			}
			clk.advance(2 * time.Second)
			rl.flush()
			var logged, reported int64
			for _, r := range h.recs {
				reported += r.suppressed
				if r.msg == "connect" {
					logged++
				}
			}
			if logged+reported != peers {
				t.Errorf("logged %d + suppressed %d != %d", logged, reported, peers)
			}
			t.Logf("step %v: %d logged, %d suppressed, %d entries", step, logged, reported, rl.size())
		})
	}
}

func TestRateTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"eleven byte", 10, "eleven byt…(11 bytes)"},
		{"ab€cd", 3, "ab…(7 bytes)"}, // € is 3 bytes: not split
		{"ab€cd", 5, "ab€…(7 bytes)"},
		{"ab€cd", 4, "ab…(7 bytes)"},
		{"x", 0, "…(1 bytes)"},
		{strings.Repeat("é", 100), 9, "éééé…(200 bytes)"},
		{"\xff\xff\xff\xff\xff", 2, "\xff\xff…(5 bytes)"},
	} {
		got := rateTruncate(tc.in, tc.n)
		if got != tc.want {
			t.Errorf("rateTruncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
		if utf8.ValidString(tc.in) && !utf8.ValidString(got) {
			t.Errorf("rateTruncate(%q, %d) split a character", tc.in, tc.n)
		}
	}
}
