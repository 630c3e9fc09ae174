// spoolwire_durable.go owns durable subscribers (contract section 9, the
// last part of issue 14): a TLS subscriber whose peers-file identity is
// marked `durable` gets, whether or not it asks, the spooled events it has
// not acknowledged since it was last connected, then live ones, through
// the asked-for replay's machinery and hand-off (spoolwire_replay.go: the
// same marks, in-flight bounds and replay slots; filters applied in the
// writer, its own and its identity's).
//
// Its position (cursorDurable, spool_cursor.go, in durable.pos beside the
// event database) is per event. An event is done for the identity when the
// subscriber acks it, when it naks it (a nak is final for that event; the
// connection ends as before), or when its filters reject it. Acks name the
// event by its ivorn (the Origin): the writer keeps a bounded
// per-connection map from the ivorn of each spooled event it sent to its
// seq, and the reader looks the ack up there. Events sent but not acked
// when the connection ends stay owed, and are sent again next time.
//
// Invariants: the identity's position is read (connect) when the
// subscriber registers, with the spool's head at that moment, so an event
// either precedes the connection (the replay's business) or reaches it live
// and is then tracked; its first connection ever gets nothing old. The
// replay starts at the subscriber's authenticate response (so that its own
// filters are installed first); if the response also asks for
// replay-since, the earlier position wins and every event from the asked
// one is sent. The position file is flushed by the spool's syncer (at most
// every cursorWriteEvery) and at stop, after every connection has ended.
// Beyond spoolwDurMaxSent unacknowledged events on one connection, further
// ones are not tracked: they are sent again on the next connection
// (at-least-once, never lost).
package main

import (
	"log/slog"
	"sync"
)

// spoolwDurMaxSent bounds the ivorn-to-seq map of one durable connection:
// events sent and not yet acked (a subscriber that leaves this many
// unacknowledged is dropped by the iamalive rule well before, by default).
const spoolwDurMaxSent = 4096

// spoolwDurSub is a subscriber's durable state (spoolwSub.dur). name and
// from are set at registration, with bc.mu held, before the subscriber's
// goroutines start, and not changed after; askedFrom is set by the reader
// goroutine before the replay goroutine starts.
type spoolwDurSub struct {
	name      string // the durable identity; "" for any other subscriber
	from      uint64 // its position at registration
	askedFrom uint64 // the seq of its own replay-since (0: did not ask)

	mu       sync.Mutex
	sent     map[string]uint64 // ivorn -> seq of spooled events written, not yet acked
	overflow bool              // sent was full once (logged once)
}

// openSpoolwDurable opens the durable identities' positions beside the
// event database; openSpoolWire calls it when the spool is on.
func openSpoolwDurable(b *broker) (*cursorDurable, error) {
	return openCursorDurable(b.cfg.eventDB, nil, b.log)
}

// durFlush writes the positions if they changed (the syncer, about once a
// second; cursorDurable writes at most every cursorWriteEvery).
func (c *spoolWire) durFlush() {
	if c == nil || c.dur == nil {
		return
	}
	if err := c.dur.flush(false); err != nil {
		c.b.rl.log(slog.LevelError, "", "durable-flush", "cannot write the durable identities' positions", "err", err)
	}
}

// durClose writes the positions at stop.
func (c *spoolWire) durClose() error {
	if c == nil || c.dur == nil {
		return nil
	}
	return c.dur.close()
}

// spoolwDurRegistered reads a durable identity's position; spoolwRegistered
// calls it with bc.mu held, once liveFrom is set.
func (s *subConn) spoolwDurRegistered() {
	dur := s.bc.b.spoolw.durable()
	if dur == nil || !s.spw.tracking {
		return
	}
	tc := tlswConnOf(s.conn)
	if tc == nil {
		return
	}
	id, ok := tc.current()
	if !ok || id == nil || !id.durable || id.name == "" {
		return
	}
	d := &s.spw.dur
	d.name = id.name
	d.from = dur.connect(id.name, s.spw.liveFrom)
	d.sent = make(map[string]uint64)
	s.log.Info("durable subscriber connected", "identity", id.name, "from_seq", d.from, "head", s.spw.liveFrom)
}

