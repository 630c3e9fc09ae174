// broadcaster.go owns the broadcaster role: subscribers connect, we send
// authenticate, then push every accepted event (and a test event every
// --broadcast-test-interval), and an iamalive every 60 s.
//
// Invariants: each subscriber has its own bounded queue, drained in order
// by the broadcaster's pump (fanout.go: plain TCP, no filters, writes that
// never block) or by its own writer goroutine, so a slow or dead
// subscriber never delays the others; a subscriber whose queue overflows
// is dropped. A subscriber's filters are evaluated in its writer
// goroutine, in queue order, so filtering never reorders its events; the
// event is parsed at most once (event.tree).
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type broadcaster struct {
	b *broker
	l *listener

	mu   sync.Mutex
	subs map[*subConn]struct{}

	filtering atomic.Int32 // subscribers with filters installed
	queued    atomic.Int64 // items in all the subscribers' queues

	pump *fanPump // writes for plain-TCP subscribers without filters (fanout.go)
}

func newBroadcaster(b *broker, l *listener) *broadcaster {
	return &broadcaster{b: b, l: l, subs: map[*subConn]struct{}{}, pump: newFanPump()}
}

// maxFiltersPerSubscriber bounds what one authenticate can make us compile
// and evaluate for every event (a compiled filter holds about 1 KB).
const maxFiltersPerSubscriber = 64

// filterSet is a subscriber's compiled filters. A nil *filterSet means the
// subscriber asked for everything; a set with no expressions (every filter
// failed to compile) matches nothing (contract difference 1).
type filterSet struct {
	exprs []*xpathExpr
	given int
}

// subConn is one connected subscriber.
type subConn struct {
	bc    *broadcaster
	conn  net.Conn
	peer  string
	log   *slog.Logger // with the peer's attributes
	since time.Time

	out     sendQueue
	done    chan struct{}
	once    sync.Once
	reason  error           // why drop was called (set once, before done closes)
	ctx     context.Context // cancelled by drop
	cancel  context.CancelFunc
	sawNak  bool   // the reader saw a nak (reader goroutine only)
	replied bool   // the subscriber answered our authenticate (reader goroutine only)
	garbage int    // unreadable messages in a row (reader goroutine only)
	host    string // hostKey of the peer, for rate-limited logs

	filters    atomic.Pointer[filterSet]
	overruns   int          // filter-budget overruns in a row (writer goroutine only)
	aliveCount atomic.Int32 // iamalives sent and not answered
	sent       atomic.Int64 // events written
	acked      atomic.Int64 // acks received (never more than sent)
	sentAtTick int64        // sent at the previous iamalive tick (tick goroutine only)
	lastMsg    atomic.Int64 // unix nanoseconds of the last message from the peer
	software   atomic.Pointer[string]

	spw spoolwSub // asked-for replay (spoolwire_replay.go)

	raw        syscall.RawConn // the pump's way to the socket; nil: only the writer writes (fanout.go)
	pumpBehind bool            // the pump's last write carried several events (pump goroutine only)
	pumpDue    int64           // then not written again before this fanNow (pump goroutine only)
	leftover   net.Buffers     // what the pump could not write; the writer's (under out.mu)
}

// outItem is an event to filter and send, or a message to send as is.
type outItem struct {
	ev  *event
	msg []byte
}

