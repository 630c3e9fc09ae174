// ratelog.go owns the limiter for log lines a peer can cause (contract
// section 10): bad frames, refusals, connects and disconnects,
// identification changes. Each (peer, reason) pair may log burst lines per
// window; what it suppresses is counted, and the first line after the
// window reopens carries suppressed=N. Echoed input goes through
// rateTruncate first.
//
// Invariants: memory is bounded: at most rateMaxKeys (peer, reason) entries,
// kept in least-recently-used order, plus one shared entry per reason
// (at most rateMaxReasons, then one for all) used for every peer once the
// table is full of peers that are still inside their window; an entry is
// evicted only when its window has ended, and a count it still holds is
// logged as it goes, so no suppressed line is ever lost from the counts.
package main

import (
	"container/list"
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Bounds of the rate-limited logger.
const (
	rateMaxKeys    = 4096 // (peer, reason) entries
	rateMaxReasons = 256  // shared per-reason entries used when the table is full
	rateAnyPeer    = "*"  // peer of a shared per-reason entry
)

// rateKey is what a limit applies to.
type rateKey struct{ peer, reason string }

// rateEntry is one key's window.
type rateEntry struct {
	key        rateKey
	start      time.Time // when the window opened
	lines      int       // lines logged in the window
	suppressed int64     // lines suppressed and not yet reported
	elem       *list.Element
}

// rateLog is a logger that limits lines per peer and reason. Its methods are
// safe for concurrent use.
type rateLog struct {
	out   *slog.Logger
	burst int
	every time.Duration
	now   func() time.Time

	mu      sync.Mutex
	keys    map[rateKey]*rateEntry // per peer, LRU order in lru
	lru     *list.List             // front: most recently used
	shared  map[string]*rateEntry  // per reason, for peers that find the table full
	overall rateEntry              // for everything once shared is full too
}

// newRateLog returns a limiter that lets each (peer, reason) log burst
// lines per every. now is the clock (time.Now in the broker).
func newRateLog(log *slog.Logger, burst int, every time.Duration, now func() time.Time) *rateLog {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if burst < 1 {
		burst = 1
	}
	if now == nil {
		now = time.Now
	}
	return &rateLog{out: log, burst: burst, every: every, now: now,
		keys: make(map[rateKey]*rateEntry), lru: list.New(), shared: make(map[string]*rateEntry),
		overall: rateEntry{key: rateKey{rateAnyPeer, rateAnyPeer}}}
}

// log writes msg at level with "peer", peer and args, unless this peer and
// reason already used up their burst in the current window, in which case
// the line is counted. The first line logged after suppression carries
// "suppressed", N.
func (r *rateLog) log(level slog.Level, peer, reason, msg string, args ...any) {
	if !r.out.Enabled(context.Background(), level) {
		return
	}
	now := r.now()
	r.mu.Lock()
	e := r.entryLocked(rateKey{peer, reason}, now)
	if now.Sub(e.start) >= r.every || now.Before(e.start) {
		e.start, e.lines = now, 0
	}
	if e.lines >= r.burst {
		e.suppressed++
		r.mu.Unlock()
		return
	}
	e.lines++
	n := e.suppressed
	e.suppressed = 0
	r.mu.Unlock()
	attrs := make([]any, 0, len(args)+4)
	attrs = append(attrs, "peer", peer)
	attrs = append(attrs, args...)
	if n > 0 {
		attrs = append(attrs, "suppressed", n)
	}
	r.out.Log(context.Background(), level, msg, attrs...)
}

// entryLocked finds or makes the entry for k, evicting an idle one or
// falling back to a shared entry when the table is full.
func (r *rateLog) entryLocked(k rateKey, now time.Time) *rateEntry {
	if e, ok := r.keys[k]; ok {
		r.lru.MoveToFront(e.elem)
		return e
	}
	if len(r.keys) >= rateMaxKeys {
		old := r.lru.Back().Value.(*rateEntry)
		if now.Sub(old.start) < r.every && !now.Before(old.start) {
			// Every entry is inside its window (the oldest is the least
			// recently used): this peer shares its reason's entry.
			return r.sharedLocked(k.reason)
		}
		r.evictLocked(old)
	}
	e := &rateEntry{key: k}
	e.elem = r.lru.PushFront(e)
	r.keys[k] = e
	return e
}

func (r *rateLog) sharedLocked(reason string) *rateEntry {
	if e, ok := r.shared[reason]; ok {
		return e
	}
	if len(r.shared) >= rateMaxReasons {
		return &r.overall
	}
	e := &rateEntry{key: rateKey{rateAnyPeer, reason}}
	r.shared[reason] = e
	return e
}

// evictLocked drops e, logging what it still counts.
func (r *rateLog) evictLocked(e *rateEntry) {
	r.lru.Remove(e.elem)
	delete(r.keys, e.key)
	if e.suppressed > 0 {
		r.out.Info("log lines suppressed", "peer", e.key.peer, "reason", e.key.reason, "suppressed", e.suppressed)
	}
}

// flush logs, once, the counts of every entry whose window has ended with
// lines still suppressed, so a peer that went quiet is accounted for. The
// broker may call it now and then (every window or so).
func (r *rateLog) flush() {
	now := r.now()
	type pending struct {
		key rateKey
		n   int64
	}
	var out []pending
	r.mu.Lock()
	take := func(e *rateEntry) {
		if e.suppressed > 0 && now.Sub(e.start) >= r.every {
			out = append(out, pending{e.key, e.suppressed})
			e.suppressed = 0
		}
	}
	for e := r.lru.Front(); e != nil; e = e.Next() {
		take(e.Value.(*rateEntry))
	}
	for _, e := range r.shared {
		take(e)
	}
	take(&r.overall)
	r.mu.Unlock()
	for _, p := range out {
		r.out.Info("log lines suppressed", "peer", p.key.peer, "reason", p.key.reason, "suppressed", p.n)
	}
}

// size is the number of per-peer and shared entries held.
func (r *rateLog) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.keys) + len(r.shared)
}

// rateTruncate shortens echoed input to at most n bytes, cut at a UTF-8
// boundary, followed by "…(L bytes)" where L is the length of the whole.
// A string of n bytes or fewer is returned as it is.
func rateTruncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n, 0)
	for cut > 0 && cut > n-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}
