// spoolwire.go wires the spool (spool.go, contract section 9) into the
// broker: its options, opening and closing it beside the event database,
// the syncer, the admission step's append, our --remote subscriber's
// memory of each upstream (cursorRemote), and the per-minute counts of
// accepted events the status page charts. The asked-for replay to a
// subscriber is in spoolwire_replay.go, the HTTP routes in
// spoolwire_http.go.
//
// Invariants: with --spool-max-age 0 no spool is opened and every event
// carries spoolSeq 0 (the broker behaves as before); an event is appended
// after its event-DB record and before it is relayed or answered, so the
// seq it carries is in the spool before any subscriber sees it (the
// replay's hand-off relies on this order); a spool write error never
// refuses an event (it is relayed live with seq 0, and logged). The syncer
// runs through b.wg and ends with the broker's context.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// spoolwConfig is the spool's part of the configuration (config.spool).
type spoolwConfig struct {
	maxAge       time.Duration // --spool-max-age; 0: no spool
	maxBytes     int64         // --spool-max-bytes
	remoteReplay bool          // --remote-replay

	now func() time.Time // tests: the spool's clock (nil: time.Now)
}

// spoolwDefaultConfig is the spool's defaults (contract section 9).
func spoolwDefaultConfig() spoolwConfig {
	return spoolwConfig{maxAge: defaultSpoolMaxAge, maxBytes: defaultSpoolMaxBytes, remoteReplay: true}
}

// addSpoolOptions declares the spool's options (called once from
// newBrokerArgs). The defaults are set here too, so a configuration parsed
// from a command line always has them.
func addSpoolOptions(o *optionSet, cfg *config) {
	cfg.spool = spoolwDefaultConfig()
	o.add(funcValue(func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return fmt.Errorf("want a duration such as 24h, or 0 to turn the spool off, got %q", s)
		}
		cfg.spool.maxAge = d
		return nil
	}), "DURATION", "keep accepted events this long for replay to subscribers that ask; 0 turns the spool off (default 24h)", "spool-max-age")
	o.add(funcValue(func(s string) error {
		n, err := parseByteSize(s)
		if err != nil {
			return err
		}
		if n < spoolMinMaxBytes {
			return fmt.Errorf("want at least 64KiB, got %q (turn the spool off with --spool-max-age 0)", s)
		}
		cfg.spool.maxBytes = n
		return nil
	}), "BYTES", "and at most this much of them on disk, at least 64KiB; the oldest go first (default 64MiB)", "spool-max-bytes")
	o.boolean(&cfg.spool.remoteReplay, "ask each --remote upstream for the events missed since the last one received (default true; --remote-replay=false turns it off)", "remote-replay")
}

// spoolwRateBuckets is how many minutes of accepted-event counts are kept.
const spoolwRateBuckets = 60

// spoolwSyncEvery is how often the syncer runs.
const spoolwSyncEvery = time.Second

// spoolwRecentVerdicts is how many recent events' signature verdicts the
// status page can show.
const spoolwRecentVerdicts = 64

// spoolWire is the broker's spool component (broker.spoolw). A nil
// *spoolWire is valid and does nothing.
type spoolWire struct {
	b   *broker
	sp  *spool        // nil: spool off
	rem *cursorRemote // nil: no --remote (kept up to date even with --remote-replay=false)

	dur *cursorDurable // durable identities' positions; nil: spool off (spoolwire_durable.go)

	slots chan struct{} // replays running (spoolwire_replay.go)

	mu       sync.Mutex
	counts   [spoolwRateBuckets]int64 // accepted events per minute, ring
	minutes  [spoolwRateBuckets]int64 // the Unix minute each bucket counts
	verdicts map[string]string        // ivorn -> signature verdict, recent events only
	order    []string                 // ivorns of verdicts, oldest first
}

// openSpoolWire opens the spool (unless --spool-max-age is 0) and the
// remote-replay memory in the event database's directory; newBroker calls
// it right after opening the event database, whose lock covers them.
func openSpoolWire(b *broker) (*spoolWire, error) {
	c := &spoolWire{b: b, verdicts: map[string]string{}, slots: make(chan struct{}, spoolwMaxReplays)}
	cfg := b.cfg.spool
	if cfg.maxAge > 0 {
		now := cfg.now
		if now == nil {
			now = time.Now
		}
		sp, err := openSpool(b.cfg.eventDB, spoolOptions{maxAge: cfg.maxAge, maxBytes: cfg.maxBytes, expiry: b.cfg.eventDBExpiry, now: now}, b.log)
		if err != nil {
			return nil, err
		}
		c.sp = sp
		if c.dur, err = openSpoolwDurable(b); err != nil {
			sp.close()
			return nil, err
		}
	}
	if len(b.cfg.remotes) > 0 {
		rem, err := openCursorRemote(b.cfg.eventDB, nil)
		if err != nil {
			if c.sp != nil {
				c.sp.close()
			}
			return nil, err
		}
		c.rem = rem
	}
	return c, nil
}