func (bc *broadcaster) handleSubscriber(ctx context.Context, c net.Conn) {
	b := bc.b
	s := &subConn{
		bc: bc, conn: c, peer: peerName(c), since: b.now(),
		out:  newSendQueue(b.cfg.subscriberQueue, b.cfg.subscriberQueueBytes),
		done: make(chan struct{}),
	}
	s.raw = fanRawConn(c)
	s.out.fast = s.raw != nil
	s.spw.wake = make(chan struct{}, 1) // before the pump may nudge it
	s.log = b.log.With("role", "broadcaster", "peer", s.peer)
	s.log = tlswLogWith(s.log, c)
	s.host = hostKey(c.RemoteAddr())
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.lastMsg.Store(s.since.UnixNano())
	// VTP: the broker speaks first.
	s.enqueue(outItem{msg: newBrokerMessage("authenticate", b.cfg.localIVO, b.now()).marshal()})
	bc.mu.Lock()
	bc.subs[s] = struct{}{}
	s.spoolwRegistered()
	n := len(bc.subs)
	bc.mu.Unlock()
	s.limited(slog.LevelInfo, "connect", "subscriber connected", "subscribers", n)

	writerDone := make(chan struct{})
	go func() { // owned by this function, which waits for it below
		defer close(writerDone)
		s.writeLoop()
	}()
	s.drop(s.readLoop())
	<-writerDone
	// The replay, if any, must queue nothing more.
	s.spoolwWait()
	bc.queued.Add(-int64(s.out.discard())) // what the writer left
	reason := s.reason                     // the first cause: a full queue, a dead peer, ...
	if s.filters.Swap(nil) != nil {
		bc.filtering.Add(-1)
	}
	bc.mu.Lock()
	delete(bc.subs, s)
	n = len(bc.subs)
	bc.mu.Unlock()
	sw := ""
	if p := s.software.Load(); p != nil {
		sw = *p
	}
	s.limited(slog.LevelInfo, "disconnect", "subscriber disconnected", "reason", reason.Error(), "sent", s.sent.Load(), "acked", s.acked.Load(), "software", rateTruncate(sw, 200), "subscribers", n)
}

// drop ends the subscriber's connection; safe to call more than once. The
// first reason given is the one the disconnection is logged with.
func (s *subConn) drop(reason error) {
	s.once.Do(func() {
		s.reason = reason
		if !errors.Is(reason, errConnClosed) {
			s.log.Debug("dropping subscriber", "reason", reason.Error())
		}
		close(s.done)
		s.cancel()
		s.conn.Close()
	})
}

// enqueue offers an item without blocking; a full queue drops the subscriber.
func (s *subConn) enqueue(it outItem) {
	if s.bc.queued.Add(1) > maxQueuedItems {
		// Every subscriber's queue slots together: the one that takes the
		// broadcaster over is behind the others (queues are suffixes of
		// one stream), so it goes.
		s.bc.queued.Add(-1)
		s.bc.b.m.limitHits.inc("subscriber-queues-total")
		s.limited(slog.LevelWarn, "queues full", "subscriber queues hold too many events in all; dropping the subscriber that is behind", "queued", s.out.len())
		s.drop(errQueueFull)
		return
	}
	ok, toPump := s.out.pushFor(it)
	if toPump {
		s.bc.pump.add(s)
	}
	if !ok {
		s.bc.queued.Add(-1)
		s.bc.b.m.limitHits.inc("subscriber-queue")
		s.limited(slog.LevelWarn, "queue full", "subscriber is not keeping up; dropping it", "queued", s.out.limit, "queued_bytes_limit", s.out.limitBytes)
		s.drop(errQueueFull)
	}
}

// maxQueuedItems bounds the queue slots of all of a broadcaster's
// subscribers together (each slot is 32 bytes, the events themselves being
// shared): 256 Ki slots, 8 MiB.
const maxQueuedItems = 256 << 10