// durable is the durable identities' positions, nil when the spool is off.
func (c *spoolWire) durable() *cursorDurable {
	if c == nil {
		return nil
	}
	return c.dur
}

// spoolwDurAsk starts a durable identity's replay from its position at its
// authenticate response when it did not ask for one itself (no or an
// unreadable replay-since); reader goroutine.
func (s *subConn) spoolwDurAsk() {
	if s.spw.dur.name == "" || s.spw.asked {
		return
	}
	s.spw.asked = true
	s.spoolwDurReplay()
}

// spoolwDurReplay starts a durable identity's replay from its position
// (reader goroutine, once per connection: asked is set).
func (s *subConn) spoolwDurReplay() {
	if s.spw.dur.name == "" {
		return
	}
	sp := s.bc.b.spoolw.spool()
	s.bc.mu.Lock()
	s.spw.started, s.spw.replaying, s.spw.cut = true, true, sp.head()
	s.bc.mu.Unlock()
	from := s.spw.dur.from
	s.limited(slog.LevelInfo, "replay", "replaying unacknowledged spooled events to durable subscriber", "identity", s.spw.dur.name, "from_seq", from, "head", s.spw.cut)
	s.spw.done = make(chan struct{})
	s.bc.b.wg.Go(func() {
		defer close(s.spw.done)
		s.spoolwReplay(sp, from)
	})
}

// spoolwDurFrom is the replay's start for a subscriber that asked for
// replay-since (from is the asked seq): the earlier of it and a durable
// identity's position. Reader goroutine, before the replay starts.
func (s *subConn) spoolwDurFrom(from uint64) uint64 {
	d := &s.spw.dur
	if d.name == "" {
		return from
	}
	d.askedFrom = max(from, 1)
	return min(from, d.from)
}

// spoolwDurOwed reports whether the replay sends a spooled event: for a
// durable identity, one it is owed or one it asked for itself.
func (s *subConn) spoolwDurOwed(seq uint64) bool {
	d := &s.spw.dur
	if d.name == "" {
		return true
	}
	if d.askedFrom != 0 && seq >= d.askedFrom {
		return true
	}
	return s.bc.b.spoolw.durable().owed(d.name, seq)
}

// spoolwDurSending notes a spooled event the writer is about to send to a
// durable identity, so that its ack can be matched (writer goroutine).
func (s *subConn) spoolwDurSending(ev *event) {
	d := &s.spw.dur
	if d.name == "" || ev.spoolSeq == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.sent[ev.ivorn]; !ok && len(d.sent) >= spoolwDurMaxSent {
		if !d.overflow {
			d.overflow = true
			s.limited(slog.LevelWarn, "durable untracked", "durable subscriber leaves too many events unacknowledged; the rest are sent again next time", "identity", d.name, "limit", spoolwDurMaxSent)
		}
		return
	}
	d.sent[ev.ivorn] = ev.spoolSeq
}

// spoolwDurSkipped records that a durable identity's filters rejected a
// spooled event (writer goroutine); an event skipped because the
// subscriber is being dropped stays owed.
func (s *subConn) spoolwDurSkipped(ev *event) {
	d := &s.spw.dur
	if d.name == "" || ev.spoolSeq == 0 {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	s.bc.b.spoolw.durable().done(d.name, ev.spoolSeq)
}

// spoolwDurAnswer records a durable identity's ack or nak of an event
// (reader goroutine): its Origin is the event's ivorn.
func (s *subConn) spoolwDurAnswer(raw []byte) {
	d := &s.spw.dur
	if d.name == "" {
		return
	}
	tr, err := parseTransport(raw)
	if err != nil || tr.origin == "" {
		return
	}
	d.mu.Lock()
	seq, ok := d.sent[tr.origin]
	delete(d.sent, tr.origin)
	d.mu.Unlock()
	if ok {
		s.bc.b.spoolw.durable().done(d.name, seq)
	}
}
