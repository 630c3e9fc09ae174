// handlers.go owns what happens to a new event after it has been recorded
// and relayed (the sender's reply follows; see admission.go): the handler
// plugins (--cmd, --print-event, --save-event and any a site adds) and the
// bounded queue that runs them off the network path.
//
// Invariants: submit never blocks (an event that does not fit is dropped,
// logged and counted); a handler that fails, panics, hangs or blocks never
// affects another handler, the ack or delivery (each has its own lane); close
// is bounded by its context, and every goroutine the queue starts has
// exited when it returns unless a handler is stuck beyond cancelling.
//
// Adding a handler: write one file handler_NAME.go with a type implementing
// handlerPlugin and register a constructor for it from init() with
// registerHandlerPlugin. Its
// flags then appear in --help and its handlers run for every new event.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the handler queues (exported as flags by the broker).
const (
	defaultHandlerQueue      = 1024    // events waiting for one handler
	defaultHandlerQueueBytes = 8 << 20 // bytes waiting for the handlers, all together
	defaultHandlerWorkers    = 4       // events one handler handles at the same time
)

// A handlerPlugin is the parsed options of one kind of handler: a fresh
// value is made for every parse of the command line (so parsing holds no
// state between calls), its flags are declared on that parse's flag set,
// and once the broker starts it gives the handlers those options ask for.
type handlerPlugin interface {
	// pluginName names the plugin ("cmd", "print-event", "save-event").
	pluginName() string
	// addFlags declares the plugin's options on the broker's flag set,
	// storing what is parsed in the plugin value itself.
	addFlags(fs *flag.FlagSet)
	// handlers returns the handlers the parsed options ask for: none when
	// the plugin is not enabled, one per --cmd for the cmd plugin.
	handlers(log *slog.Logger) ([]handler, error)
}

// A handler acts on one new event. handle must return promptly once ctx is
// cancelled (the broker is stopping or the handler's time is up); ev and
// ev.raw must not be modified.
type handler interface {
	name() string
	handle(ctx context.Context, ev *event) error
}

// pluginFactories make fresh plugin values; the registry holds no option
// values, only how to make them.
var pluginFactories []func() handlerPlugin

// registerHandlerPlugin adds a plugin kind; call it from init() with a
// function that returns a new, empty plugin value. The cmd plugin always
// comes first, as Comet runs --cmd before its plugins; the others follow in
// registration order, which is the order of their file names (Go runs init
// functions file by file in name order).
func registerHandlerPlugin(newPlugin func() handlerPlugin) {
	name := newPlugin().pluginName()
	for _, f := range pluginFactories {
		if f().pluginName() == name {
			panic("duplicate handler plugin " + name)
		}
	}
	if name == "cmd" {
		pluginFactories = append([]func() handlerPlugin{newPlugin}, pluginFactories...)
		return
	}
	pluginFactories = append(pluginFactories, newPlugin)
}

// handlerPlugins returns a fresh value of every registered plugin, in
// registration order.
func handlerPlugins() []handlerPlugin {
	ps := make([]handlerPlugin, len(pluginFactories))
	for i, f := range pluginFactories {
		ps[i] = f()
	}
	return ps
}

// addHandlerFlags declares the options of a fresh set of plugins on fs and
// returns the set, which holds what fs parses.
func addHandlerFlags(fs *flag.FlagSet) []handlerPlugin {
	ps := handlerPlugins()
	for _, p := range ps {
		p.addFlags(fs)
	}
	return ps
}

// buildHandlers asks every plugin for its handlers, after the flags have
// been parsed, and returns them in plugin order.
func buildHandlers(plugins []handlerPlugin, log *slog.Logger) ([]handler, error) {
	var hs []handler
	for _, p := range plugins {
		h, err := p.handlers(log)
		if err != nil {
			return nil, fmt.Errorf("handler %s: %v", p.pluginName(), err)
		}
		hs = append(hs, h...)
	}
	return hs, nil
}