// writeLoop sends what is queued, in order: a batch at a time, with one
// write call per batch, so a fast broker does not make one system call per
// event per subscriber.
func (s *subConn) writeLoop() {
	b := s.bc.b
	var batch []outItem
	var bufs net.Buffers
	var hdrs []byte
	backlog := false
	q := &s.out
	for {
		select {
		case <-s.done:
			return
		case <-q.ready:
		}
		// The stream is the pump's while it writes a batch; it hands the
		// stream over (and signals) if it cannot finish (fanout.go).
		q.mu.Lock()
		if q.owner == ownPump {
			q.mu.Unlock()
			continue
		}
		q.owner = ownWriter
		leftover := s.leftover
		s.leftover = nil
		q.mu.Unlock()
		if len(leftover) > 0 {
			s.conn.SetWriteDeadline(time.Now().Add(b.cfg.writeTimeout))
			if _, err := tlswWriteBuffers(s.conn, &leftover); err != nil {
				s.drop(fmt.Errorf("%w: %v", errWriteFailed, err))
				return
			}
		}
		// When the last batch held several events the subscriber is behind
		// a busy broker: wait a moment so this write carries more of them.
		// A subscriber that keeps up never waits.
		if backlog {
			t := time.NewTimer(writeCoalesce)
			select {
			case <-s.done:
				t.Stop()
				return
			case <-t.C:
			}
		}
		batch = q.take(batch[:0])
		s.bc.queued.Add(-int64(len(batch)))
		backlog = len(batch) > 1
		bufs, hdrs = bufs[:0], hdrs[:0]
		sentEvents := 0
		for i := range batch {
			it := &batch[i]
			payload := it.msg
			if it.ev != nil {
				select {
				case <-s.done:
					return // the subscriber is gone: no more work for it
				default:
				}
				if !s.wants(it.ev) {
					s.log.Debug("event rejected by filter", "ivorn", it.ev.ivorn)
					s.spoolwDurSkipped(it.ev) // done for a durable identity
					continue
				}
				s.spoolwDurSending(it.ev) // a durable identity's ack will name it
				payload = it.ev.raw
				sentEvents++
			}
			hdrs = binary.BigEndian.AppendUint32(hdrs, uint32(len(payload)))
			bufs = append(bufs, nil, payload)
		}
		if len(bufs) == 0 {
			s.release()
			continue
		}
		for i := 0; i < len(bufs); i += 2 {
			bufs[i] = hdrs[2*i : 2*i+4]
		}
		s.sent.Add(int64(sentEvents))
		if sentEvents > 0 {
			b.m.deliveries.Add(int64(sentEvents))
			b.m.deliveryWrites.Add(1)
		}
		s.conn.SetWriteDeadline(time.Now().Add(b.cfg.writeTimeout))
		if _, err := tlswWriteBuffers(s.conn, &bufs); err != nil { // bufs.WriteTo, or few TLS records
			s.drop(fmt.Errorf("%w: %v", errWriteFailed, err))
			return
		}
		clear(batch) // let the events be collected
		s.spoolwNudge()
		s.release()
	}
}