// run is the syncer: about once a second it syncs the spool and flushes
// the remote-replay memory, until ctx ends. Errors are logged, never fatal.
func (c *spoolWire) run(ctx context.Context) {
	if c == nil || (c.sp == nil && c.rem == nil) {
		return
	}
	t := time.NewTicker(spoolwSyncEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if c.sp != nil {
			if err := c.sp.sync(); err != nil {
				c.b.rl.log(slog.LevelError, "", "spool-sync", "spool sync failed", "err", err)
			}
		}
		c.durFlush()
		if c.rem != nil {
			if err := c.rem.flush(false); err != nil {
				c.b.rl.log(slog.LevelError, "", "remote-replay-flush", "cannot write the remote-replay memory", "err", err)
			}
		}
	}
}

// close writes the remote-replay memory and closes the spool; shutdown
// calls it after every connection has ended, before the event database
// closes.
func (c *spoolWire) close() error {
	if c == nil {
		return nil
	}
	var first error
	if c.rem != nil {
		if err := c.rem.close(); err != nil {
			first = fmt.Errorf("remote-replay: %w", err)
		}
	}
	if c.sp != nil {
		if err := c.sp.close(); err != nil && first == nil {
			first = err
		}
	}
	if err := c.durClose(); err != nil && first == nil {
		first = fmt.Errorf("durable: %w", err)
	}
	return first
}

// admitted is admission's call for a new event (recorded in the event DB,
// not yet relayed nor answered): it is spooled with its source, role,
// ivorn and exact bytes, and its seq kept on the event for the replay's
// hand-off. It also counts the event for the status page.
func (c *spoolWire) admitted(ev *event) {
	if c == nil {
		return
	}
	c.count(ev)
	if c.sp == nil {
		return
	}
	seq, err := c.sp.append(spoolEntry{received: ev.received, role: ev.role, source: ev.from, ivorn: ev.ivorn, raw: ev.raw})
	if err != nil {
		c.b.rl.log(slog.LevelError, "", "spool-append", "cannot spool an event; it is relayed live only", "ivorn", rateTruncate(ev.ivorn, 256), "err", err)
		return
	}
	ev.spoolSeq = seq
}

// count adds ev to the per-minute counts and remembers its verdict.
func (c *spoolWire) count(ev *event) {
	now := c.b.now()
	min := now.Unix() / 60
	i := int(min % spoolwRateBuckets)
	c.mu.Lock()
	if c.minutes[i] != min {
		c.minutes[i], c.counts[i] = min, 0
	}
	c.counts[i]++
	if ev.sigVerdict != "" {
		if _, ok := c.verdicts[ev.ivorn]; !ok {
			c.order = append(c.order, ev.ivorn)
		}
		c.verdicts[ev.ivorn] = ev.sigVerdict
		for len(c.order) > spoolwRecentVerdicts {
			delete(c.verdicts, c.order[0])
			c.order = c.order[1:]
		}
	}
	c.mu.Unlock()
}

// rates is the accepted events of each of the last spoolwRateBuckets
// minutes, oldest first, the current minute last.
func (c *spoolWire) rates(now time.Time) []int64 {
	out := make([]int64, spoolwRateBuckets)
	if c == nil {
		return out
	}
	cur := now.Unix() / 60
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := 0; k < spoolwRateBuckets; k++ {
		m := cur - int64(spoolwRateBuckets-1-k)
		if m < 0 {
			continue
		}
		if i := int(m % spoolwRateBuckets); c.minutes[i] == m {
			out[k] = c.counts[i]
		}
	}
	return out
}

// verdict is the signature verdict of a recent event ("" if not known).
func (c *spoolWire) verdict(ivorn string) string {
	if c == nil {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.verdicts[ivorn]
}

// spoolwParamReplaySince is the authenticate response's Param that asks
// for replay (contract section 9).
const spoolwParamReplaySince = "replay-since"

// replayParams is what our subscriber adds to its authenticate response to
// upstream: replay-since the last event from it minus the margin, or
// nothing (no memory, or --remote-replay=false).
func (c *spoolWire) replayParams(upstream string) []param {
	if c == nil || c.rem == nil || !c.b.cfg.spool.remoteReplay {
		return nil
	}
	t, ok := c.rem.replaySince(upstream)
	if !ok {
		return nil
	}
	return []param{{spoolwParamReplaySince, t.UTC().Format(time.RFC3339Nano)}}
}

// noteUpstream records an event admitted or already seen from upstream.
func (c *spoolWire) noteUpstream(upstream string, adm admission) {
	if c == nil || c.rem == nil || adm.outcome == refused {
		return
	}
	c.rem.noteEvent(upstream, c.b.now())
}
