// spoolwire_replay.go owns the asked-for replay to a subscriber (contract
// section 9): a subscriber's authenticate response with
// <Param name="replay-since" value="RFC3339"/> gets the spooled events
// received since then (inclusive), its filters applied in its writer as for
// live events, in spool order, then live events with no gap and no event
// twice on the connection.
//
// The subscriber is registered for live events when it connects, before it
// can ask, so the hand-off of notes/spool.md is done with three marks, all
// read and set under the broadcaster's lock (bc.mu, which relay holds while
// it offers an event to each subscriber):
//   - liveFrom, the spool's head when the subscriber registered: a spooled
//     event below it was appended before the subscriber came and is not
//     sent live (the replay may send it);
//   - cut, the head when the replay began: events in [liveFrom, cut) go
//     live (they may have been sent already) and the replay skips them;
//     live events at or above cut are dropped while the replay runs (the
//     spool reader sends them);
//   - floor, the reader's position once it has caught up with the head,
//     taken with bc.mu held so no relay interleaves: live events in
//     [cut, floor) are dropped (the reader sent them), the rest go live.
//
// Admission appends an event to the spool before it relays it (order rule),
// which is what makes the three marks exact.
//
// Memory: the replay feeds the subscriber's queue only while it holds less
// than half of its item and byte limits (--subscriber-queue,
// --subscriber-queue-bytes), and at most spoolwReplayQueueBytes, and fewer
// than spoolwReplayUnacked events sent are unacknowledged, so a replay never
// holds more than a live backlog would. Events read from disk are not
// shared between connections as live ones are, so at most spoolwMaxReplays
// replays run at once (others wait their turn, their live events held back
// for the replay to send): replays together hold at most
// spoolwMaxReplays * spoolwReplayQueueBytes. The replay's goroutine ends when the subscriber goes (its writer
// has stopped, handleSubscriber waits for it) or the spool closes.
package main

import (
	"log/slog"
	"time"
)

// Bounds of the replays.
const (
	spoolwReplayUnacked    = 128     // events a replay keeps unacknowledged
	spoolwReplayQueueBytes = 2 << 20 // bytes a replay keeps queued
	spoolwMaxReplays       = 4       // replays running at once
)

// spoolwReplayPoll is how long a replay waiting for room sleeps when no ack
// or write wakes it first.
const spoolwReplayPoll = 20 * time.Millisecond

// spoolwSub is a subscriber's replay state. The marks are guarded by the
// broadcaster's mu; wake is made with the subConn, done is set at
// registration (before the subscriber's goroutines start) and not changed
// after.
type spoolwSub struct {
	tracking  bool   // the spool was on when the subscriber registered
	liveFrom  uint64 // the spool's head at registration
	started   bool   // a replay began (cut is set)
	replaying bool   // the replay has not yet handed off to live
	cut       uint64 // the head when the replay began
	floor     uint64 // the reader's position at the hand-off

	asked bool          // replay-since was seen (reader goroutine only)
	dur   spoolwDurSub  // a durable identity's state (spoolwire_durable.go)
	wake  chan struct{} // an ack arrived or the writer wrote
	done  chan struct{} // closed when the replay goroutine ends; nil if none
}

// spoolwRegistered initialises the replay state; handleSubscriber calls it
// with bc.mu held, as it adds the subscriber to the broadcaster.
func (s *subConn) spoolwRegistered() {
	if sp := s.bc.b.spoolw.spool(); sp != nil {
		s.spw.tracking, s.spw.liveFrom = true, sp.head()
	}
	s.spoolwDurRegistered()
}

// spoolwLive decides whether a live event goes to this subscriber; relay
// calls it with bc.mu held.
func (s *subConn) spoolwLive(ev *event) bool {
	st := &s.spw
	seq := ev.spoolSeq
	if seq == 0 || !st.tracking {
		return true
	}
	switch {
	case seq < st.liveFrom:
		return false // appended before the subscriber came
	case !st.started || seq < st.cut:
		return true
	case st.replaying:
		return false // the reader sends it
	}
	return seq >= st.floor
}

// spoolwNudge wakes a replay waiting for room.
func (s *subConn) spoolwNudge() {
	select {
	case s.spw.wake <- struct{}{}:
	default:
	}
}

// spoolwWait waits for the replay goroutine, if any, to end; the
// subscriber's connection is already closed.
func (s *subConn) spoolwWait() {
	if s.spw.done != nil {
		<-s.spw.done
	}
}

// spool is the broker's spool, nil when off.
func (c *spoolWire) spool() *spool {
	if c == nil {
		return nil
	}
	return c.sp
}

