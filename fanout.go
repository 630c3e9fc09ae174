// fanout.go owns the broadcaster's pump: one goroutine per broadcaster that
// writes what is queued for its plain-TCP subscribers, each with one
// non-blocking writev, so that an event reaches a hundred subscribers
// without waking a hundred writer goroutines (issue 15: with 100
// subscribers on two cores that took about 13 % off the broker's CPU per
// event; BENCHMARKS.md).
//
// Who writes a subscriber's stream is decided under its queue's mutex
// (sendQueue.owner): nobody, the pump, or the subscriber's own writer
// goroutine (broadcaster.go's writeLoop). Exactly one writes at a time, and
// each takes the queue's items in order, so events are never reordered.
//   - A plain-TCP subscriber without filters (sendQueue.fast, checked per
//     batch) is written by the pump: push hands it to the pump when nobody
//     owns it, the pump takes every queued item and writes them at once. A
//     write that would block (the socket's buffer is full) is not waited
//     for: what is left goes to the subscriber's writer, which owns the
//     stream until it has written that and emptied the queue, with the
//     write deadline and the coalescing of a subscriber that is behind.
//   - A subscriber with filters, a TLS or a Unix-socket one is written by
//     its writer, as before: filters may take milliseconds and must never
//     delay another subscriber.
//
// The pump does not wait for company: it writes as soon as it is woken,
// and the events relayed while it was writing to the others go out
// together on its next round. Only a subscriber that is behind (its last
// write carried several events) is written again no sooner than
// writeCoalesce after that write, the rule its writer applies; a
// subscriber that keeps up never waits for coalescing.
//
// Invariants: only the stream's owner writes to the socket; the pump never
// blocks (a full socket hands over); a write deadline is set only by the
// writer and cleared before it hands the stream back (the pump's raw
// writes would fail on one left in the past).
package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"
)

// Who writes a subscriber's stream (sendQueue.owner).
const (
	ownNone   uint8 = iota // nobody: a push hands the stream to the pump, or wakes the writer
	ownPump                // the pump is writing a batch
	ownWriter              // the subscriber's writer goroutine
)

// fanPumpMaxItems bounds the items of one writev (IOV_MAX is 1024 on
// Linux: two buffers per item).
const fanPumpMaxItems = 512

// fanPump is a broadcaster's pump: the subscribers with something queued
// and nobody writing it.
type fanPump struct {
	mu      sync.Mutex
	pending []*subConn
	wake    chan struct{} // holds a value while pending may be non-empty
}

func newFanPump() *fanPump { return &fanPump{wake: make(chan struct{}, 1)} }

// add asks the pump to write s's queue (s.out.pumpQueued was set by push).
func (p *fanPump) add(s *subConn) {
	p.mu.Lock()
	p.pending = append(p.pending, s)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run writes for the pending subscribers until ctx ends.
func (p *fanPump) run(ctx context.Context) {
	var work, deferred []*subConn
	w := newFanWriter()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		// A subscriber that is behind (its last write carried several
		// events) is written again writeCoalesce after its last write, as
		// its writer would: the wait for the earliest of them.
		var due <-chan time.Time
		if len(deferred) > 0 {
			first := deferred[0].pumpDue
			for _, s := range deferred[1:] {
				first = min(first, s.pumpDue)
			}
			timer.Reset(time.Duration(first - fanNow()))
			due = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-due:
		}
		timer.Stop()
		for ctx.Err() == nil {
			// Due subscribers first, on every round: a busy pump may go
			// round after round without returning to the wait above.
			now := fanNow()
			keep := deferred[:0]
			for _, s := range deferred {
				if s.pumpDue <= now {
					work = append(work, s)
				} else {
					keep = append(keep, s)
				}
			}
			clear(deferred[len(keep):])
			deferred = keep
			p.mu.Lock()
			work = append(work, p.pending...)
			clear(p.pending)
			p.pending = p.pending[:0]
			p.mu.Unlock()
			if len(work) == 0 {
				break
			}
			for _, s := range work {
				if s.pumpBehind && s.pumpDue > now {
					deferred = append(deferred, s) // still pumpQueued: pushes only queue
					continue
				}
				s.pumpWrite(w, now)
			}
			clear(work)
			work = work[:0]
		}
	}
}

// fanNow is the monotonic clock in nanoseconds since the process began.
func fanNow() int64 { return int64(time.Since(fanEpoch)) }

var fanEpoch = time.Now()