// release gives a pumped subscriber's stream back once its writer has
// emptied the queue and no filters need the writer (fanout.go); a queue
// that filled meanwhile has a signal waiting, and the writer goes on.
func (s *subConn) release() {
	q := &s.out
	if !q.fast { // set before the goroutines start: the writer's for good
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 && s.leftover == nil && s.filters.Load() == nil {
		// The pump's writes never block, and a deadline left in the past
		// would fail them: clear it while the stream is still ours.
		s.conn.SetWriteDeadline(time.Time{})
		q.owner = ownNone
	}
}

// writeCoalesce is how long a subscriber's writer that is behind waits to
// gather events into one write.
const writeCoalesce = 2 * time.Millisecond

// sendQueue is a subscriber's bounded queue, in items and in bytes. It holds
// only what is waiting, so an idle subscriber costs a few bytes, not a
// preallocated buffer; queued events are shared with every other queue
// (only the pointer is queued), so the bytes bound of one queue also bounds
// what all the queues hold together.
type sendQueue struct {
	mu         sync.Mutex
	items      []outItem
	bytes      int64
	limit      int
	limitBytes int64
	events     int64         // events ever pushed (for tests and /status)
	ready      chan struct{} // has a value while the writer has items to take

	// fast: the pump may write this queue (fanout.go); owner: who writes
	// it now; pumpQueued: the subscriber is in the pump's pending list.
	fast       bool
	owner      uint8
	pumpQueued bool
}

func newSendQueue(limit int, limitBytes int64) sendQueue {
	return sendQueue{limit: limit, limitBytes: limitBytes, ready: make(chan struct{}, 1)}
}

func (it *outItem) size() int64 {
	if it.ev != nil {
		return int64(len(it.ev.raw))
	}
	return int64(len(it.msg))
}

// push appends an item; false when the queue already holds limit items or
// the item would take it over limitBytes.
func (q *sendQueue) push(it outItem) bool {
	ok, _ := q.pushFor(it)
	return ok
}

// pushFor is push that also says whether the caller must hand the
// subscriber to the pump (nobody writes the queue and the pump may);
// otherwise it wakes the writer, unless the pump is writing the queue (it
// looks again when its write is done).
func (q *sendQueue) pushFor(it outItem) (ok, toPump bool) {
	n := it.size()
	q.mu.Lock()
	if len(q.items) >= q.limit || (q.limitBytes > 0 && q.bytes+n > q.limitBytes && len(q.items) > 0) {
		q.mu.Unlock()
		return false, false
	}
	q.items = append(q.items, it)
	q.bytes += n
	if it.ev != nil {
		q.events++
	}
	wake := false
	switch {
	case q.owner == ownPump:
	case q.owner == ownNone && q.fast:
		if !q.pumpQueued {
			q.pumpQueued, toPump = true, true
		}
	default:
		wake = true
	}
	q.mu.Unlock()
	if wake {
		q.signal()
	}
	return true, toPump
}

// signal wakes the queue's writer.
func (q *sendQueue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// len is the number of items queued.
func (q *sendQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// discard drops what is queued and says how many items it held; later
// pushes fail.
func (q *sendQueue) discard() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.items)
	q.items, q.bytes, q.limit = nil, 0, 0
	return n
}

// take moves every queued item to dst.
func (q *sendQueue) take(dst []outItem) []outItem {
	q.mu.Lock()
	dst = q.takeLocked(dst)
	q.mu.Unlock()
	return dst
}

// takeLocked is take with q.mu held.
func (q *sendQueue) takeLocked(dst []outItem) []outItem {
	dst = append(dst, q.items...)
	clear(q.items)
	q.bytes = 0
	if cap(q.items) > 256 {
		q.items = nil // give back the memory of a burst
	} else {
		q.items = q.items[:0]
	}
	return dst
}

// wants applies the subscriber's filters: any filter that matches sends the
// event; no filters at all sends everything.
func (s *subConn) wants(ev *event) bool {
	if !s.tlswWants(ev) { // the identity's filter= (tlswire.go), ANDed with the subscriber's
		return false
	}
	fs := s.filters.Load()
	if fs == nil {
		return true
	}
	if len(fs.exprs) == 0 {
		return false
	}
	doc, err := ev.tree(&s.bc.b.m.treeParses)
	if err != nil {
		s.log.Info("event cannot be filtered: not well-formed", "ivorn", ev.ivorn, "err", err)
		return false
	}
	// One budget per event for all the subscriber's filters together.
	deadline := time.Now().Add(s.bc.b.cfg.filterBudget)
	for _, x := range fs.exprs {
		match, timedOut := x.matchesBefore(doc, deadline)
		if timedOut {
			s.filterOverrun(ev)
			return false
		}
		if match {
			s.overruns = 0
			return true
		}
	}
	s.overruns = 0
	return false
}

// maxFilterOverruns is how many events in a row may exceed the filter
// budget before the subscriber is dropped.
const maxFilterOverruns = 3

// filterOverrun counts an event whose filters ran out of budget; it does
// not match, and maxFilterOverruns in a row drop the subscriber.
func (s *subConn) filterOverrun(ev *event) {
	s.bc.b.m.limitHits.inc("filter-budget")
	s.overruns++
	s.log.Warn("subscriber's filters exceeded their budget; the event does not match", "ivorn", ev.ivorn, "budget", s.bc.b.cfg.filterBudget, "in_a_row", s.overruns)
	if s.overruns >= maxFilterOverruns {
		s.drop(errFilterBudget)
	}
}

// maxGarbageInARow is how many unreadable messages in a row drop a
// subscriber (and put its host in the penalty box).
const maxGarbageInARow = 10

// limited logs a line this subscriber caused, rate-limited per host and
// reason (rateLog), with the connection's attributes.
func (s *subConn) limited(level slog.Level, reason, msg string, args ...any) {
	s.bc.b.rl.log(level, s.host, reason, msg, append([]any{"role", "broadcaster", "addr", s.peer}, args...)...)
}

// ackReadPause is how long a subscriber's reader that has read all it had
// waits before it reads again (readLoop): a busy subscriber's acks are then
// read a few batches to a system call. Nothing waits on them: acks are
// counted, iamalives answered and naks acted on within this much more.
const ackReadPause = 5 * time.Millisecond

// ackBufferKeep is the largest frame buffer a subscriber's reader keeps for
// the next frame; larger frames are charged to the in-flight budget.
const ackBufferKeep = 4 << 10

// readLoop handles the subscriber's messages until the connection ends, and
// says why it ended.
func (s *subConn) readLoop() error {
	b := s.bc.b
	// Buffered, so that the acks of a busy subscriber are read many to a
	// system call; an ack's frame is only looked at, so one buffer serves.
	br := bufio.NewReaderSize(s.conn, 4096)
	var buf []byte
	var pause *time.Timer
	defer func() {
		if pause != nil {
			pause.Stop()
		}
	}()
	for {
		if s.replied && br.Buffered() == 0 {
			// Acks in bulk: once the subscriber has answered the
			// authenticate (its filters are in place), what it sends is
			// acks and iamalives, which wait a moment to be read many to a
			// system call rather than one each.
			if pause == nil {
				pause = time.NewTimer(ackReadPause)
			} else {
				pause.Reset(ackReadPause)
			}
			select {
			case <-s.done:
				return errConnClosed
			case <-pause.C:
			}
		}
		raw, charge, err := s.readFrame(br, buf)
		if err != nil {
			select {
			case <-s.done:
				return errConnClosed
			default:
			}
			end, level := connEnd(err)
			s.limited(level, "ended", "subscriber connection ended: "+end.Error())
			var fe *frameError
			if errors.As(err, &fe) {
				s.bc.b.offend(s.conn.RemoteAddr(), end.Error())
			}
			return end
		}
		if cap(raw) <= ackBufferKeep {
			buf = raw[:0] // keep a buffer of ordinary size for the next frame
		}
		s.handleMessage(raw)
		b.inflight.release(charge)
		if err := s.endReason(); err != nil {
			return err
		}
		if s.garbage >= maxGarbageInARow {
			s.limited(slog.LevelWarn, "garbage", "subscriber keeps sending what is not VTP; dropping it", "in_a_row", s.garbage)
			b.offend(s.conn.RemoteAddr(), "repeated garbage")
			return errGarbage
		}
	}
}

// readFrame reads the subscriber's next frame into buf; a frame larger than
// ackBufferKeep first takes its charge of the in-flight budget (released by
// the caller), waiting for room until the subscriber is dropped.
func (s *subConn) readFrame(br *bufio.Reader, buf []byte) ([]byte, int64, error) {
	n, err := readFrameHeader(br, s.bc.b.cfg.maxMessageSize)
	if err != nil {
		return nil, 0, err
	}
	var charge int64
	if n > ackBufferKeep {
		charge = frameCharge(int(n))
		if err := s.bc.b.inflight.acquire(s.ctx, charge); err != nil {
			return nil, 0, errConnClosed
		}
	}
	raw, err := readFrameBody(br, buf, n)
	if err != nil {
		s.bc.b.inflight.release(charge)
		return nil, 0, err
	}
	return raw, charge, nil
}

// endReason is the error readLoop returns for a message that ends the
// connection (a nak), nil to go on.
func (s *subConn) endReason() error {
	if s.sawNak {
		return errPeerNak
	}
	return nil
}

// handleMessage handles one message from the subscriber.
func (s *subConn) handleMessage(raw []byte) {
	b := s.bc.b
	role, _, err := rootAttrs(raw)
	if err != nil {
		s.garbage++
		s.limited(slog.LevelWarn, "unparsable", "unparsable message from subscriber", "err", err)
		return
	}
	s.lastMsg.Store(b.now().UnixNano())
	if role != "ack" && role != "iamalive" && role != "nak" && role != "authenticate" {
		s.garbage++
		s.limited(slog.LevelWarn, "incomprehensible", "incomprehensible message from subscriber", "message", rateTruncate(role, 64))
		return
	}
	s.garbage = 0
	switch role {
	case "ack":
		// Acks are counted, not matched to events (as Comet), but
		// never beyond what was sent: no credit for unsolicited acks.
		for {
			a := s.acked.Load()
			if a >= s.sent.Load() || s.acked.CompareAndSwap(a, a+1) {
				break
			}
		}
		s.spoolwDurAnswer(raw) // done for a durable identity
		s.spoolwNudge()
	case "iamalive":
		for {
			a := s.aliveCount.Load()
			if a <= 0 || s.aliveCount.CompareAndSwap(a, a-1) {
				break
			}
		}
		if tr, err := parseTransport(raw); err == nil {
			s.noteSoftware(tr)
		}
	case "nak":
		s.log.Info("subscriber sent a nak; disconnecting it")
		s.spoolwDurAnswer(raw) // final for that event and a durable identity
		s.sawNak = true
	case "authenticate":
		tr, err := parseTransport(raw)
		if err != nil {
			s.limited(slog.LevelWarn, "unreadable", "unreadable authenticate from subscriber", "err", rateTruncate(err.Error(), 256))
			return
		}
		s.noteSoftware(tr)
		s.setFilters(tr.filters)
		s.spoolwAsk(tr)
		s.replied = true
	}
}

func (s *subConn) noteSoftware(tr *transport) {
	sw := tr.software()
	if sw == "" {
		return
	}
	if old := s.software.Load(); old == nil || *old != sw {
		s.software.Store(&sw)
		s.limited(slog.LevelInfo, "identified", "subscriber identified itself", "software", rateTruncate(sw, 200), "response", rateTruncate(tr.response, 200))
	}
}

// setFilters compiles and installs a subscriber's filters, replacing any
// earlier set. A filter that does not compile is logged and matches nothing.
func (s *subConn) setFilters(filters []string) {
	if len(filters) == 0 {
		if s.filters.Swap(nil) != nil {
			s.bc.filtering.Add(-1)
		}
		s.log.Info("subscriber receives every event (no filters)")
		return
	}
	if len(filters) > maxFiltersPerSubscriber {
		s.log.Warn("subscriber sent too many filters; using the first ones", "sent", len(filters), "limit", maxFiltersPerSubscriber)
		filters = filters[:maxFiltersPerSubscriber]
	}
	fs := &filterSet{given: len(filters)}
	for _, f := range filters {
		x, err := compileXPath(f)
		if err != nil {
			s.limited(slog.LevelWarn, "bad filter", "subscriber filter does not compile; it matches nothing", "filter", rateTruncate(f, 200), "err", rateTruncate(err.Error(), 200))
			continue
		}
		fs.exprs = append(fs.exprs, x)
	}
	if s.filters.Swap(fs) == nil {
		s.bc.filtering.Add(1)
	}
	s.log.Info("subscriber filters installed", "filters", len(fs.exprs), "invalid", fs.given-len(fs.exprs))
}

// relay offers an event to every subscriber.
func (bc *broadcaster) relay(ev *event) {
	bc.mu.Lock()
	for s := range bc.subs {
		if !s.spoolwLive(ev) {
			continue // sent, or to be sent, by its replay
		}
		s.enqueue(outItem{ev: ev})
	}
	bc.mu.Unlock()
}

// tick runs the iamalive and test-event timers until ctx ends.
func (bc *broadcaster) tick(ctx context.Context) {
	b := bc.b
	alive := time.NewTicker(b.cfg.iamaliveInterval)
	defer alive.Stop()
	var testC <-chan time.Time
	if b.cfg.testInterval > 0 {
		t := time.NewTicker(b.cfg.testInterval)
		defer t.Stop()
		testC = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-alive.C:
			bc.iamalive()
		case <-testC:
			ev := bc.testEvent(b.now())
			b.log.Debug("broadcasting test event", "ivorn", ev.ivorn)
			bc.relay(ev)
		}
	}
}