// spoolwAsk handles the replay-since Param of an authenticate response
// (reader goroutine). Only the first one on a connection counts; without
// a spool the Param is ignored, as the Python Comet ignores it.
func (s *subConn) spoolwAsk(tr *transport) {
	v := tr.param(spoolwParamReplaySince)
	if v == "" {
		s.spoolwDurAsk() // a durable identity replays unasked
		return
	}
	b := s.bc.b
	sp := b.spoolw.spool()
	if sp == nil || !s.spw.tracking {
		s.log.Debug("subscriber asked for replay; the spool is off", "replay_since", rateTruncate(v, 64))
		return
	}
	if s.spw.asked {
		s.limited(slog.LevelInfo, "replay again", "subscriber asked for replay again on one connection; ignored", "replay_since", rateTruncate(v, 64))
		return
	}
	s.spw.asked = true
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		s.limited(slog.LevelWarn, "bad replay-since", "subscriber's replay-since is not an RFC 3339 time; no replay", "replay_since", rateTruncate(v, 64))
		s.spoolwDurReplay() // a durable identity still gets what it is owed
		return
	}
	s.bc.mu.Lock()
	s.spw.started, s.spw.replaying, s.spw.cut = true, true, sp.head()
	s.bc.mu.Unlock()
	from := s.spoolwDurFrom(sp.since(t)) // the earlier of it and a durable position
	s.limited(slog.LevelInfo, "replay", "replaying spooled events to subscriber", "since", t.UTC().Format(time.RFC3339Nano), "from_seq", from, "head", s.spw.cut)
	s.spw.done = make(chan struct{})
	b.wg.Go(func() {
		defer close(s.spw.done)
		s.spoolwReplay(sp, from)
	})
}

// spoolwReplay sends the spooled events from seq from, then hands off to
// live delivery (see the file comment).
func (s *subConn) spoolwReplay(sp *spool, from uint64) {
	slots := s.bc.b.spoolw.slots
	select {
	case slots <- struct{}{}:
		defer func() { <-slots }()
	case <-s.done:
		return
	}
	r := sp.reader(from)
	defer r.close()
	sent := 0
	var poll *time.Timer
	defer func() {
		if poll != nil {
			poll.Stop()
		}
	}()
	for {
		for !s.spoolwRoom() {
			if poll == nil {
				poll = time.NewTimer(spoolwReplayPoll)
			} else {
				poll.Reset(spoolwReplayPoll)
			}
			select {
			case <-s.done:
				return
			case <-s.spw.wake:
			case <-poll.C:
			}
		}
		select {
		case <-s.done:
			return
		default:
		}
		e, ok, err := r.next()
		if err != nil {
			s.spoolwHandOff(r, err)
			return
		}
		if !ok {
			sent += s.spoolwHandOff(r, nil)
			s.log.Info("replay caught up; live events follow", "replayed", sent)
			return
		}
		if s.spoolwPush(e) {
			sent++
		}
	}
}

// spoolwHandOff drains the reader to the head with bc.mu held (no live
// event is offered meanwhile), sets the floor and ends the replaying
// state. After a read error the replay just ends there. It returns the
// events it queued.
func (s *subConn) spoolwHandOff(r *spoolReader, err error) int {
	n := 0
	s.bc.mu.Lock()
	defer s.bc.mu.Unlock()
	for err == nil {
		var e spoolEntry
		var ok bool
		e, ok, err = r.next()
		if !ok {
			break
		}
		if s.spoolwPush(e) {
			n++
		}
	}
	if err != nil && err != errSpoolClosed {
		s.limited(slog.LevelError, "replay error", "cannot read the spool; the replay ends here", "err", err)
	}
	s.spw.floor, s.spw.replaying = r.position(), false
	return n
}

// spoolwPush queues a spooled event for the writer (which applies the
// subscriber's filters), unless it went live before the replay began.
func (s *subConn) spoolwPush(e spoolEntry) bool {
	if e.seq >= s.spw.liveFrom && e.seq < s.spw.cut {
		return false
	}
	if !s.spoolwDurOwed(e.seq) {
		return false // a durable identity acked it, or it was not for it
	}
	ev := &event{raw: e.raw, ivorn: e.ivorn, role: e.role, from: e.source, received: e.received, spoolSeq: e.seq}
	s.enqueue(outItem{ev: ev})
	return true
}

// spoolwRoom reports whether the replay may queue another event.
func (s *subConn) spoolwRoom() bool {
	q := &s.out
	q.mu.Lock()
	n, bytes := len(q.items), q.bytes
	q.mu.Unlock()
	if n >= max(q.limit/2, 1) || bytes >= spoolwReplayQueueBytes || (q.limitBytes > 0 && bytes >= q.limitBytes/2) {
		return false
	}
	return s.sent.Load()-s.acked.Load() < spoolwReplayUnacked
}