// handlerQueue runs the handlers off the network path: each handler has a
// lane of its own (a FIFO bounded in events and bytes, drained by its own
// workers), so a handler that is slow or stuck fills only its own lane and
// never delays another handler. An event is shared by the lanes (its bytes
// are not copied); each lane's byte bound is its share of
// --handler-queue-bytes, and an event larger than that share is still taken
// by an empty lane, so the bytes held are at most --handler-queue-bytes plus
// one largest message per lane.
type handlerQueue struct {
	lanes []*handlerLane
	m     *metrics
	log   *slog.Logger

	mu     sync.RWMutex // guards closed against submits
	closed bool

	runCtx    context.Context // cancelled when close gives up waiting
	cancelRun context.CancelFunc
	abandon   atomic.Bool  // set when close gives up: workers drop what is left
	abandoned atomic.Int64 // events dropped at shutdown without being handled
	wg        sync.WaitGroup
}

// handlerLane is one handler's queue.
type handlerLane struct {
	h    handler
	name string

	mu       sync.Mutex
	items    []*event // FIFO: items[head:]
	head     int
	bytes    int64
	maxItems int
	maxBytes int64
	closed   bool
	ready    chan struct{} // has a value while items are waiting, or once closed

	overflows atomic.Int64
}

// handlerLaneStatus is one lane's state for /status and /metrics.
type handlerLaneStatus struct {
	Name      string `json:"name"`
	Queued    int    `json:"queued"`
	Bytes     int64  `json:"queued_bytes"`
	Overflows int64  `json:"overflows"`
}

// newHandlerQueue starts, for each handler, a lane of at most queueLen
// events drained by workers goroutines. Non-positive sizes take the
// defaults; the byte bound is defaultHandlerQueueBytes until setMaxBytes.
func newHandlerQueue(hs []handler, queueLen, workers int, m *metrics, log *slog.Logger) *handlerQueue {
	if queueLen <= 0 {
		queueLen = defaultHandlerQueue
	}
	if workers <= 0 {
		workers = defaultHandlerWorkers
	}
	if m == nil {
		m = &metrics{}
	}
	q := &handlerQueue{m: m, log: log}
	q.runCtx, q.cancelRun = context.WithCancel(context.Background())
	for _, h := range hs {
		l := &handlerLane{h: h, name: h.name(), maxItems: queueLen, ready: make(chan struct{}, 1)}
		q.lanes = append(q.lanes, l)
		for range workers {
			q.wg.Go(func() { q.work(l) })
		}
	}
	q.setMaxBytes(defaultHandlerQueueBytes)
	return q
}

// setMaxBytes shares n bytes among the lanes.
func (q *handlerQueue) setMaxBytes(n int64) {
	for _, l := range q.lanes {
		l.mu.Lock()
		l.maxBytes = max(n/int64(len(q.lanes)), 1)
		l.mu.Unlock()
	}
}

// submit queues ev for every handler without blocking. It returns false
// when a handler's lane is full (that handler skips the event; the overflow
// is logged and counted) or the queue is closed.
func (q *handlerQueue) submit(ev *event) bool {
	if len(q.lanes) == 0 {
		if ev.handled != nil {
			ev.handled()
		}
		return true
	}
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		q.log.Warn("handler queue closed, event not handled", "ivorn", ev.ivorn)
		if ev.handled != nil {
			ev.handled()
		}
		return false
	}
	all := true
	// Count the lanes that took it before any can finish with it.
	ev.handlersLeft.Add(int32(len(q.lanes)))
	for _, l := range q.lanes {
		if !l.push(ev) {
			all = false
			l.overflows.Add(1)
			q.m.handlerOverflows.Add(1)
			q.log.Warn("handler queue full, event not handled", "handler", l.name, "ivorn", ev.ivorn, "queue", l.maxItems, "queue_bytes", l.maxBytes)
			finishedWith(ev)
		}
	}
	return all
}

// finishedWith notes that one handler lane is done with ev, calling
// ev.handled when it was the last.
func finishedWith(ev *event) {
	if ev.handlersLeft.Add(-1) == 0 && ev.handled != nil {
		ev.handled()
	}
}