// iamalive applies Comet's rules at each tick: drop a subscriber that did
// not answer the previous iamalive, or that has not acknowledged
// maxOutstandingAcks events sent before the previous tick; otherwise send
// an iamalive. (Comet counts every unacknowledged event at the tick; we count
// only those older than one interval, so a busy, healthy subscriber whose
// acks are in flight is not dropped.)
func (bc *broadcaster) iamalive() {
	b := bc.b
	msg := newBrokerMessage("iamalive", b.cfg.localIVO, b.now()).marshal()
	bc.mu.Lock()
	subs := make([]*subConn, 0, len(bc.subs))
	for s := range bc.subs {
		subs = append(subs, s)
	}
	bc.mu.Unlock()
	for _, s := range subs {
		if s.aliveCount.Load() >= 1 {
			s.log.Info("subscriber appears dead (no answer to iamalive); dropping it")
			s.drop(errNoIamalive)
			continue
		}
		if lag := s.sentAtTick - s.acked.Load(); lag >= int64(b.cfg.maxOutstandingAcks) {
			s.log.Info("subscriber not acknowledging events; dropping it", "unacknowledged", lag)
			s.drop(errNotAcking)
			continue
		}
		s.sentAtTick = s.sent.Load()
		s.aliveCount.Add(1)
		s.enqueue(outItem{msg: msg})
	}
	b.log.Debug("sent iamalive", "subscribers", len(subs))
}