// pumpWrite writes what is queued for s with non-blocking writes, or hands
// the stream to s's writer.
func (s *subConn) pumpWrite(w *fanWriter, now int64) {
	q := &s.out
	q.mu.Lock()
	q.pumpQueued = false
	if q.owner != ownNone || len(q.items) == 0 {
		q.mu.Unlock()
		return
	}
	if s.filters.Load() != nil {
		// Filters are the writer's business.
		q.owner = ownWriter
		q.mu.Unlock()
		q.signal()
		return
	}
	q.owner = ownPump
	w.batch = q.takeLocked(w.batch[:0])
	q.mu.Unlock()
	s.bc.queued.Add(-int64(len(w.batch)))
	s.pumpBehind, s.pumpDue = len(w.batch) > 1, now+int64(writeCoalesce)
	defer clear(w.batch) // let the events be collected

	select {
	case <-s.done:
		return // gone: the stream stays the pump's, nobody writes it again
	default:
	}
	b := s.bc.b
	for start := 0; start < len(w.batch); start += fanPumpMaxItems {
		items := w.batch[start:min(start+fanPumpMaxItems, len(w.batch))]
		events := w.build(items)
		// Counted before the write, as the writer does: an ack can come
		// back before writev returns.
		s.sent.Add(int64(events))
		if events > 0 {
			b.m.deliveries.Add(int64(events))
		}
		b.m.deliveryWrites.Add(1)
		n, again, err := fanWritev(s.raw, w)
		if err != nil {
			s.drop(fmt.Errorf("%w: %v", errWriteFailed, err))
			return
		}
		if again || n < w.total {
			// The socket is full: the writer finishes with a deadline.
			rest := w.rest(n, w.batch[start+len(items):])
			q.mu.Lock()
			s.leftover = rest
			q.owner = ownWriter
			q.mu.Unlock()
			q.signal()
			s.spoolwNudge()
			return
		}
	}
	q.mu.Lock()
	q.owner = ownNone
	more := len(q.items) > 0 && !q.pumpQueued
	if more {
		q.pumpQueued = true
	}
	q.mu.Unlock()
	if more {
		s.bc.pump.add(s)
	}
	s.spoolwNudge()
}

// fanWriter is the pump's scratch: the batch taken, the frame headers and
// the buffers of one writev.
type fanWriter struct {
	batch []outItem
	hdrs  []byte
	bufs  [][]byte
	total int // bytes in bufs
	sys   fanSys
}

func newFanWriter() *fanWriter {
	w := &fanWriter{}
	w.sys.init()
	return w
}

// build lays out the frames of items in w.bufs and says how many are events.
func (w *fanWriter) build(items []outItem) int {
	w.hdrs, w.bufs, w.total = w.hdrs[:0], w.bufs[:0], 0
	events := 0
	for i := range items {
		payload := items[i].msg
		if items[i].ev != nil {
			payload = items[i].ev.raw
			events++
		}
		w.hdrs = binary.BigEndian.AppendUint32(w.hdrs, uint32(len(payload)))
		w.bufs = append(w.bufs, nil, payload)
		w.total += 4 + len(payload)
	}
	for i := 0; i < len(w.bufs); i += 2 {
		w.bufs[i] = w.hdrs[2*i : 2*i+4]
	}
	return events
}

// rest is what remains to send after n bytes of w.bufs were written, then
// the frames of later (not yet laid out) items, as buffers of its own: the
// headers (the pump's reused scratch) are copied, the payloads (immutable,
// shared) are not.
func (w *fanWriter) rest(n int, later []outItem) net.Buffers {
	var out net.Buffers
	for i, buf := range w.bufs {
		if n >= len(buf) {
			n -= len(buf)
			continue
		}
		if i%2 == 0 { // a header
			out = append(out, append([]byte(nil), buf[n:]...))
		} else {
			out = append(out, buf[n:])
		}
		n = 0
	}
	for i := range later {
		payload := later[i].msg
		if later[i].ev != nil {
			payload = later[i].ev.raw
		}
		out = append(out, binary.BigEndian.AppendUint32(nil, uint32(len(payload))), payload)
	}
	return out
}

// fanRawConn is the raw connection the pump writes to, nil when the
// subscriber is not pumped (TLS, Unix sockets, platforms without writev).
func fanRawConn(c net.Conn) syscall.RawConn {
	tc, ok := c.(*net.TCPConn)
	if !ok || !fanSupported {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}