// push appends ev unless the lane is full in events or bytes (an empty
// lane takes any event).
func (l *handlerLane) push(ev *event) bool {
	n := int64(len(ev.raw))
	l.mu.Lock()
	queued := len(l.items) - l.head
	if l.closed || queued >= l.maxItems || (queued > 0 && l.bytes+n > l.maxBytes) {
		l.mu.Unlock()
		return false
	}
	l.items = append(l.items, ev)
	l.bytes += n
	l.mu.Unlock()
	select {
	case l.ready <- struct{}{}:
	default:
	}
	return true
}

// pop takes the oldest event, waiting for one; nil once the lane is closed
// and empty.
func (l *handlerLane) pop() *event {
	for {
		l.mu.Lock()
		if l.head < len(l.items) {
			ev := l.items[l.head]
			l.items[l.head] = nil
			l.head++
			l.bytes -= int64(len(ev.raw))
			if l.head == len(l.items) {
				l.items, l.head = l.items[:0], 0
				if cap(l.items) > 256 {
					l.items = nil // give back the memory of a burst
				}
			}
			more := l.head < len(l.items) || l.closed
			l.mu.Unlock()
			if more {
				l.signal()
			}
			return ev
		}
		if l.closed {
			l.mu.Unlock()
			l.signal() // wake the lane's other workers
			return nil
		}
		l.mu.Unlock()
		<-l.ready
	}
}

func (l *handlerLane) signal() {
	select {
	case l.ready <- struct{}{}:
	default:
	}
}

func (l *handlerLane) status() handlerLaneStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return handlerLaneStatus{Name: l.name, Queued: len(l.items) - l.head, Bytes: l.bytes, Overflows: l.overflows.Load()}
}

// status reports every lane.
func (q *handlerQueue) status() []handlerLaneStatus {
	out := make([]handlerLaneStatus, 0, len(q.lanes))
	for _, l := range q.lanes {
		out = append(out, l.status())
	}
	return out
}

// close stops accepting events and lets the workers finish what is queued
// until ctx is done; then it cancels the running handlers and drops the
// events still waiting (logging how many). It returns when the workers have
// exited, or, if a handler is stuck where cancelling cannot reach it (a
// write to a pipe nobody reads), at ctx's end plus a moment, logging it:
// the process is exiting and takes the stuck goroutine with it.
func (q *handlerQueue) close(ctx context.Context) {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		for _, l := range q.lanes {
			l.mu.Lock()
			l.closed = true
			l.mu.Unlock()
			l.signal()
		}
	}
	q.mu.Unlock()

	done := make(chan struct{})
	go func() {
		q.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		q.cancelRun()
		return
	case <-ctx.Done():
	}
	q.abandon.Store(true)
	q.cancelRun()
	t := time.NewTimer(handlerStuckGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		q.log.Warn("a handler is stuck and cannot be cancelled; leaving it to the process's exit")
	}
	if n := q.abandoned.Load(); n > 0 {
		q.log.Warn("handler queue abandoned events at shutdown", "events", n)
	}
}

// handlerStuckGrace is how long close waits for cancelled handlers.
const handlerStuckGrace = 250 * time.Millisecond

func (q *handlerQueue) work(l *handlerLane) {
	for {
		ev := l.pop()
		if ev == nil {
			return
		}
		if q.abandon.Load() {
			q.abandoned.Add(1)
			continue // not handled: ev.handled is not called
		}
		q.run(l.h, ev)
		finishedWith(ev)
	}
}

// run runs one handler on one event, counting the run and any failure; a
// panic in the handler is a failure.
func (q *handlerQueue) run(h handler, ev *event) {
	name := h.name()
	q.m.handlerRuns.inc(name)
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return h.handle(q.runCtx, ev)
	}()
	if err != nil {
		q.m.handlerFailures.inc(name)
		q.log.Warn("event handler failed", "handler", name, "ivorn", ev.ivorn, "err", err)
		return
	}
	q.log.Debug("event handler done", "handler", name, "ivorn", ev.ivorn)
}