// testEvent builds the periodic test event in the shape Comet sends
// (comet-behaviour section 5.3), naming this software.
func (bc *broadcaster) testEvent(now time.Time) *event {
	local := bc.b.cfg.localIVO
	stamp := now.UTC().Format(transportTimeLayout)
	base, _, _ := strings.Cut(local, "#") // never two '#' in the ivorn
	ivorn := base + "#TestEvent-" + stamp
	var sb strings.Builder
	sb.WriteString(`<?xml version='1.0' encoding='UTF-8'?>` + "\n")
	sb.WriteString(`<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ivorn="`)
	escapeAttr(&sb, ivorn)
	sb.WriteString(`" role="test" version="2.0" xsi:schemaLocation="http://www.ivoa.net/xml/VOEvent/v2.0 http://www.ivoa.net/xml/VOEvent/VOEvent-v2.0.xsd">` + "\n")
	sb.WriteString("  <Who>\n    <AuthorIVORN>")
	escapeText(&sb, base)
	sb.WriteString("</AuthorIVORN>\n    <Date>" + stamp + "</Date>\n  </Who>\n  <What>\n")
	sb.WriteString(`    <Param name="Server" value="`)
	escapeAttr(&sb, softwareName(purposeTest))
	sb.WriteString("\"/>\n")
	fmt.Fprintf(&sb, "    <Description>Broker test event generated by comet %s.</Description>\n", version)
	sb.WriteString(`    <Reference uri="https://github.com/jdswinbank/Comet"/>` + "\n  </What>\n</voe:VOEvent>\n")
	raw := []byte(sb.String())
	ev := &event{raw: raw, root: raw, ivorn: ivorn, role: "test", from: "local test event", received: now}
	return ev
}

// closeAll drops every subscriber (shutdown).
func (bc *broadcaster) closeAll() {
	bc.mu.Lock()
	for s := range bc.subs {
		s.drop(errStopping)
	}
	bc.mu.Unlock()
}

// peers reports the connected subscribers for /status.
func (bc *broadcaster) peers() []peerStatus {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	var out []peerStatus
	for s := range bc.subs {
		p := peerStatus{Role: "subscriber", Address: s.peer, State: "connected", Since: s.since,
			LastMessage: time.Unix(0, s.lastMsg.Load()), Delivered: s.sent.Load(),
			AcksOutstanding: s.sent.Load() - s.acked.Load()}
		if sw := s.software.Load(); sw != nil {
			p.Software = *sw
		}
		if fs := s.filters.Load(); fs != nil {
			p.Filters = fs.given
		}
		p.Identity = tlswConnName(s.conn)
		out = append(out, p)
	}
	return out
}
